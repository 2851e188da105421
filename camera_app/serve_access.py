"""Who may talk to `--serve`: a request whose Host header names this server and, with a token, carries it.

The Host check stops DNS rebinding: a web page on another site whose name an attacker re-points at
this board would otherwise read the stream and stats from the visitor's browser (same origin to it).
A Host that is an IP address cannot be such a name, so the address the client connected to is
accepted as well as the names below.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from deploy.errors import EdgevisionError

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{8,256}")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; a name or a wildcard address is not loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_literal(host: str) -> str:
    """How a host appears in a Host header: lower case, IPv6 in brackets, IPv4-mapped IPv6 as IPv4."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host.lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def host_names(given: str, bound: str) -> set[str]:
    """The names a browser may use for this server: the host given, the bound address, loopback, and
    the machine's name (and its mDNS `.local` name) when the server listens beyond loopback."""
    names = {"localhost", "127.0.0.1", "[::1]", host_literal(given), host_literal(bound)}
    if not is_loopback(bound):
        hostname = socket.gethostname().lower()
        names |= {hostname, f"{hostname}.local"}
    return names


def split_host(header: str) -> tuple[str, int] | None:
    """`name[:port]` or `[v6][:port]` -> (literal, port; 80 when absent); None when malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header.partition("]")
        name += "]"
    else:
        name, colon, rest = header.partition(":")
        rest = colon + rest
    if not name or name == "]" or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
        return None
    return (host_literal(name.strip("[]")) if name.startswith("[") else name), int(rest[1:] or 80)


def host_allowed(header: str | None, names: set[str], port: int, local_address: str) -> bool:
    """True when the Host header names this server at its port (the connection's own address counts)."""
    parsed = split_host(header) if header else None
    if parsed is None:
        return False
    name, header_port = parsed
    return header_port == port and (name in names or name == host_literal(local_address))


def check_token(token: str | None) -> None:
    """A token goes in URLs, headers and a cookie: 8-256 URL-safe characters."""
    if token is not None and not TOKEN_PATTERN.fullmatch(token):
        raise EdgevisionError(
            "--serve-token takes 8-256 characters from A-Z a-z 0-9 - . _ ~ "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(16))')"
        )


def cookie_name(port: int) -> str:
    """One cookie per port: cookies ignore ports, and two apps on one board have two tokens."""
    return f"edgevision_token_{port}"


def presented_tokens(headers: Mapping[str, str], query: Mapping[str, list[str]], port: int) -> list[str]:
    """Every token the request carries: `Authorization: Bearer`, `?token=`, the cookie."""
    found = list(query.get("token", []))
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        found.append(value.strip())
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("Cookie") or "")
    except CookieError:
        pass
    if cookie_name(port) in cookie:
        found.append(cookie[cookie_name(port)].value)
    return found


def token_matches(presented: list[str], token: str) -> bool:
    expected = token.encode()
    return any(hmac.compare_digest(value.encode("utf-8", "surrogateescape"), expected) for value in presented)
