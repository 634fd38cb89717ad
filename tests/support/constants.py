"""Values the tests share: the fake token, the default base URL, and options read as data."""

from __future__ import annotations

from inkit_async import Backoff

BASE_URL = "https://api.inkit.com/v1"
#: AsyncInkit's documented default max_concurrency: requests in flight per client.
DEFAULT_WIDTH = 100
TOKEN = "tok_live_S3cr3tValue42"
#: Retries without sleeping, so retry tests run in microseconds.
NO_WAIT = Backoff(initial=0, maximum=0)
