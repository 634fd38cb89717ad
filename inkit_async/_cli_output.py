r"""What the ``inkit-async`` command writes: tables, JSON lines, progress, errors, colour.

Everything goes through one ``Console``, which knows three things the rest of the
command should not have to: whether output is JSON (then every line on stderr is one
JSON object too), whether colour is on (a terminal, and no ``NO_COLOR``), and whether a
live line is open on the terminal (then a message first ends it, so that it never
lands on a progress line).

The credentials are masked twice: by the masking streams under ``sys.stdout`` and
``sys.stderr`` (``_cli.masking``), and here, in every piece of text before it is wrapped
in a colour code or encoded as JSON, where the code's letters or JSON's escapes could
otherwise hide a credential from the stream's rule (``Secrets``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Final, TextIO

from ._events import PauseEvent, RetryEvent
from ._records import Render

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from ._exceptions import Secrets
    from ._models import Batch
    from ._records import Document

__all__ = [
    "DOCUMENT_COLUMNS",
    "RENDER_COLUMNS",
    "Console",
    "ProgressBoard",
    "colour_wanted",
    "printable",
    "progress_line",
]

_BAR_WIDTH = 24
#: DEL and the C1 controls, which json.dumps leaves as they are; some terminals act on them.
_JSON_CONTROLS: Final = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}
_COLUMNS: Final = ("ID", "NAME", "STATUS", "TOTAL", "COMPLETED", "FAILED", "IN PROGRESS", "CREATED")
#: SGR codes: the few the command uses.
_BOLD, _RED, _GREEN, _YELLOW, _DIM = "1", "31", "32", "33", "2"
_STATUS_COLOURS: Final = {"Completed": _GREEN, "Failed": _RED, "Partially Completed": _YELLOW}


def printable(text: str) -> str:
    r"""*text* with every character that is not printable escaped (``\n``, ``\x1b``)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def colour_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what goes to *stream*: a terminal, and ``NO_COLOR`` unset or empty.

    https://no-color.org: any non-empty ``NO_COLOR`` turns colour off, whatever its value
    (``0`` included). ``TERM=dumb`` says the terminal knows no escape codes.
    """
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False


def json_line(data: object) -> str:
    """*data* as one line of JSON, every control character escaped."""
    return json.dumps(data, ensure_ascii=False).translate(_JSON_CONTROLS)


def progress_counts(batch: Batch) -> tuple[int, int, int]:
    """Documents settled (completed or failed), of which failed, and in all."""
    progress = batch.progress
    return progress.completed + progress.failed, progress.failed, progress.count


def progress_line(
    batch: Batch, elapsed: float, paint: Callable[[str, str], str] | None = None
) -> str:
    """One line saying how far *batch* has come, with a bar (coloured by *paint*, if given)."""
    done, failed, count = progress_counts(batch)
    filled = _BAR_WIDTH * done // count if count else 0
    bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
    status = printable(str(batch.status))
    if paint is not None:
        bar = paint("#" * filled, _GREEN) + paint("-" * (_BAR_WIDTH - filled), _DIM)
        status = paint(status, _STATUS_COLOURS.get(status, _YELLOW))
    return (
        f"{printable(batch.id)}  {status}  [{bar}] "
        f"{done}/{count} documents ({failed} failed)  {elapsed:.1f}s"
    )


class Console:
    """The command's two streams, and how it writes to them.

    *json_errors*: errors, retries, log records and progress on stderr are JSON lines.
    *secrets*: masked in every piece of text before colour or JSON wraps it.
    """

    def __init__(
        self,
        *,
        json_errors: bool = False,
        secrets: Secrets | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Write to *out* and *err* (default: ``sys.stdout`` and ``sys.stderr`` at each write)."""
        self.json = json_errors
        self._secrets = secrets
        self._out = out
        self._err = err
        self._environ = environ
        #: The stream a live line is open on (nothing written after it yet), if any.
        self.live_on: TextIO | None = None

    @property
    def out(self) -> TextIO:
        """Standard output (the one in ``sys.stdout`` now, unless given)."""
        return self._out if self._out is not None else sys.stdout

    @property
    def err(self) -> TextIO:
        """Standard error (the one in ``sys.stderr`` now, unless given)."""
        return self._err if self._err is not None else sys.stderr

    def mask(self, text: str) -> str:
        """*text* with the command's credentials masked."""
        return self._secrets.mask(text) if self._secrets else text

    def painter(self, stream: TextIO) -> Callable[[str, str], str] | None:
        """What colours text for *stream*, or ``None`` when colour is off there."""
        if not colour_wanted(stream, self._environ):
            return None

        def paint(text: str, code: str) -> str:
            return f"\x1b[{code}m{self.mask(text)}\x1b[0m" if text else text

        return paint

    # -- writing -------------------------------------------------------------------

    def write(self, stream: TextIO, text: str) -> None:
        """Write *text* (whole lines) to *stream*, on a fresh line if a live line is open."""
        self.end_live_line()
        stream.write(text)
        stream.flush()

    def end_live_line(self) -> None:
        """End the open live line, if any, so that what comes next starts on a line of its own."""
        live = self.live_on
        if live is not None:
            self.live_on = None
            live.write("\n")
            live.flush()

    def message(self, kind: str, text: str, **fields: object) -> None:
        """A line on stderr: ``inkit-async: TEXT``, or ``{KIND: {"message": TEXT, ...}}``."""
        if self.json:
            first = {"type": fields.pop("type")} if "type" in fields else {}
            line = self.json_object(kind, **first, message=text, **fields)
            self.write(self.err, line + "\n")
            return
        prefix = "inkit-async:"
        paint = self.painter(self.err)
        if paint is not None and kind == "error":
            prefix = paint(prefix, _RED)
        elif paint is not None:
            prefix = paint(prefix, _YELLOW)
        self.write(self.err, f"{prefix} {self.mask(printable(text))}\n")

    def json_object(self, kind: str, **fields: object) -> str:
        """``{KIND: {...}}`` as one JSON line, every string in it masked."""
        return json_line({kind: {key: self._masked(value) for key, value in fields.items()}})

    def _masked(self, value: object) -> object:
        return self.mask(value) if isinstance(value, str) else value

    def error(self, text: str, error_type: str, **fields: object) -> None:
        """An error: ``inkit-async: TEXT``, or ``{"error": {"type": ..., "message": ...}}``."""
        self.message("error", text, type=error_type, **fields)

    def event(self, event: object) -> None:
        """Report a retry or a pause of the client as it happens (an ``on_event`` callback)."""
        if isinstance(event, RetryEvent):
            text = f"{event.reason}; trying again in {event.delay:.1f} s"
            self.message(
                "retry",
                text,
                attempt=event.attempt,
                delay=round(event.delay, 3),
                status_code=event.status_code,
                exception=event.exception,
            )
        elif isinstance(event, PauseEvent):
            text = f"every request waits {event.seconds:.1f} s: {event.reason}"
            self.message("pause", text, seconds=round(event.seconds, 3))

    # -- records ---------------------------------------------------------------------

    def table(self, batches: Sequence[Batch]) -> None:
        """Print *batches* on stdout as an aligned table with a header row."""
        self.grid(_COLUMNS, [_row(batch) for batch in batches])

    def grid(self, columns: Sequence[str], records: Sequence[Sequence[str]]) -> None:
        """Print *records* (cells made printable) under *columns*, aligned; column 3 a status."""
        rows = [tuple(columns), *(tuple(map(self.mask, row)) for row in records)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
        paint = self.painter(self.out)
        lines: list[str] = []
        for number, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            cells[-1] = cells[-1].rstrip()  # no trailing blanks, coloured or not
            if paint is not None and number == 0:
                cells = [paint(cell, _BOLD) for cell in cells]
            elif paint is not None:
                cells[2] = paint(cells[2], _STATUS_COLOURS.get(row[2], _YELLOW))
            lines.append("  ".join(cells).rstrip() + "\n")
        self.write(self.out, "".join(lines))

    def record(self, data: object) -> None:
        """Print *data* (a record's ``to_dict()``) on stdout as one JSON line."""
        self.write(self.out, json_line(data) + "\n")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def record_row(record: Render | Document) -> tuple[str, ...]:
    """A render's or a document's cells: id, name, status, its template or render, created."""
    origin = record.template_id if isinstance(record, Render) else record.render_id
    return (
        printable(record.id),
        printable(record.name or "-"),
        printable(record.status or "-"),
        printable(origin or "-"),
        _when(record.created_at),
    )


#: The columns of ``record_row``, for renders and for documents.
RENDER_COLUMNS: Final = ("ID", "NAME", "STATUS", "TEMPLATE", "CREATED")
DOCUMENT_COLUMNS: Final = ("ID", "NAME", "STATUS", "RENDER", "CREATED")


def _row(batch: Batch) -> tuple[str, ...]:
    progress = batch.progress
    return (
        printable(batch.id),
        printable(batch.name or "-"),
        printable(str(batch.status)),
        str(batch.total),
        str(progress.completed),
        str(progress.failed),
        str(progress.in_progress),
        _when(batch.created_at),
    )


class ProgressBoard:
    """The progress of one or more batches, as they are polled.

    On a terminal, one live line per batch, redrawn in place; ``tick`` redraws it with
    the time gone by, so the elapsed time advances between snapshots too. Elsewhere, a
    plain line per snapshot (JSON under ``Console.json``), nothing between them.
    """

    def __init__(
        self,
        console: Console,
        stream: TextIO,
        ids: Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Show the progress of *ids* on *stream*; *clock* gives the elapsed time."""
        self._console = console
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._live = not console.json and _isatty(stream)
        self._latest: dict[str, Batch | None] = dict.fromkeys(ids)
        self._drawn = 0  # lines of the board on the screen now

    @property
    def live(self) -> bool:
        """Whether the board is drawn in place (a terminal)."""
        return self._live

    @property
    def elapsed(self) -> float:
        """Seconds since the board was made."""
        return self._clock() - self._started

    def update(self, batch: Batch) -> None:
        """Show the latest snapshot of *batch*."""
        self._latest[batch.id] = batch
        if self._live:
            self.tick()
        elif self._console.json:
            done, failed, count = progress_counts(batch)
            fields = {"id": batch.id, "status": str(batch.status), "done": done}
            fields |= {"failed": failed, "total": count, "elapsed": round(self.elapsed, 3)}
            self._console.write(
                self._stream, self._console.json_object("progress", **fields) + "\n"
            )
        else:
            line = progress_line(batch, self.elapsed)
            self._console.write(self._stream, self._console.mask(line) + "\n")

    def tick(self) -> None:
        """Redraw the live lines with the time gone by (nothing when not live)."""
        if not self._live:
            return
        paint = self._console.painter(self._stream)
        elapsed = self.elapsed
        lines = [
            progress_line(batch, elapsed, paint)
            if batch is not None
            else f"{printable(batch_id)}  waiting for the first answer  {elapsed:.1f}s"
            for batch_id, batch in self._latest.items()
        ]
        if self._console.live_on is not self._stream:
            self._drawn = 0  # something else was written below: draw the board anew
        up = f"\x1b[{self._drawn - 1}F" if self._drawn > 1 else "\r"
        text = "\n".join(f"{self._console.mask(line)}\x1b[K" for line in lines)
        self._stream.write(up + text)
        self._stream.flush()
        self._drawn = len(lines)
        self._console.live_on = self._stream

    def finish(self) -> None:
        """End the live lines: what comes next starts below them."""
        if self._live and self._console.live_on is self._stream:
            self._console.end_live_line()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:
        return False


class LogHandler(logging.Handler):
    """``--verbose``: the SDK's log records on stderr through the console (masked)."""

    def __init__(self, console: Console) -> None:
        """Write each record through *console*."""
        super().__init__(logging.DEBUG)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        """Write *record* as a line (or a JSON line) on stderr."""
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            console = self._console
            if console.json:
                fields: dict[str, Any] = {"level": record.levelname, "logger": record.name}
                line = console.json_object("log", message=text, **fields)
            else:
                text = "\n".join(map(printable, text.splitlines()))
                line = console.mask(f"{record.levelname.lower()}: {record.name}: {text}")
            console.write(console.err, line + "\n")
        except Exception:  # noqa: BLE001 - logging's own rule: a bad record never raises
            self.handleError(record)
