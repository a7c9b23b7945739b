"""Where webhook calls may go: the address rule (domain/addresses.py) applied to a
subscription's URL when it is registered, and again to every connection the dispatcher opens.

- **At subscription** the URL's host is judged as written (IP literals in any spelling,
  ``localhost``) or as resolved now; a refused address is a 422 ``WEBHOOK_ADDRESS_REFUSED``.
  A name that does not resolve yet is accepted: the delivery check below is the one that
  holds, this one only tells the subscriber early.
- **At delivery** the check is in the connection itself (``VettedNetwork``): the host is
  resolved, every address it resolves to is judged, and the TCP connection goes to an
  address that was judged, never to a second lookup of the name (DNS rebinding: a name
  that answered a public address to the check and 127.0.0.1 to the connect). The URL, the
  ``Host`` header, TLS SNI and certificate verification all keep the host name; only the
  socket is pinned. Every connection goes through it, so a redirect (not followed today:
  retry.py) or a kept-alive connection cannot reach a refused address either.
- Proxies from the environment (``HTTPS_PROXY``) are not used: a proxy would resolve the
  name itself, after the check.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import ip_address

import httpcore
import httpx

from services.notify.domain.addresses import Address, Category, Network, first_refusal, known_addresses
from shared.problems import Problem


class AddressRefused(Exception):
    """A webhook host whose addresses the rule refuses; no connection was made."""

    def __init__(self, host: str, category: Category) -> None:
        super().__init__(f"{host} is a {category} address")
        self.host = host
        self.category = category


Lookup = Callable[[str, int], Awaitable[tuple[Address, ...]]]


async def dns_lookup(host: str, port: int) -> tuple[Address, ...]:
    """What the system resolver answers for a name (``socket.gaierror`` if nothing)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(ip_address(info[4][0]) for info in infos))


async def addresses_of(host: str, port: int, lookup: Lookup = dns_lookup) -> tuple[Address, ...]:
    """Every address ``host`` stands for: its own if it spells one (any spelling), loopback
    for ``localhost``, else what ``lookup`` answers for the name."""
    known = known_addresses(host)
    if known is not None:
        return known
    return await lookup(host, port)


def vetted(host: str, addresses: Iterable[Address], allowed: Sequence[Network]) -> tuple[Address, ...]:
    """``addresses`` if none is refused; otherwise AddressRefused for the host."""
    addresses = tuple(addresses)
    if (category := first_refusal(addresses, allowed)) is not None:
        raise AddressRefused(host, category)
    return addresses


async def check_subscription_url(url: str, allowed: Sequence[Network], resolve_seconds: float) -> None:
    """422 WEBHOOK_ADDRESS_REFUSED if ``url``'s host is, or now resolves to, an address
    webhooks may not reach. The host is read as the dispatcher's HTTP client will read it."""
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii")  # as httpcore passes it to connect_tcp (IDNA-encoded)
    try:
        async with asyncio.timeout(resolve_seconds):
            addresses = await addresses_of(host, parsed.port or 0)
    except (OSError, TimeoutError):
        return  # not resolvable now: judged when a delivery connects
    try:
        vetted(host, addresses, allowed)
    except AddressRefused as refused:
        # The category only, not what a name resolved to: notify's resolver may see names
        # the subscriber should not map.
        raise Problem(
            422,
            "WEBHOOK_ADDRESS_REFUSED",
            "Webhook address refused",
            f"The URL's host is or resolves to a {refused.category} address. Webhooks go to public addresses only; "
            "a receiver inside the operator's own network needs that network in "
            "VCREDIT_NOTIFY_WEBHOOK_ALLOWED_NETWORKS.",
            field="url",
            reason=refused.category,
        ) from None


class VettedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address rule in ``connect_tcp``."""

    def __init__(
        self,
        allowed: Sequence[Network],
        inner: httpcore.AsyncNetworkBackend | None = None,
        lookup: Lookup = dns_lookup,
    ) -> None:
        self.allowed = tuple(allowed)
        self.inner = inner or httpcore.AnyIOBackend()
        self.lookup = lookup

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await addresses_of(host, port, self.lookup)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        error: httpcore.ConnectError | None = None
        for address in vetted(host, addresses, self.allowed):
            try:
                return await self.inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc  # the next address the name resolved to, as a resolver's client would
        raise error or httpcore.ConnectError(f"{host} resolved to no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection is vetted."""

    def __init__(self, allowed: Sequence[Network], limits: httpx.Limits, lookup: Lookup = dns_lookup) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx builds its pool without a way to pass a network backend: replace the pool
        # with the same one plus ours. Fail loudly if httpx ever stops keeping it here,
        # rather than send unvetted.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport no longer keeps its pool in _pool")
        self._pool = httpcore.AsyncConnectionPool(
            # Certificates as httpx's default (SSL_CERT_FILE/SSL_CERT_DIR still honoured, for
            # a bank's own CA): verified against the URL's host name, not the address.
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=VettedNetwork(allowed, lookup=lookup),
        )


def webhook_client(
    allowed: Sequence[Network], timeout: float, max_connections: int, *, lookup: Lookup = dns_lookup
) -> httpx.AsyncClient:
    """The dispatcher's HTTP client: vetted connections, no redirects, no environment proxy.
    ``lookup`` resolves names (the system resolver; tests give names of their own)."""
    transport = VettedTransport(allowed, httpx.Limits(max_connections=max_connections), lookup)
    return httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
    )
