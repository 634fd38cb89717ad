"""The API reference (docs/reference.md, rendered by mkdocstrings) reads as it should.

mkdocstrings renders docstrings as Markdown and signatures as written in the source: a
reST ``::`` shows as two colons, and a default written as a constant's name shows the
name (``DEFAULT_TIMEOUT``), not the value.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import tomllib
from pathlib import Path

import inkit_async
from inkit_async import (
    AsyncInkit,
    BatchResource,
    DocumentResource,
    RenderResource,
    Throttle,
    _constants,
)
from inkit_async._streaming import DEFAULT_MAX_DOWNLOAD_SIZE
from inkit_async.redis import DEFAULT_LEASE_TTL, DEFAULT_REDIS_TIMEOUT, RedisThrottle
from inkit_async.testing import DEFAULT_FAKE_TOKEN, FakeInkit

ROOT = Path(__file__).resolve().parents[2]
#: Defaults that are a sentinel on purpose: "not given", shown as such.
SENTINELS = {"NOT_GIVEN"}


def documented() -> list[tuple[str, object]]:
    """Every object docs/reference.md renders with ``::: name``."""
    reference = (ROOT / "docs" / "reference.md").read_text()
    found = []
    for name in re.findall(r"^::: (inkit_async[\w.]*)$", reference, re.MULTILINE):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target: object = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        for part in parts[cut:]:
            target = getattr(target, part)
        found.append((name, target))
    return found


def functions_of(target: object) -> list[object]:
    """The functions mkdocstrings renders for *target*: itself, or a class's public methods."""
    if inspect.isfunction(target):
        return [target]
    if inspect.isclass(target):
        return [
            value
            for name, value in vars(target).items()
            if inspect.isfunction(value) and (name == "__init__" or not name.startswith("_"))
        ]
    return []


def test_no_docstring_in_the_reference_uses_rest_literal_blocks():
    """No `::` in a rendered docstring: Markdown shows it as it is. Code goes in ``` fences."""
    offenders = []
    for name, target in documented():
        for obj in [target, *functions_of(target)]:
            doc = inspect.getdoc(obj) or ""
            if re.search(r"::(\s|$)", doc):
                offenders.append(f"{name}: {getattr(obj, '__qualname__', name)}")
    assert offenders == []


def test_signature_defaults_in_the_reference_are_values_not_names():
    """A default in a rendered signature is written as its value (30.0), never a name."""
    offenders = []
    for name, target in documented():
        for function in functions_of(target):
            if function.__code__.co_filename.startswith("<"):  # type: ignore[attr-defined]
                continue  # made by attrs: the reference shows its fields' defaults as written
            source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
            node = ast.parse(source).body[0]
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            defaults = [*node.args.defaults, *filter(None, node.args.kw_defaults)]
            offenders += [
                f"{name}.{node.name}: {ast.unparse(default)}"
                for default in defaults
                if not isinstance(default, ast.Constant) and ast.unparse(default) not in SENTINELS
            ]
    assert offenders == []


def test_the_written_defaults_are_the_constants():
    """The values written in the signatures are the constants the code uses elsewhere."""

    def default(function: object, parameter: str) -> object:
        return inspect.signature(function).parameters[parameter].default  # type: ignore[arg-type]

    assert default(AsyncInkit, "timeout") == _constants.DEFAULT_TIMEOUT
    assert default(AsyncInkit, "max_retries") == _constants.DEFAULT_MAX_RETRIES
    assert default(AsyncInkit, "max_concurrency") == _constants.DEFAULT_MAX_CONCURRENCY
    assert default(AsyncInkit, "max_retry_after") == _constants.DEFAULT_MAX_RETRY_AFTER
    assert default(Throttle, "max_wait") == _constants.DEFAULT_MAX_RETRY_AFTER
    assert default(Throttle, "retry_ratio") == _constants.DEFAULT_RETRY_RATIO
    assert default(Throttle, "retry_reserve") == _constants.DEFAULT_RETRY_RESERVE
    assert default(Throttle, "outage_after") == _constants.DEFAULT_OUTAGE_RUN
    assert default(RedisThrottle, "lease_ttl") == DEFAULT_LEASE_TTL
    assert default(RedisThrottle, "timeout") == DEFAULT_REDIS_TIMEOUT
    assert default(BatchResource.watch, "poll_interval") == _constants.DEFAULT_POLL_INTERVAL
    assert default(BatchResource.wait, "poll_interval") == _constants.DEFAULT_POLL_INTERVAL
    assert default(FakeInkit, "token") == DEFAULT_FAKE_TOKEN
    for download in (
        RenderResource.download,
        DocumentResource.stream,
        RenderResource.download_many,
    ):
        assert default(download, "max_size") == DEFAULT_MAX_DOWNLOAD_SIZE


def test_signatures_are_formatted_in_the_docs_build():
    """The docs build wraps separate signatures with ruff: the docs group installs it."""
    # Read as text: the tests' environment has no YAML parser (mkdocs brings one).
    config = (ROOT / "mkdocs.yml").read_text()
    options = dict(re.findall(r"^ {12}(\w+): (\S+)", config, re.MULTILINE))
    assert options["separate_signature"] == "true"
    assert options["show_signature_annotations"] == "true"
    assert 0 < int(options["line_length"]) <= 100
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    assert any(str(req).startswith("ruff==") for req in groups["docs"])


def test_the_package_is_importable_as_documented():
    """The reference's names resolve (a renamed name would break the build)."""
    assert len(documented()) > 40
    assert inkit_async.AsyncInkit is AsyncInkit
