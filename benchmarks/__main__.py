"""``python -m benchmarks``: run the suite, write docs/performance.md's results and chart.

Options: ``--reps N`` (default 3), ``--quick`` (one repetition, a tenth of the ids: a smoke
run whose figures mean little), ``--clients sdk,aiohttp,...``, ``--out DIR`` (default docs/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from . import micro, report, runner


def main() -> None:
    """Run everything and write the page, the chart and the raw figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", default=",".join(runner.CLIENTS))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    reps, scale = (1, 0.1) if args.quick else (args.reps, 1.0)
    wanted = [c for c in args.clients.split(",") if c]
    unknown = set(wanted) - set(runner.CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    clients = [c for c in wanted if runner.available(c)]
    for missing in sorted(set(wanted) - set(clients)):
        print(f"skipping {missing}: it does not import here", file=sys.stderr)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows = runner.run_all(reps, scale, clients, log)
    figures = {**micro.decode(), **micro.import_time()}
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "command": "nox -s bench" + (" -- --quick" if args.quick else ""),
        "reps": reps,
        "server_share": max((r["server_cpu_share"] or 0 for r in rows), default=0),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "performance.json").write_text(
        json.dumps({"meta": meta, "micro": figures, "rows": rows}, indent=1) + "\n",
        encoding="utf-8",
    )
    report.chart(rows, args.out / "performance.png")
    page = args.out / "performance.md"
    if not page.exists():
        page.write_text(f"# Performance\n\n{report.START}\n{report.END}\n", encoding="utf-8")
    report.write_page(page, report.markdown(rows, figures, meta))
    for target, measured, met in report.targets(rows, figures):
        log(f"{'met    ' if met else 'NOT MET'}  {target}: {measured}")


if __name__ == "__main__":
    main()
