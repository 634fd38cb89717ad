"""The `inkit-async` command line, run as a real subprocess against FakeInkit over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass

import pytest

from inkit_async.testing import FakeInkit
from tests.support.loopback import Run, run_cli

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
    progress = run.err.splitlines()
    assert len(progress) == 4
    assert "0/3 documents" in progress[0]
    assert "3/3 documents" in progress[-1]


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
    assert int(summary["requests sent"]) == 503  # three injected 503s, retried
    assert float(summary["lookups/s"].replace(",", "")) > 0
    assert "Completed  [########################] 20/20 documents" in run.out


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
