"""Risk helpers shared by integration tests: a township of three villages published as
registry's events, certified credit lines in them, and a close of business run on loans."""

from __future__ import annotations

from datetime import date

from shared.catalogue import TownshipCreated, VillageCreated
from shared.events import new_event
from tests.support.system import System, certified_line
from tests.support.waiting import wait_until

TOWNSHIP = "410102003"
V1, V2, V3 = "410102003001", "410102003002", "410102003003"
START = date(2026, 1, 15)


async def publish_hierarchy(system: System) -> None:
    await system.publish(
        new_event("registry.township.created", TOWNSHIP, TownshipCreated(code=TOWNSHIP, name="城关镇")),
        *(
            new_event(
                "registry.village.created", TOWNSHIP, VillageCreated(code=code, name=name, township_code=TOWNSHIP)
            )
            for code, name in ((V1, "东村"), (V2, "西村"), (V3, "南村"))
        ),
    )

    async def known() -> bool:
        return bool((await system["risk"].get(f"/v1/townships/{TOWNSHIP}")).json().get("villages") == 3)

    await wait_until(known, what="the hierarchy to reach risk")


async def village_line(system: System, village: str, limit: str = "100000.00") -> tuple[str, str]:
    return await certified_line(system, village, TOWNSHIP, limit=limit)


async def run_cob(system: System, day: date) -> None:
    r = await system["loans"].post("/v1/cob", json={"date": str(day)})
    assert r.status_code == 200, r.text
