r"""The ``inkit-async`` command line: look at batches from a terminal.

::

    inkit-async batch get ID [ID ...] [--json]
    inkit-async batch list [--search TEXT] [--sort FIELD] [--limit N] [--json]
    inkit-async batch wait ID [--timeout SECONDS] [--poll-interval SECONDS] [--json]
    inkit-async flow-batch get|list|wait ...
    inkit-async demo

Exit status: 0 on success, 1 on an API error (one line on stderr, no traceback),
2 on a usage error, 130 when interrupted. The token comes from ``INKIT_API_TOKEN`` or
``--token-file`` and is never printed: once it is read, everything the command writes
to stdout and stderr has it masked as ``[redacted]``, a traceback of a bug included
(a server can put it in a batch's name as well as in an error). So do the user names
and passwords of the proxies in the environment (``HTTPS_PROXY`` and the other proxy
variables), and any in the API root. Masking never changes ordinary words: a
credential is masked where it appears as itself (see ``Secrets``). What the server sent
is printed with control characters escaped (``\x1b``), so a batch name cannot move
the cursor, clear the screen or forge lines of output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, Final, NoReturn, TextIO

from ._client import AsyncInkit
from ._config import environment_proxy_urls
from ._constants import ENV_API_TOKEN, ENV_BASE_URL
from ._exceptions import InkitError, Secrets, WaitTimeoutError
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Generator, Sequence

    from ._models import Batch
    from .resources import BatchResource

__all__ = ["main"]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_LIST_LIMIT = 50
_BAR_WIDTH = 24
#: DEL and the C1 controls, which json.dumps leaves as they are; some terminals act on them.
_JSON_CONTROLS: Final = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


class UsageError(Exception):
    """Bad options that argparse cannot see: a missing token, an unreadable file."""


class MaskedStream(io.TextIOBase):
    """A text stream that writes to another with the credentials masked in every write.

    The command writes whole lines (or a whole progress line) at a time, so a credential
    is never split across two writes. Masking follows the SDK's one rule (see
    ``Secrets``): a credential is replaced where it appears as itself, never inside an
    ordinary word.
    """

    def __init__(self, stream: TextIO, secrets: Secrets) -> None:
        """Write to *stream*, masking *secrets*."""
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:
        """Write *text* with the credentials masked; return the length of *text*."""
        self._stream.write(self._secrets.mask(text))
        return len(text)

    def flush(self) -> None:
        """Flush the stream underneath."""
        self._stream.flush()

    def isatty(self) -> bool:
        """Whether the stream underneath is a terminal."""
        return self._stream.isatty()


def command_secrets(token: str | None, base_url: str | None) -> Secrets:
    """What the command must never print: the token, and the credentials in its URLs.

    The URLs are the proxy variables' and the API root (which the SDK refuses when it
    holds a user name or password, without showing them).
    """
    urls = [*environment_proxy_urls(), base_url or os.environ.get(ENV_BASE_URL)]
    return Secrets(token, urls)


@contextlib.contextmanager
def masking(secrets: Secrets) -> Generator[None]:
    """Mask *secrets* in everything written to ``sys.stdout`` and ``sys.stderr`` inside."""
    if not secrets:
        yield
        return
    with (
        contextlib.redirect_stdout(MaskedStream(sys.stdout, secrets)),
        contextlib.redirect_stderr(MaskedStream(sys.stderr, secrets)),
    ):
        yield


def printable(text: str) -> str:
    r"""*text* with every character that is not printable escaped (``\n``, ``\x1b``)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


# -- arguments -----------------------------------------------------------------------


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--base-url",
        help=f"API root (default: ${ENV_BASE_URL}, else https://api.inkit.com/v1)",
    )
    common.add_argument(
        "--token-file", help=f"read the API token from this file (default: ${ENV_API_TOKEN})"
    )
    common.add_argument(
        "--request-timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="seconds one request attempt may take (default: 30)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``inkit-async``."""
    common = _connection_options()
    parser = argparse.ArgumentParser(
        prog="inkit-async", description="Look at Inkit batches from a terminal."
    )
    parser.add_argument("--version", action="version", version=f"inkit-async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, label in (("batch", "document batches"), ("flow-batch", "flow batches")):
        resource = commands.add_parser(name, help=label, description=f"Work with {label}.")
        actions = resource.add_subparsers(dest="action", required=True, metavar="ACTION")

        get = actions.add_parser("get", parents=[common], help="look up batches by id")
        get.add_argument("ids", nargs="+", metavar="ID")
        get.add_argument("--json", action="store_true", help="print JSON lines")

        listing = actions.add_parser("list", parents=[common], help="list batches")
        listing.add_argument("--search", help="only batches whose name or id contains this")
        listing.add_argument(
            "--sort",
            help="field to sort by; a leading '-' sorts descending (write --sort=-created_at)",
        )
        listing.add_argument("--destination-name", help="only batches with this destination")
        listing.add_argument(
            "--destination-status",
            choices=("completed", "failed", "in_progress"),
            help="only batches whose destination has this status",
        )
        listing.add_argument("--page-size", type=_positive_int, help="batches per request")
        listing.add_argument(
            "--limit",
            type=_positive_int,
            default=DEFAULT_LIST_LIMIT,
            help=f"stop after this many batches (default: {DEFAULT_LIST_LIMIT})",
        )
        listing.add_argument("--json", action="store_true", help="print JSON lines")

        wait = actions.add_parser("wait", parents=[common], help="wait until a batch finishes")
        wait.add_argument("id", metavar="ID")
        wait.add_argument(
            "--timeout", type=_positive_float, metavar="SECONDS", help="give up after this long"
        )
        wait.add_argument(
            "--poll-interval",
            type=_positive_float,
            default=2.0,
            metavar="SECONDS",
            help="seconds between polls (default: 2)",
        )
        wait.add_argument("--json", action="store_true", help="print the finished batch as JSON")

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="see the SDK work against an embedded fake Inkit (no token, no network)",
    )
    demo.add_argument("--batches", type=_positive_int, default=300, help="batches to create")
    demo.add_argument("--lookups", type=_positive_int, default=5000, help="lookups to fan out")
    return parser


# -- output ----------------------------------------------------------------------------

_COLUMNS = ("ID", "NAME", "STATUS", "TOTAL", "COMPLETED", "FAILED", "IN PROGRESS", "CREATED")


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
        batch.created_at.strftime("%Y-%m-%d %H:%M:%SZ"),
    )


def print_table(batches: Sequence[Batch], out: TextIO) -> None:
    """Print *batches* as an aligned table with a header row."""
    rows = [_COLUMNS, *(_row(batch) for batch in batches)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write("  ".join(cells).rstrip() + "\n")


def print_json(batch: Batch, out: TextIO) -> None:
    """Print *batch* as one line of the API's JSON (every control character escaped)."""
    line = json.dumps(batch.to_dict(), ensure_ascii=False).translate(_JSON_CONTROLS)
    out.write(line + "\n")


def progress_line(batch: Batch, elapsed: float) -> str:
    """One line saying how far *batch* has come, with a bar."""
    progress = batch.progress
    done = progress.completed + progress.failed
    filled = _BAR_WIDTH * done // progress.count if progress.count else 0
    bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
    return (
        f"{printable(batch.id)}  {printable(str(batch.status))}  [{bar}] "
        f"{done}/{progress.count} documents ({progress.failed} failed)  {elapsed:.1f}s"
    )


class ProgressReporter:
    """Shows a batch's progress: one live line on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO) -> None:
        """Report to *out*; a live line only when it is a terminal."""
        self._out = out
        self._live = out.isatty()
        self._started = time.monotonic()

    def update(self, batch: Batch) -> None:
        """Show the latest snapshot."""
        line = progress_line(batch, time.monotonic() - self._started)
        if self._live:
            self._out.write(f"\r{line}\x1b[K")
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def finish(self) -> None:
        """End the live line."""
        if self._live:
            self._out.write("\n")
            self._out.flush()


def _error(message: str) -> None:
    sys.stderr.write(f"inkit-async: {printable(message)}\n")


# -- commands ------------------------------------------------------------------------


def read_token(token_file: str | None) -> str | None:
    """The token from *token_file*, else from the environment, else ``None``."""
    if token_file is None:
        return os.environ.get(ENV_API_TOKEN) or None
    try:
        with open(token_file, encoding="utf-8") as handle:  # noqa: PTH123
            token = handle.read().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --token-file {token_file!r}: {exc.strerror}") from None
    if not token:
        raise UsageError(f"--token-file {token_file!r} is empty")
    return token


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"base_url": args.base_url}
    if args.request_timeout is not None:
        options["timeout"] = args.request_timeout
    return options


def _make_client(args: argparse.Namespace, token: str | None) -> AsyncInkit:
    if token is None:
        raise UsageError(f"no API token: set {ENV_API_TOKEN} or pass --token-file")
    return AsyncInkit(token, **_client_options(args))


def _resource(client: AsyncInkit, command: str) -> BatchResource:
    return client.flow_batch if command == "flow-batch" else client.batch


async def _get(resource: BatchResource, args: argparse.Namespace) -> int:
    results = await resource.get_many(args.ids, return_exceptions=True)
    found = [result for result in results if not isinstance(result, InkitError)]
    if args.json:
        for batch in found:
            print_json(batch, sys.stdout)
    elif found:
        print_table(found, sys.stdout)
    status = EXIT_OK
    for batch_id, result in zip(args.ids, results, strict=True):
        if isinstance(result, InkitError):
            _error(f"{batch_id}: {result}")
            status = EXIT_API_ERROR
    return status


async def _list(resource: BatchResource, args: argparse.Namespace) -> int:
    listing = resource.list(
        page_size=args.page_size,
        sort=args.sort,
        search=args.search,
        destination_name=args.destination_name,
        destination_status=args.destination_status,
    )
    batches: list[Batch] = []
    async for batch in listing:
        if args.json:
            print_json(batch, sys.stdout)
        batches.append(batch)
        if len(batches) >= args.limit:
            break
    if not args.json:
        print_table(batches, sys.stdout)
    return EXIT_OK


async def _wait(resource: BatchResource, args: argparse.Namespace) -> int:
    reporter = ProgressReporter(sys.stderr if args.json else sys.stdout)
    last: Batch | None = None
    try:
        async with asyncio.timeout(args.timeout):
            async for snapshot in resource.watch(args.id, poll_interval=args.poll_interval):
                last = snapshot
                reporter.update(snapshot)
    except TimeoutError:
        reporter.finish()
        state = f" (last seen: {progress_line(last, args.timeout)})" if last else ""
        raise WaitTimeoutError(
            f"{args.id} did not finish within {args.timeout:g} s{state}", batch=last
        ) from None
    reporter.finish()
    if args.json and last is not None:
        print_json(last, sys.stdout)
    return EXIT_OK


async def _run(args: argparse.Namespace, token: str | None) -> int:
    if args.command == "demo":
        from ._demo import run_demo  # noqa: PLC0415 - only the demo needs the fake

        return await run_demo(args, _client_options(args), token)
    async with _make_client(args, token) as client:
        resource = _resource(client, args.command)
        if args.action == "get":
            return await _get(resource, args)
        if args.action == "list":
            return await _list(resource, args)
        return await _wait(resource, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on *argv* (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        token = read_token(args.token_file)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    with masking(command_secrets(token, args.base_url)):
        return _main(args, token)


def _main(args: argparse.Namespace, token: str | None) -> int:
    try:
        return asyncio.run(_run(args, token))
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        # The SDK's argument checks (an id of "..", a malformed --sort).
        _error(str(exc))
        return EXIT_USAGE
    except InkitError as exc:
        _error(str(exc))
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - a bug: say so, with its traceback, masked
        # A bug: its traceback goes through the masking stream, so it cannot show the token.
        traceback.print_exc()
        _error("unexpected error (a bug in inkit-async; please report the traceback above)")
        return EXIT_API_ERROR


def run() -> NoReturn:
    """Entry point of the ``inkit-async`` console script."""
    sys.exit(main())
