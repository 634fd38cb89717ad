r"""The ``inkit-async`` command line: batches, renders and documents from a terminal.

Commands (``inkit-async --help`` and ``inkit-async batch --help`` say more)::

    inkit-async batch get ID [ID ...] [--json]
    inkit-async batch list [--search TEXT] [--sort FIELD] [--limit N] [--json]
    inkit-async batch wait ID [--timeout SECONDS] [--poll-interval SECONDS] [--json]
    inkit-async batch watch ID [ID ...] [--timeout SECONDS] [--poll-interval SECONDS] [--json]
    inkit-async batch create [FILE] [--template-id ID] [--name NAME] [--json]
    inkit-async flow-batch get|list|wait|watch ...
    inkit-async render get ID [ID ...] [--json]
    inkit-async render list [--search TEXT] [--sort FIELD] [--data-id ID] [--limit N] [--json]
    inkit-async render download ID [ID ...] [--output PATH | --directory DIR] [--page N]
    inkit-async document get|list|download ...
    inkit-async demo

Exit status: 0 on success, 1 on an API error (one line on stderr, no traceback),
2 on a usage error (a command left out included: its help is printed), 130 when
interrupted. Under ``--json`` every line on stderr is one JSON object as well: an error
is ``{"error": {"type": ..., "message": ...}}``. The token comes from
``INKIT_API_TOKEN`` or ``--token-file`` and is never printed: once it is read,
everything the command writes to stdout and stderr has it masked as ``[redacted]``, a
traceback of a bug included (a server can put it in a batch's name as well as in an
error). So do the user names and passwords of the proxies in the environment
(``HTTPS_PROXY`` and the other proxy variables), and any in the API root. Masking never
changes ordinary words: a credential is masked where it appears as itself (see
``Secrets``). What the server sent is printed with control characters escaped
(``\x1b``), so a batch name cannot move the cursor, clear the screen or forge lines of
output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from ._cli_output import (
    DOCUMENT_COLUMNS,
    RENDER_COLUMNS,
    Console,
    LogHandler,
    ProgressBoard,
    printable,
    progress_line,
    record_row,
)
from ._client import AsyncInkit
from ._config import environment_proxy_urls
from ._constants import ENV_API_TOKEN, ENV_BASE_URL
from ._download import filename_for
from ._exceptions import InkitError, Secrets, WaitTimeoutError
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Generator, Sequence

    from ._models import Batch
    from ._records import Document, Render
    from .resources import BatchResource, DocumentBatchResource, DocumentResource, RenderResource

__all__ = ["main"]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_LIST_LIMIT = 50
#: Seconds between redraws of a live progress line, so that its elapsed time advances.
TICK = 0.2
#: The keys a ``create`` file may hold: the API's body for ``POST /batch``.
_CREATE_KEYS = frozenset({"template_id", "name", "renders"})


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


# -- arguments -----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are JSON when the command line asks for JSON."""

    console: Console | None = None
    #: The parser of each command group (``batch``), by name: its help when its action is missing.
    groups: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        """Report a usage error (as JSON under ``--json``) and exit 2."""
        console = self.console
        if console is None or not console.json:
            super().error(message)
        console.error(message, "UsageError")
        raise SystemExit(EXIT_USAGE)


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


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
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
    common.add_argument(
        "--max-retries",
        type=_count,
        metavar="N",
        help="retries of a failed request, each reported on stderr as it starts (default: 2)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every request of the SDK on stderr (the inkit_async logger at DEBUG)",
    )
    return common


class _Commands:
    """Adds subcommands whose parsers share the console (for JSON usage errors)."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        #: Each group's parser by its command (``batch``), to print its help.
        self.groups: dict[str, argparse.ArgumentParser] = {}

    def add(self, actions: Any, name: str, **options: Any) -> argparse.ArgumentParser:  # noqa: ANN401 - argparse's private action type
        parser: _Parser = actions.add_parser(name, **options)
        parser.console = self.console
        return parser


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=_positive_float, metavar="SECONDS", help="give up after this long"
    )
    parser.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between polls (default: 2)",
    )


def build_parser(console: Console | None = None) -> _Parser:
    """The argument parser of ``inkit-async`` (its errors go through *console*)."""
    common = _connection_options()
    adder = _Commands(console)
    parser = _Parser(
        prog="inkit-async",
        description="Look at, create and follow Inkit batches from a terminal.",
        epilog="Run 'inkit-async COMMAND --help' for a command's options.",
    )
    parser.console = console
    parser.groups = adder.groups
    parser.add_argument("--version", action="version", version=f"inkit-async {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, label in (("batch", "document batches"), ("flow-batch", "flow batches")):
        resource = adder.add(commands, name, help=label, description=f"Work with {label}.")
        adder.groups[name] = resource
        actions = resource.add_subparsers(dest="action", metavar="ACTION")

        get = adder.add(actions, "get", parents=[common], help="look up batches by id")
        get.add_argument("ids", nargs="+", metavar="ID")
        get.add_argument("--json", action="store_true", help="print JSON lines")

        listing = adder.add(actions, "list", parents=[common], help="list batches")
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

        wait = adder.add(
            actions, "wait", parents=[common], help="wait until a batch finishes; print it"
        )
        wait.add_argument("id", metavar="ID")
        _follow_options(wait)
        wait.add_argument("--json", action="store_true", help="print the finished batch as JSON")

        watch = adder.add(
            actions,
            "watch",
            parents=[common],
            help="follow batches until every one finishes, printing their progress",
        )
        watch.add_argument("ids", nargs="+", metavar="ID")
        _follow_options(watch)
        watch.add_argument(
            "--json", action="store_true", help="print each new snapshot as a JSON line"
        )

        if name == "batch":
            create = adder.add(
                actions,
                "create",
                parents=[common],
                help="create a batch from a JSON file (or stdin): template_id, name, renders",
                description=(
                    "Create a batch. FILE (or stdin, with '-' or no FILE) holds the API's "
                    'body: {"template_id": "tmpl_...", "name": "...", "renders": '
                    '[{"merge_parameters": {...}, "destinations": {...}}]}. Prints the new '
                    "batch's id. A create is sent again only when it cannot have reached "
                    "the server."
                ),
            )
            create.add_argument("file", nargs="?", default="-", metavar="FILE")
            create.add_argument("--template-id", help="the template to render (over the file's)")
            create.add_argument("--name", help="a name for the batch (over the file's)")
            create.add_argument("--json", action="store_true", help='print {"id": ...} as JSON')

    for name, label in (("render", "renders"), ("document", "documents in Inkit Storage")):
        _file_commands(adder, commands, common, name, label)

    demo = adder.add(
        commands,
        "demo",
        parents=[common],
        help="see the SDK work against an embedded fake Inkit (no token, no network)",
    )
    demo.add_argument("--batches", type=_positive_int, default=300, help="batches to create")
    demo.add_argument("--lookups", type=_positive_int, default=5000, help="lookups to fan out")
    return parser


def _file_commands(
    adder: _Commands,
    commands: Any,  # noqa: ANN401 - argparse's private action type
    common: argparse.ArgumentParser,
    name: str,
    label: str,
) -> None:
    """``render`` and ``document``: get, list, download."""
    resource = adder.add(commands, name, help=label, description=f"Work with {label}.")
    adder.groups[name] = resource
    actions = resource.add_subparsers(dest="action", metavar="ACTION")

    get = adder.add(actions, "get", parents=[common], help=f"look up {label} by id")
    get.add_argument("ids", nargs="+", metavar="ID")
    get.add_argument("--json", action="store_true", help="print JSON lines")

    listing = adder.add(actions, "list", parents=[common], help=f"list {label}")
    listing.add_argument("--search", help="only those whose name or id contains this")
    listing.add_argument(
        "--sort", help="field to sort by; a leading '-' sorts descending (write --sort=-created_at)"
    )
    listing.add_argument("--destination-name", help="only those with this destination")
    listing.add_argument(
        "--destination-status", help="only those whose destination has this status"
    )
    listing.add_argument(
        "--data-id",
        action="append",
        metavar="RENDER_ID",
        help="only these renders' (repeat for several)",
    )
    listing.add_argument("--page-size", type=_positive_int, help="records per request")
    listing.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIST_LIMIT,
        help=f"stop after this many (default: {DEFAULT_LIST_LIMIT})",
    )
    listing.add_argument("--json", action="store_true", help="print JSON lines")

    what = "PDF" if name == "render" else "file"
    download = adder.add(
        actions,
        "download",
        parents=[common],
        help=f"download {label}' {what}s to files",
        description=(
            f"Download the {what} of each ID. One ID: to --output, else to DIR/<ID>.pdf "
            "(replacing a file there). Several: each to DIR/<ID>.pdf, at once, skipping "
            "the files already there (run it again to resume). A file appears whole or "
            "not at all. A 404 (not rendered yet) is asked again every 2 s for up to 30 s."
        ),
    )
    download.add_argument("ids", nargs="+", metavar="ID")
    download.add_argument("-o", "--output", metavar="PATH", help="the file (one ID only)")
    download.add_argument(
        "-d", "--directory", default=".", metavar="DIR", help="where files go (default: .)"
    )
    if name == "render":
        download.add_argument(
            "--page", type=_positive_int, metavar="N", help="only page N (one ID only)"
        )
    download.add_argument(
        "--deadline",
        type=_positive_float,
        metavar="SECONDS",
        help="give up after this long, the wait for a render included",
    )
    download.add_argument(
        "--json", action="store_true", help='print {"id": ..., "path": ...} lines'
    )


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


def _client_options(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    # Each retry and pause is reported as it starts: a refused connection is not a silent
    # wait for the retries to run out. --verbose logs them (and every attempt) instead.
    on_event = None if args.verbose else console.event
    options: dict[str, Any] = {"base_url": args.base_url, "on_event": on_event}
    if args.request_timeout is not None:
        options["timeout"] = args.request_timeout
    if args.max_retries is not None:
        options["max_retries"] = args.max_retries
    return options


def _make_client(args: argparse.Namespace, token: str | None, console: Console) -> AsyncInkit:
    if token is None:
        raise UsageError(f"no API token: set {ENV_API_TOKEN} or pass --token-file")
    return AsyncInkit(token, **_client_options(args, console))


def _resource(client: AsyncInkit, command: str) -> BatchResource:
    return client.flow_batch if command == "flow-batch" else client.batch


def _fields(error: InkitError) -> dict[str, object]:
    """What an error's JSON line carries beside its type and message."""
    return {
        "status_code": getattr(error, "status_code", None),
        "request_id": getattr(error, "request_id", None),
    }


async def _get(resource: BatchResource, args: argparse.Namespace, console: Console) -> int:
    results = await resource.get_many(args.ids, return_exceptions=True)
    found = [result for result in results if not isinstance(result, InkitError)]
    if args.json:
        for batch in found:
            console.record(batch.to_dict())
    elif found:
        console.table(found)
    status = EXIT_OK
    for batch_id, result in zip(args.ids, results, strict=True):
        if isinstance(result, InkitError):
            console.error(
                f"{batch_id}: {result}", type(result).__name__, id=batch_id, **_fields(result)
            )
            status = EXIT_API_ERROR
    return status


async def _list(resource: BatchResource, args: argparse.Namespace, console: Console) -> int:
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
            console.record(batch.to_dict())
        batches.append(batch)
        if len(batches) >= args.limit:
            break
    if not args.json:
        console.table(batches)
    return EXIT_OK


@contextlib.asynccontextmanager
async def ticking(board: ProgressBoard, every: float = TICK) -> AsyncGenerator[None]:
    """Redraw *board*'s live lines every *every* seconds inside, so its elapsed time advances.

    Snapshots come only when a batch changes; without this, a batch that takes a minute
    to move would show the same elapsed time for that minute.
    """
    if not board.live:
        yield
        return

    async def tick() -> None:
        while True:
            await asyncio.sleep(every)
            board.tick()

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _wait(resource: BatchResource, args: argparse.Namespace, console: Console) -> int:
    board = ProgressBoard(console, console.err if args.json else console.out, [args.id])
    last: Batch | None = None
    try:
        async with ticking(board), asyncio.timeout(args.timeout):
            async for snapshot in resource.watch(args.id, poll_interval=args.poll_interval):
                last = snapshot
                board.update(snapshot)
    except TimeoutError:
        board.finish()
        state = f" (last seen: {progress_line(last, args.timeout)})" if last else ""
        raise WaitTimeoutError(
            f"{args.id} did not finish within {args.timeout:g} s{state}", batch=last
        ) from None
    board.finish()
    if args.json and last is not None:
        console.record(last.to_dict())
    return EXIT_OK


async def _watch(resource: BatchResource, args: argparse.Namespace, console: Console) -> int:
    """Follow every id at once until each finishes; an id that fails ends on its own."""
    ids = list(dict.fromkeys(args.ids))  # an id given twice is followed once
    board = ProgressBoard(console, console.out, [] if args.json else ids)
    unfinished = set(ids)
    failed: list[tuple[str, InkitError]] = []

    async def follow(batch_id: str) -> None:
        try:
            async for snapshot in resource.watch(batch_id, poll_interval=args.poll_interval):
                if args.json:
                    console.record(snapshot.to_dict())
                else:
                    board.update(snapshot)
        except InkitError as exc:
            failed.append((batch_id, exc))
        unfinished.discard(batch_id)

    try:
        async with ticking(board), asyncio.timeout(args.timeout), asyncio.TaskGroup() as group:
            for batch_id in ids:
                group.create_task(follow(batch_id))
    except TimeoutError:
        pass
    board.finish()
    for batch_id, exc in failed:
        console.error(f"{batch_id}: {exc}", type(exc).__name__, id=batch_id, **_fields(exc))
    for batch_id in ids:
        if batch_id in unfinished:
            text = f"{batch_id} did not finish within {args.timeout:g} s"
            console.error(text, WaitTimeoutError.__name__, id=batch_id)
    return EXIT_API_ERROR if failed or unfinished else EXIT_OK


def read_create_body(file: str, stdin: TextIO) -> dict[str, Any]:
    """The JSON object in *file* (``-``: *stdin*), checked for the keys a create takes.

    Raises:
        UsageError: The file cannot be read, is not JSON, or is not an object of
            ``template_id``, ``name`` and ``renders``.
    """
    where = "stdin" if file == "-" else repr(file)
    try:
        if file == "-":
            text = stdin.read()
        else:
            with open(file, encoding="utf-8") as handle:  # noqa: PTH123
                text = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {where}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not UTF-8 text") from None
    try:
        body: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise UsageError(f"{where} is not JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise UsageError(f"{where} must hold a JSON object with template_id and renders")
    checked = cast("dict[str, Any]", body)  # a JSON object's keys are strings
    unknown = sorted(set(checked) - _CREATE_KEYS)
    if unknown:
        names = ", ".join(printable(key) for key in unknown)
        raise UsageError(f"{where} has keys a create does not take: {names}")
    return checked


async def _create(
    resource: DocumentBatchResource, args: argparse.Namespace, console: Console
) -> int:
    body = read_create_body(args.file, sys.stdin)
    template_id = args.template_id if args.template_id is not None else body.get("template_id")
    if template_id is None:
        raise UsageError("no template id: give template_id in the file or --template-id")
    name = args.name if args.name is not None else body.get("name")
    if "renders" not in body:
        raise UsageError("no renders: the file needs a list of renders")
    created = await resource.create(template_id=template_id, name=name, renders=body["renders"])
    if args.json:
        console.record(created.to_dict())
    else:
        console.write(console.out, printable(created.id) + "\n")
    return EXIT_OK


async def _get_records(
    resource: RenderResource | DocumentResource, args: argparse.Namespace, console: Console
) -> int:
    """Look each id up (at once); print those found, then an error line per id that failed."""
    ids: list[str] = args.ids
    lookups: list[Awaitable[Render | Document]] = [resource.get(record_id) for record_id in ids]
    looked_up = await asyncio.gather(*lookups, return_exceptions=True)
    for result in looked_up:
        if isinstance(result, BaseException) and not isinstance(result, InkitError):
            raise result  # an argument check (ValueError), or a bug: not an id's outcome
    found = [result for result in looked_up if not isinstance(result, BaseException)]
    _print_records(found, args, console)
    status = EXIT_OK
    for record_id, result in zip(ids, looked_up, strict=True):
        if isinstance(result, InkitError):
            console.error(
                f"{record_id}: {result}", type(result).__name__, id=record_id, **_fields(result)
            )
            status = EXIT_API_ERROR
    return status


def _print_records(
    records: Sequence[Render | Document], args: argparse.Namespace, console: Console
) -> None:
    """JSON lines under ``--json``; else a table (a listing's even when it is empty)."""
    if args.json:
        for record in records:
            console.record(record.to_dict())
    elif records or args.action == "list":
        columns = RENDER_COLUMNS if args.command == "render" else DOCUMENT_COLUMNS
        console.grid(columns, [record_row(record) for record in records])


async def _list_records(
    resource: RenderResource | DocumentResource, args: argparse.Namespace, console: Console
) -> int:
    listing = resource.list(
        page_size=args.page_size,
        sort=args.sort,
        search=args.search,
        destination_name=args.destination_name,
        destination_status=args.destination_status,
        data_id=args.data_id,
    )
    records: list[Render | Document] = []
    async for record in listing:
        if args.json:
            console.record(record.to_dict())
        records.append(record)
        if len(records) >= args.limit:
            break
    if not args.json:
        _print_records(records, args, console)
    return EXIT_OK


async def _download(
    resource: RenderResource | DocumentResource, args: argparse.Namespace, console: Console
) -> int:
    """One id: to ``--output`` or ``DIR/<id>.pdf``; several: ``download_many`` into DIR."""
    ids: list[str] = args.ids
    page: int | None = getattr(args, "page", None)
    if len(ids) > 1 and (args.output is not None or page is not None):
        raise UsageError("--output and --page take one ID; several go to --directory")
    if len(ids) == 1:
        record_id = ids[0]
        target = args.output or os.path.join(  # noqa: PTH118 - a str path, as given
            args.directory, filename_for(record_id, ".pdf", f"{args.command}_id")
        )
        if page is not None:
            path = await cast("RenderResource", resource).download(
                record_id, target, page=page, deadline=args.deadline
            )
        else:
            path = await resource.download(record_id, target, deadline=args.deadline)
        results: list[Any] = [path]
    else:
        results = await resource.download_many(
            ids, args.directory, return_exceptions=True, deadline=args.deadline
        )
    status = EXIT_OK
    for record_id, result in zip(ids, results, strict=True):
        if isinstance(result, InkitError):
            console.error(
                f"{record_id}: {result}", type(result).__name__, id=record_id, **_fields(result)
            )
            status = EXIT_API_ERROR
        elif args.json:
            console.record({"id": record_id, "path": str(result)})
        else:
            console.write(console.out, f"{printable(record_id)} -> {printable(str(result))}\n")
    return status


async def _records_command(
    resource: RenderResource | DocumentResource, args: argparse.Namespace, console: Console
) -> int:
    """``render ...`` and ``document ...``."""
    if args.action == "get":
        return await _get_records(resource, args, console)
    if args.action == "list":
        return await _list_records(resource, args, console)
    return await _download(resource, args, console)


async def _run(args: argparse.Namespace, token: str | None, console: Console) -> int:  # noqa: PLR0911 - one per command
    if args.command == "demo":
        from ._demo import run_demo  # noqa: PLC0415 - only the demo needs the fake

        return await run_demo(args, _client_options(args, console), token)
    async with _make_client(args, token, console) as client:
        if args.command in {"render", "document"}:
            return await _records_command(getattr(client, args.command), args, console)
        if args.action == "create":
            return await _create(client.batch, args, console)
        resource = _resource(client, args.command)
        if args.action == "get":
            return await _get(resource, args, console)
        if args.action == "list":
            return await _list(resource, args, console)
        if args.action == "watch":
            return await _watch(resource, args, console)
        return await _wait(resource, args, console)


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON (before ``--``), known before it is parsed."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on *argv* (default: ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    console = Console(json_errors=_wants_json(argv))
    parser = build_parser(console)
    args = parser.parse_args(argv)
    if args.command is None or getattr(args, "action", "") is None:
        # A command (or a group's action) left out: its help, not just "required".
        group = parser if args.command is None else parser.groups[args.command]
        # (--json is an option of the actions alone, so nothing asked for JSON here.)
        group.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        token = read_token(args.token_file)
    except UsageError as exc:
        console.error(str(exc), "UsageError")
        return EXIT_USAGE
    secrets = command_secrets(token, args.base_url)
    console = Console(json_errors=console.json, secrets=secrets)
    with masking(secrets), _logging(console, verbose=args.verbose):
        return _main(args, token, console)


@contextlib.contextmanager
def _logging(console: Console, *, verbose: bool) -> Generator[None]:
    """``--verbose``: the ``inkit_async`` logger at DEBUG, through *console*, inside."""
    if not verbose:
        yield
        return
    logger = logging.getLogger("inkit_async")
    handler = LogHandler(console)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _main(args: argparse.Namespace, token: str | None, console: Console) -> int:
    try:
        return asyncio.run(_run(args, token, console))
    except UsageError as exc:
        console.error(str(exc), "UsageError")
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        # The SDK's argument checks (an id of "..", a malformed --sort, a bad render).
        console.error(str(exc), "UsageError")
        return EXIT_USAGE
    except InkitError as exc:
        console.error(str(exc), type(exc).__name__, **_fields(exc))
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        console.error("interrupted", "Interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: say so, with its traceback, masked
        # A bug: its traceback goes through the masking stream, so it cannot show the token.
        text = "unexpected error (a bug in inkit-async; please report the traceback)"
        if console.json:
            trace = "".join(traceback.format_exception(exc))
            console.error(text, "InternalError", traceback=trace)
        else:
            console.end_live_line()
            traceback.print_exc()
            console.error(text, "InternalError")
        return EXIT_API_ERROR


def run() -> NoReturn:
    """Entry point of the ``inkit-async`` console script."""
    sys.exit(main())
