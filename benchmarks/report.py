"""Turn the runner's rows into the performance page's tables and chart."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from typing import TYPE_CHECKING, Any

from .runner import LABELS

if TYPE_CHECKING:
    from pathlib import Path

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
PACKAGES = ("inkit-async", "httpx", "httpcore", "aiohttp", "httpx-aiohttp", "inkit", "sniffio")


def machine() -> str:
    """CPU model, cores, OS and Python, as one line."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:  # noqa: PTH123
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def versions() -> str:
    """The version of every library measured; ``not installed`` says so."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def row_for(
    rows: list[dict[str, Any]], client: str, concurrency: int, latency: int
) -> dict[str, Any]:
    """The summary row of one client at one concurrency (0: the gather) and latency."""
    for row in rows:
        scenario = row["scenario"]
        if (row["client"], scenario["concurrency"], scenario["latency_ms"]) == (
            client,
            concurrency,
            latency,
        ):
            return row
    return {}


def _num(value: float | None, digits: int = 0, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:,.{digits}f}"


def targets(rows: list[dict[str, Any]], micro: dict[str, float]) -> list[tuple[str, str, bool]]:
    """Each target of the performance issue: (target, measured, met)."""
    sdk100 = row_for(rows, "sdk", 100, 0)
    sdk100_50 = row_for(rows, "sdk", 100, 50)
    checks: list[tuple[str, str, bool]] = []

    def ratio(label: str, value: float | None, floor: float) -> None:
        checks.append((label, _num(value, 2) + "x", value is not None and value >= floor))

    ratio("C=100, 0 ms: >= 0.30x raw aiohttp", sdk100.get("vs_aiohttp"), 0.30)
    ratio("C=100, 0 ms (stretch): >= 0.5x raw aiohttp", sdk100.get("vs_aiohttp"), 0.5)
    ratio("C=100, 0 ms: >= 2x the official SDK", sdk100.get("vs_inkit"), 2.0)
    ratio(
        "C=100, 0 ms: within 10% of httpx + aiohttp transport", sdk100.get("vs_httpx-aiohttp"), 0.9
    )
    ideal = 100 / 0.050
    share = sdk100_50["rate"] / ideal if sdk100_50.get("rate") else None
    checks.append(
        (
            "C=100, 50 ms: >= 90% of C / latency (2,000/s)",
            f"{_num(share, 0, 100)}% ({_num(sdk100_50.get('rate'))}/s)",
            share is not None and share >= 0.9,
        )
    )
    for latency in (0, 50):
        for client, what in (("sdk", "gather"), ("sdk-get_many", "get_many")):
            row = row_for(rows, client, 0, latency)
            growth, errors = row.get("rss_growth"), row.get("errors")
            n = row["scenario"]["n"] if row else 0
            checks.append(
                (
                    f"{n:,} lookups via {what}, {latency} ms: no errors, RSS growth <= 50 MB",
                    f"{_num(errors)} errors, {_num(growth, 1)} MB",
                    errors == 0 and growth is not None and growth <= 50,
                )
            )
        row = row_for(rows, "sdk-get_many", 0, latency)
        lag = row.get("loop_lag")
        n = row["scenario"]["n"] if row else 0
        checks.append(
            (
                f"{n:,} lookups via get_many, {latency} ms: worst loop lag <= 20 ms",
                f"{_num(lag, 1, 1e3)} ms",
                lag is not None and lag <= 0.020,
            )
        )
    checks.append(
        (
            "Structuring a batch record: <= 1.5x a hand-written constructor",
            f"{micro['ratio']:.2f}x ({micro['converter_us']:.1f} vs {micro['by_hand_us']:.1f} us)",
            micro["ratio"] <= 1.5,
        )
    )
    checks.append(
        (
            "`import inkit_async` cold: <= 200 ms",
            f"{micro['import_ms']:.0f} ms",
            micro["import_ms"] <= 200,
        )
    )
    return checks


def markdown(rows: list[dict[str, Any]], micro: dict[str, float], meta: dict[str, Any]) -> str:
    """The generated part of the performance page."""
    lines = [
        (
            f"Measured {meta['date']} with `{meta['command']}`: {meta['reps']} repetitions, "
            "medians shown; ratios are taken within each repetition, then their median."
        ),
        "",
        f"- Machine: {machine()}",
        f"- Versions: {versions()}",
        f"- Server CPU share (its core, worst run): {_num(meta['server_share'], 0, 100)}%",
        "",
        "![Lookups per second by client and scenario](performance.png)",
        "",
        "### Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets(rows, micro)]
    for latency in (0, 50):
        lines += [
            "",
            f"### {latency} ms server latency",
            "",
            (
                "| scenario | client | lookups/s | x aiohttp | x httpx | CPU us/lookup | p50 ms "
                "| p99 ms | RSS growth MB | connections | worst loop lag ms | errors |"
            ),
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in rows:
            scenario = row["scenario"]
            if scenario["latency_ms"] != latency:
                continue
            name = f"{scenario['name']} (N={scenario['n']:,})"
            if "failed" in row and row["rate"] is None:
                lines.append(f"| {name} | {LABELS[row['client']]} | {row['failed']} |" + " |" * 9)
                continue
            lines.append(
                f"| {name} | {LABELS[row['client']]} | {_num(row['rate'])} "
                f"| {_num(row['vs_aiohttp'], 2)} | {_num(row['vs_httpx'], 2)} "
                f"| {_num(row['cpu_per_lookup_us'])} | {_num(row['p50_ms'], 1)} "
                f"| {_num(row['p99_ms'], 1)} | {_num(row['rss_growth'], 1)} "
                f"| {_num(row['connections'])} | {_num(row['loop_lag'], 1, 1e3)} "
                f"| {_num(row['errors'])} |"
            )
    return "\n".join(lines)


def write_page(page: Path, generated: str) -> None:
    """Replace the text between the page's bench markers with *generated*."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{page} has no {START} ... {END} block to fill")
    page.write_text(pattern.sub(lambda _: f"{START}\n{generated}\n{END}", text), encoding="utf-8")


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    """Bar chart: lookups/s per client, one panel per latency, one group per scenario."""
    import matplotlib as mpl  # noqa: PLC0415 - only the bench extra has it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    clients = list(dict.fromkeys(row["client"] for row in rows))
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for axis, latency in zip(axes, (0, 50), strict=True):
        shapes = list(
            dict.fromkeys(
                (r["scenario"]["concurrency"], r["scenario"]["name"])
                for r in rows
                if r["scenario"]["latency_ms"] == latency
            )
        )
        width = 0.8 / len(clients)
        for index, client in enumerate(clients):
            heights = [row_for(rows, client, c, latency).get("rate") or 0 for c, _ in shapes]
            positions = [i + (index - len(clients) / 2 + 0.5) * width for i in range(len(shapes))]
            axis.bar(positions, heights, width, label=LABELS[client].replace("`", ""))
        axis.set_xticks(range(len(shapes)), [name for _, name in shapes])
        axis.set_yscale("log")
        axis.set_ylabel("lookups/s (log scale)")
        axis.set_title(f"{latency} ms server latency")
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(clients), fontsize=8)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
