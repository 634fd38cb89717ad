"""What crosses the sender seam: a plain request in, a plain reply or one failure out.

The engine hands a sender a ``Request`` and gets back a ``Reply`` (status, headers and
the body, read whole, decoded and bounded by ``MAX_RESPONSE_BYTES``) or a
``TransportFailure`` that says whether the request may have reached the server. No
HTTP library's objects cross it: the engine builds httpx objects only where it builds
an error that carries them. A client picks its sender once, when it is built
(``_senders.sender_for``); the engine has one path for every sender.

A download (``_download.py``) crosses the same seam in its streaming form:
``Sender.open`` returns once the answer's head has arrived, with an ``Opened``
whose ``Body`` hands the raw bytes over piece by piece (each at most
``PIECE_BYTES``), so memory does not grow with the file; the caller closes it.

The senders (``_senders/``):

- ``AiohttpSender``, the default: aiohttp's connection pool, through aiohttp's
  public API.
- ``HttpxSender``: any httpx-API client or transport (httpx or httpx2), through
  their public ``send()``.
- ``LocalSender``: an ``InProcessTransport`` (``FakeInkit``'s) in process, so a
  test's client runs every line a production client runs but the socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from ._exceptions import Secrets

__all__ = [
    "NOT_SENT_KINDS",
    "PIECE_BYTES",
    "TRANSPORT_KINDS",
    "Body",
    "Opened",
    "Reply",
    "Request",
    "Sender",
    "Timeouts",
    "TransportFailure",
]


class Timeouts(NamedTuple):
    """Per-phase limits of one attempt, in seconds (``None``: no limit of its own).

    The phases are httpx's, and each sender honours every one it is given: *connect*
    (opening a connection), *read* (between two reads of the answer), *write* (between
    two writes of the request) and *pool* (waiting for a pooled connection).
    """

    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None


class Request(NamedTuple):
    """One attempt to send: everything a sender needs, nothing library-specific."""

    method: str
    url: str
    """Absolute, percent-encoded already (a sender must not quote it again)."""
    headers: dict[str, str]
    body: bytes | None
    timeouts: Timeouts
    secrets: Secrets
    """The client's credentials: what a failure's text and causes must not show."""


class Reply(NamedTuple):
    """An answer, read whole."""

    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...]
    """As received (raw), except ``Content-Encoding``/``Content-Length`` of a decoded body."""
    content: bytes | None
    """The decoded body; ``None`` when it is over ``MAX_RESPONSE_BYTES`` (not read)."""
    sent_token: str | None = None
    """The token the request went out with, when a caller's client hook changed it."""
    elapsed: float | None = None
    """Seconds the attempt took, set by the engine (never by a sender) on a usable 2xx
    of a client that keeps responses (``keep_responses``, ``_responses.py``)."""
    attempt: int = 1
    """Which attempt of its call this answered (1: the first), set with *elapsed*."""


#: Most bytes one piece of a streamed body holds (``Body.pieces``): the unit a download
#: reads, decodes, counts and writes.
PIECE_BYTES: Final = 64 * 1024


class Body(Protocol):
    """The body of an ``Opened`` answer, still arriving: read it once, then close it."""

    def pieces(self) -> AsyncGenerator[bytes]:
        """The body's bytes as received (not decoded), each piece at most ``PIECE_BYTES``.

        Raises ``TransportFailure`` when the connection fails before the body's end.
        """
        ...

    async def aclose(self) -> None:
        """Let go of the answer: its connection goes back to the pool only if read to its end.

        Idempotent; safe to call while a read is cancelled, and after the body ended.
        """
        ...


class Opened(NamedTuple):
    """An answer whose head has arrived; its body arrives through ``body``."""

    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...]
    """As received (raw), except ``Content-Encoding``/``Content-Length`` of a body
    the sender decoded already (an httpx mock's answer, built in memory)."""
    body: Body
    sent_token: str | None = None
    """The token the request went out with, when a caller's client hook changed it."""


#: The kinds of transport failure, named as httpx names its exceptions.
TRANSPORT_KINDS: Final = frozenset(
    {
        "ConnectError",
        "ConnectTimeout",
        "DecodingError",
        "LocalProtocolError",
        "PoolTimeout",
        "ProxyError",
        "ReadError",
        "ReadTimeout",
        "RemoteProtocolError",
        "TransportError",
        "UnsupportedProtocol",
        "WriteError",
        "WriteTimeout",
    }
)
#: The kinds after which the request certainly did not reach the server.
NOT_SENT_KINDS: Final = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})


class TransportFailure(Exception):  # noqa: N818 - named for what it is; never raised to users
    """No answer: what went wrong (*kind*, an httpx exception's name) and whether it was sent.

    A sender says a request did not reach the server only when it knows (a refused
    connection, a connect or pool timeout, a connection the server had closed before
    the request reached it): the kinds in ``NOT_SENT_KINDS``. The library's own
    exception, its credentials taken out, is the ``__cause__``.
    """

    def __init__(self, kind: str, message: str) -> None:
        """A failure of *kind* (one of ``TRANSPORT_KINDS``; any other is ``TransportError``)."""
        super().__init__(message)
        self.kind = kind if kind in TRANSPORT_KINDS else "TransportError"
        self.message = message

    @property
    def maybe_sent(self) -> bool:
        """Whether the request may have reached the server (its kind says)."""
        return self.kind not in NOT_SENT_KINDS


class Sender(Protocol):
    """Sends one ``Request`` and reads its answer whole (or, ``open``, streams it): the seam."""

    async def send(self, request: Request) -> Reply:
        """Send *request*; raise ``TransportFailure`` when no answer came."""
        ...

    async def open(self, request: Request) -> Opened:
        """Send *request* and return once its answer's head has arrived (a download).

        The caller reads the body through ``Opened.body`` and must close it, also when
        it stops early. Raises ``TransportFailure`` when no answer came.
        """
        ...

    async def aclose(self) -> None:
        """Close whatever the sender opened (never a caller's own client)."""
        ...
