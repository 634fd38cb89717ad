"""``python -m benchmarks.methods``: get, list and create at C=100, the SDK before and after.

Issue 22 put every call on one sender: before it, only a lookup (a GET without a query)
went straight to aiohttp, while ``list`` and ``create`` built httpx requests and
responses. This measures the three calls, each against raw aiohttp doing the same HTTP
exchange, with two versions of the SDK in the same run:

- ``sdk-before``: the SDK at ``--before`` (a git ref, exported with ``git archive``, or a
  directory holding ``inkit_async/``; default ``d95b233``, the commit before the change);
- ``sdk-after``: the SDK of this checkout;
- ``aiohttp``: one ``ClientSession`` over ``TCPConnector(limit=100)`` sending the SDK's
  headers (and, for a create, its JSON body bytes), checking the status, decoding the JSON;
- ``aiohttp-fresh`` (create only): the same over ``TCPConnector(limit=100,
  force_close=True)``, a new connection per request, as the SDK sends a create (a
  request that must not reach the server twice never goes on a reused connection).

The calls: ``get`` is ``client.batch.get(id)`` (a new id each call), ``list`` is
``[b async for b in client.batch.list()]`` (the server answers one page of 25 records,
the last one, so one request per call), ``create`` is ``client.batch.create(
template_id="tmpl_1", renders=[{"merge_parameters": {"name": "x"}}])``; the SDK has its
defaults (throttle and coalescing on). 100 workers share the calls (``--concurrency``).

Each run is a fresh process pinned to the second CPU, the server (``benchmarks.server``)
on the first, as ``python -m benchmarks`` does; each process makes one warm-up call and
settles before its clock starts. Repetitions are interleaved (every call and client
once, then again, a fresh server each time), and each ratio is taken within one
repetition before the median of the repetitions is taken: on a shared machine the
absolute figures wander, the ratios much less. An SDK worker puts its version's
directory first on ``sys.path`` (and in ``PYTHONPATH``) and reports the file
``inkit_async`` was imported from; a run whose SDK came from elsewhere fails.

Options: ``--reps N`` (3), ``--calls N`` (gets and creates per run, 5,000), ``--pages N``
(lists per run, 2,000), ``--concurrency C`` (100), ``--before REF|DIR``, ``--out FILE``
(the JSON, ``docs/methods.json``), ``--page FILE`` (the page whose ``methods`` markers
get the table, ``docs/performance.md``; ``--page ''``: none). About two minutes.

``python -m benchmarks.methods worker SPEC`` is one run (SPEC is JSON; see ``work``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report import machine, write_page
from .runner import ROOT, paired, run_worker, server
from .worker import TOKEN, server_stats, settle, without_opentelemetry

if TYPE_CHECKING:
    from collections.abc import Iterator

METHODS = ("get", "list", "create")
CLIENTS = ("sdk-before", "sdk-after", "aiohttp", "aiohttp-fresh")
LABELS = {
    "sdk-before": "inkit-async before",
    "sdk-after": "inkit-async after",
    "aiohttp": "raw aiohttp",
    "aiohttp-fresh": "raw aiohttp, a new connection each",
}
#: Calls per run: gets and creates, and list pages.
CALLS = 5000
PAGES = 2000
CONCURRENCY = 100
#: The commit before issue 22's single sender.
BEFORE = "d95b233"
#: Issue 22's target for each call: at least this share of raw aiohttp's calls/s.
MIN_VS_AIOHTTP = 0.65
START, END = "<!-- methods:start -->", "<!-- methods:end -->"
TEMPLATE_ID = "tmpl_1"
RENDERS: list[dict[str, Any]] = [{"merge_parameters": {"name": "x"}}]
#: Records in the server's one list page.
PAGE_SIZE = 25

# A call takes its number (a get looks up a new id each time).
Call = Callable[[int], Awaitable[object]]


def applies(method: str, client: str) -> bool:
    """Whether *client* runs *method*: the fresh-connection raw client creates only."""
    return client != "aiohttp-fresh" or method == "create"


# --- one run, in its own process -------------------------------------------------------


def raw_headers(*, body: bool) -> dict[str, str]:
    """The headers the SDK sends (a JSON body adds its Content-Type)."""
    headers = {
        "X-Inkit-API-Token": TOKEN,
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": f"raw-aiohttp/bench {platform.python_implementation()}/"
        f"{platform.python_version()}",
    }
    if body:
        headers["Content-Type"] = "application/json"
    return headers


async def make_raw(
    method: str, base_url: str, *, fresh: bool
) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """Raw aiohttp doing the call's HTTP exchange; *fresh*: a new connection per request."""
    import aiohttp  # noqa: PLC0415 - imports are part of each client's run

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY, force_close=fresh),
        headers=raw_headers(body=method == "create"),
    )

    async def get(number: int) -> object:
        async with session.get(f"{base_url}/batch/rb_{number:08d}") as response:
            response.raise_for_status()
            return json.loads(await response.read())

    async def listing(_number: int) -> object:
        async with session.get(f"{base_url}/batch?page=1") as response:
            response.raise_for_status()
            return json.loads(await response.read())["items"]

    async def create(_number: int) -> object:
        # Encoded per call, as the SDK does: compact, UTF-8.
        payload = {"template_id": TEMPLATE_ID, "renders": RENDERS}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        async with session.post(f"{base_url}/batch", data=body) as response:
            response.raise_for_status()
            return json.loads(await response.read())

    calls: dict[str, Call] = {"get": get, "list": listing, "create": create}
    return calls[method], session.close


async def make_sdk(method: str, base_url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """The SDK (whichever ``inkit_async`` is first on ``sys.path``), its defaults."""
    without_opentelemetry()  # a default install, as the main suite runs the SDK
    from inkit_async import AsyncInkit  # noqa: PLC0415

    client = AsyncInkit(TOKEN, base_url=base_url)

    async def get(number: int) -> object:
        return await client.batch.get(f"rb_{number:08d}")

    async def listing(_number: int) -> object:
        return [batch async for batch in client.batch.list()]

    async def create(_number: int) -> object:
        return await client.batch.create(template_id=TEMPLATE_ID, renders=RENDERS)

    calls: dict[str, Call] = {"get": get, "list": listing, "create": create}
    return calls[method], client.aclose


def check_warm_up(method: str, result: Any) -> None:
    """Fail the run unless the warm-up call got what its call should (a page, a new id)."""
    if method == "list":
        found = len(result)
        if found != PAGE_SIZE:
            raise SystemExit(f"list returned {found} batches, not {PAGE_SIZE}")
        return
    found_id = result["id"] if isinstance(result, dict) else result.id
    prefix = "rb_new" if method == "create" else "rb_"
    if not found_id.startswith(prefix):
        raise SystemExit(f"{method} returned id {found_id!r}")


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Make the client, warm it up, settle, and time *n* calls by *concurrency* workers."""
    method, client, base_url = spec["method"], spec["client"], spec["base_url"]
    if client.startswith("sdk"):
        call, aclose = await make_sdk(method, base_url)
    else:
        call, aclose = await make_raw(method, base_url, fresh=client == "aiohttp-fresh")
    # Lazy imports and the first connection, outside the clock.
    check_warm_up(method, await call(-1))
    errors = 0

    async def worker(numbers: Iterator[int]) -> None:
        nonlocal errors
        for number in numbers:
            try:
                await call(number)
            except Exception:  # noqa: BLE001 - any failure counts, none may stop the run
                errors += 1

    mark = server_stats(base_url)  # after the warm-up: the counters of the run alone
    settle()
    numbers = iter(range(spec["n"]))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(numbers) for _ in range(spec["concurrency"])))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = server_stats(base_url)
    await aclose()
    n = spec["n"]
    return {
        "wall": wall,
        "rate": n / wall,
        "cpu_per_call_us": cpu / n * 1e6,
        "errors": errors,
        "requests_per_call": (after["requests"] - mark["requests"]) / n,
        # Less the one that read `after` (the one that read `mark` is in both).
        "connections": after["opened"] - mark["opened"] - 1,
        "server_cpu_share": (after["cpu"] - mark["cpu"]) / wall,
    }


def work(spec: dict[str, Any]) -> dict[str, Any]:
    """One run: its figures, and (for the SDK) which ``inkit_async`` ran.

    *spec*: ``method``, ``client``, ``base_url``, ``n``, ``concurrency``, and for the SDK
    ``sdk_root``, the directory whose ``inkit_async`` must run. It goes first on
    ``sys.path``: ``python -m`` puts the working directory (this checkout) before
    ``PYTHONPATH``, so ``PYTHONPATH`` alone would run this checkout's SDK for both.
    """
    root = spec.get("sdk_root")
    if root is not None:
        sys.path.insert(0, root)
    result = asyncio.run(measure(spec))
    if root is not None:
        import inkit_async  # noqa: PLC0415 - imported by the run from the path above

        found = Path(inkit_async.__file__ or "").resolve()
        if not found.is_relative_to(Path(root).resolve()):
            raise SystemExit(f"inkit_async came from {found}, not from {root}")
        result["sdk_file"] = str(found)
    return result


# --- the runs, from the parent ---------------------------------------------------------


def run_one(spec: dict[str, Any], sdk_root: str | None) -> dict[str, Any]:
    """One run in a fresh process on the second CPU; its figures, or why there are none."""
    env = dict(os.environ)
    if sdk_root is not None:
        spec = {**spec, "sdk_root": sdk_root}
        env["PYTHONPATH"] = sdk_root
        if not Path(sdk_root).resolve().is_relative_to(ROOT.resolve()):
            # Another checkout's SDK (the "before" side), in a directory removed after the
            # run: not this repository's code, so a coverage run of the suite must not
            # measure it (its report would find no source for those files).
            env = {name: value for name, value in env.items() if not name.startswith("COVERAGE_")}
    return run_worker(spec, command=("benchmarks.methods", "worker"), env=env)


@contextlib.contextmanager
def sdk_version(before: str) -> Iterator[tuple[str, str]]:
    """The directory holding the *before* SDK, and what it is (a commit, or the path).

    A directory with ``inkit_async/`` is used as it is; anything else is a git ref of
    this repository, whose ``inkit_async/`` is exported to a temporary directory.
    """
    path = Path(before)
    if (path / "inkit_async").is_dir():
        yield str(path.resolve()), f"{path} ({git('-C', str(path), 'describe', '--always')})"
        return
    commit = git("rev-parse", "--short", f"{before}^{{commit}}")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "inkit_async"],  # noqa: S607
        capture_output=True,
        check=True,
        cwd=ROOT,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="bench-before-") as directory:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        yield directory, commit


def git(*args: str) -> str:
    """A git command's output in this checkout (``unknown`` if git cannot say)."""
    done = subprocess.run(
        ["git", *args],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def after_version() -> str:
    """The last commit that changed this checkout's SDK, and whether it has changed since."""
    commit = git("log", "-1", "--format=%h", "--", "inkit_async")
    changed = git("status", "--porcelain", "--", "inkit_async")
    return commit + (" with uncommitted changes" if changed else "")


def run_all(  # noqa: PLR0917 - the plan's figures, then where the output goes
    reps: int,
    calls: dict[str, int],
    concurrency: int,
    before_root: str,
    log: Callable[[str], None],
    clients: tuple[str, ...] = CLIENTS,
) -> dict[str, Any]:
    """Every call x client, *reps* times, interleaved, a fresh server each repetition.

    *calls* is how many calls of each method a run makes (a method not in it does not
    run). Returns the rows (medians and same-repetition ratios) and every run.
    """
    roots = {"sdk-before": before_root, "sdk-after": str(ROOT)}
    pairs = [(m, c) for m in calls for c in clients if applies(m, c)]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rep in range(reps):
        with server(0) as base_url:
            for method, client in pairs:
                spec = {
                    "method": method,
                    "client": client,
                    "base_url": base_url,
                    "n": calls[method],
                    "concurrency": concurrency,
                }
                result = run_one(spec, roots.get(client))
                runs.setdefault((method, client), []).append(result)
                if "failed" in result:
                    tail = "\n  ".join(result.get("stderr", "").strip().splitlines()[-12:])
                    summary = f"FAILED: {result['failed']}" + (f"\n  {tail}" if tail else "")
                else:
                    summary = (
                        f"{result['rate']:,.0f} calls/s, {result['cpu_per_call_us']:.0f} us "
                        f"CPU/call, {result['connections']:,} connections, "
                        f"{result['errors']} errors"
                    )
                log(f"rep {rep + 1}/{reps} {method} {client}: {summary}")
    return {
        "rows": summarise(runs, calls),
        "runs": [
            {"method": method, "client": client, "rep": rep + 1, **result}
            for (method, client), results in runs.items()
            for rep, result in enumerate(results)
        ],
    }


def summarise(
    runs: dict[tuple[str, str], list[dict[str, Any]]], calls: dict[str, int]
) -> list[dict[str, Any]]:
    """One row per call x client: medians, and ratios taken within each repetition."""
    rows = []
    for (method, client), results in runs.items():
        ok = [r for r in results if "failed" not in r]
        row: dict[str, Any] = {
            "method": method,
            "client": client,
            "label": LABELS[client],
            "calls": calls[method],
            "per_rep": [r.get("rate") for r in results],
        }
        if len(ok) < len(results):
            row["failed"] = next(r["failed"] for r in results if "failed" in r)
        for key in ("rate", "cpu_per_call_us", "connections", "requests_per_call"):
            values = [r[key] for r in ok]
            row[key] = statistics.median(values) if values else None
        row["errors"] = sum(r["errors"] for r in ok)
        row["server_cpu_share"] = max((r["server_cpu_share"] for r in ok), default=None)
        for base in ("aiohttp", "aiohttp-fresh", "sdk-before"):
            theirs = runs.get((method, base))
            same = base == client
            row[f"vs_{base}"] = None if same or theirs is None else paired(results, theirs, "rate")
        # CPU per call, after over before: steadier than calls/s when other work shares
        # the machine, since time spent descheduled is not counted.
        before = runs.get((method, "sdk-before"))
        row["cpu_vs_sdk-before"] = (
            paired(results, before, "cpu_per_call_us")
            if client == "sdk-after" and before is not None
            else None
        )
        row["sdk_files"] = sorted({r["sdk_file"] for r in ok if "sdk_file" in r})
        rows.append(row)
    return rows


def targets(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """Issue 22's target for each call of the SDK after: >= 0.65x raw aiohttp, same run."""
    checks = []
    for row in rows:
        if row["client"] != "sdk-after":
            continue
        for base, what in (("aiohttp", "raw aiohttp"), ("aiohttp-fresh", "raw aiohttp, fresh")):
            ratio = row[f"vs_{base}"]
            if ratio is not None:
                target = f"{row['method']} at >= {MIN_VS_AIOHTTP}x {what}"
                checks.append((target, f"{ratio:.2f}x", ratio >= MIN_VS_AIOHTTP))
    return checks


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(result: dict[str, Any]) -> str:
    """The results as the page shows them: a line on the run, the machine, the table."""
    meta = result["meta"]
    share = max((r["server_cpu_share"] or 0 for r in result["rows"]), default=0)
    lines = [
        (
            f"Measured {meta['date']} with `{meta['command']}`: C={meta['concurrency']} on "
            f"loopback, {meta['calls']:,} gets and creates and {meta['pages']:,} lists per "
            f"run, each run a fresh process; medians of {meta['reps']} interleaved "
            "repetitions, each ratio taken within one repetition, then their median."
        ),
        "",
        f"- Machine: {meta['machine']}",
        f"- Before: {meta['before']}; after: {meta['after']}; aiohttp {meta['aiohttp']}",
        f"- Server CPU share (its core, worst run): {share:.0%}",
        "",
        (
            "| call | client | calls/s | vs raw aiohttp | vs raw aiohttp, a new connection "
            "each | after / before | CPU us/call | CPU after / before | connections |"
        ),
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in result["rows"]:
        if "failed" in row:
            lines.append(f"| `{row['method']}` | {row['label']} | failed: {row['failed']} |")
            continue
        rate = "-" if row["rate"] is None else f"{row['rate']:,.0f}"
        cpu = "-" if row["cpu_per_call_us"] is None else f"{row['cpu_per_call_us']:.0f}"
        connections = "-" if row["connections"] is None else f"{row['connections']:,.0f}"
        after = row["vs_sdk-before"] if row["client"] == "sdk-after" else None
        lines.append(
            f"| `{row['method']}` | {row['label']} | {rate} | {_ratio(row['vs_aiohttp'])} | "
            f"{_ratio(row['vs_aiohttp-fresh'])} | {_ratio(after)} | {cpu} | "
            f"{_ratio(row['cpu_vs_sdk-before'])} | {connections} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every call x client; print the table and the targets; write the JSON and page."""
    if sys.argv[1:2] == ["worker"]:
        print(json.dumps(work(json.loads(sys.argv[2]))), flush=True)
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.methods", description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--calls", type=int, default=CALLS, help="gets and creates per run")
    parser.add_argument("--pages", type=int, default=PAGES, help="lists per run")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--before", default=BEFORE, help="a git ref, or a directory")
    parser.add_argument("--out", type=Path, default=Path("docs/methods.json"))
    parser.add_argument("--page", default="docs/performance.md", help="'' for none")
    args = parser.parse_args()
    if min(args.reps, args.calls, args.pages, args.concurrency) < 1:
        parser.error("--reps, --calls, --pages and --concurrency must be at least 1")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    calls = {"get": args.calls, "list": args.pages, "create": args.calls}
    with sdk_version(args.before) as (before_root, before):
        result = run_all(args.reps, calls, args.concurrency, before_root, log)
    import aiohttp  # noqa: PLC0415 - only for its version

    result["meta"] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "command": " ".join(["python -m benchmarks.methods", *sys.argv[1:]]),
        "reps": args.reps,
        "calls": args.calls,
        "pages": args.pages,
        "concurrency": args.concurrency,
        "before": before,
        "after": after_version(),
        "aiohttp": aiohttp.__version__,
        "machine": machine(),
    }
    checks = targets(result["rows"])
    result["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in checks]
    text = markdown(result)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if args.page:
        write_page(Path(args.page), text, START, END)
    for target, measured, met in checks:
        log(f"{'met    ' if met else 'NOT MET'}  {target}: {measured}")


if __name__ == "__main__":
    main()
