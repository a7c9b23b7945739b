"""Which addresses a webhook may be sent to (issue 21: webhook SSRF).

A subscription names a URL and notify calls it from inside the bank's network, so a URL
pointing at notify's own host or network would make notify a proxy into places its callers
cannot reach (the other services' APIs, the database, cloud metadata at 169.254.169.254),
with the delivery log echoing the answers. Webhooks therefore go to public addresses only:
loopback, link-local, private, multicast, unspecified and otherwise reserved addresses are
refused, unless an operator lists the network in ``VCREDIT_NOTIFY_WEBHOOK_ALLOWED_NETWORKS``
(a bank's receiver inside its own private network). Unspecified and multicast addresses are
never receivers (0.0.0.0 reaches the local host on Linux; TCP has no multicast), so even an
allow-list covering them does not let them through.

The table is IANA's special-purpose registries, written out rather than taken from
``ipaddress``'s ``is_private``/``is_global``, whose answers changed between Python versions
(and call multicast "global"). IPv4 embedded in IPv6 is judged as the IPv4 address it
reaches: IPv4-mapped ``::ffff:a.b.c.d`` as that address alone; 6to4 (2002::/16) and NAT64
(64:ff9b::/96) as both the IPv6 and the IPv4 address.

Host spellings: a URL's host may be an IPv4 address written the way ``inet_aton`` reads it
(``2130706433``, ``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``), with a trailing dot, or an
IPv6 literal in brackets; ``ip_literal`` reads them all, so the rule does not depend on the
URL parser having normalised them. ``localhost`` and ``*.localhost`` are loopback by
definition (RFC 6761), whatever a resolver says. Any other name is resolved by the caller
and every address it resolves to is judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Literal

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Category = Literal["unspecified", "loopback", "link-local", "private", "multicast", "reserved"]

# Never a receiver, allow-list or not.
NEVER: frozenset[Category] = frozenset({"unspecified", "multicast"})

# Checked in this order: the first network holding the address names its category (None:
# not refused for itself; NAT64 addresses are judged by the IPv4 address they carry).
_TABLE: tuple[tuple[str, Category | None], ...] = (
    # IPv4 (RFC 6890 and the IANA IPv4 special-purpose address registry)
    ("0.0.0.0/8", "unspecified"),  # "this network"; 0.0.0.0 is the local host
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),  # includes cloud metadata, 169.254.169.254
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "private"),  # shared address space (carrier-grade NAT), RFC 6598
    ("224.0.0.0/4", "multicast"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "reserved"),  # documentation
    ("198.51.100.0/24", "reserved"),  # documentation
    ("203.0.113.0/24", "reserved"),  # documentation
    ("198.18.0.0/15", "reserved"),  # benchmarking
    ("192.88.99.0/24", "reserved"),  # 6to4 relay anycast (deprecated)
    ("240.0.0.0/4", "reserved"),  # future use, and 255.255.255.255 (broadcast)
    # IPv6 (RFC 6890 and the IANA IPv6 special-purpose address registry)
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "private"),  # unique local
    ("fec0::/10", "private"),  # site-local (deprecated, still routed by some stacks)
    ("64:ff9b::/96", None),  # well-known NAT64 prefix, inside ::/8 below
    ("64:ff9b:1::/48", "private"),  # local-use NAT64
    ("ff00::/8", "multicast"),
    ("::/8", "reserved"),  # incl. IPv4-compatible ::a.b.c.d (deprecated)
    ("100::/64", "reserved"),  # discard-only
    ("2001::/23", "reserved"),  # IETF protocol assignments, incl. Teredo
    ("2001:db8::/32", "reserved"),  # documentation
)
REFUSED: tuple[tuple[Network, Category | None], ...] = tuple((ip_network(cidr), cat) for cidr, cat in _TABLE)

NAT64 = IPv6Network("64:ff9b::/96")


def ip_literal(host: str) -> Address | None:
    """The address a URL host spells, or None when it is a name to resolve.

    IPv6 with or without brackets (a zone id such as ``%eth0`` kept); IPv4 as ``inet_aton``
    reads it: one to four dot-separated parts, each decimal, octal (leading ``0``) or hex
    (``0x``), the last part filling the remaining bytes; one trailing dot allowed."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return IPv6Address(host)
        except ValueError:
            return None
    return _ipv4_literal(host[:-1] if host.endswith(".") else host)


def _ipv4_literal(host: str) -> IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_number(part) for part in parts]
    if any(v is None for v in values):
        return None
    numbers = [v for v in values if v is not None]
    *leading, last = numbers
    if any(v > 0xFF for v in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, v in enumerate(leading):
        value += v << (8 * (3 - i))
    return IPv4Address(value)


def _number(part: str) -> int | None:
    lowered = part.lower()
    if lowered.startswith("0x"):
        digits, base = lowered[2:], 16
        if digits == "":
            return 0  # inet_aton reads a bare "0x" as 0
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    allowed = "0123456789abcdef"[:base]
    if not digits or any(c not in allowed for c in digits):
        return None
    return int(digits, base)


def is_loopback_name(host: str) -> bool:
    """``localhost`` and its subdomains, any case, with or without the trailing dot."""
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    return name == "localhost" or name.endswith(".localhost")


LOOPBACK_NAME_ADDRESSES: tuple[Address, ...] = (IPv4Address("127.0.0.1"), IPv6Address("::1"))


def known_addresses(host: str) -> tuple[Address, ...] | None:
    """The addresses a host stands for without asking a resolver: an IP literal's own, a
    loopback name's loopback; None for a name to resolve."""
    literal = ip_literal(host)
    if literal is not None:
        return (literal,)
    if is_loopback_name(host):
        return LOOPBACK_NAME_ADDRESSES
    return None


def _judged(address: Address) -> tuple[Address, ...]:
    """The addresses a connection to ``address`` reaches, each to be judged."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return (address.ipv4_mapped,)
        if address.sixtofour is not None:
            return (address, address.sixtofour)
        if address in NAT64:
            return (address, IPv4Address(int(address) & 0xFFFFFFFF))
    return (address,)


def _category(address: Address) -> Category | None:
    for network, category in REFUSED:
        if address.version == network.version and address in network:
            return category
    return None  # public


def refusal(address: Address, allowed: Sequence[Network] = ()) -> Category | None:
    """Why a webhook may not go to ``address`` (its category), or None when it may:
    public, or inside an ``allowed`` network (except unspecified and multicast)."""
    for reached in _judged(address):
        category = _category(reached)
        if category is None:
            continue
        if category in NEVER or not _inside(reached, allowed):
            return category
    return None


def _inside(address: Address, networks: Iterable[Network]) -> bool:
    # A zone id (fe80::1%eth0) does not change which network the address is in.
    plain: Address = IPv6Address(address.compressed.split("%")[0]) if isinstance(address, IPv6Address) else address
    return any(plain.version == n.version and plain in n for n in networks)


def first_refusal(addresses: Iterable[Address], allowed: Sequence[Network] = ()) -> Category | None:
    """The category of the first refused address among all a host resolved to: one refused
    address refuses the host (a name answering both a public and a private address would
    otherwise reach the private one on some tries)."""
    for address in addresses:
        if (category := refusal(address, allowed)) is not None:
            return category
    return None
