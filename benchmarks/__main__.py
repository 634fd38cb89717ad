"""``python -m benchmarks``: run the suite, write the performance and rate-limits pages' results.

Options: ``--reps N`` (default 3), ``--quick`` (one repetition, a tenth of the ids, 400
in the rate-limited scenario, 1,000 in the profile: a smoke run whose figures mean
little), ``--clients sdk,aiohttp,...`` (names from either scenario set), ``--only
NAME[,NAME...]``, ``--out DIR`` (default docs/).

``--only`` names parts of the suite: ``performance``, ``rate-limits`` or ``fanout`` (16
callers of one client sharing a fan-out, in process: ``benchmarks/fanout.py``; it writes
DIR/fanout.json and prints its targets), or a part of the performance half, at C=100 and
0 ms only: ``uvloop`` (the SDK, ``get_many`` and raw aiohttp on uvloop and on asyncio's
loop), ``tls`` (every client over TLS), ``tracing`` (the SDK without opentelemetry, with
the API and no provider, and with traces and metrics on), or ``c100`` (every C=100, 0 ms
row: all of those, flow control and every other client). ``--clients`` narrows any of
them further. A run of such a part writes pages of its own rows only, so it needs an
``--out`` other than docs/; it skips the micro-benchmarks and the profile.

The performance part writes performance.md's results, performance.png and
performance.json, and (a full run) the page's profile table from ``python -m
benchmarks.profile``; the rate-limited part writes rate-limits.md's results (between its
markers), rate-limits.png and rate-limits.json. A page that does not exist yet is
created holding just its markers. The performance page also summarises the rate-limited
scenario: from this run, or from DIR/rate-limits.json when only the performance part ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import fanout, micro, report, runner

PARTS = ("performance", "rate-limits", "fanout")
DOCS = Path("docs")


def log(line: str) -> None:
    """Progress and target lines go to stderr, as they happen."""
    print(line, file=sys.stderr, flush=True)


def ensure_page(page: Path, title: str, start: str, end: str) -> None:
    """Create *page* holding just its markers, unless it exists (its prose is hand-written)."""
    if not page.exists():
        page.write_text(f"# {title}\n\n{start}\n{end}\n", encoding="utf-8")


def write_rate(out: Path, rate: dict[str, Any]) -> None:
    """Write rate-limits.json, rate-limits.png and the rate-limits page's part."""
    (out / "rate-limits.json").write_text(json.dumps(rate, indent=1) + "\n", encoding="utf-8")
    report.rate_chart(rate["rows"], out / "rate-limits.png")
    page = out / "rate-limits.md"
    ensure_page(page, "Rate limits", report.RATE_START, report.RATE_END)
    # The page's own text may show the chart already (above the markers): not twice.
    figure = not report.shows_outside(page, "rate-limits.png", report.RATE_START, report.RATE_END)
    generated = report.rate_markdown(rate, figure=figure)
    report.write_page(page, generated, report.RATE_START, report.RATE_END)


def write_performance(out: Path, performance: dict[str, Any], rate: dict[str, Any] | None) -> None:
    """Write performance.json, performance.png and the performance page's part(s)."""
    rows, figures, meta = performance["rows"], performance["micro"], performance["meta"]
    (out / "performance.json").write_text(
        json.dumps(performance, indent=1) + "\n", encoding="utf-8"
    )
    report.chart(rows, out / "performance.png")
    page = out / "performance.md"
    ensure_page(page, "Performance", report.START, report.END)
    report.write_page(page, report.markdown(rows, figures, meta, rate))
    if performance.get("profile"):
        from . import profile  # noqa: PLC0415 - only a full run has a profile

        profile.write(out, performance["profile"])


def run_profile(quick: bool, log: Any) -> dict[str, Any] | None:  # noqa: FBT001
    """``python -m benchmarks.profile`` in a process of its own; its figures, or ``None``."""
    command = [sys.executable, "-m", "benchmarks.profile", "--json"]
    if quick:
        command += ["--ids", "1000"]
    log(f"profile: {' '.join(command[1:])}")
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=runner.ROOT, timeout=600
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        log(f"profile failed: {lines[-1] if lines else done.returncode}")
        return None
    figures = dict(json.loads(done.stdout))
    # The page names the command that makes the table on its own.
    figures["command"] = "python -m benchmarks.profile" + (" --ids 1000" if quick else "")
    return figures


def parse_only(value: str | None, parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """The halves of the suite to run, and the performance subsets (none: all of it)."""
    if value is None:
        return list(PARTS), []
    names = [name for name in value.split(",") if name]
    unknown = set(names) - set(PARTS) - set(runner.SUBSETS)
    if unknown or not names:
        known = ", ".join([*PARTS, *runner.SUBSETS])
        parser.error(f"--only takes {known}; not {', '.join(sorted(unknown)) or value!r}")
    subsets = [] if "performance" in names else [n for n in names if n in runner.SUBSETS]
    parts = [part for part in PARTS if part in names or (part == "performance" and subsets)]
    return parts, subsets


def main() -> None:
    """Run everything (or one part) and write the pages, the charts and the raw figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    known = tuple(dict.fromkeys(runner.CLIENTS + runner.RATE_CLIENTS))
    parser.add_argument("--clients", default=",".join(known))
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME...]",
        help=f"run these parts only: {', '.join([*PARTS, *runner.SUBSETS])}",
    )
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    parts, subsets = parse_only(args.only, parser)
    if subsets and args.out.resolve() == (runner.ROOT / DOCS).resolve():
        parser.error(
            f"--only {','.join(subsets)} measures only some rows; it would replace the "
            "pages' full results: pass --out DIR"
        )
    reps, scale = (1, 0.1) if args.quick else (args.reps, 1.0)
    wanted = [c for c in args.clients.split(",") if c]
    unknown = set(wanted) - set(known)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    clients = [c for c in wanted if runner.available(c)]
    for missing in sorted(set(wanted) - set(clients)):
        log(f"skipping {missing}: it does not import here")
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "command": "nox -s bench" + (f" -- {' '.join(sys.argv[1:])}" if sys.argv[1:] else ""),
        "reps": reps,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    # Every measurement first, every chart after: matplotlib (numpy) in this process
    # would count in each later worker's peak RSS, which Linux carries across exec.
    performance: dict[str, Any] | None = None
    if "performance" in parts:

        def select(scenario: runner.Scenario, client: str) -> bool:
            return any(runner.SUBSETS[name](scenario, client) for name in subsets)

        rows = runner.run_all(
            reps,
            scale,
            [c for c in clients if c in runner.CLIENTS],
            log,
            select if subsets else None,
        )
        share = max((r["server_cpu_share"] or 0 for r in rows), default=0)
        performance = {
            "meta": {**meta, "server_share": share},
            "micro": {}
            if subsets
            else {**micro.decode(), **micro.import_time(), **micro.overhead()},
            "rows": rows,
            "profile": None if subsets else run_profile(args.quick, log),
        }
    rate: dict[str, Any] | None = None
    if "rate-limits" in parts:
        plan = runner.rate_scenarios(n=400 if args.quick else 3000)
        rate_clients = [c for c in runner.RATE_CLIENTS if c in clients]
        rate = runner.run_rate_limits(reps, plan, rate_clients, log)
        share = max((r.get("server_cpu_share") or 0 for r in rate["rows"]), default=0)
        rate["meta"] = {**meta, "server_share": share}
        write_rate(args.out, rate)
    elif (args.out / "rate-limits.json").exists():
        # The performance page still summarises the last rate-limited run (its own date).
        rate = json.loads((args.out / "rate-limits.json").read_text(encoding="utf-8"))
    checks: list[tuple[str, str, bool]] = []
    if "fanout" in parts:
        shared = fanout.run(reps, log)
        fanout.report(shared, args.out, log)
        checks += fanout.targets(shared)
    if performance is not None:
        write_performance(args.out, performance, rate)
        checks += report.targets(performance["rows"], performance["micro"])
    if "rate-limits" in parts and rate is not None:
        checks += report.rate_targets(rate["rows"])
    for target, measured, met in checks:
        log(f"{'met    ' if met else 'NOT MET'}  {target}: {measured}")


if __name__ == "__main__":
    main()
