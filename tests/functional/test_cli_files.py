"""`inkit-async render` and `document`: get, list, download, as a subprocess against FakeInkit."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from inkit_async.testing import FAKE_PDF, FakeInkit
from tests.support.loopback import Run, run_cli

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.subprocess  # the CLI runs as `python -m inkit_async`


@dataclass
class Served:
    """A FakeInkit and the URL it is served at."""

    fake: FakeInkit
    url: str


@pytest.fixture
async def served(uvicorn_server) -> Served:
    """FakeInkit served by uvicorn on an ephemeral 127.0.0.1 port."""
    fake = FakeInkit(seed=5, token="cli-secret-token-789")
    return Served(fake, await uvicorn_server(fake.app))


async def cli(served: Served, *args: str, cwd: Path | None = None) -> Run:
    """Run `python -m inkit_async ARGS` with the fake's URL and token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKIT_")}
    env |= {"INKIT_BASE_URL": served.url, "INKIT_API_TOKEN": served.fake.token}
    run = await run_cli(*args, env=env, cwd=None if cwd is None else str(cwd))
    assert served.fake.token not in run.out + run.err
    assert "Traceback" not in run.err
    return run


def left_in(directory: Path) -> list[str]:
    """Every name in *directory*, temporary files included."""
    return sorted(path.name for path in directory.iterdir())


async def test_render_get_prints_a_table_or_json_and_fails_per_id(served):
    """A table (ID NAME STATUS TEMPLATE CREATED); --json lines; a missing id: exit 1."""
    render_id = served.fake.add_render(name="invoice", template_id="tmpl_1")
    table = await cli(served, "render", "get", render_id)
    assert table.code == 0, table.err
    header, row = table.out.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "TEMPLATE", "CREATED"]
    assert row.startswith(f"{render_id}  invoice  Completed  tmpl_1")
    lines = await cli(served, "render", "get", render_id, "rend_missing", "--json")
    assert lines.code == 1
    assert [json.loads(line)["id"] for line in lines.out.splitlines()] == [render_id]
    assert lines.err.count("\n") == 1
    assert json.loads(lines.err)["error"]["type"] == "NotFoundError"


async def test_document_get_and_list(served):
    """`document get` and `list`: the render each came from; --data-id filters by render."""
    first = served.fake.add_render(name="a")
    served.fake.add_render(name="b")
    document_id = served.fake.document_ids(first)[0]
    got = await cli(served, "document", "get", document_id)
    assert got.code == 0, got.err
    assert got.out.splitlines()[0].split() == ["ID", "NAME", "STATUS", "RENDER", "CREATED"]
    assert first in got.out.splitlines()[1]
    listed = await cli(served, "document", "list", "--data-id", first, "--json")
    assert listed.code == 0, listed.err
    assert [json.loads(line)["id"] for line in listed.out.splitlines()] == [document_id]
    renders = await cli(served, "render", "list", "--limit", "1", "--sort=created_at")
    assert renders.code == 0, renders.err
    assert len(renders.out.splitlines()) == 2  # the header and one render
    empty = await cli(served, "render", "list", "--search", "nothing-matches")
    assert empty.out.split() == ["ID", "NAME", "STATUS", "TEMPLATE", "CREATED"]


async def test_download_one_id_to_its_name_in_the_current_directory(served, tmp_path):
    """No --output: ./<id>.pdf, whole; --output and --page: that path, that page."""
    render_id = served.fake.add_render()
    run = await cli(served, "render", "download", render_id, cwd=tmp_path)
    assert run.code == 0, run.err
    assert run.out == f"{render_id} -> {render_id}.pdf\n"
    assert (tmp_path / f"{render_id}.pdf").read_bytes() == FAKE_PDF
    target = tmp_path / "first-page.pdf"
    paged = await cli(served, "render", "download", render_id, "-o", str(target), "--page", "1")
    assert paged.code == 0, paged.err
    assert target.read_bytes() == FAKE_PDF
    assert served.fake.requests[-1].params == {"page": "1"}
    assert left_in(tmp_path) == ["first-page.pdf", f"{render_id}.pdf"]


async def test_download_several_ids_resumes_and_reports_each_failure(served, tmp_path):
    """Several ids: download_many into --directory; a missing one exits 1, the rest land."""
    ids = [served.fake.add_render() for _ in range(2)]
    documents = [served.fake.document_ids(render_id)[0] for render_id in ids]
    folder = tmp_path / "out"
    args = ("document", "download", *documents, "doc_missing", "-d", str(folder))
    run = await cli(served, *args, "--deadline", "1", "--json")
    assert run.code == 1
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert [line["id"] for line in lines] == documents
    assert [line["path"] for line in lines] == [str(folder / f"{d}.pdf") for d in documents]
    error = json.loads(run.err.splitlines()[-1])["error"]
    assert (error["id"], error["type"]) == ("doc_missing", "DeadlineExceededError")
    assert left_in(folder) == sorted(f"{d}.pdf" for d in documents)
    before = len(served.fake.requests)
    again = await cli(served, "document", "download", *documents, "-d", str(folder))
    assert again.code == 0, again.err
    assert len(served.fake.requests) == before  # both files were there: nothing fetched


async def test_download_usage_errors_exit_2(served, tmp_path):
    """--output or --page with several ids, a bad page, an id that is not one: exit 2."""
    for args in [
        ("render", "download", "a", "b", "-o", str(tmp_path / "x.pdf")),
        ("render", "download", "a", "b", "--page", "1"),
        ("render", "download", "a", "--page", "0"),
        ("document", "download", "..", "-d", str(tmp_path)),
        ("document", "download", "a", "--page", "1"),
    ]:
        run = await cli(served, *args)
        assert run.code == 2, (args, run.err)
    assert served.fake.requests == []
    assert left_in(tmp_path) == []
