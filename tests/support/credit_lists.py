"""Credit-lists helpers shared by integration tests: a household registered through
registry, and a bank's black-list proposal once risk has heard of it."""

from __future__ import annotations

from typing import Any

from tests.support.system import System, resident_id
from tests.support.waiting import wait_until

VILLAGE = "410102009001"  # the default village of test_credit_lists' hierarchy


async def register_household(system: System, n: int, name: str, village: str = VILLAGE) -> str:
    body = {"id_number": resident_id(n), "name": name, "village_code": village, "profile": {}}
    r = await system["registry"].post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["household_id"])


async def propose_black_listing(
    system: System, keys: dict[str, dict[str, str]], household_id: str, evidence: str, by: str = "bank"
) -> dict[str, Any]:
    """A bank's proposal (made with ``keys[by]``), once risk has heard of the household (404 until then)."""
    answer: dict[str, Any] = {}

    async def proposed() -> bool:
        r = await system["risk"].post(
            "/v1/black-list/proposals",
            json={"subject_kind": "household", "subject_id": household_id, "evidence": evidence},
            headers=keys[by],
        )
        answer.update(r.json())
        assert r.status_code in (201, 404), r.text
        return r.status_code == 201

    await wait_until(proposed, what="the household to reach risk")
    return answer
