"""Notify (issue 7) on both backends: webhooks against real local HTTP receivers (retries
with back-off, dead deliveries, a slow subscriber that delays no one, redelivery), the SSE
stream over a real uvicorn server with resumption by Last-Event-ID, and bulletins and
notices. The other services appear as the events they publish."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date

import httpx
import pytest
from cloudevents.v1.http import from_http
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notify.domain.signing import standard_secret, verify_signature
from shared.catalogue import (
    BulletinIssued,
    HouseholdRegistered,
    NoticeStarted,
    TitleAwarded,
    VillageFreeze,
)
from shared.events import Envelope, new_event
from tests.conftest import TOKEN, Infra
from tests.support.http_server import serve
from tests.support.system import System
from tests.support.waiting import wait_until

TOWNSHIP = "410102003"
V1, V2 = "410102003001", "410102003002"
SECRET = "whsec-0123456789abcdef"
# The receivers below listen on loopback, which webhooks may reach only when listed (issue 21).
LOOPBACK_ALLOWED = '["127.0.0.0/8", "::1/128"]'


def _settings(monkeypatch: pytest.MonkeyPatch, *, allowed: str) -> None:
    # Small back-off so that four tries take well under a second.
    for name, value in {
        "RETRY_BASE_SECONDS": "0.05",
        "RETRY_MAX_SECONDS": "0.2",
        "MAX_ATTEMPTS": "4",
        "POLL_SECONDS": "0.05",
        "WEBHOOK_TIMEOUT_SECONDS": "10",
        "WEBHOOK_ALLOWED_NETWORKS": allowed,
    }.items():
        monkeypatch.setenv(f"VCREDIT_NOTIFY_{name}", value)


@pytest.fixture
async def system(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    _settings(monkeypatch, allowed=LOOPBACK_ALLOWED)
    async with System(infra, ["notify"]) as s:
        yield s


def _frozen(village: str, ratio: str = "0.0500", *, lifted: bool = False) -> Envelope:
    payload = VillageFreeze(
        village_code=village,
        township_code=TOWNSHIP,
        npl_ratio=ratio,
        outstanding="100000.00",
        non_performing="5000.00",
        manual=False,
        reason="npl_over_threshold",
        business_date=date(2026, 5, 1),
    )
    return new_event("risk.village.unfrozen" if lifted else "risk.village.frozen", village, payload)


# --- a real HTTP receiver -------------------------------------------------------------------


@dataclass
class Call:
    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int
    answered_at: float = 0.0


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: answers ``script[i]`` to the i-th request, then ``default``,
    after ``delay`` seconds."""

    script: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    body: bytes = b"ok"
    endless: bool = False  # announce a 1 GB body, send ``body`` and hold the connection open
    calls: list[Call] = field(default_factory=list)
    connections: int = 0  # TCP connections accepted, with or without a request
    server: asyncio.Server | None = None

    async def start(self) -> Receiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    def ok(self) -> list[Call]:
        return [c for c in self.calls if 200 <= c.status < 300 and c.answered_at]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readline()  # request line
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            index = len(self.calls)
            status = self.script[index] if index < len(self.script) else self.default
            call = Call(headers, body, time.monotonic(), status)
            self.calls.append(call)
            if self.delay:
                await asyncio.sleep(self.delay)
            length = 10**9 if self.endless else len(self.body)
            head = f"HTTP/1.1 {status} X\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + self.body)
            await writer.drain()
            call.answered_at = time.monotonic()
            if self.endless:
                await reader.read()  # until the client hangs up
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def _subscribe(client: httpx.AsyncClient, url: str, events: list[str], secret: str = SECRET) -> str:
    r = await client.post("/v1/subscriptions", json={"url": url, "events": events, "secret": secret})
    assert r.status_code == 201, r.text
    assert "secret" not in r.json()
    return str(r.json()["subscription_id"])


async def test_webhooks_retry_die_redeliver_and_isolate_slow_subscribers(system: System) -> None:
    notify = system["notify"]
    flaky = await Receiver(script=[500, 500, 500]).start()
    # An answer that would fill the delivery log (long, multi-line, with terminal escapes)
    # and never ends: only its first KiB is read, so each try ends at once, not at the timeout.
    dead = await Receiver(default=500, body=b"internal\r\n\x1b[2J" + b"secret " * 2000, endless=True).start()
    slow = await Receiver(delay=5.0).start()
    fast = await Receiver().start()
    other = await Receiver().start()
    try:
        subs = {
            name: await _subscribe(notify, r.url, ["risk.village.frozen"])
            for name, r in (("flaky", flaky), ("dead", dead), ("slow", slow), ("fast", fast))
        }
        await _subscribe(notify, other.url, ["risk.township.halted"])  # not this event

        event = _frozen(V1)
        published_at = time.monotonic()
        await system.publish(event)

        # The fast subscriber is served at once, while the slow one is still thinking.
        await wait_until(lambda: _true(bool(fast.ok())), seconds=15, what="the fast subscriber")
        # (Ordered by the receivers' own clocks below, not by "< 4 s", which a busy machine
        # can miss: the fast call arrives before the slow one answers.)

        # Flaky: three 500s, then exactly one success, signed.
        await wait_until(lambda: _true(len(flaky.ok()) == 1), seconds=15, what="the flaky subscriber to recover")
        assert [c.status for c in flaky.calls] == [500, 500, 500, 200]
        good = flaky.ok()[0]
        body = good.body
        assert Envelope.model_validate_json(body) == event
        assert good.headers["x-vcredit-event-id"] == str(event.event_id)
        assert good.headers["x-vcredit-event-type"] == "risk.village.frozen"
        assert verify_signature(
            SECRET, good.headers["x-vcredit-timestamp"], body, good.headers["x-vcredit-signature"], now=time.time()
        )
        assert not verify_signature(
            "another-secret-xxxxxx",
            good.headers["x-vcredit-timestamp"],
            body,
            good.headers["x-vcredit-signature"],
            now=time.time(),
        )

        # Dead: four tries, all 500, then in the dead list.
        async def dead_listed() -> bool:
            r = await notify.get("/v1/deliveries", params={"status": "dead"})
            return any(d["subscription_id"] == subs["dead"] for d in r.json())

        await wait_until(dead_listed, seconds=15, what="the dead delivery")
        dead_rows = (await notify.get("/v1/deliveries", params={"status": "dead"})).json()
        assert [(d["subscription_id"], d["attempts"], d["last_status_code"]) for d in dead_rows] == [
            (subs["dead"], 4, 500)
        ]
        assert len(dead.calls) == 4
        # The log keeps the status and one short printable line of the answer (issue 21).
        assert dead_rows[0]["last_error"] == "HTTP 500: internal [2J" + "secret " * 26 + "secre…"

        # The receiver has answered 200; the dispatcher records it a moment later.
        async def flaky_recorded() -> bool:
            r = await notify.get(f"/v1/subscriptions/{subs['flaky']}/deliveries")
            return [d["status"] for d in r.json()] == ["delivered"]

        await wait_until(flaky_recorded, seconds=15, what="the flaky delivery to be recorded")
        log = (await notify.get(f"/v1/subscriptions/{subs['flaky']}/deliveries")).json()
        assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [("delivered", 4, 200)]
        assert log[0]["delivered_at"] is not None and log[0]["event_id"] == str(event.event_id)

        # The slow subscriber is delivered too, once, after its 5 seconds.
        await wait_until(lambda: _true(len(slow.ok()) == 1), seconds=15, what="the slow subscriber")
        assert slow.ok()[0].answered_at - published_at >= 5.0
        assert fast.calls[0].received_at < slow.ok()[0].answered_at, "the slow subscriber held up the fast one"

        # Redelivery of the dead one once it works again.
        dead.default = 200
        r = await notify.post(f"/v1/deliveries/{dead_rows[0]['delivery_id']}/redeliver")
        assert r.status_code == 200 and r.json()["status"] == "pending", r.text
        await wait_until(lambda: _true(len(dead.ok()) == 1), seconds=15, what="the redelivery")
        # Nothing more can arrive once no delivery is pending (the dispatcher sends only those):
        # a positive witness instead of a 0.5 s pause.
        await wait_until(lambda: _none_pending(notify), what="every delivery to be delivered or dead")
        assert (len(flaky.calls), len(dead.calls), len(fast.calls), len(slow.calls)) == (4, 5, 1, 1)
        assert other.calls == []
        again = (await notify.post(f"/v1/deliveries/{dead_rows[0]['delivery_id']}/redeliver")).json()
        assert again["redeliveries"] == 2
    finally:
        for receiver in (flaky, dead, slow, fast, other):
            receiver.close()


async def test_webhooks_are_cloudevents_signed_per_standard_webhooks(system: System) -> None:
    """Receivers verify with the Standard Webhooks reference library and read the CloudEvent
    with the CloudEvents SDK, whichever kind of secret their subscription has (issue 22)."""
    notify = system["notify"]
    standard_secret_ = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
    legacy, standard = await Receiver().start(), await Receiver().start()
    try:
        await _subscribe(notify, legacy.url, ["risk.village.frozen"])  # a secret of before
        await _subscribe(notify, standard.url, ["risk.village.frozen"], secret=standard_secret_)
        event = _frozen(V1)
        await system.publish(event)
        await wait_until(lambda: _true(bool(legacy.ok() and standard.ok())), seconds=15, what="both receivers")

        for receiver, secret in ((legacy, standard_secret(SECRET)), (standard, standard_secret_)):
            call = receiver.ok()[0]
            assert Webhook(secret).verify(call.body, call.headers) == json.loads(call.body)
            assert call.headers["webhook-id"] == str(event.event_id)
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(call.body.replace(b"frozen", b"unfrozen"), call.headers)

            ce = from_http(call.headers, call.body)
            assert (ce["specversion"], ce["id"], ce["type"], ce["source"]) == (
                "1.0",
                str(event.event_id),
                "risk.village.frozen",
                "/vcredit/risk",
            )
            assert ce["time"] == event.occurred_at.isoformat().replace("+00:00", "Z")
            assert ce["partitionkey"] == V1 and ce["dataschema"] == "urn:vcredit:event:risk.village.frozen:v1"
            # Binary mode: the body is the envelope, as before.
            assert ce.get_data() == json.loads(call.body) and Envelope.model_validate_json(call.body) == event
            # Deprecated, still sent this release.
            assert call.headers["x-vcredit-event-id"] == str(event.event_id)
    finally:
        legacy.close()
        standard.close()


async def _true(value: bool) -> bool:
    return value


async def _none_pending(notify: httpx.AsyncClient) -> bool:
    r = await notify.get("/v1/deliveries", params={"status": "pending"})
    return r.status_code == 200 and r.json() == []


async def test_subscriptions_are_validated_listed_and_deactivated(system: System) -> None:
    notify = system["notify"]
    bad = [
        {"url": "ftp://example.org/hook", "events": ["risk.village.frozen"], "secret": SECRET},
        {"url": "not a url", "events": ["risk.village.frozen"], "secret": SECRET},
        {"url": "https://example.org/hook", "events": ["risk.village.exploded"], "secret": SECRET},
        {"url": "https://example.org/hook", "events": [], "secret": SECRET},
        {"url": "https://example.org/hook", "events": ["risk.village.frozen"], "secret": "short"},
    ]
    for body in bad:
        r = await notify.post("/v1/subscriptions", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await notify.get("/v1/subscriptions")).json() == []

    receiver = await Receiver().start()
    try:
        sub = await _subscribe(notify, receiver.url, ["risk.village.frozen", "risk.village.unfrozen"])
        listed = (await notify.get("/v1/subscriptions")).json()
        assert [s["subscription_id"] for s in listed] == [sub]
        assert (await notify.get(f"/v1/subscriptions/{sub}")).json()["active"] is True
        assert (await notify.get(f"/v1/subscriptions/{uuid.uuid4()}")).status_code == 404

        r = await notify.delete(f"/v1/subscriptions/{sub}")
        assert r.status_code == 200 and r.json()["active"] is False and r.json()["deactivated_at"]
        await system.publish(_frozen(V2))

        async def consumed() -> bool:
            return system.runtimes["notify"].consumer.stats.processed >= 1

        await wait_until(consumed, what="notify to consume the event")
        # Deliveries are written when the event is consumed and only those are sent: none
        # written and none pending means no call can come (no pause to see whether one does).
        assert (await notify.get(f"/v1/subscriptions/{sub}/deliveries")).json() == []
        assert await _none_pending(notify)
        assert receiver.calls == []
    finally:
        receiver.close()


# --- where webhooks may go (issue 21) ------------------------------------------------------


async def test_subscriptions_to_notifys_own_host_are_refused(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> None:
    # No allow-list: the deployed default. Loopback only, the one network a test may send
    # to; link-local and private addresses are refused by the same rule (tests/unit/notify).
    _settings(monkeypatch, allowed="[]")
    async with System(infra, ["notify"]) as system:
        notify = system["notify"]
        for url, reason in [
            ("http://127.0.0.1:8001/v1/households", "loopback"),
            ("http://[::1]:8003/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://0x7f.0.0.1/", "loopback"),
            ("http://0177.0.0.1/", "loopback"),
            ("http://127.0.0.1./", "loopback"),
            ("http://localhost:22/", "loopback"),
            ("http://LOCALHOST./", "loopback"),
            ("http://hooks.localhost/", "loopback"),
            ("http://evil@127.0.0.1/", "loopback"),
            ("http://user:pw@[::ffff:127.0.0.1]:8005/", "loopback"),
            ("http://0.0.0.0:8005/", "unspecified"),
            ("http://0/", "unspecified"),
            ("http://[::]/", "unspecified"),
        ]:
            r = await notify.post(
                "/v1/subscriptions", json={"url": url, "events": ["risk.village.frozen"], "secret": SECRET}
            )
            assert r.status_code == 422, (url, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            problem = r.json()
            assert (problem["code"], problem["field"], problem["reason"]) == ("WEBHOOK_ADDRESS_REFUSED", "url", reason)
            assert "VCREDIT_NOTIFY_WEBHOOK_ALLOWED_NETWORKS" in problem["detail"]
        assert (await notify.get("/v1/subscriptions")).json() == []


async def test_delivery_checks_the_address_again_and_never_connects_to_a_refused_one(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscriptions accepted while loopback was allowed (by address and by a name that
    resolves to it), then the allow-list emptied: the next deliveries are refused without
    a connection, and their log says why."""
    receiver = await Receiver().start()
    port = receiver.url.rsplit(":", 1)[1]
    urls = {"by address": receiver.url, "by name": f"http://localhost:{port}"}
    try:
        _settings(monkeypatch, allowed=LOOPBACK_ALLOWED)
        async with System(infra, ["notify"]) as system:
            subs = {how: await _subscribe(system["notify"], url, ["risk.village.frozen"]) for how, url in urls.items()}
            await system.publish(_frozen(V1))
            # The witness that these receivers are reachable: both deliveries arrive.
            await wait_until(lambda: _true(len(receiver.ok()) == 2), seconds=15, what="both deliveries")
            await wait_until(lambda: _none_pending(system["notify"]), what="both to be recorded")
            database_urls = {name: runtime.database_url for name, runtime in system.runtimes.items()}
        connections = receiver.connections
        assert connections == 2

        _settings(monkeypatch, allowed="[]")
        async with System(infra, ["notify"], database_urls=database_urls) as system:
            notify = system["notify"]
            second = _frozen(V2)
            await system.publish(second)

            async def refused_to_death() -> bool:
                r = await notify.get("/v1/deliveries", params={"status": "dead"})
                return len([d for d in r.json() if d["event_id"] == str(second.event_id)]) == 2

            await wait_until(refused_to_death, seconds=15, what="both deliveries of the second event to die")
            for how, sub in subs.items():
                log = (await notify.get(f"/v1/subscriptions/{sub}/deliveries")).json()
                row = next(d for d in log if d["event_id"] == str(second.event_id))
                host = "127.0.0.1" if how == "by address" else "localhost"
                assert (row["attempts"], row["last_status_code"]) == (4, None), (how, row)
                assert row["last_error"] == (
                    f"refused: {host} is a loopback address, not a webhook receiver "
                    "(VCREDIT_NOTIFY_WEBHOOK_ALLOWED_NETWORKS)"
                ), how
        # Eight refused tries, and not one of them reached the receiver's socket.
        assert receiver.connections == connections
        assert len(receiver.calls) == 2
    finally:
        receiver.close()


# --- SSE over a real server -----------------------------------------------------------------


async def _read_sse(base: str, count: int, last_event_id: str | None = None) -> list[dict[str, str]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/v1/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(20):
            async for line in response.aiter_lines():
                if line == "":
                    if "data" in current:
                        events.append(current)
                    current = {}
                    if len(events) == count:
                        break
                    continue
                name, _, value = line.partition(": ")
                current[name] = value
    return events


def _household_registered(village: str) -> Envelope:
    return new_event(
        "registry.household.registered",
        village,
        HouseholdRegistered(
            household_id=str(uuid.uuid4()),
            village_code=village,
            township_code=TOWNSHIP,
            poor_household=True,
            head_name="张三",
            id_number_masked="410***********1234",
            members=4,
            profile={},
        ),
    )


async def test_sse_stream_resumes_after_last_event_id_with_only_public_events(system: System) -> None:
    first = [_frozen(V1, f"0.0{i}00") for i in range(4, 9)]  # five public events
    await system.publish(_household_registered(V1), *first)
    async with serve(system.apps["notify"]) as base:
        got = await _read_sse(base, 3)
        assert [e["event"] for e in got] == ["risk.village.frozen"] * 3
        assert [Envelope.model_validate_json(e["data"]).event_id for e in got] == [e.event_id for e in first[:3]]
        ids = [int(e["id"]) for e in got]
        assert ids == sorted(ids)
        # Disconnected; more happens, including a private event that must never be streamed.
        later = [_frozen(V2, "0.0900"), _frozen(V2, "0.0100", lifted=True)]
        await system.publish(_household_registered(V2), *later)
        missed = first[3:] + later
        resumed = await _read_sse(base, len(missed), last_event_id=got[-1]["id"])
        assert [Envelope.model_validate_json(e["data"]).event_id for e in resumed] == [e.event_id for e in missed]
        assert [e["event"] for e in resumed][-1] == "risk.village.unfrozen"
        assert all(int(e["id"]) > ids[-1] for e in resumed)
        # ?last_event_id= works the same; nothing after the last one yet, then a new one.
        await system.publish(_frozen(V1, "0.1000"))
        tail = await _read_sse(base, 1, last_event_id=resumed[-1]["id"])
        assert Envelope.model_validate_json(tail[0]["data"]).payload["npl_ratio"] == "0.1000"
    r = await system["notify"].get("/v1/stream", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422


async def test_bulletins_and_village_notices(system: System) -> None:
    notify = system["notify"]
    bulletin = new_event(
        "risk.bulletin.issued",
        TOWNSHIP,
        BulletinIssued(
            bulletin_id="B-2026-0001",
            kind="township_halted",
            township_code=TOWNSHIP,
            township_name="城关镇",
            business_date=date(2026, 5, 1),
            villages=3,
            villages_over_threshold=1,
            villages_over=[{"code": V1, "name": "东村", "npl_ratio": "0.0500"}],
            text_zh="城关镇暂停新增贷款。",
            text_en="Chengguan halted.",
        ),
    )
    notice = new_event(
        "scoring.notice.started",
        V1,
        NoticeStarted(
            subject_kind="household",
            subject_id=str(uuid.uuid4()),
            village_code=V1,
            township_code=TOWNSHIP,
            rating_id=7,
            head_name="李四",
            grade="AA",
            credit_limit="50000.00",
            notice_starts=date(2026, 5, 1),
            notice_ends=date(2026, 5, 8),
        ),
    )
    title = new_event(
        "risk.title.awarded",
        V2,
        TitleAwarded(year=2025, kind="credit_village", code=V2, township_code=TOWNSHIP, figures={"npl": "0.0000"}),
    )
    await system.publish(bulletin, _frozen(V1), notice, title, _household_registered(V1))

    async def all_there() -> bool:
        r = await notify.get("/v1/notices")
        return len(r.json()) == 3

    await wait_until(all_there, what="notices")
    bulletins = (await notify.get("/v1/bulletins")).json()
    assert [(b["bulletin_id"], b["kind"], b["township_name"], b["text_zh"]) for b in bulletins] == [
        ("B-2026-0001", "township_halted", "城关镇", "城关镇暂停新增贷款。")
    ]
    v1 = (await notify.get("/v1/notices", params={"village_code": V1})).json()
    assert sorted((n["kind"], n["notice_ends"]) for n in v1) == [
        ("rating_notice", "2026-05-08"),
        ("village_frozen", None),
    ]
    v2 = (await notify.get("/v1/notices", params={"village_code": V2})).json()
    assert [(n["kind"], n["details"]["year"]) for n in v2] == [("title_awarded", 2025)]
    assert (await notify.get("/v1/bulletins", params={"township_code": "999"})).json() == []
