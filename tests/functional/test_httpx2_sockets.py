"""httpx2 over real sockets: a refused connection, a timeout, an app with httpx2 alone."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import httpx2
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from inkit_async import APIConnectionError, AsyncInkit
from tests.support.constants import TOKEN
from tests.support.loopback import closed_port
from tests.support.secrets import assert_secret, chain


async def test_an_httpx2_timeout_applies_to_the_default_sender_too(server):
    """Without a client of httpx2's, its Timeout still sets the phases (over a real socket)."""
    async with AsyncInkit(TOKEN, base_url=server.url, timeout=httpx2.Timeout(5.0)) as client:
        assert (await client.batch.get("rb_1")).id == "rb_1"
        assert client.timeout == httpx2.Timeout(5.0)


async def test_an_httpx2_client_refused_for_real_shows_no_token_anywhere():
    """A real refused connect through httpx2's own pool: the token is in no link of the chain.

    httpx2 attaches the request it sent (token and all) to its ConnectError; the SDK swaps
    it for a masked httpx2 copy. Every exception's repr, str and pickle is searched.
    """
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with (
        httpx2.AsyncClient() as http,
        AsyncInkit(TOKEN, base_url=url, http_client=http, max_retries=0) as client,
    ):
        with pytest.raises(APIConnectionError) as info:
            await client.batch.get("rb_1")
    error = info.value
    assert error.may_have_reached_server is False
    library_error = error.__cause__.__cause__
    assert type(library_error) is httpx2.ConnectError
    masked = library_error.request
    assert type(masked) is httpx2.Request
    assert masked.headers["X-Inkit-API-Token"] == "[redacted]"
    assert "inkit.secrets" not in masked.extensions
    for link in chain(error):
        assert TOKEN not in repr(link)
        assert TOKEN not in str(link)
        assert TOKEN.encode() not in pickle.dumps(link)
    assert_secret(error)


@pytest.mark.subprocess
def test_an_app_with_only_httpx2_beside_the_sdks_dependencies_works():
    """The SDK's dependencies, httpx2's, and nothing else: an httpx2 client and transport work.

    The app runs in a fresh interpreter that refuses to import anything else (as if it
    were not installed), so an optional import of respx, OpenTelemetry, uvloop or a
    library's extras falls back as it would in such an app. It neither needs nor imports
    aiohttp: a caller's client does not pay for the SDK's own sender.
    """
    allowed = _closure("inkit-async", "httpx2")
    assert not allowed & {"respx", "pytest", "uvloop", "redis", "opentelemetry-api"}
    modules = [*_importable(allowed), "inkit_async"]
    run = subprocess.run(
        [sys.executable, "-I", "-c", APP, str(ROOT), json.dumps(modules), str(closed_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:3] == ["no respx", "rb_1", "httpx2"]
    report = json.loads(lines[3])
    assert "respx" in report["refused"]
    assert {"httpx2", "httpx", "inkit_async", "attrs", "cattrs"} <= set(report["imported"])
    assert "aiohttp" not in report["imported"]
    assert set(report["imported"]) <= set(modules)


ROOT = Path(__file__).resolve().parents[2]


def _closure(*names: str) -> set[str]:
    """The distributions *names* need (themselves included), by their unconditional requirements."""
    found: set[str] = set()
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        found.add(name)
        for line in metadata.requires(name) or ():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def _importable(distributions: set[str]) -> list[str]:
    """The top-level modules the *distributions* provide."""
    return sorted(
        module
        for module, owners in metadata.packages_distributions().items()
        if any(canonicalize_name(owner) in distributions for owner in owners)
    )


#: Run in a fresh interpreter: refuse every import outside the standard library and
#: ALLOWED, then use the SDK as an app would, through httpx2 only.
APP = textwrap.dedent(
    """
    import asyncio, json, sys

    root, allowed = sys.argv[1], set(json.loads(sys.argv[2]))
    present = {name.partition(".")[0] for name in sys.modules}
    refused = []

    class OnlyAllowed:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in allowed or top in present:
                return None
            refused.append(top)
            raise ModuleNotFoundError(f"No module named {name!r} (not installed)", name=name)

    sys.meta_path.insert(0, OnlyAllowed())
    sys.path.insert(0, root)
    try:
        import respx  # installed here, but not in the app this emulates
    except ModuleNotFoundError:
        print("no respx")

    import httpx2
    from inkit_async import APIConnectionError, AsyncInkit

    def answer(request):
        return httpx2.Response(200, json={
            "id": "rb_1", "status": "Completed", "total": 1, "name": "n",
            "created_at": "2023-08-14T14:32:48Z", "destinations": {},
        })

    async def main(port):
        async with AsyncInkit("tok_app_0123456789", transport=httpx2.MockTransport(answer)) as c:
            print((await c.batch.get("rb_1")).id)
        async with httpx2.AsyncClient() as http, AsyncInkit(
            "tok_app_0123456789", base_url=f"http://127.0.0.1:{port}/v1",
            http_client=http, timeout=httpx2.Timeout(5.0), max_retries=0,
        ) as c:
            try:
                await c.batch.get("rb_1")
            except APIConnectionError as error:
                print(type(error.__cause__.__cause__).__module__)

    asyncio.run(main(int(sys.argv[3])))
    new = {name.partition(".")[0] for name in sys.modules} - present - sys.stdlib_module_names
    print(json.dumps({"refused": sorted(set(refused)), "imported": sorted(new)}))
    """
)
