"""Which hosts a result link may point at: never link-local, multicast or unspecified.

A result link comes from Bria's answer, so whoever can shape that answer could point
bria-run at ``http://169.254.169.254/`` (a cloud's metadata service) and have the answer
saved as an image. Before a link is fetched its host is resolved and every address judged:
link-local (169.254.0.0/16, fe80::/10), multicast and unspecified (0.0.0.0, ::) addresses are
always refused; loopback and private addresses only when the API root itself is on one (the
simulator on 127.0.0.1, a proxy on the local network), since then they are the API's own.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def refusal(url: str, api_host: str | None) -> tuple[str, str] | None:
    """(host, why) when ``url`` may not be fetched, else None. A host that does not resolve
    is left to the request itself, which fails with a network error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return parts.netloc or url[:40], f"a `{parts.scheme}:` link, not http or https"
    host = parts.hostname or ""
    is_local_api = api_host is not None and any(
        _is_local(a) for a in _addresses(api_host, None))
    for address in _addresses(host, parts.port):
        why = _why(address, is_local_api)
        if why is not None:
            return host, why
    return None


def _why(address: Address, is_local_api: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local:
        return f"{address} is a link-local address (cloud metadata services live there)"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if _is_local(address) and not is_local_api:
        return f"{address} is a loopback or private address, and the API is not on one"
    return None


def _is_local(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_private


# Names that never resolve on the internet (RFC 6761): no lookup is sent for them.
_NEVER_RESOLVED = (".test", ".example", ".invalid")


@lru_cache(maxsize=256)
def _addresses(host: str, port: int | None) -> tuple[Address, ...]:
    try:
        return (ipaddress.ip_address(host.strip("[]")),)
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    if name.endswith(_NEVER_RESOLVED):
        return ()
    if name == "localhost" or name.endswith(".localhost"):
        return (ipaddress.ip_address("127.0.0.1"),)
    try:
        found = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return ()
    return tuple(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found)
