"""Turn the runner's rows into the pages' tables and charts.

The performance page (docs/performance.md, between ``START`` and ``END``; its profile
table, from ``python -m benchmarks.profile``, between ``PROFILE_START`` and
``PROFILE_END``) and the rate-limited scenario's part of the rate-limits page
(docs/rate-limits.md, between ``RATE_START`` and ``RATE_END``); the rest of each page is
written by hand.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from typing import TYPE_CHECKING, Any

from .runner import LABELS, ONLY_AT_C100, RATE_LABELS

if TYPE_CHECKING:
    from pathlib import Path

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
PROFILE_START, PROFILE_END = "<!-- profile:start -->", "<!-- profile:end -->"
RATE_START, RATE_END = "<!-- rate-limits:start -->", "<!-- rate-limits:end -->"
# The performance targets (issue 15 unless said otherwise). At C=100, 0 ms, the SDK with
# its defaults against raw aiohttp in the same repetition, at least ...
MIN_VS_AIOHTTP = 0.75
STRETCH_VS_AIOHTTP = 0.9
#: ... and this many times the official SDK (on 100 threads).
MIN_VS_OFFICIAL = 4.0
#: Within 10% of httpx over the httpx-aiohttp transport (an earlier issue's target).
MIN_VS_HTTPX_AIOHTTP = 0.9
#: Over TLS, against raw aiohttp over the same HTTPS endpoint.
MIN_TLS_VS_AIOHTTP = 0.7
#: Flow control, and tracing, may each cost the SDK this much throughput on a healthy
#: server (C=100, 0 ms).
FLOW_CONTROL_COST = 0.03
TRACING_COST = 0.03
#: A 10,000-id get_many: worst event-loop lag by server latency (0 ms: issue 15; 50 ms:
#: the earlier 20 ms), and peak RSS growth; a 10,000-way gather's RSS growth (earlier).
GET_MANY_LAG = {0: 0.015, 50: 0.020}
GET_MANY_RSS_MB = 30.0
GATHER_RSS_MB = 50.0
#: The rate-limited targets for the SDK with its defaults: requests per lookup at most ...
MAX_REQUESTS_PER_LOOKUP = 1.15
#: ... and wall time at most this many times the ideal (N / rate), by Retry-After.
MAX_WALL_VS_IDEAL = {None: 1.25, 1.0: 1.4}
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
    rows: list[dict[str, Any]],
    client: str,
    concurrency: int,
    latency: int,
    *,
    loop: str = "asyncio",
    tls: bool = False,
) -> dict[str, Any]:
    """The summary row of one client at one concurrency (0: the gather) and latency.

    On asyncio's loop over plain HTTP, unless *loop* or *tls* say otherwise.
    """
    for row in rows:
        scenario = row["scenario"]
        if (
            row["client"],
            scenario["concurrency"],
            scenario["latency_ms"],
            scenario.get("loop", "asyncio"),
            scenario.get("tls", False),
        ) == (client, concurrency, latency, loop, tls):
            return row
    return {}


def _num(value: float | None, digits: int = 0, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:,.{digits}f}"


def _cost(label: str, row: dict[str, Any], base: str, limit: float) -> tuple[str, str, bool]:
    """A cost target: *row*'s throughput against *base* in the same repetition."""
    ratio, cpu = row.get(f"vs_{base}"), row.get(f"cpu_vs_{base}")
    measured = (
        "-"
        if ratio is None
        else f"{(1 - ratio) * 100:.1f}% ({ratio:.3f}x lookups/s, {_num(cpu, 3)}x CPU/lookup)"
    )
    return label, measured, ratio is not None and ratio >= 1 - limit


Check = tuple[str, str, bool]


def targets(rows: list[dict[str, Any]], micro: dict[str, float]) -> list[Check]:
    """Each target of the performance issues: (target, measured, met).

    A target whose rows (or micro figures) this run did not measure is left out.
    """
    return (
        _throughput_targets(rows)
        + _cost_targets(rows)
        + _fan_out_targets(rows)
        + _micro_targets(micro)
    )


def _throughput_targets(rows: list[dict[str, Any]]) -> list[Check]:
    """C=100, 0 ms against the other clients; over TLS; on uvloop."""
    sdk100 = row_for(rows, "sdk", 100, 0)
    checks: list[Check] = []

    def ratio(label: str, value: float | None, floor: float) -> None:
        checks.append((label, _num(value, 3) + "x", value is not None and value >= floor))

    if sdk100.get("vs_aiohttp") is not None:
        ratio(
            f"C=100, 0 ms: >= {MIN_VS_AIOHTTP:g}x raw aiohttp", sdk100["vs_aiohttp"], MIN_VS_AIOHTTP
        )
        ratio(
            f"C=100, 0 ms (stretch): >= {STRETCH_VS_AIOHTTP:g}x raw aiohttp",
            sdk100["vs_aiohttp"],
            STRETCH_VS_AIOHTTP,
        )
    if sdk100.get("vs_inkit") is not None:
        ratio(
            f"C=100, 0 ms: >= {MIN_VS_OFFICIAL:g}x the official SDK",
            sdk100["vs_inkit"],
            MIN_VS_OFFICIAL,
        )
    if sdk100.get("vs_httpx-aiohttp") is not None:
        ratio(
            "C=100, 0 ms: within 10% of httpx + aiohttp transport",
            sdk100["vs_httpx-aiohttp"],
            MIN_VS_HTTPX_AIOHTTP,
        )
    tls = row_for(rows, "sdk", 100, 0, tls=True)
    if tls.get("vs_aiohttp") is not None:
        ratio(
            f"C=100, 0 ms, TLS: >= {MIN_TLS_VS_AIOHTTP:g}x raw aiohttp over the same endpoint",
            tls["vs_aiohttp"],
            MIN_TLS_VS_AIOHTTP,
        )
    uvloop = row_for(rows, "sdk", 100, 0, loop="uvloop")
    if uvloop.get("vs_aiohttp") is not None and sdk100.get("vs_aiohttp") is not None:
        quotient = uvloop.get("vs_aiohttp_vs_plain")
        checks.append(
            (
                "C=100, 0 ms, uvloop: x raw aiohttp (on uvloop) no worse than on asyncio's loop",
                (
                    f"{uvloop['vs_aiohttp']:.3f}x on uvloop, "
                    f"{sdk100['vs_aiohttp']:.3f}x on asyncio "
                    f"(same repetition: {_num(quotient, 3)}x)"
                ),
                quotient is not None and quotient >= 1.0,
            )
        )
    return checks


def _cost_targets(rows: list[dict[str, Any]]) -> list[Check]:
    """What flow control and tracing cost on a healthy server (C=100, 0 ms)."""
    sdk100 = row_for(rows, "sdk", 100, 0)
    checks: list[Check] = []
    for client, label, limit in (
        ("sdk-nothrottle", "flow control costs", FLOW_CONTROL_COST),
        ("sdk-otel-off", "tracing off (opentelemetry-api, no provider) costs", TRACING_COST),
        ("sdk-otel-on", "tracing on (traces and metrics, an SDK provider) costs", TRACING_COST),
    ):
        row = row_for(rows, client, 100, 0)
        if not row:
            continue
        if client == "sdk-nothrottle":
            # The defaults against the SDK with flow control off: the cost is the defaults'.
            if sdk100:
                checks.append(
                    _cost(
                        f"C=100, 0 ms: {label} <= {limit:.0%} "
                        "(defaults vs `throttle=False`, same repetition)",
                        sdk100,
                        "sdk-nothrottle",
                        limit,
                    )
                )
            continue
        checks.append(
            _cost(
                f"C=100, 0 ms: {label} <= {limit:.0%} (vs the defaults, same repetition)",
                row,
                "sdk",
                limit,
            )
        )
    return checks


def _fan_out_targets(rows: list[dict[str, Any]]) -> list[Check]:
    """C=100 at 50 ms; the 10,000-id gather and get_many: errors, memory, loop lag."""
    checks: list[Check] = []
    sdk100_50 = row_for(rows, "sdk", 100, 50)
    if sdk100_50:
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
        for client, what, limit in (
            ("sdk", "gather", GATHER_RSS_MB),
            ("sdk-get_many", "get_many", GET_MANY_RSS_MB),
        ):
            row = row_for(rows, client, 0, latency)
            if not row:
                continue
            growth, errors = row.get("rss_growth"), row.get("errors")
            checks.append(
                (
                    (
                        f"{row['scenario']['n']:,} lookups via {what}, {latency} ms: no errors, "
                        f"RSS growth <= {limit:g} MB"
                    ),
                    f"{_num(errors)} errors, {_num(growth, 1)} MB",
                    errors == 0 and growth is not None and growth <= limit,
                )
            )
        row = row_for(rows, "sdk-get_many", 0, latency)
        if row:
            lag = row.get("loop_lag")
            checks.append(
                (
                    (
                        f"{row['scenario']['n']:,} lookups via get_many, {latency} ms: worst loop "
                        f"lag <= {GET_MANY_LAG[latency] * 1e3:g} ms"
                    ),
                    f"{_num(lag, 1, 1e3)} ms",
                    lag is not None and lag <= GET_MANY_LAG[latency],
                )
            )
    return checks


def _micro_targets(micro: dict[str, float]) -> list[Check]:
    """Decoding one record, and importing the package."""
    checks: list[Check] = []
    if "ratio" in micro:
        checks.append(
            (
                "Structuring a batch record: <= 1.5x a hand-written constructor",
                (
                    f"{micro['ratio']:.2f}x ({micro['converter_us']:.1f} vs "
                    f"{micro['by_hand_us']:.1f} us)"
                ),
                micro["ratio"] <= 1.5,
            )
        )
    if "tracing_cost" in micro:
        for key, what in (("flow_cost", "flow control"), ("tracing_cost", "tracing off")):
            checks.append(
                (
                    f"C=100, 0 ms, instructions per lookup (callgrind): {what} costs <= 3%",
                    f"{micro[key]:+.1%} ({micro['lookup_instructions']:,.0f} per lookup)",
                    micro[key] <= FLOW_CONTROL_COST,
                )
            )
    if "import_ms" in micro:
        checks.append(
            (
                "`import inkit_async` cold: <= 200 ms",
                f"{micro['import_ms']:.0f} ms",
                micro["import_ms"] <= 200,
            )
        )
    return checks


def _where(scenario: dict[str, Any]) -> str:
    """How a scenario differs from the plain one, as words: ``on uvloop``, ``over TLS``."""
    parts = []
    if scenario.get("loop", "asyncio") != "asyncio":
        parts.append(f"on {scenario['loop']}")
    if scenario.get("tls"):
        parts.append("over TLS")
    return ", ".join(parts)


def comparisons(rows: list[dict[str, Any]]) -> list[str]:
    """The same-repetition comparisons at C=100, 0 ms: loops, TLS, flow control, tracing.

    Empty when this run has none of those rows.
    """
    lines = [
        "| row | lookups/s | CPU us/lookup | same-repetition ratios | server CPU share |",
        "|---|--:|--:|---|--:|",
    ]
    for row in rows:
        scenario, client = row["scenario"], row["client"]
        if (scenario["concurrency"], scenario["latency_ms"]) != (100, 0):
            continue
        where = _where(scenario)
        if where:
            label = f"{LABELS[client]}, {where}"
            ratios = (
                []
                if client == "aiohttp"
                else [f"{_num(row['vs_aiohttp'], 2)}x raw aiohttp {where}"]
            )
            ratios.append(f"{_num(row['vs_plain'], 2)}x itself on asyncio over HTTP")
        elif client in ONLY_AT_C100:
            label = LABELS[client]
            if client == "sdk-nothrottle":
                defaults = row_for(rows, "sdk", 100, 0)
                ratios = [
                    (
                        "the defaults: "
                        f"{_num(defaults.get('vs_sdk-nothrottle'), 3)}x its lookups/s, "
                        f"{_num(defaults.get('cpu_vs_sdk-nothrottle'), 3)}x its CPU/lookup"
                    )
                ]
            else:
                ratios = [
                    (
                        f"{_num(row['vs_sdk'], 3)}x the defaults' lookups/s, "
                        f"{_num(row.get('cpu_vs_sdk'), 3)}x their CPU/lookup"
                    )
                ]
                if row.get("spans") is not None:
                    ratios.append(f"{_num(row['spans'])} spans exported")
        else:
            continue
        if "failed" in row and row["rate"] is None:
            lines.append(f"| {label} | {row['failed']} |" + " |" * 3)
            continue
        lines.append(
            f"| {label} | {_num(row['rate'])} | {_num(row['cpu_per_lookup_us'])} "
            f"| {'; '.join(ratios)} | {_num(row.get('server_cpu_share'), 0, 100)}% |"
        )
    return lines if len(lines) > 2 else []


def markdown(
    rows: list[dict[str, Any]],
    micro: dict[str, float],
    meta: dict[str, Any],
    rate: dict[str, Any] | None = None,
) -> str:
    """The generated part of the performance page.

    *rate* is the rate-limited scenario's figures (what docs/rate-limits.json holds):
    its targets join the table, and a short summary of it ends the part.
    """
    lines = [
        (
            f"Measured {meta['date']} with `{meta['command']}`: {meta['reps']} repetitions, "
            "medians shown; ratios are taken within each repetition, then their median. "
            "In the uvloop and TLS rows, raw aiohttp (and httpx) ran on that loop, or over "
            "that endpoint, too. Every client process starts its clock settled: one warm-up "
            "lookup, a full garbage collection, and one large block freed, so that glibc "
            "stops giving each 256 KiB socket read buffer a fresh mmap (`settle` in "
            "benchmarks/worker.py)."
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
    checks = targets(rows, micro) + (rate_targets(rate["rows"]) if rate else [])
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in checks]
    compared = comparisons(rows)
    if compared:
        lines += [
            "",
            "### Event loops, TLS, flow control and tracing (C=100, 0 ms)",
            "",
            (
                "Each row against the runs it is compared with, in the same repetition: raw "
                "aiohttp on the same loop or over the same TLS endpoint, the same client on "
                "asyncio's loop over plain HTTP, or the SDK with its defaults (which, as on "
                "a default install, runs without opentelemetry)."
            ),
            "",
            *compared,
        ]
    for latency in dict.fromkeys(row["scenario"]["latency_ms"] for row in rows):
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
    if rate:
        lines += ["", *rate_summary(rate)]
    return "\n".join(lines)


def write_page(page: Path, generated: str, start: str = START, end: str = END) -> None:
    """Replace the text between the page's *start* and *end* markers with *generated*."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{page} has no {start} ... {end} block to fill")
    page.write_text(pattern.sub(lambda _: f"{start}\n{generated}\n{end}", text), encoding="utf-8")


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    """Bar chart: lookups/s per client, one panel per latency, one group per scenario."""
    import matplotlib as mpl  # noqa: PLC0415 - only the bench extra has it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    # Flow control's and tracing's costs are table rows and targets; a bar in one group only
    # is clutter.
    clients = [c for c in dict.fromkeys(row["client"] for row in rows) if c not in ONLY_AT_C100]
    latencies = list(dict.fromkeys(row["scenario"]["latency_ms"] for row in rows))
    figure, axes = plt.subplots(
        1, max(len(latencies), 1), figsize=(13 if len(latencies) > 1 else 8, 4.8), squeeze=False
    )
    for axis, latency in zip(axes[0], latencies, strict=False):
        shapes = list(
            dict.fromkeys(
                (r["scenario"]["name"], r["scenario"]["concurrency"], _variant_of(r))
                for r in rows
                if r["scenario"]["latency_ms"] == latency
            )
        )
        width = 0.8 / max(len(clients), 1)
        for index, client in enumerate(clients):
            heights = [
                row_for(rows, client, c, latency, loop=loop, tls=tls).get("rate") or 0
                for _, c, (loop, tls) in shapes
            ]
            positions = [i + (index - len(clients) / 2 + 0.5) * width for i in range(len(shapes))]
            axis.bar(positions, heights, width, label=LABELS[client].replace("`", ""))
        axis.set_xticks(
            range(len(shapes)), [name.replace(", ", "\n") for name, _, _ in shapes], fontsize=8
        )
        axis.set_yscale("log")
        axis.set_ylabel("lookups/s (log scale)")
        axis.set_title(f"{latency} ms server latency")
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=max(len(clients), 1), fontsize=8)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _variant_of(row: dict[str, Any]) -> tuple[str, bool]:
    scenario = row["scenario"]
    return scenario.get("loop", "asyncio"), bool(scenario.get("tls", False))


# --- the profile (python -m benchmarks.profile) -----------------------------------------


def _share(value: float) -> str:
    """A share as a percentage: whole ones, with a decimal under 10%."""
    return f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


def profile_markdown(profile: dict[str, Any]) -> str:
    """The generated profile table of the performance page, and the loop's worst moments.

    *profile* is what ``benchmarks.profile.run`` returns.
    """
    lines = [
        (
            f"Measured {profile['date']} with `{profile['command']}`: one `get_many` over "
            f"{profile['ids']:,} ids at {profile['latency_ms']} ms server latency, "
            f"{profile['loop']}'s event loop, under pyinstrument (every "
            f"{profile['interval_ms']:g} ms); each frame's own time is charged to the code it "
            "runs, so the shares add up to 100%."
        ),
        "",
        f"- Machine: {machine()}",
        f"- Versions: {versions()}",
        "",
        "| where | share | biggest parts |",
        "|---|--:|---|",
    ]
    for group in profile["groups"]:
        parts = ", ".join(f"`{name}` {_share(share)}" for name, share in group["parts"])
        lines.append(f"| {group['name']} | {_share(group['share'])} | {parts} |")
    lags, pauses = profile["lags"], profile["pauses"]
    worst = f"{lags[0][0] * 1e3:.1f} ms (at {lags[0][1]:.2f} s)" if lags else "none measured"
    collections = (
        f"{profile['collections']} garbage collections, the longest "
        + ", ".join(f"{pause * 1e3:.1f} ms" for pause, _ in pauses[:3])
        if pauses
        else "no garbage collection"
    )
    lines += [
        "",
        (
            f"Without the profiler, the same call took {profile['wall']:.2f} s "
            f"({profile['ids'] / profile['wall']:,.0f} lookups/s): worst event-loop lag "
            f"{worst}, next "
            + ", ".join(f"{lag * 1e3:.1f}" for lag, _ in lags[1:5])
            + f" ms; {collections}."
        ),
    ]
    return "\n".join(lines)


# --- the rate-limited scenario ----------------------------------------------------------


def _variant(row: dict[str, Any]) -> str:
    retry_after = row["scenario"]["retry_after"]
    if retry_after is None:
        return "429 without Retry-After"
    return f"429 with Retry-After: {retry_after:g}"


def rate_row(rows: list[dict[str, Any]], client: str, retry_after: float | None) -> dict[str, Any]:
    """The summary row of one client in one variant of the rate-limited scenario."""
    for row in rows:
        if row["client"] == client and row["scenario"]["retry_after"] == retry_after:
            return row
    return {}


def rate_targets(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """The rate-limited targets for the SDK with its defaults: (target, measured, met)."""
    checks = []
    for retry_after, wall_limit in MAX_WALL_VS_IDEAL.items():
        for client, what in (("sdk-get_many", "get_many"), ("sdk", "gather")):
            row = rate_row(rows, client, retry_after)
            if not row:
                continue
            scenario = row["scenario"]
            errors, per_lookup, wall = (
                row.get("errors"),
                row.get("requests_per_lookup"),
                row.get("wall_vs_ideal"),
            )
            checks.append(
                (
                    (
                        f"Rate-limited {scenario['rate']:g}/s, {_variant(row)}, "
                        f"N={scenario['n']:,} via {what}: 0 failed, requests <= "
                        f"{MAX_REQUESTS_PER_LOOKUP:g} x N, wall <= {wall_limit:g} x ideal"
                    ),
                    f"{_num(errors)} failed, {_num(per_lookup, 2)} x N, {_num(wall, 2)} x ideal",
                    errors == 0
                    and per_lookup is not None
                    and per_lookup <= MAX_REQUESTS_PER_LOOKUP
                    and wall is not None
                    and wall <= wall_limit,
                )
            )
    return checks


def _rate_table(rows: list[dict[str, Any]], retry_after: float | None) -> list[str]:
    lines = [
        (
            "| client | failed lookups | requests | 429s | requests/lookup | wall s "
            "| x ideal | goodput lookups/s | x allowed rate |"
        ),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if row["scenario"]["retry_after"] != retry_after:
            continue
        label = RATE_LABELS[row["client"]]
        if "failed" in row and row["wall"] is None:
            lines.append(f"| {label} | {row['failed']} |" + " |" * 7)
            continue
        lines.append(
            f"| {label} | {_num(row['errors'])} | {_num(row['requests'])} "
            f"| {_num(row['refused'])} | {_num(row['requests_per_lookup'], 2)} "
            f"| {_num(row['wall'], 1)} | {_num(row['wall_vs_ideal'], 2)} "
            f"| {_num(row['goodput'])} | {_num(row['goodput_share'], 2)} |"
        )
    return lines


def _rate_setup(rate: dict[str, Any]) -> str:
    scenario = rate["rows"][0]["scenario"] if rate["rows"] else {}
    if not scenario:
        return "no rows"
    return (
        f"{scenario['rate']:g} requests/s per token, burst {scenario['burst']}; "
        f"N={scenario['n']:,} lookups at C={scenario['concurrency']} "
        f"(ideal {scenario['ideal']:g} s)"
    )


def shows_outside(page: Path, needle: str, start: str, end: str) -> bool:
    """Whether the hand-written part of *page* (outside the markers) contains *needle*."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    return needle in pattern.sub("", text)


def rate_markdown(rate: dict[str, Any], *, figure: bool = True) -> str:
    """The generated part of the rate-limits page: setup, chart, targets, one table per variant.

    *figure*: include the chart's image line (leave it out when the page's own text
    already shows the chart).
    """
    meta, rows = rate["meta"], rate["rows"]
    lines = [
        (
            f"Measured {meta['date']} with `{meta['command']}`: "
            + (
                "1 repetition"
                if meta["reps"] == 1
                else f"{meta['reps']} repetitions, medians shown"
            )
            + ". Requests and 429s are counted by the server, for the timed run only (not the "
            "warm-up)."
        ),
        "",
        f'- Server: {_rate_setup(rate)}; a 429 answers `{{"error":"Too many requests"}}`',
        f"- Machine: {machine()}",
        f"- Versions: {versions()}",
        f"- Server CPU share (its core, worst run): {_num(meta['server_share'], 0, 100)}%",
        "",
        *(
            [
                (
                    "![Requests/s and 429s/s over time, inkit-async get_many with its "
                    "defaults, against the allowed rate](rate-limits.png)"
                ),
                "",
            ]
            if figure
            else []
        ),
        "### Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in rate_targets(rows)]
    for retry_after in dict.fromkeys(row["scenario"]["retry_after"] for row in rows):
        title = (
            "429 without Retry-After"
            if retry_after is None
            else f"Every 429 with Retry-After: {retry_after:g}"
        )
        lines += ["", f"### {title}", "", *_rate_table(rows, retry_after)]
    return "\n".join(lines)


def rate_summary(rate: dict[str, Any]) -> list[str]:
    """The rate-limited scenario's key figures, for the performance page."""
    lines = [
        "### Rate-limited server",
        "",
        (
            f"{_rate_setup(rate)}; measured {rate['meta']['date']}, "
            + (
                "1 repetition"
                if rate["meta"]["reps"] == 1
                else f"medians of {rate['meta']['reps']}"
            )
            + ". The timelines and every client's figures are in [Rate limits](rate-limits.md)."
        ),
        "",
        "| 429s | client | failed lookups | requests/lookup | x ideal wall | x allowed rate |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for row in rate["rows"]:
        retry_after = row["scenario"]["retry_after"]
        variant = "no Retry-After" if retry_after is None else f"Retry-After: {retry_after:g}"
        label = RATE_LABELS[row["client"]]
        if "failed" in row and row["wall"] is None:
            lines.append(f"| {variant} | {label} | {row['failed']} |" + " |" * 3)
            continue
        lines.append(
            f"| {variant} | {label} | {_num(row['errors'])} "
            f"| {_num(row['requests_per_lookup'], 2)} | {_num(row['wall_vs_ideal'], 2)} "
            f"| {_num(row['goodput_share'], 2)} |"
        )
    return lines


def _smooth(values: list[float], width: int) -> list[float]:
    """A centred moving average over *width* points (fewer at the ends)."""
    half = width // 2
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half) : i + half + 1]
        out.append(sum(window) / len(window))
    return out


def rate_chart(rows: list[dict[str, Any]], path: Path, client: str = "sdk-get_many") -> None:
    """Requests/s and 429s/s over time for *client*, one panel per variant.

    From the server's 100 ms timeline of the run with the median wall time: each 100 ms
    bucket as a thin line, a 0.5 s moving average over it, the allowed rate dashed.
    """
    import matplotlib as mpl  # noqa: PLC0415 - only the bench extra has it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [row for row in rows if row["client"] == client and row.get("timeline")]
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(13, 4.6), squeeze=False)
    for axis, row in zip(axes[0], panels, strict=False):
        timeline, allowed = row["timeline"], row["scenario"]["rate"]
        bucket = timeline["bucket_s"]
        sent = [count / bucket for count in timeline["requests"]]
        refused = [count / bucket for count in timeline["refused"]]
        times = [(i + 0.5) * bucket for i in range(len(sent))]
        width = max(1, round(0.5 / bucket))
        axis.plot(times, sent, color="tab:blue", alpha=0.25, linewidth=0.8)
        axis.plot(times, refused, color="tab:red", alpha=0.25, linewidth=0.8)
        axis.plot(times, _smooth(sent, width), color="tab:blue", label="requests/s")
        axis.plot(times, _smooth(refused, width), color="tab:red", label="429s/s")
        axis.axhline(allowed, color="black", linestyle="--", linewidth=1, label="allowed rate")
        top = allowed * 2.5
        axis.set_ylim(0, top)
        # The opening burst (the bucket, and every worker's first request) is off scale.
        for t, value in zip(times, sent, strict=True):
            if value > top:
                axis.annotate(
                    f"{value * bucket:.0f} requests in {bucket * 1e3:.0f} ms",
                    (t, top),
                    xytext=(6, -12),
                    textcoords="offset points",
                    fontsize=8,
                )
                break
        axis.set_xlabel("seconds since the run's first request (server clock)")
        axis.set_ylabel(f"per second ({bucket * 1e3:.0f} ms buckets; bold: 0.5 s average)")
        axis.set_title(
            f"{_variant(row)}: {RATE_LABELS[client].replace('`', '')}, "
            f"{row['scenario']['n']:,} lookups",
            fontsize=10,
        )
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
