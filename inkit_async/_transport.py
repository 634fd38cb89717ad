"""Proxies and trust for the SDK's own connections, read the way httpx reads them.

- ``environment_proxies``: the proxy variables (``HTTP_PROXY``, ``HTTPS_PROXY``,
  ``ALL_PROXY``, ``NO_PROXY``) as httpx's mount patterns; ``_senders.proxy_for`` picks
  the one that applies to the API's root, once per client.
- ``ssl_context_for``: the one trust policy for ``verify=``.
"""

from __future__ import annotations

import os
import ssl
import sys
from typing import TYPE_CHECKING
from urllib.request import getproxies

import httpx
import truststore  # with the package: a client made in a running loop imports nothing

from ._http2 import http11_alpn

if TYPE_CHECKING:
    from ._config import ClientOptions

__all__ = ["environment_proxies", "proxy_mounts", "ssl_context_for"]


# -- proxies and trust -------------------------------------------------------------------


def environment_proxies() -> dict[str, str | None]:
    """The proxy mounts httpx derives from the environment, by its rules.

    ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` (either case; lower case wins, as
    urllib reads them) map ``http://``, ``https://`` and ``all://`` to a proxy URL;
    ``NO_PROXY`` entries map hosts to ``None`` (no proxy): ``*`` turns proxies off,
    ``.example.com`` covers its subdomains, ``example.com`` the domain and its
    subdomains, IP addresses and ``localhost`` themselves.
    """
    found = getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if found.get(scheme):
            url = found[scheme]
            mounts[f"{scheme}://"] = _checked_proxy(
                f"{scheme.upper()}_PROXY", url if "://" in url else f"http://{url}"
            )
    for host in (entry.strip() for entry in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif host.lower() == "localhost" or _is_ip(host):
            mounts[f"all://{_bracketed(host)}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def _checked_proxy(variable: str, url: str) -> str:
    """*url* from the environment variable *variable*, if a proxy URL; never echoed."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
        # Neither the URL nor the parser's message: either may hold the password.
        raise ValueError(
            f"{variable} (or its lower-case form) is not an http:// or https:// proxy URL "
            "with a host (percent-encode any of : / ? # @ in its user name and password)"
        )
    return url


def _is_ip(host: str) -> bool:
    import ipaddress  # noqa: PLC0415 - rarely needed

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def ssl_context_for(verify: bool | str | ssl.SSLContext, *, trust_env: bool) -> ssl.SSLContext:  # noqa: FBT001 - verify= is the option as users pass it
    """The TLS context for ``verify=``, by the SDK's one trust policy.

    - ``True`` (the default): if ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` is set (and
      *trust_env*), exactly the CAs they name; otherwise the operating system's trust
      store, through ``truststore`` (as pip does): a corporate CA that IT installed
      on the machine is trusted on Linux, macOS and Windows alike.
    - A path: the CA bundle file (or directory of hashed certificates) it names.
    - ``False``: no verification at all (for tests against self-signed servers only).
    - An ``ssl.SSLContext``: used as it is, never changed (it is the caller's, and may
      be shared with clients that offer other protocols).

    A context made here offers ALPN ``http/1.1`` only (``http11_alpn``), the one protocol
    the default sender speaks: a server that speaks HTTP/2 and HTTP/1.1 then picks
    HTTP/1.1, and one that speaks only HTTP/2 can refuse in the handshake, before the
    request is sent, in a way the sender knows (``_http2.speaks_only_http2``).

    The variables are read each time a client is created, never cached; with
    *trust_env* false they are not read at all (on Linux the system's CA files are
    then named explicitly, since OpenSSL would read the variables itself).
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    return http11_alpn(_new_context(verify, trust_env=trust_env))


def _new_context(verify: bool | str, *, trust_env: bool) -> ssl.SSLContext:  # noqa: FBT001 - as above
    """A new context for ``verify=`` other than a caller's own (see ``ssl_context_for``)."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        if os.path.isdir(verify):  # noqa: PTH112 - a plain check, as ssl's own API takes str
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return _default_trust(trust_env=trust_env)


def _default_trust(*, trust_env: bool) -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") if trust_env else None
    capath = os.environ.get("SSL_CERT_DIR") if trust_env else None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    if not trust_env and sys.platform == "linux":
        # OpenSSL reads SSL_CERT_FILE/SSL_CERT_DIR itself when it loads the system
        # store; name the system's own files instead, so the variables stay unread.
        paths = ssl.get_default_verify_paths()
        return ssl.create_default_context(
            cafile=_existing(paths.openssl_cafile), capath=_existing(paths.openssl_capath)
        )
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _existing(path: str | None) -> str | None:
    return path if path and os.path.exists(path) else None  # noqa: PTH110 - str paths for ssl


def proxy_mounts(options: ClientOptions) -> dict[str, str | None]:
    """The proxy for each httpx mount pattern: ``proxy=`` for all, else the environment's."""
    if options.proxy is not None:
        return {"all://": str(options.proxy)}
    return environment_proxies() if options.trust_env else {}
