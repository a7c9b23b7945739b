"""A bound credential (a collector's, bound to its village; a household's own, bound to it)
asking for a thing by id outside its binding gets the very answer a thing that does not
exist gets: the same 404 and body, so it learns nothing of what exists elsewhere (issue 21
item 7c). Registry's households, scoring's ratings, loans' credit lines and loans."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from shared.auth import add_credential
from tests.conftest import Infra
from tests.support.system import System, certified_line, resident_id
from tests.support.waiting import wait_until

TOWNSHIP, VILLAGE, OTHER = "410102007", "410102007001", "410102007002"
START = date(2026, 4, 1)
Keys = dict[str, dict[str, str]]


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, Keys, dict[str, str]]]:
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    async with System(infra, ["registry", "scoring", "loans"], credentials_file=credentials, start_date=START) as s:
        registry = s["registry"]
        assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "东岭乡"})).status_code == 201
        for code, name in ((VILLAGE, "柳树村"), (OTHER, "杨树村")):
            r = await registry.post("/v1/villages", json={"code": code, "name": name, "township_code": TOWNSHIP})
            assert r.status_code == 201
        ids = {}
        for n, (who, village) in enumerate((("mine", VILLAGE), ("theirs", OTHER)), start=1):
            body = {"id_number": resident_id(n), "name": f"农户{n}", "village_code": village, "profile": {}}
            r = await registry.post("/v1/households", json=body)
            assert r.status_code == 201, r.text
            ids[who] = r.json()["household_id"]
        # Another village's household with a credit line and a loan (loans opens the line on
        # scoring's certification, published here as scoring would).
        ids["their_line"] = (await certified_line(s, OTHER, TOWNSHIP, household=ids["theirs"]))[1]
        r = await s["loans"].post(
            "/v1/loans",
            json={
                "credit_line_id": ids["their_line"],
                "amount": "1000.00",
                "term_months": 6,
                "repayment_method": "equal_principal",
            },
        )
        assert r.status_code == 201, r.text
        ids["their_loan"] = r.json()["loan_id"]

        async def rated() -> bool:
            r = await s["scoring"].get(f"/v1/households/{ids['theirs']}/rating")
            return r.status_code == 200

        await wait_until(rated, what="scoring to rate the other village's household")

        keys: Keys = {}
        for name, roles, village, household in (
            ("collector", ("collector",), VILLAGE, None),
            ("subject", ("subject",), None, ids["mine"]),
        ):
            token, _ = add_credential(credentials, name, "api_key", roles, village, household)  # type: ignore[arg-type]
            keys[name] = {"Authorization": f"Bearer {token}"}

        async def keys_read() -> bool:  # each service rereads the file within a second
            answers = [await s[svc].get("/metrics", headers=key) for svc in s.services for key in keys.values()]
            return all(r.status_code != 401 for r in answers)

        await wait_until(keys_read, what="the new credentials to be read everywhere")
        yield s, keys, ids


def _alike(other: httpx.Response, missing: httpx.Response, other_id: str, missing_id: str) -> dict[str, Any]:
    """The two answers, equal once each names the id it was asked about."""
    assert other.status_code == missing.status_code == 404, (other.text, missing.text)
    assert other.headers["content-type"] == missing.headers["content-type"] == "application/problem+json"
    assert other.json() == {
        k: v.replace(missing_id, other_id) if isinstance(v, str) else v for k, v in missing.json().items()
    }
    body: dict[str, Any] = other.json()
    return body


async def test_another_villages_or_households_things_answer_as_missing(
    system: tuple[System, Keys, dict[str, str]],
) -> None:
    s, keys, ids = system
    theirs, nobody = ids["theirs"], str(uuid.uuid4())
    cases = [
        ("registry", "/v1/households/{}", theirs, ("collector", "subject"), "HOUSEHOLD_NOT_FOUND"),
        ("registry", "/v1/households/{}/facts", theirs, ("collector", "subject"), "HOUSEHOLD_NOT_FOUND"),
        ("registry", "/v1/households/{}/queries", theirs, ("subject",), "HOUSEHOLD_NOT_FOUND"),
        ("scoring", "/v1/households/{}/rating", theirs, ("collector", "subject"), "RATING_NOT_FOUND"),
        ("loans", "/v1/credit-lines/{}", ids["their_line"], ("subject",), "CREDIT_LINE_NOT_FOUND"),
        ("loans", "/v1/loans/{}", ids["their_loan"], ("subject",), "LOAN_NOT_FOUND"),
        ("loans", "/v1/loans/{}/repayments", ids["their_loan"], ("subject",), "LOAN_NOT_FOUND"),
        ("loans", "/v1/loans/{}/statement", ids["their_loan"], ("subject",), "LOAN_NOT_FOUND"),
    ]
    for service, path, other_id, who, code in cases:
        for name in who:
            other = await s[service].get(path.format(other_id), headers=keys[name])
            missing = await s[service].get(path.format(nobody), headers=keys[name])
            assert _alike(other, missing, other_id, nobody)["code"] == code, (service, path, name)
    # Lists by another's id answer as by an unknown one's: empty (issue 22 item 6).
    for path, param, other_id in (
        ("/v1/loans", "household_id", theirs),
        ("/v1/loans", "credit_line_id", ids["their_line"]),
        ("/v1/credit-lines", "household_id", theirs),
    ):
        assert len((await s["loans"].get(path, params={param: other_id})).json()) == 1  # an unbound key sees it
        for asked in (other_id, nobody):  # a collector holds no lending:read
            r = await s["loans"].get(path, params={param: asked}, headers=keys["subject"])
            assert (r.status_code, r.json()) == (200, []), (path, param)
    # Writes by id too: a collector's profile change to another village's household.
    for hid in (theirs, nobody):
        r = await s["registry"].patch(
            f"/v1/households/{hid}/profile", json={"family_harmony": True}, headers=keys["collector"]
        )
        assert (r.status_code, r.json()["code"]) == (404, "HOUSEHOLD_NOT_FOUND")
    # Within the binding, the same paths answer.
    assert (await s["registry"].get(f"/v1/households/{ids['mine']}", headers=keys["collector"])).status_code == 200
    assert (await s["registry"].get(f"/v1/households/{theirs}")).status_code == 200
