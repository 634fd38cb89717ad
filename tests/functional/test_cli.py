"""The `inkit-async` command line, run as a real subprocess against FakeInkit over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from dataclasses import dataclass

import pytest

from inkit_async.testing import FakeInkit
from tests.support.loopback import Run, closed_port, run_cli

pytestmark = pytest.mark.subprocess  # the CLI runs as `python -m inkit_async`


@dataclass
class Served:
    """A FakeInkit and the URL it is served at."""

    fake: FakeInkit
    url: str


@pytest.fixture
async def served(uvicorn_server) -> Served:
    """FakeInkit served by uvicorn on an ephemeral 127.0.0.1 port."""
    fake = FakeInkit(seed=3, token="cli-secret-token-123")
    return Served(fake, await uvicorn_server(fake.app))


def cli_env(served: Served | None, token: str | None) -> dict[str, str]:
    """The environment for a CLI run: base URL and token as given, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKIT_")}
    if served is not None:
        env["INKIT_BASE_URL"] = served.url
    if token is not None:
        env["INKIT_API_TOKEN"] = token
    return env


async def cli(*args: str, served: Served | None = None, token: str | None = None) -> Run:
    """Run `python -m inkit_async ARGS` and wait for it."""
    return await run_cli(*args, env=cli_env(served, token))


async def test_get_json_lines(served):
    """`batch get A B --json` prints one JSON object per batch, in order; exit 0."""
    first = served.fake.add_batch(name="one")
    second = served.fake.add_batch(name="two", destinations={"docusign": 2})
    run = await cli("batch", "get", first, second, "--json", served=served, token=served.fake.token)
    assert run.code == 0, run.err
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert [line["id"] for line in lines] == [first, second]
    assert lines[1]["destinations"]["docusign"]["count"] == 2
    assert run.err == ""


async def test_get_table(served):
    """Without --json, a table with a header row and one row per batch."""
    batch_id = served.fake.add_batch(name="quarterly")
    run = await cli("batch", "get", batch_id, served=served, token=served.fake.token)
    assert run.code == 0, run.err
    header, row = run.out.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "STATUS"]
    assert row.startswith(f"{batch_id}  quarterly  In Progress")


async def test_not_found_is_one_line_on_stderr_and_exit_1(served):
    """A 404 prints one clear line on stderr, no traceback; found ids still print."""
    found = served.fake.add_batch()
    run = await cli("batch", "get", found, "rb_missing", served=served, token=served.fake.token)
    assert run.code == 1
    assert found in run.out
    expected = (
        "inkit-async: rb_missing: 404 Not Found from GET /batch/rb_missing: "
        "Batch rb_missing not found"
    )
    assert run.err.strip().splitlines() == [expected]
    assert "Traceback" not in run.err


async def test_missing_token_is_a_usage_error(served):
    """No INKIT_API_TOKEN and no --token-file: exit 2 with a line naming the variable."""
    run = await cli("batch", "get", "rb_1", served=served, token=None)
    assert run.code == 2
    assert "INKIT_API_TOKEN" in run.err
    assert "Traceback" not in run.err


async def test_token_file_is_read_and_never_echoed(served, tmp_path):
    """--token-file supplies the token; neither a right nor a wrong token is ever printed."""
    batch_id = served.fake.add_batch()
    good = tmp_path / "token"
    good.write_text(served.fake.token + "\n")
    ok = await cli("batch", "get", batch_id, "--token-file", str(good), served=served)
    assert ok.code == 0, ok.err
    bad = tmp_path / "bad"
    bad.write_text("wrong-token-456")
    denied = await cli("batch", "get", batch_id, "--token-file", str(bad), served=served)
    assert denied.code == 1
    assert "401 Unauthorized" in denied.err
    for run in (ok, denied):
        assert served.fake.token not in run.out + run.err
        assert "wrong-token-456" not in run.out + run.err


async def test_unreadable_token_file_is_a_usage_error(served, tmp_path):
    """A token file that does not exist, or is empty, is exit 2."""
    missing = await cli("batch", "get", "x", "--token-file", str(tmp_path / "nope"), served=served)
    empty_file = tmp_path / "empty"
    empty_file.write_text("  \n")
    empty = await cli("batch", "get", "x", "--token-file", str(empty_file), served=served)
    assert (missing.code, empty.code) == (2, 2)
    assert "cannot read --token-file" in missing.err
    assert "is empty" in empty.err


@pytest.mark.parametrize(
    "args",
    [
        ("batch", "get"),
        ("batch", "frobnicate"),
        ("batch", "get", ".."),
        ("batch", "list", "--limit", "0"),
        ("batch", "list", "--sort", "not a field"),
        ("batch", "wait", "x", "--poll-interval", "-1"),
    ],
)
async def test_usage_errors_exit_2(served, args):
    """Bad arguments, caught by argparse or by the SDK's checks, exit 2 without a traceback."""
    run = await cli(*args, served=served, token=served.fake.token)
    assert run.code == 2
    assert "Traceback" not in run.err


async def test_list_with_filters_and_limit(served):
    """`batch list --search --limit --json` pages through the fake and stops at the limit."""
    for n in range(30):
        served.fake.add_batch(name=f"invoice {n}" if n % 3 else f"letter {n}")
    run = await cli(
        "batch", "list", "--search", "invoice", "--page-size", "4", "--limit", "7", "--json",
        served=served, token=served.fake.token,
    )  # fmt: skip
    assert run.code == 0, run.err
    names = [json.loads(line)["name"] for line in run.out.splitlines()]
    assert len(names) == 7
    assert all(name.startswith("invoice") for name in names)
    assert {r.params.get("search") for r in served.fake.requests} == {"invoice"}


async def test_list_table(served):
    """`batch list` prints a table of the newest batches."""
    served.fake.add_batch(name="old")
    served.fake.add_batch(name="new")
    run = await cli("batch", "list", served=served, token=served.fake.token)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].startswith("ID")
    assert ["new" in lines[1], "old" in lines[2]] == [True, True]


async def test_wait_prints_progress_and_the_finished_batch(served):
    """`batch wait --json` shows plain progress lines on stderr and the final batch on stdout."""
    batch_id = served.fake.add_batch(destinations={"inkit_storage": 3})
    run = await cli(
        "batch", "wait", batch_id, "--poll-interval", "0.01", "--json",
        served=served, token=served.fake.token,
    )  # fmt: skip
    assert run.code == 0, run.err
    final = json.loads(run.out)
    assert final["status"] == "Completed"
    progress = [json.loads(line)["progress"] for line in run.err.splitlines()]
    assert [(line["done"], line["total"]) for line in progress] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert progress[-1]["status"] == "Completed"


async def test_wait_without_json_prints_plain_progress_lines(served):
    """Piped, without --json: one plain line per snapshot on stdout."""
    batch_id = served.fake.add_batch(destinations={"inkit_storage": 2})
    run = await cli(
        "batch", "wait", batch_id, "--poll-interval", "0.01", served=served, token=served.fake.token
    )
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert "0/2 documents" in lines[0]
    assert "2/2 documents" in lines[-1]
    assert "\x1b" not in run.out  # not a terminal: no colour, no cursor moves


async def test_wait_timeout_exits_1(served):
    """A batch that does not finish in --timeout seconds: exit 1 and a line saying so."""
    batch_id = served.fake.add_batch(docs_per_poll=0)
    run = await cli(
        "batch", "wait", batch_id, "--timeout", "0.3", "--poll-interval", "0.05",
        served=served, token=served.fake.token,
    )  # fmt: skip
    assert run.code == 1
    assert f"{batch_id} did not finish within 0.3 s" in run.err


async def test_flow_batch_commands(served):
    """`flow-batch get` and `flow-batch list` use the flow endpoints."""
    flow_id = served.fake.add_batch(flow=True, name="flowing", destinations={"box": 1})
    got = await cli("flow-batch", "get", flow_id, "--json", served=served, token=served.fake.token)
    listed = await cli("flow-batch", "list", "--json", served=served, token=served.fake.token)
    assert got.code == listed.code == 0
    assert json.loads(got.out)["destinations"]["box"]["count"] == 1
    assert json.loads(listed.out)["id"] == flow_id


async def test_ctrl_c_exits_130(served):
    """SIGINT during `batch wait` exits 130 with one line and no traceback."""
    batch_id = served.fake.add_batch(docs_per_poll=0)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inkit_async", "batch", "wait", batch_id, "--poll-interval", "0.05",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=cli_env(served, served.fake.token),
    )  # fmt: skip
    while sum(r.path.endswith(batch_id) for r in served.fake.requests) < 2:
        await asyncio.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130
    assert err.decode().strip().endswith("inkit-async: interrupted")
    assert "Traceback" not in err.decode()


async def test_version():
    """--version prints the package version."""
    from inkit_async import __version__

    run = await cli("--version")
    assert run.code == 0
    assert run.out.strip() == f"inkit-async {__version__}"


async def test_demo_runs_embedded_and_summarises():
    """`demo` needs no token or server, exits 0 and reports zero errors for every lookup."""
    run = await cli("demo", "--batches", "50", "--lookups", "500")
    assert run.code == 0, run.err
    summary = dict(
        line.strip().split(": ", 1) for line in run.out.split("summary\n", 1)[1].splitlines()
    )
    assert summary["lookups"] == "500"
    assert summary["errors"] == "0"
    # Three injected 503s, retried: said so, not left as an unexplained 503.
    assert summary["requests sent"] == "503 (500 first attempts, 3 retries)"
    assert float(summary["lookups/s"].replace(",", "")) > 0
    assert "Completed  [########################] 20/20 documents" in run.out
    # Every batch created is counted once: 50 to look up and the watched one.
    assert "created 51 batches" in run.out
    assert summary["batches finished"] == "51 of 51"


async def test_demo_against_a_server(served):
    """`demo --base-url` looks up the batches a real server lists, with the given token."""
    for _ in range(5):
        served.fake.add_batch(destinations={"inkit_storage": 2})
    run = await cli(
        "demo", "--base-url", served.url, "--lookups", "20", served=None, token=served.fake.token
    )
    assert run.code == 0, run.err
    assert "lookups: 20" in run.out
    assert "errors: 0" in run.out


async def test_demo_against_a_server_needs_a_token(served):
    """`demo --base-url` without a token is a usage error."""
    run = await cli("demo", "--base-url", served.url)
    assert run.code == 2
    assert "INKIT_API_TOKEN" in run.err


# -- help, JSON errors, retries, --verbose -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        ((), ("batch", "flow-batch", "demo")),
        (("batch",), ("get", "list", "wait", "watch", "create")),
    ],
)
async def test_a_command_left_out_prints_its_help_and_exits_2(args, listed):
    """Bare `inkit-async` (or `inkit-async batch`): the help, on stderr, exit 2 as a usage error.

    Exit 2, as argparse exits for every other usage error, so a script that forgot the
    command fails; the help says what to write instead of "the following arguments are
    required".
    """
    run = await cli(*args)
    assert run.code == 2
    assert run.err.startswith(f"usage: inkit-async {' '.join(args)}".rstrip() + " ")
    assert all(name in run.err for name in listed)
    assert "required" not in run.err
    assert run.out == ""


async def test_errors_under_json_are_json_lines_on_stderr(served):
    """--json: each error is {"error": {"type", "message", ...}}; found batches still print."""
    found = served.fake.add_batch()
    run = await cli(
        "batch", "get", found, "rb_missing", "--json", served=served, token=served.fake.token
    )
    assert run.code == 1
    assert json.loads(run.out)["id"] == found
    errors = [json.loads(line) for line in run.err.splitlines()]
    # The fake numbers its answers; the two lookups go at once, in either order.
    assert re.fullmatch(r"req_fake_[12]", errors[0]["error"].pop("request_id"))
    assert errors == [
        {
            "error": {
                "type": "NotFoundError",
                "message": (
                    "rb_missing: 404 Not Found from GET /batch/rb_missing: "
                    "Batch rb_missing not found"
                ),
                "id": "rb_missing",
                "status_code": 404,
            }
        }
    ]


@pytest.mark.parametrize(
    ("args", "token", "says"),
    [
        (("batch", "get", "--json"), "t", "the following arguments are required: ID"),
        (("batch", "list", "--limit", "0", "--json"), "t", "argument --limit: must be >= 1"),
        (("batch", "get", "x", "--max-retries", "-1", "--json"), "t", "must be >= 0"),
        (("batch", "get", "x", "--json"), None, "no API token"),
        (("batch", "get", "..", "--json"), "t", "batch_id"),
        (("batch", "--json"), "t", "unrecognized arguments: --json"),
    ],
)
async def test_usage_errors_under_json_are_json_too(served, args, token, says):
    """Usage errors, argparse's included, are one JSON object on stderr; exit 2."""
    run = await cli(*args, served=served, token=token)
    assert run.code == 2
    (line,) = run.err.splitlines()
    error = json.loads(line)["error"]
    assert error["type"] == "UsageError"
    assert says in error["message"]


async def test_a_refused_connection_is_reported_as_it_happens():
    """Nothing listens at the base URL: each retry is a line on stderr at once, then the error.

    The first line arrives while the process still waits to retry (it is not a silence
    until the retries run out), and it says "connection refused" in words, with nothing
    of aiohttp's ("ssl:default").
    """
    url = f"http://127.0.0.1:{closed_port()}/v1"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inkit_async", "batch", "get", "rb_1", "--base-url", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=cli_env(None, "cli-secret-token-123"),
    )  # fmt: skip
    assert process.stderr is not None
    async with asyncio.timeout(30):
        first = (await process.stderr.readline()).decode()
        still_running = process.returncode is None
        rest = (await process.stderr.read()).decode()
        await process.wait()
    assert still_running  # reported before the retries ran out
    assert first.startswith(
        f"inkit-async: GET /batch/rb_1 failed: cannot connect to 127.0.0.1:{url[17:-3]}: "
        "connection refused (nothing accepts connections there); trying again in "
    )
    lines = rest.splitlines()
    assert len(lines) == 2  # the second retry, then the error
    assert lines[-1].startswith("inkit-async: rb_1: GET /batch/rb_1 failed: cannot connect")
    assert "ssl" not in first + rest
    assert process.returncode == 1


async def test_max_retries_0_reports_a_refused_connection_in_one_line():
    """--max-retries 0: the refusal is the one line, with no retry."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    run = await cli("batch", "get", "rb_1", "--base-url", url, "--max-retries", "0", token="t")
    assert run.code == 1
    assert run.err.count("\n") == 1
    assert "connection refused" in run.err


@pytest.mark.parametrize("as_json", [False, True])
async def test_verbose_logs_each_request_on_stderr_without_the_token(served, as_json):
    """--verbose: the SDK's DEBUG records on stderr (JSON under --json), the token masked."""
    batch_id = served.fake.add_batch()
    flags = ["--json"] if as_json else []
    run = await cli(
        "batch", "get", batch_id, "--verbose", *flags, served=served, token=served.fake.token
    )
    assert run.code == 0, run.err
    assert served.fake.token not in run.out + run.err
    if as_json:
        (record,) = [json.loads(line)["log"] for line in run.err.splitlines()]
        assert record["level"] == "DEBUG"
        assert record["message"].startswith(f"GET /batch/{batch_id} -> 200")
    else:
        assert run.err.startswith(f"debug: inkit_async: GET /batch/{batch_id} -> 200")
    quiet = await cli("batch", "get", batch_id, served=served, token=served.fake.token)
    assert quiet.err == ""


# -- create ---------------------------------------------------------------------------

SPEC = {
    "template_id": "tmpl_cli",
    "name": "from the command line",
    "renders": [
        {"merge_parameters": {"customer": "Ada"}, "destinations": {"inkit_storage": {}}},
        {"merge_parameters": {"customer": "Grace"}},
    ],
}


async def cli_with_stdin(text: str, *args: str, served: Served) -> Run:
    """Run the CLI with *text* on its standard input."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inkit_async", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=cli_env(served, served.fake.token),
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(text.encode()), 60)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def test_create_from_a_file_prints_the_new_id(served, tmp_path):
    """`batch create FILE`: the batch is made with the file's template, name and renders."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    run = await cli("batch", "create", str(spec), served=served, token=served.fake.token)
    assert run.code == 0, run.err
    batch_id = run.out.strip()
    posted = [r for r in served.fake.requests if r.method == "POST"]
    assert posted[0].json == SPEC
    assert served.fake.batch_json(batch_id)["total"] == 2
    assert served.fake.batch_json(batch_id)["name"] == "from the command line"


async def test_create_from_stdin_with_options_over_the_file(served):
    """No FILE (or '-'): stdin; --template-id and --name win over the file's; --json."""
    body = {"renders": SPEC["renders"], "name": "file name"}
    run = await cli_with_stdin(
        json.dumps(body), "batch", "create", "--template-id", "tmpl_x", "--name", "flag name",
        "--json", served=served,
    )  # fmt: skip
    assert run.code == 0, run.err
    created = json.loads(run.out)
    assert served.fake.batch_json(created["id"])["name"] == "flag name"
    (posted,) = [r for r in served.fake.requests if r.method == "POST"]
    assert posted.json["template_id"] == "tmpl_x"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "stdin is not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"template_id": "t", "renders": [], "extra": 1}', "does not take: extra"),
        ('{"renders": [{"merge_parameters": {}}]}', "no template id"),
        ('{"template_id": "t"}', "no renders"),
        ('{"template_id": "t", "renders": []}', "at least one render"),
        ('{"template_id": "t", "renders": [{"name": "x"}]}', "merge_parameters"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
async def test_create_with_a_bad_body_is_a_usage_error_and_sends_nothing(served, text, says):
    """A body that is not a create's: exit 2, one line saying what is wrong, no request."""
    run = await cli_with_stdin(text, "batch", "create", "-", served=served)
    assert run.code == 2
    assert says in run.err
    assert run.err.count("\n") == 1
    assert served.fake.requests == []


async def test_create_from_a_missing_file_is_a_usage_error(served, tmp_path):
    """A FILE that cannot be read, or is not UTF-8: exit 2."""
    missing = await cli(
        "batch", "create", str(tmp_path / "nope.json"), served=served, token=served.fake.token
    )
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "caf\xe9"}')
    undecodable = await cli("batch", "create", str(latin), served=served, token=served.fake.token)
    assert (missing.code, undecodable.code) == (2, 2)
    assert "cannot read" in missing.err
    assert "is not UTF-8" in undecodable.err


# -- watch ----------------------------------------------------------------------------


async def test_watch_follows_several_batches_until_each_finishes(served):
    """`batch watch A B`: progress lines for both, exit 0 once both are finished."""
    first = served.fake.add_batch(destinations={"inkit_storage": 2})
    second = served.fake.add_batch(destinations={"docusign": 3})
    run = await cli(
        "batch", "watch", first, second, first, "--poll-interval", "0.01",
        served=served, token=served.fake.token,
    )  # fmt: skip
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert any(line.startswith(f"{first}  Completed") and "2/2" in line for line in lines)
    assert any(line.startswith(f"{second}  Completed") and "3/3" in line for line in lines)
    assert sum(line.startswith(f"{first}  Completed") for line in lines) == 1  # followed once


async def test_watch_json_prints_each_snapshot_as_a_json_line(served):
    """--json: one batch JSON line per new snapshot of each batch, on stdout."""
    first = served.fake.add_batch(destinations={"inkit_storage": 2})
    second = served.fake.add_batch(destinations={"inkit_storage": 1})
    run = await cli(
        "batch", "watch", first, second, "--poll-interval", "0.01",
        "--json", served=served, token=served.fake.token,
    )  # fmt: skip
    assert run.code == 0, run.err
    snapshots = [json.loads(line) for line in run.out.splitlines()]
    by_id = {
        batch_id: [s for s in snapshots if s["id"] == batch_id] for batch_id in (first, second)
    }
    assert len(by_id[first]) == 3
    assert len(by_id[second]) == 2
    assert by_id[first][-1]["status"] == by_id[second][-1]["status"] == "Completed"
    assert run.err == ""


async def test_watch_reports_a_missing_batch_and_follows_the_others(served):
    """A batch that does not exist is an error line (exit 1); the others are followed to the end."""
    found = served.fake.add_batch(destinations={"inkit_storage": 1})
    run = await cli(
        "batch", "watch", "rb_missing", found, "--poll-interval", "0.01",
        served=served, token=served.fake.token,
    )  # fmt: skip
    assert run.code == 1
    assert f"{found}  Completed" in run.out
    assert run.err.startswith("inkit-async: rb_missing: 404 Not Found")


async def test_watch_gives_up_after_its_timeout(served):
    """--timeout: each batch not finished by then is named on stderr; exit 1."""
    stuck = served.fake.add_batch(docs_per_poll=0)
    done = served.fake.add_batch(destinations={"inkit_storage": 1})
    run = await cli(
        "batch", "watch", stuck, done, "--timeout", "0.5", "--poll-interval", "0.05", "--json",
        served=served, token=served.fake.token,
    )  # fmt: skip
    assert run.code == 1
    (error,) = [json.loads(line)["error"] for line in run.err.splitlines()]
    assert error == {
        "type": "WaitTimeoutError",
        "message": f"{stuck} did not finish within 0.5 s",
        "id": stuck,
    }


async def test_demo_against_a_server_counts_its_retries(served):
    """`demo --base-url`: the retries are counted and shown, each also reported as it starts."""
    for _ in range(5):
        served.fake.add_batch(destinations={"inkit_storage": 1})
    served.fake.script_next([200, 503, 503])  # the listing, then two lookups
    run = await cli("demo", "--base-url", served.url, "--lookups", "10", token=served.fake.token)
    assert run.code == 0, run.err
    assert "requests sent: 12 (10 first attempts, 2 retries)" in run.out
    assert run.err.count("trying again in") == 2


async def test_demo_against_an_empty_server_says_so(served):
    """No batch to look up: one line saying so, exit 0."""
    run = await cli("demo", "--base-url", served.url, token=served.fake.token)
    assert run.code == 0, run.err
    assert "no batches to look up on this server" in run.out
