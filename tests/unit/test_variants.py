"""client.with_options: per-call options over the parent's shared resources."""

from __future__ import annotations

import httpx
import pytest

from inkit_async import AsyncInkit, Backoff, InkitError, InternalServerError
from inkit_async._config import NOT_GIVEN
from inkit_async.testing import FakeInkit
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.loopback import BATCH_JSON


async def test_variant_overrides_only_what_it_is_given(api):
    """with_options(max_retries=0) retries nothing; the parent keeps its two retries."""
    route = api.get("/batch/rb_1").respond(500)
    async with AsyncInkit(TOKEN, backoff=NO_WAIT, timeout=9) as client:
        variant = client.with_options(max_retries=0)
        assert variant.max_retries == 0
        assert variant.timeout == client.timeout
        assert variant.base_url == client.base_url
        with pytest.raises(InternalServerError):
            await variant.batch.get("rb_1")
        assert route.call_count == 1
        with pytest.raises(InternalServerError):
            await client.batch.get("rb_1")
        assert route.call_count == 4


async def test_variant_timeout_and_backoff_apply(api):
    """A variant's timeout and backoff are its own."""
    api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit(TOKEN) as client:
        variant = client.with_options(timeout=httpx.Timeout(3.0), max_retry_after=1.0)
        assert variant.timeout == httpx.Timeout(3.0)
        assert client.timeout == 30.0
        assert (await variant.batch.get("rb_1")).id == "rb_1"


async def test_closing_the_variant_leaves_the_parent_open(api):
    """A variant's aclose() closes the variant only; the shared pool stays open."""
    api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with AsyncInkit(TOKEN) as client:
        async with client.with_options(max_retries=1) as variant:
            await variant.batch.get("rb_1")
        assert variant.is_closed
        assert not client.is_closed
        await client.batch.get("rb_1")
        with pytest.raises(InkitError, match="closed"):
            await variant.batch.get("rb_1")


async def test_closing_the_parent_closes_every_variant(api):
    """After the parent closes, its variants refuse calls with InkitError."""
    client = AsyncInkit(TOKEN)
    variant = client.with_options(timeout=1)
    await client.aclose()
    assert variant.is_closed
    with pytest.raises(InkitError, match="closed"):
        await variant.batch.get("rb_1")


def test_variant_options_are_checked():
    """with_options validates like the constructor does."""
    client = AsyncInkit(TOKEN)
    with pytest.raises(ValueError):
        client.with_options(max_retries=-1)
    with pytest.raises(TypeError):
        client.with_options(backoff="fast")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "timeout": 7.5,
            "max_retries": 5,
            "max_retry_after": 12.0,
            "backoff": Backoff(initial=0.1, maximum=2.0, jitter=0.5),
        },
        {"timeout": httpx.Timeout(4.0, connect=1.0, read=9.0)},
    ],
    ids=["defaults", "numbers", "httpx-timeout"],
)
def test_every_option_round_trips_through_with_options(options):
    """with_options(**the client's own values) gives back exactly those values."""
    client = AsyncInkit(TOKEN, **options)
    same = client.with_options(
        timeout=client.timeout,
        max_retries=client.max_retries,
        max_retry_after=client.max_retry_after,
        backoff=client.backoff,
    )
    values = ("timeout", "max_retries", "max_retry_after", "backoff", "max_concurrency")
    assert [getattr(same, name) for name in values] == [getattr(client, name) for name in values]
    assert type(same.timeout) is type(client.timeout)
    assert client.timeout == options.get("timeout", 30.0)


async def test_on_event_none_removes_the_parents_callback(events):
    """with_options(on_event=None): the variant reports nothing; the parent still does."""
    fake = FakeInkit()
    batch_id = fake.add_batch()
    async with fake.client(on_event=events) as client:
        quiet = client.with_options(on_event=None)
        fake.fail_next(1, 503)
        await quiet.batch.get(batch_id)
        assert len(fake.requests) == 2  # it did retry, with no one to tell
        assert events == []
        fake.fail_next(1, 503)
        await client.batch.get(batch_id)
        assert len(events.retries) == 1


def test_backoff_none_is_the_default_backoff():
    """with_options(backoff=None) means what AsyncInkit(backoff=None) means: Backoff()."""
    client = AsyncInkit(TOKEN, backoff=NO_WAIT)
    assert client.with_options(backoff=None).backoff == Backoff()
    assert AsyncInkit(TOKEN, backoff=None).backoff == Backoff()
    assert client.with_options(max_retries=1).backoff is NO_WAIT


@pytest.mark.parametrize("name", ["timeout", "max_retries", "max_retry_after"])
def test_none_is_refused_where_the_constructor_refuses_it(name):
    """timeout/max_retries/max_retry_after=None: the constructor's TypeError, word for word."""
    with pytest.raises(TypeError) as constructor:
        AsyncInkit(TOKEN, **{name: None})
    client = AsyncInkit(TOKEN, timeout=9)
    with pytest.raises(TypeError) as variant:
        client.with_options(**{name: None})
    assert str(variant.value) == str(constructor.value)
    assert name in str(variant.value)


def test_an_option_left_out_or_not_given_keeps_the_parents_value():
    """Leaving an option out and passing NOT_GIVEN are the same: the parent's value stays."""
    client = AsyncInkit(TOKEN, timeout=9, max_retries=4, on_event=print, backoff=NO_WAIT)
    for variant in (client.with_options(), client.with_options(timeout=NOT_GIVEN)):
        assert variant.timeout == 9
        assert variant.max_retries == 4
        assert variant.backoff is NO_WAIT
        assert variant._engine.options.on_event is print  # noqa: SLF001 - no public getter


class TaggedClient(AsyncInkit):
    """A subclass with an argument and a method of its own."""

    def __init__(self, *args, tag: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tag = tag

    def describe(self) -> str:
        """The tag and the retries of this client."""
        return f"{self.tag}: {self.max_retries} retries"


async def test_a_subclass_keeps_its_class_and_attributes_in_its_variants(api):
    """A variant of a subclass is of that subclass, with what its __init__ set."""
    api.get("/batch/rb_1").respond(json={**BATCH_JSON, "id": "rb_1"})
    async with TaggedClient(TOKEN, tag="billing") as client:
        variant = client.with_options(max_retries=0)
        assert type(variant) is TaggedClient
        assert variant.describe() == "billing: 0 retries"
        assert client.describe() == "billing: 2 retries"
        assert (await variant.batch.get("rb_1")).id == "rb_1"
        await variant.aclose()
        assert not client.is_closed
