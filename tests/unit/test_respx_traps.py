"""The two respx traps the testing page states are real, and its example avoids both.

docs/examples/testing_with_respx.py runs as a pytest module in
tests/functional/test_docs_examples.py; here, the same set-up without each cure fails.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest
import respx

from inkit_async import APIResponseValidationError, AsyncInkit

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "testing_with_respx.py"
API = "https://api.inkit.com/v1"


def example():
    """The example module, imported from its file."""
    spec = importlib.util.spec_from_file_location("testing_with_respx_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_without_a_pass_through_respx_fails_the_tests_own_client():
    """Trap 1: respx.mock(using="httpx") refuses the test's request to the app itself."""
    module = example()
    with respx.mock(base_url=API, using="httpx", assert_all_called=False) as api:
        api.get(path__regex=r"/batch/(?P<batch_id>[^/]+)").mock(side_effect=module.answer_for)
        transport = httpx.ASGITransport(app=module.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            with pytest.raises(respx.models.AllMockedAssertionError, match="not mocked"):
                await http.get("/status/rb_first")


async def test_a_fixed_body_fails_the_id_check():
    """Trap 2: one body for every id is the wrong batch for all ids but its own."""
    module = example()
    with respx.mock(base_url=API) as api:
        api.get(path__regex=r"/batch/\w+").respond(json=module.BATCH)
        async with AsyncInkit("test-token", base_url=API) as client:
            with pytest.raises(APIResponseValidationError, match="not the one asked for"):
                await client.batch.get("rb_other")


async def test_the_example_avoids_both():
    """With the pass-through route and the echoing answer, the app answers both ids."""
    await example().test_an_app_under_respx()
