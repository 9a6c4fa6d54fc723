"""Fetch a picture by URL for the Classify page without becoming a proxy into the network
the server sits on (SSRF): only http(s), only public addresses (an explicit allow-list,
used by tests, may name loopback hosts), the connection pinned to the address that was
checked (no DNS-rebinding window), every redirect checked again, size and type capped."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import urllib3

MAX_REDIRECTS = 3
CHUNK = 64 * 1024


class UrlRefused(ValueError):
    """The URL is not fetched; the message says why (shown to the user)."""


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
    )


def check_url(url: str, allow_hosts: list[str]) -> tuple[str, str, int, str]:
    """(scheme, host, port, ip to connect to) when ``url`` may be fetched, else UrlRefused."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http:// and https:// URLs can be classified")
    if parts.username or parts.password:
        raise UrlRefused("URLs with a user name or password are refused")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused("the URL has no host name")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused("the URL's port is not a number in 1..65535") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UrlRefused(f"cannot resolve host {host!r}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    allowed = host in allow_hosts or f"{host}:{port}" in allow_hosts
    if not allowed and not all(_public(ip) for ip in addresses):
        raise UrlRefused(
            f"{host} is a private, loopback or reserved address; only public hosts can be fetched"
        )
    return parts.scheme, host, port, str(addresses[0])


def fetch_picture(url: str, max_bytes: int, allow_hosts: list[str], timeout: float = 15.0) -> bytes:
    """The body of ``url`` (an image/* response of at most ``max_bytes``), following up to
    three redirects, each re-checked; UrlRefused with a one-line reason otherwise."""
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port, ip = check_url(url, allow_hosts)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Host": host if port in (80, 443) else f"{host}:{port}",
            "User-Agent": "astro-exp-web/0.1",
            "Accept": "image/*",
        }
        pool_cls = urllib3.HTTPSConnectionPool if scheme == "https" else urllib3.HTTPConnectionPool
        kwargs = {"server_hostname": host, "assert_hostname": host} if scheme == "https" else {}
        pool = pool_cls(
            ip,
            port,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
            **kwargs,
        )
        try:
            resp = pool.urlopen(
                "GET", target, headers=headers, redirect=False, preload_content=False
            )
        except urllib3.exceptions.HTTPError as e:
            raise UrlRefused(f"could not fetch {host}: {type(e).__name__}") from None
        try:
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                url = urljoin(url, resp.headers["Location"])
                continue
            if resp.status != 200:
                raise UrlRefused(f"{host} answered HTTP {resp.status}")
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not ctype.startswith("image/"):
                raise UrlRefused(f"{host} sent {ctype or 'no content type'}, not a picture")
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise UrlRefused(
                    f"the picture is {int(length):,} bytes, over the {max_bytes:,}-byte limit"
                )
            body = bytearray()
            for chunk in resp.stream(CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise UrlRefused(f"the picture is over the {max_bytes:,}-byte limit")
            return bytes(body)
        except urllib3.exceptions.HTTPError as e:
            raise UrlRefused(f"the download from {host} failed: {type(e).__name__}") from None
        finally:
            resp.release_conn()
            pool.close()
    raise UrlRefused(f"more than {MAX_REDIRECTS} redirects")
