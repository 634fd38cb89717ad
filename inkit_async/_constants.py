"""Defaults, limits and environment variable names, in one place.

Every default the SDK applies is named here, so the docs, the client and the tests
read the same numbers.
"""

from __future__ import annotations

from typing import Final

#: Where requests go when neither ``base_url=`` nor ``INKIT_BASE_URL`` is given.
DEFAULT_BASE_URL: Final = "https://api.inkit.com/v1"

#: Environment variable read when ``api_token`` is not passed.
ENV_API_TOKEN: Final = "INKIT_API_TOKEN"  # noqa: S105 - a variable name, not a secret
#: Environment variable read when ``base_url`` is not passed.
ENV_BASE_URL: Final = "INKIT_BASE_URL"
#: The SDK's log level for the process: ``debug``, ``info`` or ``warning`` (``_log.py``).
ENV_LOG: Final = "INKIT_LOG"
#: The header that carries the API token on every request.
TOKEN_HEADER: Final = "X-Inkit-API-Token"  # noqa: S105 - a header name, not a secret

#: Seconds one attempt may take end to end (connect, send, wait, read).
DEFAULT_TIMEOUT: Final = 30.0
#: Seconds to establish a connection: a host that does not answer a SYN in 5 s
#: will rarely answer at all, and failing fast leaves room for a retry.
DEFAULT_CONNECT_TIMEOUT: Final = 5.0

#: Retries after the first attempt for a retryable failure (0 disables retries).
DEFAULT_MAX_RETRIES: Final = 2
#: First backoff delay in seconds; it doubles with every retry ...
DEFAULT_BACKOFF_INITIAL: Final = 0.5
#: ... up to this ceiling.
DEFAULT_BACKOFF_MAX: Final = 8.0
#: Each delay is shortened by up to this fraction at random, so that callers that
#: failed together do not come back together.
DEFAULT_BACKOFF_JITTER: Final = 0.25

#: Statuses worth another attempt: the server was busy, slow or briefly broken.
RETRYABLE_STATUS_CODES: Final = frozenset({408, 429, 500, 502, 503, 504})

#: Requests one client keeps in flight at most, across every caller. 100 is the width of
#: httpx's and aiohttp's default pools; with 64, 100 concurrent callers at 50 ms of
#: latency got 57% of the latency-bound throughput (docs/performance.md).
DEFAULT_MAX_CONCURRENCY: Final = 100
#: Longest ``Retry-After`` (seconds) the client sleeps on; above it, the
#: ``RateLimitError`` is raised at once.
DEFAULT_MAX_RETRY_AFTER: Final = 60.0
#: Retries (other than after a 429) the throttle's budget earns per successful request ...
DEFAULT_RETRY_RATIO: Final = 0.2
#: ... and the most it holds (and starts with): a client at its default width can
#: retry a whole window of failed requests twice before the budget binds.
DEFAULT_RETRY_RESERVE: Final = 200
#: Failures in a row (502/503/504, transport failures) after which the throttle pauses
#: every caller and sends one probe.
DEFAULT_OUTAGE_RUN: Final = 5
#: Largest response body (bytes) the client reads; a batch record is well under 1 KiB.
MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024

#: Seconds an idle pooled connection is kept for reuse: below the 5 s after which
#: uvicorn and hypercorn close idle connections, so the client lets go first. For
#: servers that close sooner (gunicorn, 2 s), a request that finds its reused
#: connection closed is sent again on another at once (see _transport.py).
DEFAULT_KEEPALIVE_EXPIRY: Final = 4.0

#: Seconds between the starts of two polls in ``batch.wait`` and ``batch.watch``.
DEFAULT_POLL_INTERVAL: Final = 2.0

#: Deepest nesting of JSON arrays and objects the SDK builds or keeps. A batch record is
#: 3 levels deep and a listing 5; Python's JSON decoder and encoder give up at about 1,000
#: levels (less the depth of the call stack). A render's ``merge_parameters`` nested deeper
#: is refused with ``ValueError`` before anything is sent; an error body nested deeper is
#: kept as its text.
MAX_JSON_DEPTH: Final = 64
#: Longest batch id, in characters (an id is about 25). Percent-encoded, an id at the
#: limit takes at most 12 characters per character (4 UTF-8 bytes, 3 characters each):
#: 12,288, far below httpx's URL limit of 65,536.
MAX_ID_LENGTH: Final = 1024
#: Longest value of one listing filter (``sort``, ``search``, ``destination_name``,
#: ``destination_status``), in characters. With every filter at the limit, encoded at
#: 12 characters each, and ``base_url`` at its limit, a listing URL stays under 52,000
#: characters: below httpx's 65,536, so an over-long URL can only be refused here.
MAX_FILTER_LENGTH: Final = 1024
#: Longest ``base_url``, in characters.
MAX_BASE_URL_LENGTH: Final = 2048
#: Most characters of the API's own error text that an exception's message shows; the
#: whole body stays in ``.body``. A longer text is cut and ends with an ellipsis.
MAX_ERROR_DETAIL: Final = 500

#: The httpx-API libraries whose clients, transports, exceptions and objects the SDK takes,
#: copies and masks, by module name.
HTTPX_LIBRARIES: Final = ("httpx", "httpx2")
