"""``default_headers=``: checked where it enters, sent by every engine, never shown."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle

import pytest

from inkit_async import AsyncInkit, BlockingInkit
from inkit_async._headers import USER_AGENT, headers_from
from inkit_async._senders import InProcessTransport
from inkit_async.testing import FakeInkit
from tests.support.constants import TOKEN
from tests.support.loopback import BATCH_JSON

#: A value the tests treat as a gateway's key: it must never show.
SECRET = "gw_key_0123456789abcdef"
BATCH_ID = BATCH_JSON["id"]


class Recording(InProcessTransport):
    """Answers every request with a batch, and keeps the headers each one carried."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def answer(self, method, target, headers, body):  # type: ignore[no-untyped-def]  # noqa: ARG002
        """A batch, whatever was asked."""
        self.seen.append(dict(headers))
        return 200, [("content-type", "application/json")], json.dumps(BATCH_JSON).encode()


# -- the checks where the option enters ----------------------------------------------------


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ([("X-A", "1")], TypeError, "must be a mapping"),
        ("X-A: 1", TypeError, "must be a mapping"),
        ({b"X-A": "1"}, TypeError, "names must be str"),
        ({"X-A": b"1"}, TypeError, r"default_headers\['X-A'\] must be a str"),
        ({"X-A": 1}, TypeError, "must be a str, got int"),
        ({"X A": "1"}, ValueError, "not an HTTP token"),
        ({"X-A:": "1"}, ValueError, "not an HTTP token"),
        ({"X-A\r\nX-Inkit-API-Token": "1"}, ValueError, "not an HTTP token"),
        ({"": "1"}, ValueError, "not an HTTP token"),
        ({"X-" + "a" * 300: "1"}, ValueError, "not an HTTP token"),
        ({"X-A": "1\r\nX-Inkit-API-Token: stolen"}, ValueError, "control character"),
        ({"X-A": "a\nb"}, ValueError, "control character"),
        ({"X-A": "a\x00b"}, ValueError, "control character"),
        ({"X-A": "a\x7fb"}, ValueError, "control character"),
        ({"X-A": "caf\u00e9"}, ValueError, "non-ASCII"),
        ({"X-A": " padded"}, ValueError, "whitespace at an end"),
        ({"X-A": "padded\t"}, ValueError, "whitespace at an end"),
        ({"X-A": "x" * 8193}, ValueError, "at most 8,192 characters"),
        ({f"X-{n}": "1" for n in range(65)}, ValueError, "at most 64 headers"),
        ({"X-A": "1", "x-a": "2"}, ValueError, "sets 'x-a' twice"),
        ({"X-Inkit-API-Token": "other"}, ValueError, "from api_token"),
        ({"x-inkit-api-token": "other"}, ValueError, "from api_token"),
        ({"Accept": "text/html"}, ValueError, "may not set 'Accept'"),
        ({"accept-encoding": "br"}, ValueError, "decodes"),
        ({"Content-Type": "text/plain"}, ValueError, "sends JSON"),
        ({"Proxy-Authorization": "Basic x"}, ValueError, "proxy="),
        ({"Host": "evil.example"}, ValueError, "HTTP library writes it"),
        ({"Content-Length": "0"}, ValueError, "HTTP library writes it"),
        ({"Transfer-Encoding": "chunked"}, ValueError, "HTTP library writes it"),
        ({"Connection": "close"}, ValueError, "HTTP library writes it"),
    ],
)
def test_bad_headers_are_refused_at_construction_with_typed_errors(given, error, message):
    """Each one, in AsyncInkit, BlockingInkit, with_options and FakeInkit.client."""
    client = AsyncInkit(TOKEN)
    for build in (
        lambda: AsyncInkit(TOKEN, default_headers=given),
        lambda: BlockingInkit(TOKEN, default_headers=given),
        lambda: client.with_options(default_headers=given),
        lambda: FakeInkit().client(default_headers=given),
    ):
        with pytest.raises(error, match=message):
            build()


def test_no_message_shows_a_value():
    """A refused value (it may be a credential) is never quoted: not even its start."""
    for value in (f"{SECRET}\r\n", f" {SECRET}", f"{SECRET}\u00e9", SECRET * 400):
        with pytest.raises(ValueError, match="default_headers") as info:
            headers_from({"Authorization": value})
        assert SECRET not in str(info.value)
        assert SECRET[:8] not in str(info.value)
    with pytest.raises(ValueError, match="not shown") as info:
        headers_from({f"Bearer {SECRET}": "x"})  # a key pasted where the name goes
    assert SECRET not in str(info.value)


def test_good_headers_are_kept_as_given():
    """Tokens of every allowed character; values with inner spaces and tabs; empty values."""
    given = {"X-Odd!#$%&'*+.^_`|~": "a b\tc", "Authorization": f"Bearer {SECRET}", "X-Empty": ""}
    headers = headers_from(given)
    assert dict(headers) == given
    assert headers == given
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert "AUTHORIZATION" in headers
    assert 1 not in headers  # type: ignore[comparison-overlap]
    with pytest.raises(KeyError):
        headers[1]  # type: ignore[index]
    assert headers_from(headers) is headers
    assert headers_from(None) == {}
    assert headers != {b"X": "1"}
    assert headers != 1


# -- never shown ---------------------------------------------------------------------------


def test_the_values_never_show_in_a_repr_a_copy_or_a_pickle():
    """repr(client), repr(options), repr(default_headers): names only; pickling refuses."""
    client = AsyncInkit(TOKEN, default_headers={"Authorization": SECRET})
    headers = client.default_headers
    assert repr(headers) == "<DefaultHeaders [Authorization], values not shown>"
    for shown in (repr(client), repr(client._engine.options), repr(headers), str(headers)):  # noqa: SLF001
        assert SECRET not in shown
    assert copy.copy(headers) is headers
    assert copy.deepcopy(headers) is headers
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(headers)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(client._engine.options)  # noqa: SLF001


def test_equal_headers_hash_alike_in_any_case_and_order():
    """Variants with equal headers share requests under way (the coalescing key hashes them)."""
    one = headers_from({"X-A": "1", "X-B": "2"})
    other = headers_from({"x-b": "2", "x-a": "1"})
    assert one == other
    assert hash(one) == hash(other)
    assert one != headers_from({"X-A": "1", "X-B": "3"})


# -- what requests carry -------------------------------------------------------------------


async def _sent(client: AsyncInkit, transport: Recording) -> dict[str, str]:
    await client.batch.get(BATCH_ID)
    return transport.seen[-1]


async def test_every_request_carries_them_in_process():
    """FakeInkit's in-process sender hands them over with the SDK's own headers."""
    transport = Recording()
    given = {"Authorization": f"Bearer {SECRET}", "X-Tenant": "t1"}
    async with AsyncInkit(
        TOKEN, base_url="http://fake.invalid/v1", transport=transport, default_headers=given
    ) as client:
        sent = await _sent(client, transport)
    assert sent["authorization"] == f"Bearer {SECRET}"
    assert sent["x-tenant"] == "t1"
    assert sent["x-inkit-api-token"] == TOKEN
    assert sent["user-agent"] == USER_AGENT
    assert sent["accept"] == "application/json"


async def test_a_user_agent_replaces_the_sdks_once():
    """One User-Agent, the caller's, in whatever case it was given."""
    transport = Recording()
    async with AsyncInkit(
        TOKEN, transport=transport, default_headers={"user-agent": "dashboard/2"}
    ) as client:
        await client.batch.get(BATCH_ID)
    request = client._engine.headers  # noqa: SLF001 - the one dict every request starts from
    assert [name for name in request if name.lower() == "user-agent"] == ["user-agent"]
    assert transport.seen[-1]["user-agent"] == "dashboard/2"


async def test_a_variant_adds_headers_for_its_calls_only():
    """with_options adds (or replaces, in any case) for the variant; None removes them all."""
    transport = Recording()
    async with AsyncInkit(
        TOKEN, transport=transport, default_headers={"X-Tenant": "t1", "X-Keep": "k"}
    ) as client:
        variant = client.with_options(default_headers={"x-tenant": "t2", "X-Trace": "1"})
        assert dict(variant.default_headers) == {"X-Keep": "k", "x-tenant": "t2", "X-Trace": "1"}
        sent = await _sent(variant, transport)
        assert (sent["x-tenant"], sent["x-keep"], sent["x-trace"]) == ("t2", "k", "1")
        sent = await _sent(client, transport)
        assert (sent["x-tenant"], "x-trace" in sent) == ("t1", False)
        bare = client.with_options(default_headers=None)
        sent = await _sent(bare, transport)
        assert not {"x-tenant", "x-keep"} & set(sent)
        same = client.with_options(timeout=5)
        assert same.default_headers == client.default_headers


async def test_variants_with_other_headers_never_share_a_request():
    """Two lookups of one batch at once: equal headers share one request, other headers not."""
    transport = Recording()
    async with AsyncInkit(TOKEN, transport=transport, default_headers={"X-T": "1"}) as client:
        twin = client.with_options(default_headers={"X-T": "1"})
        other = client.with_options(default_headers={"X-T": "2"})
        await asyncio.gather(client.batch.get(BATCH_ID), twin.batch.get(BATCH_ID))
        assert len(transport.seen) == 1
        await asyncio.gather(client.batch.get(BATCH_ID), other.batch.get(BATCH_ID))
        assert sorted(seen["x-t"] for seen in transport.seen[1:]) == ["1", "2"]


def test_the_blocking_client_sends_them_too():
    """BlockingInkit(default_headers=...) and its variants."""
    transport = Recording()
    with BlockingInkit(TOKEN, transport=transport, default_headers={"X-T": "1"}) as client:
        client.batch.get(BATCH_ID)
        client.with_options(default_headers={"X-U": "2"}).batch.get(BATCH_ID)
    first, second = transport.seen
    assert (first["x-t"], "x-u" in first) == ("1", False)
    assert (second["x-t"], second["x-u"]) == ("1", "2")
