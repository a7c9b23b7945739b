"""The delivery-time check in the connection itself (issue 21): the host is resolved once,
every address judged, and the socket opened to a judged address, never to the name again.
Nothing here opens a socket: the network under the check is a recorder."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_address, ip_network

import httpcore
import pytest

from services.notify.domain.addresses import Address
from services.notify.egress import AddressRefused, VettedNetwork, addresses_of, check_subscription_url, webhook_client
from shared.problems import Problem

PUBLIC, OTHER_PUBLIC = ip_address("93.184.216.34"), ip_address("93.184.216.35")


class Recorder(httpcore.AsyncNetworkBackend):
    """Records where connections would go; ``failing`` hosts refuse the connection."""

    def __init__(self, failing: Iterable[str] = ()) -> None:
        self.connects: list[tuple[str, int]] = []
        self.failing = set(failing)

    async def connect_tcp(self, host: str, port: int, *args: object, **kwargs: object) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host in self.failing:
            raise httpcore.ConnectError("connection refused")
        return httpcore.AsyncMockStream([])


class Resolver:
    """Answers each lookup of a name with the next answer: a rebinding name."""

    def __init__(self, *answers: tuple[Address, ...]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> tuple[Address, ...]:
        self.lookups.append(host)
        return self.answers.pop(0)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "2130706433", "127.1", "0x7f.1", "0177.0.0.1", "127.0.0.1.", "::1", "::ffff:7f00:1",
             "localhost", "LOCALHOST.", "0.0.0.0", "0", "169.254.169.254", "10.0.0.1", "fe80::1"],
)  # fmt: skip
async def test_a_host_spelling_a_refused_address_is_never_connected_nor_resolved(host: str) -> None:
    inner, resolver = Recorder(), Resolver()
    with pytest.raises(AddressRefused):
        await VettedNetwork([], inner, resolver).connect_tcp(host, 80)
    assert inner.connects == [] and resolver.lookups == []


async def test_the_socket_goes_to_the_address_that_was_judged_not_to_a_second_lookup() -> None:
    inner = Recorder()
    rebinding = Resolver((PUBLIC,), (ip_address("127.0.0.1"),))
    await VettedNetwork([], inner, rebinding).connect_tcp("hooks.example.org", 443)
    assert inner.connects == [(str(PUBLIC), 443)]
    assert rebinding.lookups == ["hooks.example.org"]
    # The next connection looks the name up again and is judged again.
    with pytest.raises(AddressRefused, match=r"hooks\.example\.org is a loopback address"):
        await VettedNetwork([], inner, rebinding).connect_tcp("hooks.example.org", 443)
    assert inner.connects == [(str(PUBLIC), 443)]


async def test_one_refused_address_among_several_refuses_the_name() -> None:
    inner = Recorder()
    with pytest.raises(AddressRefused, match="private"):
        await VettedNetwork([], inner, Resolver((PUBLIC, ip_address("10.1.2.3")))).connect_tcp("mixed.example", 80)
    assert inner.connects == []


async def test_the_next_judged_address_is_tried_when_one_does_not_answer() -> None:
    inner = Recorder(failing=[str(PUBLIC)])
    await VettedNetwork([], inner, Resolver((PUBLIC, OTHER_PUBLIC))).connect_tcp("two.example", 80)
    assert inner.connects == [(str(PUBLIC), 80), (str(OTHER_PUBLIC), 80)]


async def test_an_allowed_network_is_connected_by_address() -> None:
    inner = Recorder()
    allowed = [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    await VettedNetwork(allowed, inner, Resolver()).connect_tcp("localhost", 8080)
    assert inner.connects == [("127.0.0.1", 8080)]


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    async def nowhere(host: str, port: int) -> tuple[Address, ...]:
        raise OSError("Name or service not known")

    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        await VettedNetwork([], Recorder(), nowhere).connect_tcp("nowhere.invalid", 80)


async def test_the_webhook_client_refuses_before_any_connection() -> None:
    # The dispatcher's client, as built: its pool uses the vetted network (a refused host
    # fails with AddressRefused, not with a connection error from port 9).
    async with webhook_client([], timeout=5, max_connections=4) as client:
        for url in ["http://2130706433:9/hook", "http://[::1]:9/", "http://localhost:9/", "http://evil@127.0.0.1:9/"]:
            with pytest.raises(AddressRefused):
                await client.post(url, content=b"{}")
    # No environment proxy, no redirects followed.
    assert client.follow_redirects is False and client.trust_env is False


async def test_loopback_names_are_known_without_a_resolver() -> None:
    assert await addresses_of("localhost", 80) == (ip_address("127.0.0.1"), ip_address("::1"))
    assert await addresses_of("[::1]", 80) == (ip_address("::1"),)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8001/v1/households", "loopback"),
        ("http://[::1]:8003/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://localhost:22/", "loopback"),
        ("http://evil@127.0.0.1/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0:8005/", "unspecified"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.0.0.1/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("http://224.0.0.1/", "multicast"),
    ],
)
async def test_a_subscription_url_to_a_refused_address_is_a_422_naming_the_field(url: str, reason: str) -> None:
    with pytest.raises(Problem) as refused:
        await check_subscription_url(url, [], resolve_seconds=5)
    assert (refused.value.status, refused.value.code) == (422, "WEBHOOK_ADDRESS_REFUSED")
    assert refused.value.extra == {"field": "url", "reason": reason}


async def test_a_subscription_url_inside_the_allow_list_is_accepted() -> None:
    allowed = [ip_network("10.20.0.0/16")]
    await check_subscription_url("https://10.20.0.7/hook", allowed, resolve_seconds=5)
    with pytest.raises(Problem):
        await check_subscription_url("https://10.21.0.7/hook", allowed, resolve_seconds=5)
