"""Every example file under docs/examples runs, against FakeInkit served on 127.0.0.1.

The examples are included verbatim into the documentation pages, so the docs cannot drift
from the code. They read INKIT_BASE_URL and INKIT_API_TOKEN like any program would; this
module points those at the fake.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

import inkit_async
import inkit_async.testing
from inkit_async.testing import FakeInkit
from tests.support.installed import write_installed_metadata

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
SCRIPTS = sorted(
    p for p in EXAMPLES.glob("*.py") if not p.name.startswith("testing_") and p.name != "webapp.py"
)
TEST_MODULES = sorted(EXAMPLES.glob("testing_*.py"))
SHELL = sorted(EXAMPLES.glob("*.sh"))
#: The ids the examples use, seeded into the fake.
SEEDED = {
    "rb_6WtDgF7RGqdS5Uzea9neZJ": ("test", {"inkit_storage": 1}),
    "rb_2KmPqR8sTuVwXyZaBcDeFg": ("invoice March", {"docusign": 2}),
    "rb_9HjKlMnOpQrStUvWxYzAbC": ("invoice April", {"inkit_storage": 3}),
}
FLOW_ID = "fb_4GhJkLmNpQrStVwXyZaBcD"
#: Where the package under test is imported from: first on a child's path, after its metadata.
PACKAGE_ROOT = Path(inkit_async.__file__).resolve().parents[1]


@pytest.fixture
async def fake_url(uvicorn_server) -> tuple[FakeInkit, str]:
    """A seeded FakeInkit served by uvicorn on an ephemeral 127.0.0.1 port."""
    fake = FakeInkit(token="docs-example-token", docs_per_poll=100, seed=11)
    for batch_id, (name, destinations) in SEEDED.items():
        fake.add_batch(batch_id=batch_id, name=name, destinations=destinations)
    fake.add_batch(batch_id=FLOW_ID, flow=True, destinations={"amazon_s3": 2})
    for n in range(20):
        fake.add_batch(name=f"invoice {n}", destinations={"inkit_storage": 1})
    return fake, await uvicorn_server(fake.app)


async def run(
    command: list[str], fake: FakeInkit, url: str, *, path: list[Path] = ()
) -> tuple[int, str]:
    """Run *command* with the fake's URL and token in the environment; return code and output.

    *path* goes first on the child's PYTHONPATH.
    """
    env = {**os.environ, "INKIT_BASE_URL": url, "INKIT_API_TOKEN": fake.token}
    if path:
        rest = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
        env["PYTHONPATH"] = os.pathsep.join([*map(str, path), *rest])
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
@pytest.mark.subprocess
async def test_example_script_runs(fake_url, script):
    """The example runs to completion against the fake and prints what it promises."""
    fake, url = fake_url
    code, out = await run([sys.executable, str(script)], fake, url)
    assert code == 0, out
    assert out.strip()
    assert "Traceback" not in out


@pytest.mark.parametrize("module", TEST_MODULES, ids=lambda p: p.name)
@pytest.mark.subprocess
async def test_example_test_module_passes(fake_url, module, tmp_path):
    """The testing examples are pytest modules; every test in them passes.

    The package's metadata from this tree is on the path, as installing it puts it: the
    plugin's fixtures come through its entry point, with no set-up in the example.
    """
    fake, url = fake_url
    site = write_installed_metadata(tmp_path / "site")
    code, out = await run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        fake,
        url,
        path=[site, PACKAGE_ROOT],
    )
    assert code == 0, out
    assert re.search(r"\b[1-9]\d* passed\b", out), out


@pytest.mark.parametrize("script", SHELL, ids=lambda p: p.name)
@pytest.mark.subprocess
async def test_example_shell_session_runs(fake_url, script):
    """The command-line examples run with bash -e, each command succeeding."""
    fake, url = fake_url
    code, out = await run(["bash", "-e", str(script)], fake, url)
    assert code == 0, out


async def test_web_app_example_serves_batches(fake_url, monkeypatch):
    """The web-app example shares one client across requests and answers from the API.

    Its record route returns ``batch.to_dict()``; a missing batch is a 404 on either route.
    """
    fake, url = fake_url
    monkeypatch.setenv("INKIT_BASE_URL", url)
    monkeypatch.setenv("INKIT_API_TOKEN", fake.token)
    spec = importlib.util.spec_from_file_location("webapp_example", EXAMPLES / "webapp.py")
    assert spec is not None
    assert spec.loader is not None
    webapp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(webapp)
    app = webapp.app
    async with app.router.lifespan_context(app):
        client = app.state.inkit
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            ok, missing = await asyncio.gather(
                http.get("/batches/rb_6WtDgF7RGqdS5Uzea9neZJ"), http.get("/batches/rb_nope")
            )
            again = await http.get("/batches/rb_6WtDgF7RGqdS5Uzea9neZJ")
            record = await http.get("/batches/rb_6WtDgF7RGqdS5Uzea9neZJ/record")
            missing_record = await http.get("/batches/rb_nope/record")
        assert app.state.inkit is client  # one client for every request
    assert client.is_closed  # closed at shutdown
    assert ok.status_code == 200
    assert ok.json()["id"] == "rb_6WtDgF7RGqdS5Uzea9neZJ"
    assert again.json()["finished"] is True
    assert missing.status_code == 404
    # The whole record, batch.to_dict(): the API's JSON as the fake last answered it.
    assert record.json() == fake.batch_json("rb_6WtDgF7RGqdS5Uzea9neZJ")
    assert missing_record.status_code == 404


def test_every_page_example_is_a_file_that_exists():
    """Each snippet a page includes names an existing file; every example is used by a page."""
    pages = (ROOT / "docs").glob("*.md")
    included = set()
    for page in pages:
        for match in re.finditer(r'--8<-- "([^"]+)"', page.read_text()):
            path = ROOT / match.group(1)
            assert path.is_file(), f"{page.name} includes missing {match.group(1)}"
            included.add(path)
    assert {p for p in EXAMPLES.iterdir() if p.suffix in {".py", ".sh"}} <= included


def test_pages_have_no_unexecuted_python_blocks():
    """Python code on the pages comes only from example files, which the tests run."""
    for page in (ROOT / "docs").glob("*.md"):
        text = page.read_text()
        for block in re.findall(r"```(?:python|py|bash|console)\n(.*?)```", text, re.DOTALL):
            assert block.strip().startswith("--8<--"), f"{page.name}: inline code block"


def test_every_public_name_is_in_the_api_reference():
    """docs/reference.md documents every name in inkit_async.__all__ and testing.__all__."""
    reference = (ROOT / "docs" / "reference.md").read_text()
    documented = set(re.findall(r"^::: (inkit_async[\w.]*)$", reference, re.MULTILINE))
    public = {f"inkit_async.{name}" for name in inkit_async.__all__}
    public |= {f"inkit_async.testing.{name}" for name in inkit_async.testing.__all__}
    assert public <= documented


def test_readme_quick_start_is_the_tested_example():
    """The README's quick start is the docs' quick-start example, word for word."""
    readme = (ROOT / "README.md").read_text()
    quickstart = (EXAMPLES / "quickstart.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert quickstart in blocks
