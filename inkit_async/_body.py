"""Reading response bodies within a size limit, decoding them, and measuring JSON nesting.

The limit (``MAX_RESPONSE_BYTES``) applies to the decoded size, and memory stays
bounded while decoding: a small gzip body that would inflate to gigabytes is refused
after 10 MiB, not after it has been inflated (httpx's own decoder inflates each chunk
in full).

An error body is kept as JSON only when it nests at most ``MAX_JSON_DEPTH`` (64) levels;
deeper, or too deep for Python's decoder (which raises ``RecursionError`` at about
1,000 levels), it is kept as its text, so that nothing the SDK hands out needs deep
recursion to print, copy or pickle.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, cast

import httpx

from ._constants import MAX_JSON_DEPTH, MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable, Iterator, Sequence

__all__ = ["Inflater", "decode_limited", "nests_deeper_than", "parse_json_or_text", "read_limited"]


async def read_limited(response: httpx.Response) -> bytes | None:
    """Read and decode the body; ``None`` once it is over ``MAX_RESPONSE_BYTES``."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        return None
    if response.is_stream_consumed:
        # Built in memory, as mock transports do: httpx has already decoded it.
        content = response.content
        return content if len(content) <= MAX_RESPONSE_BYTES else None
    return await decode_limited(response.aiter_raw(), response.headers.get("content-encoding"))


async def decode_limited(raw: AsyncIterable[bytes], encoding: str | None) -> bytes | None:
    """Decode the body arriving in *raw* pieces; ``None`` once it is over the limit."""
    decoder = Inflater.for_encoding(encoding)
    chunks: list[bytes] = []
    size = 0
    async for piece in raw:
        for chunk in decoder.pieces(piece) if decoder else (piece,):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                return None
            chunks.append(chunk)
    if decoder:
        decoder.check_complete()
    return b"".join(chunks)


def parse_json_or_text(content: bytes, encoding: str | None) -> object:
    """An error body as the API meant it: its JSON, else its text (``None`` when empty).

    JSON nested deeper than ``MAX_JSON_DEPTH`` levels is kept as its text too.
    """
    if not content:
        return None
    text = content.decode(encoding or "utf-8", errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return text if nests_deeper_than(data, MAX_JSON_DEPTH) else data


def nests_deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects in *value* nest more than *limit* levels deep.

    Mappings count as objects, lists and tuples as arrays (what ``json.dumps`` encodes);
    a scalar is 0 levels deep, ``{"a": [1]}`` 2. The walk uses no recursion, so no
    depth can exhaust the stack, and a value that contains itself nests without end:
    it exceeds any limit. A container reached again at no greater depth is not walked
    again, so shared parts cost nothing extra.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    walked: dict[int, int] = {}
    while stack:
        item, depth = stack.pop()
        key = id(item)
        children: Iterable[object]
        if isinstance(item, Mapping):
            children = cast("Mapping[object, object]", item).values()
        elif isinstance(item, list | tuple):
            children = cast("Sequence[object]", item)
        else:
            continue
        if depth > limit:
            return True
        if walked.get(key, 0) >= depth:
            continue
        walked[key] = depth
        stack.extend((child, depth + 1) for child in children)
    return False


class Inflater:
    """gzip/deflate decoding in bounded pieces, so memory follows the size check."""

    __slots__ = ("_zlib",)

    #: Most bytes one decompression step may produce.
    PIECE: Final = 256 * 1024

    def __init__(self, wbits: int) -> None:
        self._zlib = zlib.decompressobj(wbits)

    @classmethod
    def for_encoding(cls, encoding: str | None) -> Inflater | None:
        """The decoder for a Content-Encoding (``None``: the body is not encoded)."""
        name = (encoding or "identity").strip().lower()
        if name in {"", "identity"}:
            return None
        if name in {"gzip", "x-gzip"}:
            return cls(16 + zlib.MAX_WBITS)
        if name == "deflate":
            return cls(32 + zlib.MAX_WBITS)  # zlib-wrapped, as RFC 9110 says
        raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """Decode *data* in pieces of at most ``PIECE`` bytes."""
        try:
            while data:
                yield self._zlib.decompress(data, self.PIECE)
                data = self._zlib.unconsumed_tail
        except zlib.error as exc:
            raise httpx.DecodingError(f"bad compressed body: {exc}") from exc

    def check_complete(self) -> None:
        """Refuse a compressed body that ended before its compressed stream did."""
        if not self._zlib.eof:
            raise httpx.DecodingError("bad compressed body: it ends before its data does")
