"""Which callback URLs the gateway may call: no server-side request forgery through it.

A client-supplied URL is honoured only when its host is on the operator's allowlist,
and never when it resolves to a loopback, link-local, private or otherwise special
address, unless that address or host is listed explicitly.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit


class RefusedTarget(ValueError):
    pass


def parse_target(url: str) -> tuple[str, str, int]:
    """`(scheme, host, port)` of an http(s) URL, or RefusedTarget naming the problem."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise RefusedTarget(f"not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedTarget("only http:// and https:// URLs with a host can be called back")
    if parts.username or parts.password:
        raise RefusedTarget("credentials in a callback URL are not accepted")
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def host_allowed(host: str, allowlist: Iterable[str]) -> bool:
    """Exact names, `*.example.com` wildcards, IP addresses and CIDR ranges."""
    for entry in allowlist:
        entry = entry.lower()
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        elif fnmatch.fnmatchcase(host, entry):
            return True
    return False


def special_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_addresses(host: str, addresses: Iterable[str], allowlist: Iterable[str]) -> None:
    """Refuse a target whose resolved addresses include a special one not listed."""
    allow = list(allowlist)
    for address in addresses:
        if special_address(address) and not (
            _address_listed(address, allow) or _listed_exactly(host, allow)
        ):
            raise RefusedTarget(
                f"{host} resolves to {address}, a loopback, private or link-local address; "
                "list it in callbacks.allow to call it"
            )


def _address_listed(address: str, allowlist: list[str]) -> bool:
    """The address itself or a CIDR range holding it is listed; a wildcard such as `*`
    allows hosts, not special addresses."""
    ip = ipaddress.ip_address(address)
    for entry in allowlist:
        try:
            if "/" in entry:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            elif ip == ipaddress.ip_address(entry):
                return True
        except ValueError:
            continue
    return False


def _listed_exactly(host: str, allowlist: list[str]) -> bool:
    return host in (e.lower() for e in allowlist)
