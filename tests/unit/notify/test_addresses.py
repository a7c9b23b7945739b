"""The webhook address rule (issue 21, webhook SSRF): every spelling of a host that reaches
notify's own host or network is refused, public addresses are not, and the allow-list opens
exactly the networks it names."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest

from services.notify.domain.addresses import (
    first_refusal,
    ip_literal,
    is_loopback_name,
    known_addresses,
    refusal,
)

LOOPBACK = IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # one decimal number
        ("127.1", "127.0.0.1"),  # short: the last part fills the remaining bytes
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),  # hex
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("017700000001", "127.0.0.1"),
        ("127.000.000.001", "127.0.0.1"),  # zeros before digits 0-7: octal, same value
        ("127.0.0.1.", "127.0.0.1"),  # trailing dot
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),  # inet_aton reads a bare 0x as 0
        ("0.0.0.0", "0.0.0.0"),
        ("1.16777215", "1.255.255.255"),
        ("0xffffffff", "255.255.255.255"),
        ("169.254.169.254", "169.254.169.254"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_every_spelling_of_an_ip_address_is_read_as_that_address(host: str, address: str) -> None:
    assert ip_literal(host) == ip_address(address)


@pytest.mark.parametrize(
    "host",
    ["example.org", "localhost", "1.2.3.4.5", "08.0.0.1", "0x1g.0.0.1", "256.0.0.1", "1.16777216", "4294967296",
     "", ".", "1..2", "127.0.0.1..", "[::1", "::g", "127.0.0.1 "],
)  # fmt: skip
def test_names_and_malformed_numbers_are_left_to_the_resolver(host: str) -> None:
    assert ip_literal(host) is None


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "a.localhost", "x.y.LocalHost."])
def test_localhost_and_its_subdomains_are_loopback_by_name(host: str) -> None:
    assert is_loopback_name(host)
    assert known_addresses(host) == (LOOPBACK, IPv6Address("::1"))


@pytest.mark.parametrize("host", ["localhost.example.org", "notlocalhost", "localhost..", "example.org"])
def test_other_names_are_not(host: str) -> None:
    assert not is_loopback_name(host)
    assert known_addresses(host) is None


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: the IPv4 address it reaches
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::", "private"),  # 6to4 of 192.168.1.1
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("::ffff:224.0.0.1", "multicast"),
        ("255.255.255.255", "reserved"),  # broadcast
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
        ("::ffff:0:7f00:1", "reserved"),  # IPv4-translated
        ("2001:db8::1", "reserved"),
    ],
)
def test_addresses_that_are_not_public_are_refused_with_their_category(address: str, category: str) -> None:
    assert refusal(ip_address(address)) == category


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0",
     "169.253.255.255", "11.0.0.1", "223.255.255.255", "2606:4700:4700::1111", "2001:4860:4860::8888",
     "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"],
)  # fmt: skip
def test_public_addresses_are_not(address: str) -> None:
    assert refusal(ip_address(address)) is None


def test_the_allow_list_opens_exactly_its_networks() -> None:
    allowed = [ip_network("10.20.0.0/16"), ip_network("127.0.0.0/8"), ip_network("fd00:1::/32")]
    for address in ["10.20.0.1", "10.20.255.255", "127.0.0.1", "::ffff:127.0.0.1", "::ffff:10.20.3.4", "fd00:1::5"]:
        assert refusal(ip_address(address), allowed) is None, address
    refused = {"10.21.0.1": "private", "10.19.255.255": "private", "192.168.0.1": "private", "::1": "loopback",
               "169.254.169.254": "link-local", "fd00:2::5": "private"}  # fmt: skip
    for address, category in refused.items():
        assert refusal(ip_address(address), allowed) == category, address


def test_an_allow_list_never_opens_unspecified_or_multicast_addresses() -> None:
    everything = [ip_network("0.0.0.0/0"), ip_network("::/0")]
    assert refusal(ip_address("127.0.0.1"), everything) is None
    for address, category in {
        "0.0.0.0": "unspecified",
        "::": "unspecified",
        "::ffff:0.0.0.0": "unspecified",
        "224.0.0.1": "multicast",
        "ff02::1": "multicast",
    }.items():
        assert refusal(ip_address(address), everything) == category, address


def test_an_allowed_ipv6_network_does_not_open_the_ipv4_it_embeds() -> None:
    # 6to4 of 10.0.0.1: the 2002::/16 address is public, the IPv4 it reaches is not.
    assert refusal(ip_address("2002:a00:1::"), [ip_network("2002::/16")]) == "private"
    assert refusal(ip_address("2002:a00:1::"), [ip_network("10.0.0.0/8")]) is None


def test_one_refused_address_refuses_a_name_that_resolves_to_several() -> None:
    public, loopback = ip_address("93.184.216.34"), ip_address("127.0.0.1")
    assert first_refusal([public]) is None
    assert first_refusal([public, loopback]) == "loopback"
    assert first_refusal([loopback, public]) == "loopback"
    assert first_refusal([public, loopback], [ip_network("127.0.0.1/32")]) is None
    assert first_refusal([]) is None
