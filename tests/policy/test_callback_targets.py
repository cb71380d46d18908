from __future__ import annotations

import pytest

from forebay.policy.callback_targets import (
    RefusedTarget,
    check_addresses,
    host_allowed,
    parse_target,
    special_address,
)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://Hooks.Example.com/done?x=1", ("https", "hooks.example.com", 443)),
        ("http://hooks.example.com", ("http", "hooks.example.com", 80)),
        ("http://hooks.example.com:8080/cb", ("http", "hooks.example.com", 8080)),
        ("https://203.0.113.7/cb", ("https", "203.0.113.7", 443)),
        ("http://[2001:db8::1]:9000/cb", ("http", "2001:db8::1", 9000)),
    ],
)
def test_parse_target(url: str, target: tuple[str, str, int]) -> None:
    assert parse_target(url) == target


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example.com/x", "only http"),
        ("file:///etc/passwd", "only http"),
        ("javascript:alert(1)", "only http"),
        ("hooks.example.com/x", "only http"),
        ("https:///no-host", "only http"),
        ("http://", "only http"),
        ("https://user:secret@hooks.example.com/", "credentials"),
        ("https://user@hooks.example.com/", "credentials"),
        ("https://:secret@hooks.example.com/", "credentials"),
        ("http://hooks.example.com:99999/", "not a valid URL"),
        ("http://hooks.example.com:port/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_parse_target_refuses(url: str, problem: str) -> None:
    with pytest.raises(RefusedTarget, match=problem):
        parse_target(url)


ALLOW = [
    "hooks.example.com",
    "*.partner.example",
    "203.0.113.0/24",
    "2001:db8::/32",
    "198.51.100.9",
]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("hooks.example.com", True),
        ("other.example.com", False),
        ("example.com", False),
        ("a.partner.example", True),
        ("a.b.partner.example", True),
        ("partner.example", False),
        ("evilpartner.example", False),
        ("203.0.113.7", True),
        ("203.0.114.7", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("198.51.100.9", True),
        ("198.51.100.10", False),
    ],
)
def test_host_allowed(host: str, allowed: bool) -> None:
    assert host_allowed(host, ALLOW) is allowed


def test_host_allowed_edges() -> None:
    assert not host_allowed("hooks.example.com", [])
    assert host_allowed("hooks.example.com", ["HOOKS.Example.COM"])
    assert not host_allowed("hooks.example.com", ["not-a-network/99"])
    assert host_allowed("anything.example", ["*"])


SPECIAL = [
    "127.0.0.1",
    "127.9.9.9",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "224.0.0.1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", SPECIAL)
@pytest.mark.parametrize("allow", [[], ["*"], ["*.example.com", "cb.example.com"]])
def test_special_addresses_are_refused(address: str, allow: list[str]) -> None:
    assert special_address(address)
    with pytest.raises(RefusedTarget, match=address):
        check_addresses("cb.partner.test", [address], allow)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not special_address(address)
    check_addresses("cb.example.com", [address], [])


@pytest.mark.parametrize(
    ("host", "address", "allow"),
    [
        ("cb.internal", "10.1.2.3", ["10.1.2.3"]),
        ("cb.internal", "10.1.2.3", ["10.0.0.0/8"]),
        ("cb.internal", "fd12:3456::1", ["fc00::/7"]),
        ("cb.internal", "::1", ["0:0:0:0:0:0:0:1"]),
        ("cb.internal", "127.0.0.1", ["CB.internal"]),  # the host itself is listed
    ],
)
def test_a_listed_special_address_is_allowed(host: str, address: str, allow: list[str]) -> None:
    check_addresses(host, [address], allow)


def test_one_special_address_among_public_ones_refuses() -> None:
    with pytest.raises(RefusedTarget):
        check_addresses("cb.example.com", ["93.184.216.34", "10.0.0.1"], [])
    with pytest.raises(RefusedTarget):  # a wildcard host entry does not list the host
        check_addresses("cb.example.com", ["93.184.216.34", "10.0.0.1"], ["*.example.com"])
