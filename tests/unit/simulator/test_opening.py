"""The opening day's whole-village calls while loans is still applying the certificates:
every graded household still gets its line that day, but the villages ask again one at a
time until one finds all its households certified, then the others at once (issue 27: a
hundred villages asking every few seconds kept loans from applying the certificates)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta

import httpx

from simulator.client import Api
from simulator.district import Options, generate
from simulator.run import Simulation

DAY = date(2027, 1, 20)
CERTIFIED_AFTER_S = 2.5


async def test_villages_ask_again_one_at_a_time_until_the_certificates_are_in() -> None:
    district = generate(Options(townships=2, villages=12, households=240))
    api = Api({"loans": "http://loans"}, "token")
    sim = Simulation(api, district, months=1)
    sim.end = DAY + timedelta(days=1)  # the lines' drawdowns fall after the window
    for h in district.households:
        sim.household_ids[h.index] = f"h{h.index}"
        sim.grade[h.index] = "A"
    started = time.monotonic()
    asked: dict[str, int] = {}
    in_flight = {"now": 0, "most_before_certified": 0}

    async def loans(request: httpx.Request) -> httpx.Response:
        village = request.url.path.split("/")[3]
        asked[village] = asked.get(village, 0) + 1
        again = asked[village] > 1
        certified = time.monotonic() - started >= CERTIFIED_AFTER_S
        if again:
            in_flight["now"] += 1
            if not certified:
                in_flight["most_before_certified"] = max(in_flight["most_before_certified"], in_flight["now"])
        await asyncio.sleep(0.01)
        if again:
            in_flight["now"] -= 1
        ids = [sim.household_ids[h.index] for h in district.households_of(village)]
        if certified:
            opened = [{"household_id": i, "credit_line_id": f"l-{i}", "limit": "30000.00"} for i in ids]
            return httpx.Response(200, json={"opened": opened, "skipped": []})
        skipped = [{"household_id": i, "reason_code": "RATING_NOT_CERTIFIED"} for i in ids]
        return httpx.Response(200, json={"opened": [], "skipped": skipped})

    api._client = httpx.AsyncClient(transport=httpx.MockTransport(loans))
    try:
        await sim._run([sim._village_opener(v.code) for v in district.villages], DAY)
    finally:
        await api.aclose()

    # The same business: every graded household's line opened on the day, every village opened.
    assert sim.tally.anomalies == []
    assert sim.tally.lines_opened == len(district.households) == len(sim.lines)
    assert sim.tally.villages_opened == len(district.villages)
    assert not sim.tally.lines_skipped
    # Before the certificates were in, one village at a time asked again (about one call a
    # second); then every other village asked once more. Before, each village asked again
    # every 1 to 4 s on its own (12 villages: 3 to 4 calls each here).
    assert in_flight["most_before_certified"] == 1
    villages = len(district.villages)
    assert sim.tally.village_credit_calls <= villages + CERTIFIED_AFTER_S + 2 + villages
