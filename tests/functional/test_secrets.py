"""The token stays secret whatever a server sends back: messages, bodies, causes, pickles, CLI.

Each server here echoes the client's token wherever a server can (its error message, a
header, the reason phrase, JSON escapes, another encoding) over real sockets on
127.0.0.1. What the SDK hands out is then searched object by object: no string or bytes
reachable from an error may hold the token (the frames of a traceback aside).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import os
import pickle
import traceback
import types

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
from inkit_async._exceptions import Secrets, redacted_request, scrub_failure
from tests.support.constants import NO_WAIT, TOKEN
from tests.support.http_library import library_error
from tests.support.loopback import (
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
from tests.support.secrets import assert_secret

REDACTED = "[redacted]"
#: The token as a server that escapes every character in JSON would write it.
ESCAPED = "".join(f"\\u{ord(char):04x}" for char in TOKEN)


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
    "json-escapes-in-a-list": Respond(
        401, f'{{"errors": ["bad", "{ESCAPED}"]}}'.encode(), {"content-type": "json"}
    ),
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


# -- masking never corrupts what the server wrote -----------------------------------------

DOWN = "the last backend is down; a retry may help"


@pytest.mark.parametrize(
    "body",
    [DOWN, {"error": DOWN, "data": {"backend": "a-side", "state": "unavailable"}}],
    ids=["text", "json"],
)
async def test_a_short_token_never_changes_ordinary_words(server, events, body):
    """AsyncInkit("a") and a 503: message, body, response, retry reason as the server wrote them."""
    answer = Respond(503, body, {"x-backend": "a-side", "x-state": "unavailable"})
    server.script(answer, answer)
    async with AsyncInkit(
        "a", base_url=server.url, max_retries=1, backoff=NO_WAIT, on_event=events
    ) as client:
        error = await failure_of(client)
    assert str(error) == f"503 Service Unavailable from GET /batch/rb_1: {DOWN}"
    assert error.body == body  # type: ignore[attr-defined]
    response = error.response  # type: ignore[attr-defined]
    assert response.reason_phrase == "Service Unavailable"
    assert response.content == answer.encode().split(b"\r\n\r\n", 1)[1]
    assert response.headers["x-backend"] == "a-side"
    assert response.headers["x-state"] == "unavailable"
    assert response.headers["content-type"] in {"application/json", "text/plain; charset=utf-8"}
    assert [retry.reason for retry in events.retries] == ["503 Service Unavailable"]
    assert response.request.headers["X-Inkit-API-Token"] == REDACTED


async def test_a_token_under_16_characters_is_masked_where_it_stands_alone(server):
    """A 9-character token as a word, after `=`, in quotes: masked; glued to a word: not."""
    token = "tok_test1"
    server.script(
        Respond(
            401, {"error": f"{token} is revoked (token={token}, '{token}'); {token}s, x{token}"}
        )
    )
    async with AsyncInkit(token, base_url=server.url, max_retries=0) as client:
        error = await failure_of(client)
    masked = "[redacted] is revoked (token=[redacted], '[redacted]'); tok_test1s, xtok_test1"
    assert str(error) == f"401 Unauthorized from GET /batch/rb_1: {masked}"
    assert error.body == {"error": masked}  # type: ignore[attr-defined]


async def test_a_token_under_8_characters_is_not_masked_in_text(server):
    """Nothing that short is secret: "token a is revoked" stays; the request's header is masked."""
    server.script(Respond(401, {"error": "token a is revoked; a=a"}))
    async with AsyncInkit("a", base_url=server.url, max_retries=0) as client:
        error = await failure_of(client)
    assert str(error) == "401 Unauthorized from GET /batch/rb_1: token a is revoked; a=a"
    assert error.response.request.headers["X-Inkit-API-Token"] == REDACTED  # type: ignore[attr-defined]


async def test_a_long_token_is_masked_even_glued_to_other_characters(server):
    """A token of 16 characters or more is masked wherever it appears, glued to a word too."""
    server.script(
        Respond(401, {"error": f"Bearer{TOKEN}x is not valid; key={TOKEN}"}, {"x-key": f"k{TOKEN}"})
    )
    async with AsyncInkit(TOKEN, base_url=server.url, max_retries=0) as client:
        error = await failure_of(client)
    masked = "Bearer[redacted]x is not valid; key=[redacted]"
    assert str(error) == f"401 Unauthorized from GET /batch/rb_1: {masked}"
    assert error.response.headers["x-key"] == "k[redacted]"  # type: ignore[attr-defined]
    assert_secret(error)


@pytest.mark.parametrize(
    ("token", "text", "masked"),
    [
        ("a", "the last backend is down; token a", "the last backend is down; token a"),
        ("tok_test", "tok_test", "[redacted]"),
        ("password", "password-less, password_1, password1, äpassword", None),
        ("password", "(password) 'password' =password.", "([redacted]) '[redacted]' =[redacted]."),
        (
            "password",
            "[redacted]password [redacted] password",
            "[redacted][redacted] [redacted] [redacted]",
        ),
        ("-minus-x-", "a-minus-x-b -minus-x- (-minus-x-)", "a-minus-x-b [redacted] ([redacted])"),
        ("redacted", "[redacted] redacted", "[redacted] [redacted]"),
        ("!bang-word!", "x!bang-word!y", "x[redacted]y"),
        ("sixteen-chars-16", "xsixteen-chars-16x", "x[redacted]x"),
        ("fifteen-chars15", "xfifteen-chars15 fifteen-chars15", "xfifteen-chars15 [redacted]"),
    ],
)
def test_the_masking_rule(token, text, masked):
    """Under 8 characters never, under 16 as a word of its own, longer anywhere; idempotent."""
    masked = text if masked is None else masked
    secrets = Secrets(token)
    assert secrets.mask(text) == masked
    assert secrets.mask(masked) == masked
    assert secrets.mask_bytes(text.encode()) == masked.encode()
    assert secrets.exposed(text) is (text != masked)


def test_proxy_credentials_are_masked_in_every_spelling():
    """The user info, the password (written and decoded) and the Proxy-Authorization value."""
    secrets = Secrets(
        "tok", ["http://us%40er:p%2Fss-w0rd@proxy:3128", None, "bob:hunter2@proxy:80"]
    )
    basic = base64.b64encode(b"us@er:p/ss-w0rd").decode()
    text = (
        f"http://us%40er:p%2Fss-w0rd@proxy:3128 p%2Fss-w0rd p/ss-w0rd us@er:p/ss-w0rd "
        f"Basic {basic} bob:hunter2 p/ss-w0rds us%40er proxy"
    )
    assert secrets.mask(text) == (
        "http://[redacted]@proxy:3128 [redacted] [redacted] [redacted] "
        "Basic [redacted] [redacted] p/ss-w0rds us%40er proxy"
    )
    # Under 8 characters a password alone is not masked (the user info around it is).
    assert secrets.mask("hunter2") == "hunter2"
    # A user name alone is the credential when there is no password (a token as user).
    assert Secrets(None, ["http://t0ken-user@proxy"]).mask("user t0ken-user") == "user [redacted]"
    assert not Secrets(None, ["http://proxy:3128", "not a url://", "http://@proxy"])
    # A URL that urllib cannot parse still has its user info found.
    assert Secrets(None, ["http://us:pa55-word@[::1"]).mask("pa55-word") == "[redacted]"


def test_secrets_never_show_what_they_hold():
    """Its repr hides the values; a copy is the same object; a pickle holds none."""
    secrets = Secrets(TOKEN, ["http://user:pw@proxy"])
    assert TOKEN not in repr(secrets)
    assert "pw" not in repr(secrets)
    assert copy.copy(secrets) is secrets
    assert copy.deepcopy(secrets) is secrets
    data = pickle.dumps(secrets)
    assert TOKEN.encode() not in data
    assert not pickle.loads(data)  # noqa: S301


def test_masked_request_copies_hold_no_credential(http_library):
    """Token, Authorization and Proxy-Authorization headers, URL user info, the extension."""
    secrets = Secrets(TOKEN)
    request = http_library.Request(
        "GET",
        "http://user:pa55-word@api.example/v1/batch/x",
        headers={"X-Inkit-API-Token": TOKEN, "Authorization": "a", "Proxy-Authorization": "b"},
        extensions={"inkit.secrets": secrets},
    )
    masked = redacted_request(request)
    assert type(masked) is http_library.Request  # a copy of the library's own kind
    assert str(masked.url) == "http://api.example/v1/batch/x"
    assert [masked.headers[name] for name in ("X-Inkit-API-Token", "Authorization")] == [
        REDACTED,
        REDACTED,
    ]
    assert masked.headers["Proxy-Authorization"] == REDACTED
    assert "inkit.secrets" not in masked.extensions
    assert Secrets.of(request) is secrets
    # Without the client's Secrets (a request built elsewhere), its own token header.
    bare = http_library.Request(
        "GET", "http://api.example/v1", headers={"X-Inkit-API-Token": TOKEN}
    )
    assert Secrets.of(bare).mask(f"x {TOKEN}") == "x [redacted]"
    assert not Secrets.of(masked)


def test_scrubbing_a_failure_masks_its_text_and_request_once(http_library):
    """An error quoting the token: text masked, request swapped; a second pass keeps both."""
    request = http_library.Request(
        "GET",
        "http://api.example/v1/batch/x",
        headers={"X-Inkit-API-Token": TOKEN},
        extensions={"inkit.secrets": Secrets(TOKEN)},
    )
    error = http_library.ConnectError(f"refused for {TOKEN}", request=request)
    error.__context__ = ValueError(f"token={TOKEN}")
    scrub_failure(error, request)
    masked = error.request
    assert masked.headers["X-Inkit-API-Token"] == REDACTED
    assert str(error) == "refused for [redacted]"
    assert str(error.__context__) == "token=[redacted]"
    scrub_failure(error, masked)
    assert error.request is masked
    assert_secret(error)


async def test_a_short_token_leaves_a_transport_failure_as_it_is():
    """AsyncInkit("a"), connection refused: the failure's text is not rewritten."""
    port = closed_port()
    async with AsyncInkit("a", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0) as client:
        error = await failure_of(client)
    assert isinstance(error, APIConnectionError)
    assert str(error).startswith(f"GET /batch/rb_1 failed: cannot connect to 127.0.0.1:{port}")
    assert REDACTED not in str(error)


async def test_a_token_changed_by_a_hook_is_masked_with_the_clients_own(server, http_library):
    """A request hook that swaps the token: both tokens are masked in the error."""
    other = "tok_other_Value_123456"

    async def swap(request) -> None:
        request.headers["X-Inkit-API-Token"] = other

    server.script(Respond(401, {"error": f"{other} and {TOKEN} are not valid"}))
    hooks = {"request": [swap]}
    async with (
        http_library.AsyncClient(event_hooks=hooks) as http,
        AsyncInkit(TOKEN, base_url=server.url, http_client=http, max_retries=0) as client,
    ):
        error = await failure_of(client)
    assert error.body == {"error": "[redacted] and [redacted] are not valid"}  # type: ignore[attr-defined]


# -- the cause chain with a caller's own http_client ------------------------------------


async def test_the_cause_of_a_connection_error_holds_the_masked_request(server, http_library):
    """The real request the library attaches to its exception is swapped for the masked copy."""
    server.handler = lambda request: Drop()
    async with (
        http_library.AsyncClient() as http,
        AsyncInkit(TOKEN, base_url=server.url, http_client=http, backoff=NO_WAIT) as client,
    ):
        error = await failure_of(client)
    assert isinstance(error, APIConnectionError)
    cause = library_error(error, http_library)
    assert isinstance(cause, http_library.TransportError)
    assert type(cause.request) is http_library.Request
    assert cause.request.headers["X-Inkit-API-Token"] == REDACTED
    assert error.request is not None
    assert error.request.headers["X-Inkit-API-Token"] == REDACTED
    assert_secret(error)


async def test_an_http_status_error_from_a_hook_holds_masked_copies(server, http_library):
    """A response hook's raise_for_status: its request and response are masked copies."""

    async def strict(response) -> None:
        await response.aread()
        response.raise_for_status()

    server.script(Respond(404, {"error": f"no batch for {TOKEN}"}, {"x-echo": TOKEN}))
    hooks = {"response": [strict]}
    async with (
        http_library.AsyncClient(event_hooks=hooks) as http,
        AsyncInkit(TOKEN, base_url=server.url, http_client=http, max_retries=0) as client,
    ):
        error = await failure_of(client)
    assert isinstance(error, APIConnectionError)
    cause = library_error(error, http_library)
    assert isinstance(cause, http_library.HTTPStatusError)
    assert type(cause.response) is http_library.Response
    assert cause.request.headers["X-Inkit-API-Token"] == REDACTED
    assert cause.response.json() == {"error": "no batch for [redacted]"}
    assert_secret(error)


async def test_closing_the_client_mid_request_masks_the_cause_too(server, http_library):
    """Closed while the request was out: the InkitError's cause holds the masked request."""
    release = asyncio.Event()
    hold = held_until(release)

    async def handler(request: Request) -> Respond | Drop:
        await hold(request)
        return Drop()

    server.handler = handler
    async with http_library.AsyncClient() as http:
        client = AsyncInkit(TOKEN, base_url=server.url, http_client=http, max_retries=0)
        call = asyncio.create_task(client.batch.get("rb_1"))
        await server.wait_for_in_flight(1)
        await client.aclose()
        release.set()
        with pytest.raises(InkitError, match="closed while the request") as info:
            await call
    cause = library_error(info.value, http_library)
    assert isinstance(cause, http_library.TransportError)
    assert cause.request.headers["X-Inkit-API-Token"] == REDACTED
    assert_secret(info.value)


# -- text a foreign exception keeps elsewhere than in its string args ---------------------


def _caught(error: BaseException) -> BaseException:
    """*error* as an ``except`` clause gets it: raised, with its traceback."""
    try:
        raise error  # noqa: TRY301 - to get it as a transport's handler would
    except BaseException as caught:
        return caught


def _raising(library: types.ModuleType, kind: str) -> object:
    """A caller's transport (of *library*) that fails quoting the token it was sent."""

    class Raising(library.AsyncBaseTransport):
        async def handle_async_request(self, request):
            _raise(library, kind, request.headers["X-Inkit-API-Token"])

    return Raising()


def _raise(library: types.ModuleType, kind: str, token: str) -> None:
    """Raise *library*'s ConnectError quoting *token*, as *kind* says."""
    if kind == "failure-itself":
        raise library.ConnectError({"token": token})
    error = library.ConnectError("boom")
    if kind == "note":
        error.add_note(f"while sending with {token}")
        raise error
    causes = {
        "group-member": lambda: ExceptionGroup("eyeballs", [OSError(f"auth {token} refused")]),
        "oserror": lambda: OSError(
            111, f"refused for {token}", f"/run/{token}.sock", None, b"/t/" + token.encode()
        ),
        "dict-arg": lambda: KeyError({"token": token}),
        "group-member-dict-arg": lambda: ExceptionGroup("eyeballs", [KeyError({"t": token})]),
        "two-args": lambda: KeyError(token, {"token": token}),
    }
    cause = _caught(causes[kind]())
    # Raised while handling it, as a transport would: the cause is the context too.
    error.__context__ = cause
    raise error from cause


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("note", "while sending with [redacted]"),
        ("group-member", "OSError: auth [redacted] refused"),
        ("oserror", "refused for [redacted]: '/run/[redacted].sock' -> b'/t/[redacted]'"),
        ("dict-arg", "RedactedException: KeyError: {'token': '[redacted]'}"),
        (
            "group-member-dict-arg",
            "ExceptionGroup: eyeballs (1 sub-exception)\n  KeyError: {'t': '[redacted]'}",
        ),
        ("two-args", "RedactedException: KeyError: ('[redacted]', {'token': '[redacted]'})"),
        ("failure-itself", "RedactedException: {library}.ConnectError: {'token': '[redacted]'}"),
    ],
)
async def test_a_token_in_a_cause_outside_its_string_args_is_masked(http_library, kind, shown):
    """A transport's failure quotes the token outside its string args: all are masked.

    In a note, a group's member, an OSError's strerror and file names, or an argument
    that is not a string (in the failure itself, or in its cause): the traceback shows
    each with the token masked, and nothing reachable from the error holds it.
    """
    url = f"http://127.0.0.1:{closed_port()}/v1"
    transport = _raising(http_library, kind)
    async with AsyncInkit(TOKEN, base_url=url, transport=transport, max_retries=0) as client:
        error = await failure_of(client)
    assert isinstance(error, APIConnectionError)
    assert str(error).startswith("GET /batch/rb_1 failed: ")
    shown = shown.replace("{library}", http_library.__name__)
    assert shown in "".join(traceback.format_exception(error))
    assert_secret(error)


def test_a_failure_that_shows_a_token_itself_is_chained_as_its_stand_in(http_library):
    """scrub_failure returns what to chain: a stand-in when the failure itself shows it."""
    request = http_library.Request(
        "GET", "http://api.example/v1/batch/x", extensions={"inkit.secrets": Secrets(TOKEN)}
    )
    context = ValueError("the context stays")
    failure = http_library.ConnectError("boom")
    failure.args = ({"token": TOKEN},)
    failure.__context__ = context
    safe = scrub_failure(failure, request)
    assert safe is not failure
    assert str(safe) == f"{http_library.__name__}.ConnectError: {{'token': '[redacted]'}}"
    assert safe.__context__ is context
    assert_secret(safe)  # type: ignore[arg-type]


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
@pytest.mark.subprocess
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
    if output == "json":
        assert json.loads(run.err)["error"]["message"] == f"rb_bad: {error}"
        assert json.loads(run.out)["name"] == "[redacted]\x1b[2J\x9b31m"
    else:
        assert run.err == f"inkit-async: rb_bad: {error}\n"
        assert "[redacted]\\x1b[2J\\x9b31m" in run.out


@pytest.mark.subprocess
async def test_the_cli_refuses_a_base_url_with_credentials_without_echoing_them():
    """--base-url user:password@...: a usage error (exit 2) whose message hides the password."""
    run = await cli(
        "batch", "get", "rb_1", "--base-url", "https://user:s3cret@127.0.0.1:9/v1", base_url=""
    )
    assert run.code == 2
    assert "s3cret" not in run.out + run.err
    assert "must not hold a user name or password" in run.err


@pytest.mark.subprocess
async def test_the_cli_with_a_short_token_prints_what_the_server_sent(server):
    """INKIT_API_TOKEN=a: the table and the error line read exactly as the server wrote them."""

    def handler(request: Request) -> Respond:
        if request.last_segment == "rb_bad":
            return Respond(404, {"error": "a batch named rb_bad is not at the last backend"})
        return Respond(body={**BATCH_JSON, "id": request.last_segment, "name": "a batch"})

    server.handler = handler
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKIT_")}
    env |= {"INKIT_API_TOKEN": "a", "INKIT_BASE_URL": server.url}
    run = await run_cli("batch", "get", "rb_ok", "rb_bad", env=env)
    assert run.code == 1
    header, row = run.out.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "STATUS"]
    assert row.split("  ")[:3] == ["rb_ok", "a batch", "Completed"]
    assert run.err == (
        "inkit-async: rb_bad: 404 Not Found from GET /batch/rb_bad: "
        "a batch named rb_bad is not at the last backend\n"
    )
