"""Downloads without sockets: the pure decisions, and the in-process and respx senders.

The size bound, the ``Content-Length`` a head declares, the ready wait's arithmetic,
file names from hostile ids and what counts as a complete file are plain functions;
a client on an ``InProcessTransport`` (``FakeInkit``'s kind: the ``LocalSender``) and
one under ``respx.mock`` (the guard's httpx lane) run the whole download path.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from inkit_async import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncInkit,
    InkitError,
    NotFoundError,
)
from inkit_async._download import MAX_FILENAME_BYTES, Downloads, filename_for, is_complete
from inkit_async._senders import InProcessTransport
from inkit_async._streaming import ReadyWait, declared_length, size_verdict
from tests.support.constants import BASE_URL, NO_WAIT, TOKEN


def left_in(directory: Path) -> list[str]:
    """Every name in *directory*, temporary files included."""
    return sorted(path.name for path in directory.iterdir())


# -- pure decisions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "received", "max_size", "stops"),
    [
        (None, 0, 10, False),
        (10, 0, 10, False),  # inclusive
        (11, 0, 10, True),  # declared over: refused before any byte
        (None, 10, 10, False),
        (None, 11, 10, True),  # counted past the bound
        (5, 11, 10, True),  # a body longer than it said is counted too
    ],
)
def test_the_size_verdict(declared, received, max_size, stops):
    """Stop once the declared length or the bytes so far pass max_size, not at it."""
    assert (size_verdict(declared, received, max_size) is not None) is stops


@pytest.mark.parametrize(
    ("value", "length"),
    [
        (b"123", 123),
        (b" 42 ", 42),
        (b"0", 0),
        (b"-1", None),
        (b"1e3", None),
        (b"12, 12", None),  # a repeated header folded into one
        (b"\xd9\xa3", None),  # an Arabic-Indic digit: isdigit() in Unicode, no length
        (b"9" * 19, int("9" * 19)),
        (b"9" * 20, None),  # past any 64-bit size: not a length
        (b"", None),
    ],
)
def test_a_declared_length_is_plain_ascii_digits(value, length):
    """A hostile Content-Length is no length at all (the bytes are counted anyway)."""
    headers = ((b"Content-Type", b"application/pdf"), (b"Content-Length", value))
    assert declared_length(headers) == length


def test_no_content_length_is_none():
    """A chunked body declares nothing."""
    assert declared_length(((b"transfer-encoding", b"chunked"),)) is None


@pytest.mark.parametrize(
    ("first", "now", "again"),
    [(0.0, 0.0, True), (0.0, 28.0, True), (0.0, 28.5, False), (10.0, 38.0, True)],
)
def test_the_ready_wait_asks_again_only_while_the_next_ask_is_within_its_limit(first, now, again):
    """Default: every 2 s, up to 30 s after the first 404 (inkit-python's 15 x 2 s)."""
    assert ReadyWait().asks_again(first, now) is again


@pytest.mark.parametrize(
    ("resource_id", "name"),
    [
        ("rend_6WtDgF7RGqdS5Uzea9neZJ", "rend_6WtDgF7RGqdS5Uzea9neZJ.pdf"),
        ("../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd.pdf"),
        ("a\\b", "a%5Cb.pdf"),
        ("nul\x00byte", "nul%00byte.pdf"),
        (".hidden", "%2Ehidden.pdf"),
        ("x.part", "x.part.pdf"),
        ("naïve", "na%C3%AFve.pdf"),
        ("CON", "CON.pdf"),
    ],
)
def test_file_names_from_ids_are_one_safe_segment(resource_id, name):
    """Only unreserved characters and %XX: no separator, no NUL, no leading dot."""
    assert filename_for(resource_id, ".pdf") == name


@pytest.mark.parametrize("resource_id", ["", " ", ".", "..", "x" * 1025, "\ud800"])
def test_ids_that_are_not_ids_are_refused(resource_id):
    """The id checks of every call (encode_segment): ValueError, before anything is sent."""
    with pytest.raises(ValueError):
        filename_for(resource_id, ".pdf")


def test_an_id_whose_file_name_is_too_long_is_refused():
    """An id fits a URL but not a file name: ValueError naming the length, not the id."""
    filename_for("x" * (MAX_FILENAME_BYTES - 4), ".pdf")
    with pytest.raises(ValueError, match="201 bytes") as info:
        filename_for("x" * (MAX_FILENAME_BYTES - 3), ".pdf")
    assert "xxxx" not in str(info.value)


def test_a_non_string_id_is_a_type_error():
    """As everywhere ids are taken."""
    with pytest.raises(TypeError):
        filename_for(42, ".pdf")  # type: ignore[arg-type]


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_two_ids_never_share_a_file(first, second):
    """The mapping is one-to-one: distinct valid ids, distinct names."""
    try:
        names = filename_for(first, ".pdf"), filename_for(second, ".pdf")
    except ValueError:
        return
    assert (names[0] == names[1]) is (first == second)
    assert all("/" not in name and "\\" not in name and "\x00" not in name for name in names)
    assert not any(name.startswith(".") for name in names)


def test_complete_means_a_regular_file_under_the_final_name(tmp_path):
    """A file is complete; nothing, a directory or a dangling link is not."""
    assert not is_complete(tmp_path / "none.pdf")
    (tmp_path / "file.pdf").write_bytes(b"%PDF")
    assert is_complete(tmp_path / "file.pdf")
    (tmp_path / "dir.pdf").mkdir()
    assert not is_complete(tmp_path / "dir.pdf")
    (tmp_path / "link.pdf").symlink_to(tmp_path / "nowhere")
    assert not is_complete(tmp_path / "link.pdf")


# -- the in-process sender (FakeInkit's kind) ------------------------------------------


class PDFs(InProcessTransport):
    """Serves ``/render/{id}/pdf`` in process: a PDF, 404 a few times first if asked."""

    def __init__(self, body: bytes, *, not_ready: int = 0, headers=()) -> None:
        self.body = body
        self.not_ready = not_ready
        self.headers = list(headers)
        self.targets: list[str] = []

    async def answer(self, method, target, headers, body):  # noqa: ARG002
        """The PDF, or a 404 while ``not_ready`` lasts."""
        self.targets.append(target)
        if self.not_ready:
            self.not_ready -= 1
            return 404, [("content-type", "application/json")], b'{"error": "not found"}'
        return 200, [("content-type", "application/pdf"), *self.headers], self.body


def downloads(client: AsyncInkit, ready: ReadyWait | None = None) -> Downloads:
    """The downloads of a render's PDF, as ``client.render`` binds them."""
    engine = client._engine  # noqa: SLF001 - the machinery is bound as a resource binds it
    return Downloads(
        engine, name="render", path=lambda segment: f"/render/{segment}/pdf", ready=ready
    )


BODY = bytes(range(256)) * 1000  # 250 KiB: several pieces


async def test_the_local_sender_downloads_to_a_path(tmp_path):
    """The whole path (engine, pieces, file, rename) runs in process."""
    transport = PDFs(BODY)
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        await downloads(client).to_path("rend_1", tmp_path / "a.pdf", params={"page": 1})
        async with downloads(client).stream("rend_1") as stream:
            chunks = [chunk async for chunk in stream]
    assert (tmp_path / "a.pdf").read_bytes() == BODY
    assert (tmp_path / "a.pdf").stat().st_mode & 0o777 == 0o600  # as mkstemp made it
    assert b"".join(chunks) == BODY
    assert max(map(len, chunks)) <= 64 * 1024
    assert transport.targets[0] == "/v1/render/rend_1/pdf?page=1"
    assert left_in(tmp_path) == ["a.pdf"]


async def test_the_local_sender_waits_for_a_render_and_fans_out(tmp_path):
    """404 twice (rendering), then the PDF; then many ids, one file each."""
    transport = PDFs(BODY, not_ready=2)
    ready = ReadyWait(interval=0.001, limit=1)
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        await downloads(client, ready).to_path("rend_1", tmp_path / "a.pdf")
        results = await downloads(client).many(["r1", "r2"], tmp_path / "many")
    assert len(transport.targets) == 5
    assert results == [tmp_path / "many" / "r1.pdf", tmp_path / "many" / "r2.pdf"]
    assert all(path.read_bytes() == BODY for path in results)


async def test_without_a_ready_wait_404_is_final(tmp_path):
    """A document's download: 404 raises at once."""
    transport = PDFs(BODY, not_ready=1)
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        with pytest.raises(NotFoundError):
            await downloads(client).to_path("doc_1", tmp_path / "a.pdf")
    assert len(transport.targets) == 1
    assert left_in(tmp_path) == []


async def test_an_encoded_body_is_decoded_and_bounded_by_its_decoded_size(tmp_path):
    """A server that gzips anyway: the file holds the decoded bytes; the bound counts them."""
    transport = PDFs(gzip.compress(BODY), headers=[("content-encoding", "gzip")])
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
        assert (tmp_path / "a.pdf").read_bytes() == BODY
        with pytest.raises(APIResponseValidationError, match="more than max_size"):
            await downloads(client).to_path("rend_1", tmp_path / "b.pdf", max_size=1000)
    assert left_in(tmp_path) == ["a.pdf"]


@pytest.mark.parametrize(
    ("payload", "encoding"),
    [(b"not gzip at all", "gzip"), (gzip.compress(BODY)[:-20], "gzip"), (b"x", "br")],
    ids=["garbage", "truncated", "unknown"],
)
async def test_a_bad_encoding_fails_and_leaves_nothing(tmp_path, payload, encoding):
    """A body that cannot be decoded is a failed download (APIConnectionError), no file."""
    transport = PDFs(payload, headers=[("content-encoding", encoding)])
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        with pytest.raises(APIConnectionError):
            await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
    assert left_in(tmp_path) == []


async def test_an_empty_body_is_an_empty_file(tmp_path):
    """Zero bytes, declared: a file of zero bytes."""
    transport = PDFs(b"", headers=[("content-length", "0")])
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == b""


async def test_a_body_longer_than_declared_fails(tmp_path):
    """More bytes than Content-Length said (only an in-process answer can): not a file."""
    transport = PDFs(BODY, headers=[("content-length", "10")])
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        with pytest.raises(APIConnectionError, match="ended after"):
            await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
    assert left_in(tmp_path) == []


async def test_a_closed_client_downloads_nothing(tmp_path):
    """Closed: InkitError, as every call; no request, no file."""
    transport = PDFs(BODY)
    client = AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport)
    await client.aclose()
    with pytest.raises(InkitError, match="closed"):
        await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
    assert transport.targets == []
    assert left_in(tmp_path) == []


# -- arguments and the stream's use ----------------------------------------------------


async def test_arguments_are_checked_before_anything_is_sent(tmp_path):
    """Bad ids, sizes and deadlines: TypeError or ValueError, no request."""
    transport = PDFs(BODY)
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=transport) as client:
        loads = downloads(client)
        with pytest.raises(ValueError):
            await loads.to_path("..", tmp_path / "a.pdf")
        with pytest.raises(ValueError):
            await loads.to_path("r", tmp_path / "a.pdf", max_size=0)
        with pytest.raises(TypeError):
            await loads.to_path("r", tmp_path / "a.pdf", max_size=True)
        with pytest.raises(ValueError):
            loads.stream("r", deadline=-1)
        with pytest.raises(TypeError):
            await loads.many("rend_1", tmp_path)
        with pytest.raises(TypeError):
            await loads.many(42, tmp_path)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await loads.many(["ok", "x" * 300], tmp_path / "new")
    assert transport.targets == []
    assert left_in(tmp_path) == []


async def test_a_stream_must_be_entered_and_only_once():
    """Iterating outside ``async with`` or entering twice is a mistake the stream names."""
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=PDFs(BODY)) as client:
        stream = downloads(client).stream("rend_1")
        assert (stream.content_length, stream.content_type, stream.received) == (None, None, 0)
        assert "not entered" in repr(stream)
        with pytest.raises(InkitError, match="Enter the stream"):
            aiter(stream)
        await stream.aclose()  # nothing to close yet
        async with stream:
            assert "open" in repr(stream)
            assert TOKEN not in repr(stream)
        with pytest.raises(InkitError, match="once"):
            await stream.__aenter__()


# -- respx's guard: the default sender hands a download to httpx under respx.mock ------


async def test_a_download_under_respx_goes_through_its_mock(tmp_path):
    """``respx.mock`` routes answer downloads too (httpx's in-memory answer, decoded once)."""
    async with AsyncInkit(TOKEN, base_url=BASE_URL, backoff=NO_WAIT) as client:
        with respx.mock(base_url=BASE_URL, using="httpx") as router:
            router.get("/render/rend_1/pdf").mock(
                side_effect=[
                    httpx.Response(503),
                    httpx.Response(
                        200, content=gzip.compress(BODY), headers={"content-encoding": "gzip"}
                    ),
                ]
            )
            await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == BODY


async def test_a_path_given_as_a_string_works(tmp_path):
    """``path`` may be a ``str`` or any ``os.PathLike``."""
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=PDFs(BODY)) as client:
        result = await downloads(client).to_path("rend_1", str(tmp_path / "a.pdf"))
    assert result == Path(tmp_path / "a.pdf")


class Broken(InProcessTransport):
    """A 500 whose body claims gzip and is not."""

    async def answer(self, method, target, headers, body):  # noqa: ARG002
        """Always the broken 500."""
        return 500, [("content-encoding", "gzip")], b"not gzip"


async def test_an_error_body_that_cannot_be_decoded_fails_the_download(tmp_path):
    """The error answer is read as any (within the JSON limit): a bad encoding is a failure."""
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=Broken(), max_retries=0) as client:
        with pytest.raises(APIConnectionError, match="bad compressed body"):
            await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
    assert left_in(tmp_path) == []


async def test_debug_logging_watches_each_attempt_of_a_download(tmp_path, caplog):
    """With DEBUG on, the log's attempt watch hears the download's attempt and its status."""
    caplog.set_level("DEBUG", logger="inkit_async")
    async with AsyncInkit(TOKEN, base_url=BASE_URL, transport=PDFs(BODY)) as client:
        await downloads(client).to_path("rend_1", tmp_path / "a.pdf")
    assert any("/render/rend_1/pdf" in record.getMessage() for record in caplog.records)
