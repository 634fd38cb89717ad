"""A real forward proxy for the tests: tinyproxy on 127.0.0.1, started and stopped by a fixture.

tinyproxy is Debian's ``tinyproxy-bin`` package: one binary that needs only the C library,
with no service and nothing else to install (nox installs it when missing). The fixture fails
the test, never skips it, when tinyproxy is not there or does not start. With ``auth=True``
it admits only ``PROXY_USER`` with ``PROXY_PASSWORD`` (basic authentication) and refuses
anyone else: ``407 Proxy Authentication Required``, or ``401 Unauthorized`` from tinyproxy
before 1.11.3, which gave a wrong password that status (``Proxy.refusal`` is the one it gives).
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from .markers import require

#: The one user an authenticating proxy admits, and the password it takes (tinyproxy 1.11.1
#: takes letters, digits and ``-._`` in both).
PROXY_USER = "inkit"
PROXY_PASSWORD = "right-Pa55word"

_CONFIG = """\
Port {port}
Listen 127.0.0.1
Timeout 60
LogFile "{root}/tinyproxy.log"
LogLevel Connect
ViaProxyName "inkit-tests"
DefaultErrorFile "{root}/error.html"
"""
# No ConnectPort line: CONNECT to any port (the TLS test servers listen on random ones).
# No Allow line: any client (it listens on loopback only). No PidFile: none is written.

#: tinyproxy's error page, quoting the request line as proxies' pages do.
_ERROR_PAGE = "<h1>{errno} {cause}</h1>\n<p>{detail}</p>\n<p>{request}</p>\n"

#: How tinyproxy logs each request line it reads (at ``LogLevel Connect``).
_REQUEST = re.compile(r"\]: Request \(file descriptor \d+\): (\S+) (\S+)")


class Proxy:
    """A running forward proxy: ``url`` to proxy through, ``requests()`` from its log."""

    def __init__(self, root: Path, port: int, refusal: int | None = None) -> None:
        self.root = root
        self.port = port
        #: The status it answers a wrong login with (``None``: it asks for no login).
        self.refusal = refusal

    @property
    def url(self) -> str:
        """The proxy URL to pass as ``proxy=`` or in ``HTTP_PROXY``."""
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        """The proxy URL with a user name and password in it (percent-encoded)."""
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        """The method and target of every request line the proxy has read (``GET http://...``).

        tinyproxy logs a request line as soon as it reads it, before it checks the login or
        connects anywhere: by the time a client has the proxy's answer, the line is here.
        """
        log = self.root / "tinyproxy.log"
        if not log.exists():
            return []
        return [" ".join(found.groups()) for found in _REQUEST.finditer(log.read_text())]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _refusal(port: int, within: float) -> int:
    """The status the proxy answers a CONNECT with a wrong login with (waits *within* s)."""
    login = base64.b64encode(f"{PROXY_USER}:not-{PROXY_PASSWORD}".encode()).decode()
    # Refused before tinyproxy connects anywhere: port 9 (discard) is never reached.
    probe = f"CONNECT 127.0.0.1:9 HTTP/1.1\r\nProxy-Authorization: Basic {login}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), within) as sock:
        sock.settimeout(within)
        sock.sendall(probe.encode())
        status_line = sock.makefile("rb").readline().decode("latin-1")
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _diagnostics(root: Path) -> str:
    text = ""
    for name in ("tinyproxy.out", "tinyproxy.log"):
        with contextlib.suppress(OSError):
            text += (root / name).read_text()[-2000:]
    return text


def _drop_privileges(root: Path) -> str:
    """As root, the config lines that run tinyproxy as ``nobody``, who owns *root*."""
    if os.geteuid() != 0:
        return ""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return ""
    # tinyproxy opens its log after it drops to this user; it reads its error page later.
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    return f"User {nobody.pw_uid}\nGroup {nobody.pw_gid}\n"


@contextlib.contextmanager
def running_proxy(start_within: float = 15.0, *, auth: bool = False) -> Iterator[Proxy]:
    """Start tinyproxy on a free loopback port; stop it on the way out.

    It runs in the foreground with everything it writes (config, log, error page) in a
    temporary directory. With *auth*, only ``PROXY_USER`` with ``PROXY_PASSWORD`` may use it.
    Start-up waits at most *start_within* seconds; stopping, at most 5 s before a kill.
    """
    require("proxy")
    binary = shutil.which("tinyproxy") or shutil.which("tinyproxy", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("tinyproxy is not installed (apt-get install tinyproxy-bin); nox installs it")
    with tempfile.TemporaryDirectory(prefix="inkit-proxy-") as directory:
        root = Path(directory)
        port = _free_port()
        config = _CONFIG.format(port=port, root=root)
        if auth:
            config += f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}\n"
        config += _drop_privileges(root)
        (root / "tinyproxy.conf").write_text(config)
        (root / "error.html").write_text(_ERROR_PAGE)
        with (root / "tinyproxy.out").open("wb") as output:
            process = subprocess.Popen(
                [binary, "-d", "-c", str(root / "tinyproxy.conf")],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + start_within
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"tinyproxy did not start on port {port}:\n{_diagnostics(root)}")
                time.sleep(0.05)
            refusal = None
            if auth:
                try:
                    refusal = _refusal(port, max(deadline - time.monotonic(), 1.0))
                except OSError as exc:
                    pytest.fail(f"tinyproxy did not answer on port {port}: {exc!r}")
                if refusal not in {401, 407}:
                    pytest.fail(f"tinyproxy answered a wrong login with {refusal}, not 407/401")
            yield Proxy(root, port, refusal)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
