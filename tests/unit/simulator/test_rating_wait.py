"""Setup and the wait for the ratings against a mocked system: the what-if score of each
household with supplied facts is asked once, before any sheet is imported (issue 27: asked
during the rating, it competed with scoring's rating of every sheet row), and a supplied
household's grade is only taken once its rating shows that score."""

from __future__ import annotations

import json
from typing import Any

import httpx

from simulator.client import Api
from simulator.district import Options, generate
from simulator.run import Simulation, supplied_facts


def _score(profile: dict[str, Any]) -> int:
    return len(json.dumps(profile, sort_keys=True, ensure_ascii=False)) % 97


async def test_what_if_scores_come_before_the_sheets_and_decide_when_a_rating_is_final() -> None:
    district = generate(Options(townships=1, villages=4, households=200))
    by_index = {h.index: h for h in district.households}
    supplied = {h.index for h in district.households if supplied_facts(h)}
    assert supplied, "the small district has households with supplied facts"
    log: list[str] = []
    patched: set[int] = set()
    rating_reads: dict[int, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        log.append(f"{method} {path}")
        if path in ("/v1/townships", "/v1/villages"):
            return httpx.Response(201, json={})
        if path.endswith("/households/import"):
            code = path.split("/")[3]
            n = len(district.households_of(code))
            return httpx.Response(200, json={"village_code": code, "registered": n, "failed": 0, "errors": []})
        if path == "/v1/scorecard/evaluate":
            return httpx.Response(200, json={"score": _score(json.loads(request.content)["profile"])})
        if path == "/v1/households" and method == "GET":
            code = request.url.params["village_code"]
            items = [
                {"household_id": f"h{h.index}", "village_code": code, "name": h.name}
                for h in district.households_of(code)
            ]
            return httpx.Response(200, json={"items": items, "next_after": None})
        if path.endswith("/profile"):
            patched.add(int(path.split("/")[3][1:]))
            return httpx.Response(200, json={})
        if path.endswith("/rating"):
            i = int(path.split("/")[3][1:])
            rating_reads[i] = rating_reads.get(i, 0) + 1
            # Scoring gets to a household's supplied facts only on the second read.
            final = i not in supplied or (i in patched and rating_reads[i] > 1)
            score = _score(by_index[i].profile) if final else -1
            return httpx.Response(200, json={"score": score, "grade": "A", "credit_limit": "30000.00"})
        if path.endswith("/notices"):
            return httpx.Response(200, json=[])
        raise AssertionError(f"{method} {path}")

    api = Api({s: f"http://{s}" for s in ("registry", "scoring")}, "token")
    api._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    sim = Simulation(api, district, months=1)
    try:
        await sim.setup()
        await sim.learn_ratings()
    finally:
        await api.aclose()

    evaluations = [n for n, line in enumerate(log) if line == "POST /v1/scorecard/evaluate"]
    imports = [n for n, line in enumerate(log) if line.endswith("/households/import")]
    assert len(evaluations) == len(supplied) and max(evaluations) < min(imports)
    assert sim.expected_scores == {i: _score(by_index[i].profile) for i in supplied}
    assert patched == supplied
    # Every supplied household was read until its rating showed the expected score.
    assert all(rating_reads[i] >= 2 for i in supplied)
    # The supplied ones and each village's last sheet row from their rating; the others from
    # the notices (none here).
    read = supplied | {district.households_of(v.code)[-1].index for v in district.villages}
    assert sim.grade == {h.index: "A" if h.index in read else "NONE" for h in district.households}
    assert sim.tally.households_registered == len(district.households) and sim.tally.anomalies == []
