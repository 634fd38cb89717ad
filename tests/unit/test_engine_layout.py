"""The engine stays the corridor: ``Engine`` is at most 250 lines of code, and names no observer.

Lines of code, as counted here: the lines of the ``class Engine`` statement (from
``class`` to its last line) that hold a token of code, so not blank lines, not lines
that hold only a comment, and not docstrings (a string statement first in a class or
function body, or right after an attribute it documents).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import inkit_async

ENGINE = Path(inkit_async.__file__).parent / "_engine.py"
#: The issue's bound on the engine class.
MOST_LINES = 250
_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def lines_of_code(source: str, class_name: str) -> int:
    """The lines of code of the top-level class *class_name* in *source* (see above)."""
    tree = ast.parse(source)
    [node] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    docstrings: set[int] = set()
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        for statement in body if isinstance(body, list) else ():
            if (
                isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                docstrings.update(range(statement.lineno, (statement.end_lineno or 0) + 1))
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            code.update(range(token.start[0], token.end[0] + 1))
    lines = range(node.lineno, (node.end_lineno or 0) + 1)
    return sum(1 for line in lines if line in code and line not in docstrings)


def test_the_count_skips_blank_lines_comments_and_docstrings():
    """Two lines of code: the class line and the assignment."""
    source = 'class A:\n    """Doc\n    string."""\n\n    # why\n    x = 1\n    """x."""\n'
    assert lines_of_code(source, "A") == 2


def test_the_engine_class_is_at_most_250_lines_of_code():
    """slot, permit, send, decide, observe, sleep: the rest lives in modules of its own."""
    assert lines_of_code(ENGINE.read_text(encoding="utf-8"), "Engine") <= MOST_LINES


def test_the_engine_names_no_observer():
    """Logging, OpenTelemetry and on_event reach the engine only through _observe.py."""
    tree = ast.parse(ENGINE.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.name for alias in node.names)
            names.add(getattr(node, "module", None) or "")
    assert "_observe" in names
    observers = {"logging", "logger", "_log", "LogObserver", "EventCallbackObserver"}
    observers |= {"_tracing", "Telemetry", "telemetry", "opentelemetry", "on_event"}
    assert not names & observers
