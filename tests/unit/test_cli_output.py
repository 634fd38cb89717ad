"""The command line's output: colour, live progress lines, JSON errors, masking.

Written to in-memory streams that say whether they are a terminal; the command itself
runs as a subprocess in tests/functional/test_cli.py and test_cli_terminal.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime

import pytest

from inkit_async import Batch, RetryEvent
from inkit_async._cli import ticking
from inkit_async._cli_output import Console, LogHandler, ProgressBoard, colour_wanted
from inkit_async._events import PauseEvent
from inkit_async._exceptions import Secrets
from inkit_async._models import DestinationProgress

TOKEN = "tok_short9"  # 8 to 15 characters: masked only where it stands as a word of its own


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        """Always: a terminal."""
        return True


def batch(batch_id: str = "rb_1", *, done: int = 0, count: int = 4, name: str = "x") -> Batch:
    """A batch with *done* of *count* documents completed."""
    status = "Completed" if done == count else "In Progress"
    progress = DestinationProgress(count=count, completed=done, failed=0, in_progress=count - done)
    return Batch(
        id=batch_id,
        name=name,
        status=status,
        total=count,
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        destinations={"inkit_storage": progress},
    )


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        """The time now."""
        return self.now


@pytest.mark.parametrize(
    ("environ", "tty", "expected"),
    [
        ({}, True, True),
        ({"NO_COLOR": ""}, True, True),  # empty: as if unset (no-color.org)
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": "0"}, True, False),  # any non-empty value, "0" too
        ({"NO_COLOR": "false"}, True, False),
        ({"TERM": "dumb"}, True, False),
        ({}, False, False),  # not a terminal: a pipe or a file
    ],
)
def test_colour_is_on_only_on_a_terminal_without_no_color(environ, tty, expected):
    """Colour: a terminal, and NO_COLOR unset or empty (and not TERM=dumb)."""
    stream = Terminal() if tty else io.StringIO()
    assert colour_wanted(stream, environ) is expected


def test_a_table_on_a_terminal_is_coloured_and_aligned_and_plain_without():
    """The header is bold and the status coloured on a terminal; NO_COLOR leaves plain text."""
    coloured, plain = Terminal(), Terminal()
    Console(out=coloured, environ={}).table([batch(done=4), batch("rb_22", done=1)])
    Console(out=plain, environ={"NO_COLOR": "1"}).table([batch(done=4), batch("rb_22", done=1)])
    assert "\x1b[1mID" in coloured.getvalue()
    assert "\x1b[32mCompleted" in coloured.getvalue()
    assert "\x1b[33mIn Progress" in coloured.getvalue()
    assert "\x1b" not in plain.getvalue()
    # The same cells, the same widths: colour codes wrap padded cells.
    stripped = coloured.getvalue()
    for code in ("\x1b[1m", "\x1b[32m", "\x1b[33m", "\x1b[0m"):
        stripped = stripped.replace(code, "")
    assert stripped == plain.getvalue()


def test_a_credential_is_masked_before_colour_wraps_it():
    """A short token glued to a colour code ("...mtok_short9") is masked all the same."""
    out = Terminal()
    Console(out=out, secrets=Secrets(TOKEN), environ={}).table([batch(name=TOKEN)])
    assert TOKEN not in out.getvalue()
    assert "[redacted]" in out.getvalue()


def test_a_credential_is_masked_before_json_escapes_it():
    """A token JSON would escape (a backslash in it) is masked in an error's JSON line."""
    token = "tok\\with\\backslash"
    err = io.StringIO()
    Console(json_errors=True, err=err, secrets=Secrets(token)).error(
        f"server said {token}", "NotFoundError", status_code=404
    )
    line = json.loads(err.getvalue())
    assert line == {
        "error": {
            "type": "NotFoundError",
            "message": "server said [redacted]",
            "status_code": 404,
        }
    }


def test_errors_are_one_plain_line_or_one_json_object():
    """Plain: `inkit-async: message`; JSON: {"error": {"type", "message", ...}}, type first."""
    plain, as_json = io.StringIO(), io.StringIO()
    Console(err=plain).error("rb_x: 404 Not Found", "NotFoundError", id="rb_x")
    Console(json_errors=True, err=as_json).error("rb_x: 404 Not Found", "NotFoundError", id="rb_x")
    assert plain.getvalue() == "inkit-async: rb_x: 404 Not Found\n"
    assert as_json.getvalue() == (
        '{"error": {"type": "NotFoundError", "message": "rb_x: 404 Not Found", "id": "rb_x"}}\n'
    )


def test_retries_and_pauses_are_reported_as_they_start():
    """A RetryEvent or PauseEvent is one line on stderr; other events are not shown."""
    err, as_json = io.StringIO(), io.StringIO()
    retry = RetryEvent(
        method="GET",
        path="/batch/rb_1",
        attempt=1,
        delay=0.5,
        reason="GET /batch/rb_1 failed: cannot connect to 127.0.0.1:9: connection refused",
        exception="ConnectError",
    )
    pause = PauseEvent(method="GET", path="/batch/rb_1", seconds=2.0, reason="503 outage")
    for console in (Console(err=err), Console(json_errors=True, err=as_json)):
        console.event(retry)
        console.event(pause)
        console.event(object())
    assert err.getvalue().splitlines() == [
        (
            "inkit-async: GET /batch/rb_1 failed: cannot connect to 127.0.0.1:9: "
            "connection refused; trying again in 0.5 s"
        ),
        "inkit-async: every request waits 2.0 s: 503 outage",
    ]
    first, second = map(json.loads, as_json.getvalue().splitlines())
    assert first["retry"]["exception"] == "ConnectError"
    assert first["retry"]["attempt"] == 1
    assert second["pause"]["seconds"] == 2.0


def test_the_elapsed_time_advances_between_snapshots():
    """On a terminal, tick() redraws the live line with the time gone by, no snapshot needed."""
    out, clock = Terminal(), Clock()
    board = ProgressBoard(Console(out=out, environ={"NO_COLOR": "1"}), out, ["rb_1"], clock=clock)
    board.update(batch(done=1))
    clock.now += 3.0
    board.tick()
    clock.now += 2.5
    board.tick()
    frames = out.getvalue().split("\r")[1:]
    assert [frame.rsplit("  ", 1)[1] for frame in frames] == [
        "0.0s\x1b[K",
        "3.0s\x1b[K",
        "5.5s\x1b[K",
    ]


async def test_ticking_redraws_a_live_board_until_the_block_ends():
    """`ticking` redraws the live line on its own, and stops when the block ends."""
    out = Terminal()
    board = ProgressBoard(Console(out=out), out, ["rb_1"])
    board.update(batch(done=1))
    async with ticking(board, every=0.001):
        async with asyncio.timeout(30):
            while out.getvalue().count("\r") < 4:
                await asyncio.sleep(0.001)
    drawn = out.getvalue().count("\r")
    await asyncio.sleep(0.01)
    assert out.getvalue().count("\r") == drawn


async def test_ticking_does_nothing_off_a_terminal():
    """Off a terminal: a plain line per snapshot, nothing in between."""
    out = io.StringIO()
    board = ProgressBoard(Console(out=out), out, ["rb_1"])
    async with ticking(board, every=0.001):
        board.update(batch(done=1))
        await asyncio.sleep(0.01)
    assert out.getvalue().count("\n") == 1
    assert "\r" not in out.getvalue()


def test_a_message_after_a_live_line_starts_on_a_line_of_its_own():
    """An error (Ctrl-C's too) or a retry ends the open live line first."""
    out = Terminal()
    console = Console(out=out, err=out, environ={"NO_COLOR": "1"})
    board = ProgressBoard(console, out, ["rb_1"])
    board.update(batch(done=1))
    console.error("interrupted", "Interrupted")
    lines = out.getvalue().split("\n")
    assert lines[-2] == "inkit-async: interrupted"
    assert lines[-3].startswith("\rrb_1  In Progress")
    board.update(batch(done=2))  # the board is drawn anew below the message
    last = out.getvalue().rsplit("\n", 1)[1]
    assert last.startswith("\rrb_1  In Progress")
    assert "2/4 documents" in last


def test_several_batches_are_redrawn_in_place():
    """Two batches: two live lines; a redraw moves up one line and rewrites both."""
    out = Terminal()
    console = Console(out=out, environ={"NO_COLOR": "1"})
    board = ProgressBoard(console, out, ["rb_1", "rb_2"], clock=Clock())
    board.update(batch("rb_1", done=1))
    board.update(batch("rb_2", done=4))
    first, second = out.getvalue().split("\x1b[1F")
    assert "rb_2  waiting for the first answer" in first
    assert "rb_1  In Progress" in second
    assert "rb_2  Completed" in second
    board.finish()
    assert out.getvalue().endswith("\n")


def test_progress_off_a_terminal_is_plain_lines_or_json_lines():
    """Piped: one line per snapshot; under --json one {"progress": ...} object per snapshot."""
    plain, as_json = io.StringIO(), io.StringIO()
    ProgressBoard(Console(), plain, ["rb_1"], clock=Clock()).update(batch(done=1))
    ProgressBoard(Console(json_errors=True), as_json, ["rb_1"], clock=Clock()).update(batch(done=1))
    assert plain.getvalue() == (
        "rb_1  In Progress  [######------------------] 1/4 documents (0 failed)  0.0s\n"
    )
    assert json.loads(as_json.getvalue()) == {
        "progress": {
            "id": "rb_1",
            "status": "In Progress",
            "done": 1,
            "failed": 0,
            "total": 4,
            "elapsed": 0.0,
        }
    }


@pytest.mark.parametrize("as_json", [False, True])
def test_verbose_log_records_are_lines_on_stderr_with_credentials_masked(as_json):
    """--verbose's handler: one line per record (JSON under --json), the token masked."""
    err = io.StringIO()
    handler = LogHandler(Console(json_errors=as_json, err=err, secrets=Secrets(TOKEN)))
    record = logging.LogRecord("inkit_async", logging.DEBUG, "x", 1, "sent %s", (TOKEN,), None)
    handler.handle(record)
    assert TOKEN not in err.getvalue()
    if as_json:
        assert json.loads(err.getvalue()) == {
            "log": {"level": "DEBUG", "logger": "inkit_async", "message": "sent [redacted]"}
        }
    else:
        assert err.getvalue() == "debug: inkit_async: sent [redacted]\n"


def test_a_log_record_that_cannot_be_formatted_does_not_raise(capsys):
    """A record whose arguments do not fit its message goes to logging's own error path."""
    handler = LogHandler(Console(err=io.StringIO()))
    record = logging.LogRecord("inkit_async", logging.DEBUG, "x", 1, "%d", ("nan",), None)
    handler.handle(record)
    assert "Logging error" in capsys.readouterr().err


class Closed(io.StringIO):
    """A stream whose isatty raises, as a closed file's does."""

    def isatty(self) -> bool:
        """Raise as a closed stream does."""
        raise ValueError("I/O operation on closed file")


def test_a_closed_stream_is_no_terminal():
    """Isatty raising ValueError: no colour, no live line."""
    stream = Closed()
    assert colour_wanted(stream, {}) is False
    board = ProgressBoard(Console(out=stream), stream, ["rb_1"])
    assert board.live is False
    board.tick()  # nothing to redraw off a terminal
    assert stream.getvalue() == ""


def test_a_retry_notice_on_a_terminal_is_yellow_an_error_red():
    """On a terminal the prefix is coloured: red for an error, yellow for a notice."""
    err = Terminal()
    console = Console(err=err, environ={})
    console.message("retry", "trying again")
    console.error("failed", "InkitError")
    assert err.getvalue().splitlines() == [
        "\x1b[33minkit-async:\x1b[0m trying again",
        "\x1b[31minkit-async:\x1b[0m failed",
    ]


def test_a_log_record_with_a_traceback_is_masked_line_by_line():
    """exc_info: the traceback follows, each line escaped and masked."""
    err = io.StringIO()
    handler = LogHandler(Console(err=err, secrets=Secrets(TOKEN)))
    error = RuntimeError(f"bad {TOKEN}")
    exc_info = (RuntimeError, error, None)
    record = logging.LogRecord("inkit_async", logging.ERROR, "x", 1, "failed", (), exc_info)
    handler.handle(record)
    assert err.getvalue().startswith("error: inkit_async: failed\nRuntimeError: bad [redacted]")
    assert "RuntimeError: bad [redacted]" in err.getvalue()


@pytest.mark.parametrize("as_json", [False, True])
def test_a_bug_prints_its_traceback_masked_and_exits_1(monkeypatch, capsys, as_json):
    """An unexpected exception: the traceback (a JSON field under --json), masked; exit 1."""
    from inkit_async import _cli

    async def broken(args, token, console):
        raise KeyError(f"a bug near {TOKEN}")

    monkeypatch.setattr(_cli, "_run", broken)
    monkeypatch.setenv("INKIT_API_TOKEN", TOKEN)
    flags = ["--json"] if as_json else []
    assert _cli.main(["batch", "get", "rb_1", *flags]) == _cli.EXIT_API_ERROR
    err = capsys.readouterr().err
    assert TOKEN not in err
    if as_json:
        error = json.loads(err)["error"]
        assert error["type"] == "InternalError"
        assert "KeyError: 'a bug near [redacted]'" in error["traceback"]
    else:
        assert "Traceback" in err
        assert err.endswith(
            "inkit-async: unexpected error (a bug in inkit-async; please report the traceback)\n"
        )


def test_json_is_known_before_parsing_and_not_after_a_double_dash():
    """`--json` asks for JSON errors, unless it comes after `--` (then it is an argument)."""
    from inkit_async._cli import _wants_json

    assert _wants_json(["batch", "get", "x", "--json"]) is True
    assert _wants_json(["batch", "get", "--", "--json"]) is False
    assert _wants_json(["batch", "get", "x"]) is False
