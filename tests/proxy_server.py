"""A real forward proxy for the tests: squid on 127.0.0.1, started and stopped by a fixture.

Squid is Debian's ``squid`` package (``.ci/run`` installs it when missing). The fixture
fails the test, never skips it, when squid is not there or does not start. With
``auth=True`` squid admits only ``PROXY_USER`` with ``PROXY_PASSWORD`` (basic
authentication, checked by squid's own ``basic_ncsa_auth`` helper) and answers anyone
else ``407 Proxy Authentication Required``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

#: The one user an authenticating squid admits, and the password it takes.
PROXY_USER = "inkit"
PROXY_PASSWORD = "right-Pa55word"
#: PROXY_PASSWORD as htpasswd stores it (`openssl passwd -apr1 -salt inkitsal ...`).
_PASSWD = "inkit:$apr1$inkitsal$N3e/CcP6L7tPA0YWg1ohA1\n"
_AUTH = """\
auth_param basic program {helper} {root}/passwd
auth_param basic realm inkit-tests
acl users proxy_auth REQUIRED
http_access allow users
http_access deny all
"""

_CONFIG = """\
http_port 127.0.0.1:{port}
{access}
cache deny all
pid_filename {root}/squid.pid
cache_log {root}/cache.log
access_log stdio:{root}/access.log squid
coredump_dir {root}
visible_hostname localhost
shutdown_lifetime 0 seconds
"""


class Squid:
    """A running squid: ``url`` to proxy through, ``requests()`` from its access log."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port

    @property
    def url(self) -> str:
        """The proxy URL to pass as ``proxy=`` or in ``HTTP_PROXY``."""
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        """The proxy URL with a user name and password in it (percent-encoded)."""
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        """The method and URL of every request squid has logged (``GET http://...``)."""
        log = self.root / "access.log"
        if not log.exists():
            return []
        lines = log.read_text().splitlines()
        return [" ".join(line.split()[5:7]) for line in lines if len(line.split()) > 6]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def running_squid(start_within: float = 15.0, *, auth: bool = False) -> Iterator[Squid]:
    """Start squid on a free loopback port; stop it on the way out.

    With *auth*, only ``PROXY_USER`` with ``PROXY_PASSWORD`` may use it.
    """
    binary = shutil.which("squid") or shutil.which("squid", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("squid is not installed (apt-get install squid); .ci/run installs it")
    with tempfile.TemporaryDirectory(prefix="inkit-squid-") as directory:
        root = Path(directory)
        root.chmod(0o777)  # squid started as root writes its logs as its own user
        port = _free_port()
        config = root / "squid.conf"
        access = "http_access allow all"
        if auth:
            # Debian's squid package installs its helpers beside it: /usr/lib/squid/.
            helper = Path(binary).resolve().parents[1] / "lib/squid/basic_ncsa_auth"
            if not helper.exists():
                pytest.fail(f"squid's basic_ncsa_auth helper is not at {helper}")
            (root / "passwd").write_text(_PASSWD)
            access = _AUTH.format(helper=helper, root=root)
        config.write_text(_CONFIG.format(port=port, root=root, access=access))
        if os.geteuid() == 0:
            config.write_text(config.read_text() + "cache_effective_user proxy\n")
        process = subprocess.Popen(
            [binary, "-N", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + start_within
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (root / "cache.log").read_text() if (root / "cache.log").exists() else ""
                    pytest.fail(f"squid did not start on port {port}:\n{log[-2000:]}")
                time.sleep(0.05)
            yield Squid(root, port)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
