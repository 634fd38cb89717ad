"""The pytest plugin's in-process fixtures, run as a user's tests would run (pytester).

Each test writes a small test module and runs pytest on it inline. The plugin is loaded
as an installed package loads it, through the ``pytest11`` entry point this tree's
pyproject.toml declares (tests/support/installed.py), or with ``-p``. ``inkit_server``
opens a socket: its tests are in tests/functional/test_pytest_plugin_server.py.
"""

from __future__ import annotations

import importlib.metadata
import sys

import pytest

from tests.support.installed import write_installed_metadata

pytest_plugins = ["pytester"]

PLUGIN = "inkit_async.pytest_plugin"
STRICT = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
AUTO = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"

#: Tests that use the client in every way a user might: async, plain, closing it early.
USES_THE_CLIENT = """
import asyncio
import pytest
from inkit_async import AsyncInkit
from inkit_async.testing import FakeInkit

clients = []

{mark}
async def test_async(inkit_client, inkit_fake):
    assert isinstance(inkit_fake, FakeInkit)
    batch_id = inkit_fake.add_batch(destinations={{"inkit_storage": 2}})
    batch = await inkit_client.batch.wait(batch_id, poll_interval=0.01, timeout=5)
    assert batch.progress.completed == 2
    clients.append(inkit_client)

def test_plain(inkit_client, inkit_fake):
    batch_id = inkit_fake.add_batch()
    assert asyncio.run(inkit_client.batch.get(batch_id)).id == batch_id
    clients.append(inkit_client)

def test_unused(inkit_client):
    assert isinstance(inkit_client, AsyncInkit)
    clients.append(inkit_client)

{mark}
async def test_closed_by_the_test(inkit_client):
    await inkit_client.aclose()
    clients.append(inkit_client)

def test_each_test_had_its_own_client_and_each_was_closed(inkit_fake):
    assert len(clients) == len({{id(client) for client in clients}}) == 4
    assert all(client.is_closed for client in clients)
"""


@pytest.mark.parametrize(
    ("ini", "mark"), [(STRICT, "@pytest.mark.asyncio"), (AUTO, "")], ids=["strict", "auto"]
)
def test_the_client_fixture_works_in_strict_and_auto_mode(pytester, ini, mark):
    """A plain fixture: async and plain tests use it, in either mode, and it is closed."""
    pytester.makeini(ini)
    pytester.makepyfile(USES_THE_CLIENT.format(mark=mark))
    result = pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_the_fixtures_share_one_fresh_fake_per_test(pytester):
    """inkit_client talks to inkit_fake; the next test gets another fake, empty."""
    pytester.makeini(AUTO)
    pytester.makepyfile(
        """
        seen = []

        async def test_one(inkit_client, inkit_fake):
            batch_id = inkit_fake.add_batch()
            await inkit_client.batch.get(batch_id)
            assert len(inkit_fake.requests) == 1
            seen.append(inkit_fake)

        def test_two(inkit_fake):
            assert inkit_fake.requests == [] and inkit_fake.batch_ids() == []
            assert inkit_fake is not seen[0]
        """
    )
    result = pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_installing_the_package_registers_the_plugin(pytester, monkeypatch, tmp_path):
    """With this tree's metadata on the path, pytest loads the plugin with no set-up at all.

    No conftest, no ``-p``, no ``pytest_plugins``: the ``pytest11`` entry point does it.
    Loading it again by name (``-p``) is the same plugin, not a second registration;
    ``-p no:`` turns it off.
    """
    monkeypatch.syspath_prepend(str(write_installed_metadata(tmp_path / "site")))
    points = importlib.metadata.entry_points(group="pytest11")
    assert [point.value for point in points if point.name == PLUGIN] == [PLUGIN]
    pytester.makeini(AUTO)
    pytester.makepyfile(
        """
        async def test_it(inkit_client, inkit_fake):
            batch_id = inkit_fake.add_batch()
            assert (await inkit_client.batch.get(batch_id)).id == batch_id
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    again = pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    again.assert_outcomes(passed=1)
    off = pytester.runpytest_inprocess(f"-p no:{PLUGIN}", "-p", "no:cacheprovider")
    off.assert_outcomes(errors=1)
    off.stdout.fnmatch_lines(["*fixture 'inkit_client' not found*"])


def test_the_server_fixture_without_uvicorn_names_the_extra(pytester, monkeypatch):
    """No uvicorn: a test that asks for inkit_server fails, saying what to install."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    pytester.makeini(AUTO)
    pytester.makepyfile(
        """
        def test_it(inkit_server):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*inkit_server*pip install 'inkit-async?testing?'*"])


def test_a_client_used_in_a_loop_that_outlives_the_test_is_closed_in_it(pytester):
    """A module-scoped loop still runs when the test ends: the client is closed there."""
    pytester.makeini(STRICT)
    pytester.makepyfile(
        """
        import pytest

        clients = []

        @pytest.mark.asyncio(loop_scope="module")
        async def test_uses_it(inkit_client, inkit_fake):
            await inkit_client.batch.get(inkit_fake.add_batch())
            clients.append(inkit_client)

        @pytest.mark.asyncio(loop_scope="module")
        async def test_it_was_closed():
            assert clients[0].is_closed
        """
    )
    result = pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
