"""The token stays secret whatever a server sends back: messages, bodies, causes, pickles, CLI.

Each server here echoes the client's token wherever a server can (its error message, a
header, the reason phrase, JSON escapes, another encoding) over real sockets on
127.0.0.1. What the SDK hands out is then searched object by object: no string or bytes
reachable from an error may hold the token (the frames of a traceback aside).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import logging
import os
import pickle
import types
import weakref

import httpx
import pytest

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncInkit,
    AuthenticationError,
    InkitError,
    RateLimitError,
    WaitTimeoutError,
)

from .conftest import NO_WAIT, TOKEN
from .loopback import (
    BATCH_JSON,
    Drop,
    LoopbackServer,
    Oversized,
    Raw,
    Request,
    Respond,
    Run,
    answer_bytes,
    closed_port,
    held_until,
    run_cli,
)

REDACTED = "[redacted]"
#: The token as a server that escapes every character in JSON would write it.
ESCAPED = "".join(f"\\u{ord(char):04x}" for char in TOKEN)
_OPAQUE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.FrameType,
    types.TracebackType,
    types.CodeType,
    weakref.ReferenceType,
)


def reachable(root: object) -> list[object]:
    """Every object reachable from *root* by reference, skipping code, frames and classes."""
    seen: set[int] = set()
    found: list[object] = []
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, _OPAQUE):
            continue
        seen.add(id(item))
        found.append(item)
        pending.extend(gc.get_referents(item))
        assert len(found) < 50_000, "the walk left the error's own objects"
    return found


def assert_secret(error: BaseException) -> None:
    """Assert that nothing reachable from *error*, nor its pickle, holds the token."""
    forms = (TOKEN.encode(), TOKEN.encode("utf-16-le"), TOKEN.encode("utf-16-be"))
    for item in reachable(error):
        if isinstance(item, str):
            assert TOKEN not in item
        elif isinstance(item, bytes | bytearray):
            assert not any(form in item for form in forms)
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert TOKEN.encode() not in pickle.dumps(error)


async def failure_of(client: AsyncInkit, batch_id: str = "rb_1") -> InkitError:
    """The InkitError that ``client.batch.get(batch_id)`` raises."""
    with pytest.raises(InkitError) as info:
        await client.batch.get(batch_id)
    return info.value


# -- a server that echoes the token in its error --------------------------------------

ECHOES = {
    "json-message": Respond(401, {"error": f"Invalid token {TOKEN}"}),
    "json-escapes": Respond(
        401, f'{{"message": "Invalid token {ESCAPED}"}}'.encode(), {"content-type": "json"}
    ),
    "json-key": Respond(401, {"error": {TOKEN: "is not a token"}}),
    "text": Respond(401, f"token {TOKEN} is not valid"),
    "utf-16-text": Respond(
        401,
        f"token {TOKEN} is not valid".encode("utf-16"),
        {"content-type": "text/plain; charset=utf-16"},
    ),
    "html": Respond(401, f"<p>{TOKEN}</p>", {"content-type": "text/html"}),
    "headers": Respond(401, {"error": "no"}, {"x-echo": TOKEN, "x-request-id": TOKEN}),
    "reason-phrase": Raw(
        answer_bytes(
            401,
            b'{"error": "no"}',
            reason=f"Bad token {TOKEN}",
            headers={"content-type": "application/json"},
        )
    ),
    "deep-json-escapes": Respond(
        401, ("[" * 70 + f'"{ESCAPED}"' + "]" * 70).encode(), {"content-type": "json"}
    ),
}


@pytest.mark.parametrize("answer", list(ECHOES.values()), ids=list(ECHOES))
async def test_a_token_echoed_in_an_error_reaches_nothing_the_error_holds(server, answer):
    """Message, .body, .response (content, text, json, headers, reason), pickle: all masked."""
    server.script(answer)
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        error = await failure_of(client)
    assert isinstance(error, AuthenticationError)
    response = error.response
    seen = [str(error), repr(error.body), response.text, response.reason_phrase]
    seen += [f"{name}: {value}" for name, value in response.headers.items()]
    seen.append(str(error.request_id))
    assert not any(TOKEN in text for text in seen)
    assert response.request.headers["X-Inkit-API-Token"] == REDACTED
    assert_secret(error)


async def test_the_masked_text_says_where_the_token_was(server):
    """The echoed token becomes [redacted] in place; the rest of the message is kept."""
    server.script(Respond(401, {"error": f"Invalid token {TOKEN} for this account"}))
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        error = await failure_of(client)
    assert (
        str(error)
        == "401 Unauthorized from GET /batch/rb_1: Invalid token [redacted] for this account"
    )
    assert error.body == {"error": "Invalid token [redacted] for this account"}
    assert error.response.json() == error.body


TWO_XX = {
    "not-json": Respond(200, f"ok {TOKEN}"),
    "bad-date": Respond(200, {**BATCH_JSON, "id": "rb_1", "created_at": TOKEN}),
    "wrong-id": Respond(200, {**BATCH_JSON, "id": TOKEN}),
    "oversized": Raw(
        answer_bytes(200, headers={"content-length": str(11 * 2**20), "x-echo": TOKEN})
    ),
}


@pytest.mark.parametrize("answer", list(TWO_XX.values()), ids=list(TWO_XX))
async def test_a_token_in_an_unusable_2xx_answer_reaches_nothing_the_error_holds(server, answer):
    """APIResponseValidationError: message (a date parser quotes the value), body, response."""
    server.script(answer)
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        error = await failure_of(client)
    assert isinstance(error, APIResponseValidationError)
    assert_secret(error)


# -- the cause chain with a caller's own http_client ------------------------------------


async def test_the_cause_of_a_connection_error_holds_the_masked_request(server):
    """The real request httpx attaches to its exception is swapped for the masked copy."""
    server.handler = lambda request: Drop()
    async with (
        httpx.AsyncClient() as http,
        AsyncInkit(TOKEN, base_url=server.url, http_client=http, backoff=NO_WAIT) as client,
    ):
        error = await failure_of(client)
    assert isinstance(error, APIConnectionError)
    cause = error.__cause__
    assert isinstance(cause, httpx.TransportError)
    assert cause.request.headers["X-Inkit-API-Token"] == REDACTED
    assert error.request is not None
    assert error.request.headers["X-Inkit-API-Token"] == REDACTED
    assert_secret(error)


async def test_an_http_status_error_from_a_hook_holds_masked_copies(server):
    """A response hook's raise_for_status: its request and response are masked copies."""

    async def strict(response: httpx.Response) -> None:
        await response.aread()
        response.raise_for_status()

    server.script(Respond(404, {"error": f"no batch for {TOKEN}"}, {"x-echo": TOKEN}))
    hooks = {"response": [strict]}
    async with (
        httpx.AsyncClient(event_hooks=hooks) as http,
        AsyncInkit(TOKEN, base_url=server.url, http_client=http, max_retries=0) as client,
    ):
        error = await failure_of(client)
    cause = error.__cause__
    assert isinstance(cause, httpx.HTTPStatusError)
    assert cause.request.headers["X-Inkit-API-Token"] == REDACTED
    assert cause.response.json() == {"error": "no batch for [redacted]"}
    assert_secret(error)


async def test_closing_the_client_mid_request_masks_the_cause_too(server):
    """Closed while the request was out: the InkitError's cause holds the masked request."""
    release = asyncio.Event()
    hold = held_until(release)

    async def handler(request: Request) -> Respond | Drop:
        await hold(request)
        return Drop()

    server.handler = handler
    async with httpx.AsyncClient() as http:
        client = AsyncInkit(TOKEN, base_url=server.url, http_client=http, max_retries=0)
        call = asyncio.create_task(client.batch.get("rb_1"))
        await server.wait_for_in_flight(1)
        await client.aclose()
        release.set()
        with pytest.raises(InkitError, match="closed while the request") as info:
            await call
    cause = info.value.__cause__
    assert isinstance(cause, httpx.TransportError)
    assert cause.request.headers["X-Inkit-API-Token"] == REDACTED
    assert_secret(info.value)


# -- logs ---------------------------------------------------------------------------------


async def test_log_records_never_show_an_echoed_token(server, caplog):
    """Retries after echoing 503s, then an echoing 401: no log record holds the token."""
    echoing = Respond(503, {"error": f"busy, {TOKEN}"}, {"x-echo": TOKEN})
    server.script(echoing, echoing, Respond(401, {"error": TOKEN}))
    caplog.set_level(logging.DEBUG, logger="inkit_async")
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        await failure_of(client)
    assert len(caplog.records) >= 5  # three attempts, two retries
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(vars(record))


async def test_a_retry_event_never_shows_a_token_in_the_reason_phrase(server, events):
    """A 503 whose reason phrase echoes the token: the RetryEvent's reason has it masked."""
    phrase = f"Busy {TOKEN}"
    server.script(Raw(answer_bytes(503, b"{}", reason=phrase, headers={"content-type": "json"})))
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT, on_event=events) as client:
        await client.batch.get("rb_1")
    [retry] = events.retries
    assert retry.reason == "503 Busy [redacted]"


# -- base_url with credentials ----------------------------------------------------------

CREDENTIALED = [
    "https://user:s3cret@api.inkit.com/v1",
    "https://s3cret@api.inkit.com/v1",
    "https://:s3cret@api.inkit.com/v1",
    "https://user:s3cret@api.inkit.com/v1?key=1",
    "https:user:s3cret@api.inkit.com/v1",
    "ftp://user:s3cret@api.inkit.com/v1",
]


@pytest.mark.parametrize("base_url", CREDENTIALED)
def test_a_base_url_with_credentials_is_refused_without_echoing_them(base_url, monkeypatch):
    """user:password@ in base_url (or INKIT_BASE_URL) is a ValueError that never shows them."""
    for given in ({"base_url": base_url}, {}):
        if not given:
            monkeypatch.setenv("INKIT_BASE_URL", base_url)
        with pytest.raises(ValueError) as info:
            AsyncInkit(TOKEN, **given)
        assert "s3cret" not in str(info.value)


def test_an_over_long_base_url_is_refused():
    """A base_url over 2,048 characters is refused; at the limit it is accepted."""
    root = "https://api.inkit.com/"
    AsyncInkit(TOKEN, base_url=root + "v" * (2048 - len(root)))
    with pytest.raises(ValueError, match="at most 2,048 characters"):
        AsyncInkit(TOKEN, base_url=root + "v" * (2049 - len(root)))


# -- pickle and copy ------------------------------------------------------------------------


async def errors_of_every_kind(server: LoopbackServer) -> list[InkitError]:
    """One error of each family, each from a server that echoed the token where it could."""
    errors: list[InkitError] = []
    server.script(
        Respond(401, {"error": f"bad {TOKEN}"}, {"x-echo": TOKEN}),
        Respond(429, {"error": TOKEN}, {"retry-after": "3600"}),
        Respond(200, f"not json {TOKEN}"),
        Oversized(11 * 2**20, declare_length=True),
    )
    async with AsyncInkit(TOKEN, base_url=server.url, backoff=NO_WAIT) as client:
        errors += [await failure_of(client) for _ in range(4)]
        try:
            await client.batch.wait("rb_1", poll_interval=0.05, timeout=0.2)
        except WaitTimeoutError as error:
            errors.append(error)
    refused = f"http://127.0.0.1:{closed_port()}/v1"
    async with AsyncInkit(TOKEN, base_url=refused, backoff=NO_WAIT) as client:
        errors.append(await failure_of(client))
    return errors


def in_progress(request: Request) -> Respond:
    """A batch with the id asked for, never finished."""
    counters = {"count": 2, "completed": 1, "failed": 0, "in_progress": 1}
    return Respond(
        body={
            **BATCH_JSON,
            "id": request.last_segment,
            "status": "In Progress",
            "destinations": {"inkit_storage": counters},
        }
    )


async def test_pickled_and_copied_errors_keep_type_message_status_and_no_token(server):
    """pickle, copy and deepcopy: same class, message, status, body; no token in the bytes."""
    server.handler = in_progress
    errors = await errors_of_every_kind(server)
    kinds = [type(error).__name__ for error in errors]
    assert kinds == [
        "AuthenticationError",
        "RateLimitError",
        "APIResponseValidationError",
        "APIResponseValidationError",
        "WaitTimeoutError",
        "APIConnectionError",
    ]
    for error in errors:
        data = pickle.dumps(error)
        assert TOKEN.encode() not in data
        for clone in (pickle.loads(data), copy.copy(error), copy.deepcopy(error)):  # noqa: S301
            assert type(clone) is type(error)
            assert str(clone) == str(error)
            assert getattr(clone, "status_code", None) == getattr(error, "status_code", None)
            assert getattr(clone, "body", None) == getattr(error, "body", None)
            assert_secret(clone)
    rate_limited = errors[1]
    assert isinstance(rate_limited, RateLimitError)
    assert pickle.loads(pickle.dumps(rate_limited)).retry_after == 3600  # noqa: S301


# -- the command line -----------------------------------------------------------------------


async def cli(*args: str, base_url: str) -> Run:
    """Run ``python -m inkit_async ARGS`` with the token and *base_url* in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKIT_")}
    env |= {"INKIT_API_TOKEN": TOKEN, "INKIT_BASE_URL": base_url}
    return await run_cli(*args, env=env)


def echoing_server(request: Request) -> Respond:
    """rb_bad: a 401 that quotes the token; anything else: a batch named after the token."""
    if request.last_segment == "rb_bad":
        return Respond(401, {"error": f"token {TOKEN} is revoked"})
    return Respond(
        body={**BATCH_JSON, "id": request.last_segment, "name": f"{TOKEN}\x1b[2J\x9b31m"}
    )


@pytest.mark.parametrize("output", ["table", "json"])
async def test_the_cli_masks_the_token_and_escapes_controls_in_all_it_prints(server, output):
    """Both streams show [redacted] for the echoed token, and no raw control character."""
    server.handler = echoing_server
    flags = ["--json"] if output == "json" else []
    run = await cli("batch", "get", "rb_ok", "rb_bad", *flags, base_url=server.url)
    assert run.code == 1
    assert TOKEN not in run.out + run.err
    assert "\x1b" not in run.out + run.err
    assert "\x9b" not in run.out + run.err
    error = "401 Unauthorized from GET /batch/rb_bad: token [redacted] is revoked"
    assert run.err == f"inkit-async: rb_bad: {error}\n"
    if output == "json":
        assert json.loads(run.out)["name"] == "[redacted]\x1b[2J\x9b31m"
    else:
        assert "[redacted]\\x1b[2J\\x9b31m" in run.out


async def test_the_cli_refuses_a_base_url_with_credentials_without_echoing_them():
    """--base-url user:password@...: a usage error (exit 2) whose message hides the password."""
    run = await cli(
        "batch", "get", "rb_1", "--base-url", "https://user:s3cret@127.0.0.1:9/v1", base_url=""
    )
    assert run.code == 2
    assert "s3cret" not in run.out + run.err
    assert "must not hold a user name or password" in run.err
