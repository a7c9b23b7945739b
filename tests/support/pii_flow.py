"""A day of personal data through registry and scoring, for the tests that grep what the
services log and answer (issue 9): households registered with ID numbers and names, a
village sheet imported, facts stated, ratings read, people looked up by ID number, and
requests that should fail: invalid ID numbers, an ID number where a household id goes, bad
tokens. ``Exposure`` lists every secret the flow used, for ``leaks`` to look for."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.auth import add_credential
from tests.support.system import resident_id

TOWNSHIP, VILLAGE = "410102005", "410102005001"
# Names that occur nowhere else, so finding one in a log means it came from this flow.
HEADS = ("贾宝玉", "林黛玉", "薛宝钗")
MEMBERS = ("王熙凤", "史湘云", "贾探春")
SHEET_HEADS = ("秦可卿", "妙玉")
SHEET_MEMBER = "李纨"
BAD_TOKENS = (
    "vck_bm90LWEtcmVhbC1rZXktMDEyMzQ1Njc4OQ",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.Zm9yZ2VkLXNpZ25hdHVyZQ",
    "opaque-but-wrong-token-0123456789",
)


@dataclass
class Exposure:
    id_numbers: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    responses: list[httpx.Response] = field(default_factory=list)


def _id(n: int, birth: str) -> str:
    return resident_id(n, birth=birth, region="410102")


def _broken(number: str) -> str:
    return number[:-1] + ("1" if number[-1] == "0" else "0")


# Fails its check digit: still someone's number, mistyped.
BROKEN_ID = _broken(resident_id(11, birth="19610101"))


def _x_id() -> str:
    """A valid ID number whose check character is X (the case a digit-only pattern misses)."""
    n = next(n for n in range(1000) if _id(n, "19750606").endswith("X"))
    return _id(n, "19750606")


def leaks(text: str, exposure: Exposure) -> list[str]:
    """What of the exposure appears in text: full ID numbers (either case), names, tokens."""
    found = [f"ID number {n}" for n in exposure.id_numbers if n in text or n.lower() in text]
    found += [f"name {n}" for n in exposure.names if n in text]
    found += [f"token {t[:12]}..." for t in exposure.tokens if t in text]
    return found


async def run(
    registry: httpx.AsyncClient,
    scoring: httpx.AsyncClient,
    token: str,
    credentials: Path,
    wait: Callable[[Callable[[], Awaitable[httpx.Response]]], Awaitable[httpx.Response]],
) -> Exposure:
    """``registry`` and ``scoring`` send ``token`` (all roles) by default; ``credentials``
    is the services' credentials file; ``wait`` polls a request until it succeeds
    (ratings come from events, credentials files are re-read within a second)."""
    ex = Exposure(tokens={token, *BAD_TOKENS})

    async def call(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
        r = await client.request(method, url, **kwargs)
        ex.responses.append(r)
        return r

    r = await call(registry, "POST", "/v1/townships", json={"code": TOWNSHIP, "name": "荣国镇"})
    assert r.status_code == 201, r.text
    village = {"code": VILLAGE, "name": "大观园村", "township_code": TOWNSHIP}
    assert (await call(registry, "POST", "/v1/villages", json=village)).status_code == 201

    households = []
    for n, (head, member) in enumerate(zip(HEADS, MEMBERS, strict=True)):
        head_id, member_id = _id(n, "19800101"), _id(n, "19820202")
        ex.id_numbers |= {head_id, member_id}
        ex.names |= {head, member}
        body = {
            "id_number": head_id,
            "name": head,
            "village_code": VILLAGE,
            "poor_household": n == 0,
            "profile": {"head_party_member": True, "certificates": ["homestead"]},
            "members": [{"name": member, "relation": "配偶", "id_number": member_id}],
        }
        r = await call(registry, "POST", "/v1/households", json=body)
        assert r.status_code == 201, r.text
        households.append(r.json()["household_id"])
    x_id = _x_id()
    ex.id_numbers.add(x_id)

    # A collector's API key registers a household; a bank's OAuth2 client gets a JWT and reads.
    collector_key, _ = add_credential(credentials, "flow-collector", "api_key", ("collector",), village=VILLAGE)
    client_secret, _ = add_credential(credentials, "flow-bank", "client", ("bank",))
    ex.tokens |= {collector_key, client_secret}
    body = {"id_number": _id(5, "19550505"), "name": "贾政", "village_code": VILLAGE}
    ex.id_numbers.add(_id(5, "19550505"))
    ex.names.add("贾政")
    r = await wait(functools.partial(registry.post, "/v1/households", json=body, headers=_bearer(collector_key)))
    ex.responses.append(r)
    form = {"grant_type": "client_credentials", "client_id": "flow-bank", "client_secret": client_secret}
    r = await wait(functools.partial(registry.post, "/v1/oauth/token", data=form, headers={"Authorization": ""}))
    jwt = r.json()["access_token"]
    ex.tokens.add(jwt)
    r = await call(registry, "GET", f"/v1/households/{households[0]}", headers=_bearer(jwt))
    assert r.status_code == 200, r.text
    wrong = {**form, "client_secret": "vcs_d3JvbmctY2xpZW50LXNlY3JldC0wMTIz"}
    ex.tokens.add(wrong["client_secret"])
    r = await call(registry, "POST", "/v1/oauth/token", data=wrong, headers={"Authorization": ""})
    assert r.status_code in (400, 401), r.text

    # The sheet: two good rows (one with a member), an ID number in the equipment column, a
    # row whose ID number fails its check digit.
    sheet_ids = [_id(n, "19700303") for n in range(3)]
    bad_check = _broken(sheet_ids[2])
    ex.id_numbers |= {*sheet_ids, bad_check}
    ex.names |= {*SHEET_HEADS, SHEET_MEMBER, "甄士隐", "贾雨村"}
    member_cell = json.dumps([{"name": SHEET_MEMBER, "relation": "儿媳", "id_number": _id(7, "19850505")}])
    ex.id_numbers.add(_id(7, "19850505"))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["身份证号", "姓名", "贫困户", "设备", "家庭成员"])
    writer.writerow([sheet_ids[0], SHEET_HEADS[0], "是", "", member_cell])
    writer.writerow([sheet_ids[1], SHEET_HEADS[1], "否", "", ""])
    writer.writerow([_id(8, "19660707"), "甄士隐", "否", x_id, ""])
    writer.writerow([bad_check, "贾雨村", "否", "", ""])
    ex.id_numbers.add(_id(8, "19660707"))
    r = await call(
        registry,
        "POST",
        f"/v1/villages/{VILLAGE}/households/import",
        content=out.getvalue().encode(),
        params={"filename": "大观园村.csv"},
    )
    report = r.json()
    assert (r.status_code, report["registered"], report["failed"]) == (200, 2, 2), r.text
    assert any(x_id[:3] + "*" * 11 + x_id[-4:] in e["reason"] for e in report["errors"]), report

    # Facts, ratings, lookups by ID number.
    fact = {"court_enforcement_within_3y": True}
    r = await call(registry, "PATCH", f"/v1/households/{households[1]}/profile", json=fact, headers=_as("court"))
    assert r.status_code == 200, r.text
    for household_id in households:
        ex.responses.append(await wait(functools.partial(scoring.get, f"/v1/households/{household_id}/rating")))
    for n in range(len(HEADS)):
        r = await call(registry, "GET", "/v1/households", params={"id_number": _id(n, "19820202")})
        assert [h["household_id"] for h in r.json()["items"]] == [households[n]], r.text
    r = await call(registry, "GET", f"/v1/households/{_id(0, '19800101')}")
    assert r.status_code == 404, r.text
    r = await call(scoring, "GET", f"/v1/households/{_id(1, '19800101')}/rating")
    assert r.status_code == 404, r.text

    # Invalid requests carrying ID numbers.
    invalid: list[dict[str, Any]] = [
        {"id_number": bad_check, "name": "贾雨村", "village_code": VILLAGE},
        {"id_number": _id(9, "19900909"), "name": "甄士隐", "village_code": VILLAGE, "spouse_id": x_id},
        {"id_number": _id(9, "19900909"), "name": "甄士隐", "village_code": VILLAGE, "members": x_id},
    ]
    for body in invalid:
        ex.id_numbers.add(_id(9, "19900909"))
        r = await call(registry, "POST", "/v1/households", json=body)
        assert r.status_code == 422, r.text
    r = await call(
        registry,
        "POST",
        "/v1/households",
        content=f'{{"id_number": "{x_id}", "name": "甄士隐"'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text

    # Bad tokens, in the header and in the query string.
    for bad in BAD_TOKENS:
        r = await call(registry, "GET", "/v1/households", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, r.text
    r = await call(
        registry,
        "GET",
        "/v1/households",
        params={"id_number": x_id, "access_token": BAD_TOKENS[1]},
        headers={"Authorization": ""},
    )
    assert r.status_code == 401, r.text
    return ex


def _as(source: str) -> dict[str, str]:
    return {"X-Fact-Source": source}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def response_leaks(exposure: Exposure) -> list[str]:
    """Full ID numbers in any response body (names and the caller's own token may be there)."""
    id_only = Exposure(id_numbers=exposure.id_numbers)
    return [
        f"{r.request.method} {r.request.url.path} -> {hit}"
        for r in exposure.responses
        for hit in leaks(r.text, id_only)
    ]


def lines_with(text: str, needles: Iterable[str]) -> list[str]:
    """The lines of text holding any of needles, to show where a leak is."""
    return [line for line in text.splitlines() if any(n in line for n in needles)]
