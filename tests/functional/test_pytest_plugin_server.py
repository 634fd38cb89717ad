"""The pytest plugin's ``inkit_server`` fixture, and a user's test project using all three.

The in-process fixtures are tested in tests/unit/test_pytest_plugin.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import inkit_async
from tests.support.installed import write_installed_metadata

pytest_plugins = ["pytester"]

PLUGIN = "inkit_async.pytest_plugin"
STRICT = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"

#: What an application's tests look like: the code builds its own client from the
#: environment, and the tests use the plugin's fixtures and nothing else.
PROJECT_TESTS = '''
import asyncio
import os

import pytest

from inkit_async import AsyncInkit, APIConnectionError
from inkit_async.testing import Drop


async def count_documents(batch_id: str) -> int:
    """The application's code: its own client, configured by the environment."""
    async with AsyncInkit(max_retries=0, throttle=False) as client:
        return (await client.batch.get(batch_id)).total


@pytest.mark.asyncio
async def test_the_apps_own_client_reaches_the_served_fake(inkit_server, inkit_fake):
    assert inkit_server.fake is inkit_fake
    assert os.environ["INKIT_BASE_URL"] == inkit_server.url
    assert os.environ["INKIT_API_TOKEN"] == inkit_server.token == inkit_fake.token
    batch_id = inkit_fake.add_batch(destinations={"inkit_storage": 3})
    assert await count_documents(batch_id) == 3
    assert inkit_fake.requests[0].authorized


def test_a_plain_test_reaches_it_too(inkit_server):
    batch_id = inkit_server.fake.add_batch(destinations={"inkit_storage": 2})
    assert asyncio.run(count_documents(batch_id)) == 2


@pytest.mark.asyncio
async def test_faults_reach_the_app_over_the_socket(inkit_server, inkit_fake):
    batch_id = inkit_fake.add_batch()
    inkit_fake.script(batch_id, [Drop(), Drop()])
    with pytest.raises(APIConnectionError):
        await count_documents(batch_id)


@pytest.mark.asyncio
async def test_the_in_process_client_shares_the_fake(inkit_server, inkit_client, inkit_fake):
    batch_id = inkit_fake.add_batch()
    assert (await inkit_client.batch.get(batch_id)).id == batch_id
    assert await count_documents(batch_id) == 1
    assert len(inkit_fake.requests) == 2


def test_each_test_gets_a_fresh_fake_on_the_same_server(inkit_server):
    assert inkit_server.fake.requests == []


def test_the_environment_is_the_tests_own_again():
    assert "INKIT_BASE_URL" not in os.environ
    assert "INKIT_API_TOKEN" not in os.environ
'''


@pytest.mark.uvicorn
def test_the_server_fixture_serves_each_tests_fake(pytester):
    """Inline: the app's own AsyncInkit() reaches the fake, in async and plain tests."""
    pytester.makeini(STRICT)
    pytester.makepyfile(test_project=PROJECT_TESTS)
    result = pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


@pytest.mark.subprocess
@pytest.mark.uvicorn
def test_a_project_uses_the_three_fixtures_with_no_set_up(tmp_path):
    """A project of its own, run by pytest in a child process: no conftest, no ini, no -p.

    The child finds the plugin as an installed package offers it: through the entry
    point in this tree's metadata. Its default mode is pytest-asyncio's strict mode.
    """
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_app.py").write_text(PROJECT_TESTS)
    site = write_installed_metadata(tmp_path / "site")
    package_root = Path(inkit_async.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(package_root)])}
    for name in ("INKIT_BASE_URL", "INKIT_API_TOKEN", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
