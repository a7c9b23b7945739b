"""The circuit breaker end to end (issue 8), driven only through the services' public HTTP
APIs (API.md), against any running system: the services as processes
(tests/e2e/test_scenario.py) or as containers (tests/e2e/test_containers.py).

A township of three villages; two households in one village and one in its neighbour are
rated, certified after the 7-day notice and given credit lines. A loan left unpaid turns
non-performing on day 91, its village's NPL ratio crosses 3% and the village freezes; one
village of three is 30% or more, so the township halts and notify carries the bulletin.
Written off as a loss, the loan is split 30/20/50, the fund pays the government's share, the
freeze and the halt lift and lending resumes.

The system must start on START (VCREDIT_START_DATE) with a fresh fund of OPENING_FUND."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.support.running_system import RunningSystem
from tests.support.system import resident_id
from vcredit.cluster import eventually

TOWNSHIP = "410102003"
V1, V2, V3 = "410102003001", "410102003002", "410102003003"
VILLAGES = {V1: "东村", V2: "西村", V3: "南村"}
START = date(2026, 1, 15)
OPENING_FUND = Decimal("10000000.00")
# DOMAIN §2's worked example: 80 + 1 + 1 + 3 + 2 + 1 + 2, +3 as a poor household = 93, AA.
AA_PROFILE = {
    "head_party_member": True,
    "head_healthy": True,
    "income_project": True,
    "certificates": ["land_contract", "homestead"],
    "family_harmony": True,
    "commercial_insurance": True,
}
# Cross-service effects normally take well under a second; the margin is for a loaded
# two-core CI machine and a consumer group still joining.
SECONDS = 30


def expected_split(loss: Decimal) -> dict[str, str]:
    """DOMAIN §5, worked out here rather than taken from risk: each party's whole fen of its
    exact share, then the fen left over to the largest remainders, ties to the larger share."""
    fen = int(loss * 100)
    shares = {"government": 30, "bank": 20, "insurer": 50}
    parts = {party: fen * share // 100 for party, share in shares.items()}
    ranking = sorted(shares, key=lambda party: (-(fen * shares[party] % 100), -shares[party]))
    for party in ranking[: fen - sum(parts.values())]:
        parts[party] += 1
    return {party: f"{Decimal(amount) / 100:.2f}" for party, amount in parts.items()}


async def _household(registry: httpx.AsyncClient, n: int, village: str, *, poor: bool) -> str:
    body = {
        "id_number": resident_id(n),
        "name": f"农户{n}",
        "village_code": village,
        "poor_household": poor,
        "profile": AA_PROFILE,
    }
    r = await registry.post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["household_id"])


async def _rating(scoring: httpx.AsyncClient, household: str, status: str) -> dict[str, Any]:
    r = await eventually(
        lambda: scoring.get(f"/v1/households/{household}/rating"),
        lambda r: r.status_code == 200 and r.json()["status"] == status,
        what=f"scoring to show {household}'s rating as {status}",
        seconds=SECONDS,
    )
    rating: dict[str, Any] = r.json()
    return rating


async def _credit_line(loans: httpx.AsyncClient, household: str) -> str:
    # Refused with RATING_NOT_CERTIFIED until the certification reaches loans; only a 201
    # writes anything, so polling the real request is safe.
    r = await eventually(
        lambda: loans.post("/v1/credit-lines", json={"household_id": household}),
        lambda r: r.status_code == 201,
        what=f"loans to open a credit line for {household}",
        seconds=SECONDS,
    )
    assert (r.json()["limit"], r.json()["available"]) == ("100000.00", "100000.00")
    return str(r.json()["credit_line_id"])


async def _cob(loans: httpx.AsyncClient, day: date) -> None:
    # One request closes every day up to `day`: a year of them takes a while on a busy machine.
    r = await loans.post("/v1/cob", json={"date": str(day)}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["business_date"] == str(day)


def _drawdown(line: str, amount: str = "1000.00") -> dict[str, Any]:
    return {"credit_line_id": line, "amount": amount, "term_months": 6}


async def _refused(loans: httpx.AsyncClient, line: str, code: str) -> None:
    """Loans refuses a new drawdown on ``line`` with ``code``, once the decision has reached it.

    A real drawdown cannot be the probe: one that slipped through before the event arrived
    would lend and change every figure after it. One over the line's limit is refused
    either way, LIMIT_EXCEEDED until loans knows (the freeze is checked first), so it
    tells when to ask for real."""
    await eventually(
        lambda: loans.post("/v1/loans", json=_drawdown(line, "100000.01")),
        lambda r: r.status_code == 409 and r.json()["code"] == code,
        what=f"loans to refuse drawdowns on {line} with {code}",
        seconds=SECONDS,
    )
    r = await loans.post("/v1/loans", json=_drawdown(line))
    assert (r.status_code, r.json()["code"]) == (409, code), r.text


async def _lends(loans: httpx.AsyncClient, line: str) -> dict[str, Any]:
    # Refused (nothing written) until the lift reaches loans, then lends once.
    r = await eventually(
        lambda: loans.post("/v1/loans", json=_drawdown(line)),
        lambda r: r.status_code == 201,
        what=f"loans to lend on {line} again",
        seconds=SECONDS,
    )
    loan: dict[str, Any] = r.json()
    return loan


async def _bulletin(notify: httpx.AsyncClient, kind: str) -> dict[str, Any]:
    r = await eventually(
        lambda: notify.get("/v1/bulletins", params={"township_code": TOWNSHIP}),
        lambda r: r.status_code == 200 and any(b["kind"] == kind for b in r.json()),
        what=f"notify to carry a {kind} bulletin",
        seconds=SECONDS,
    )
    (bulletin,) = (b for b in r.json() if b["kind"] == kind)
    return dict(bulletin)


async def run(system: RunningSystem) -> None:
    """The whole scenario; an assertion fails at the first figure that is not as DOMAIN.md says."""
    registry, scoring, loans = system.client("registry"), system.client("scoring"), system.client("loans")
    risk, notify = system.client("risk"), system.client("notify")

    # --- the district's hierarchy, households, ratings and credit lines ---------------------
    r = await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "城关镇"})
    assert r.status_code == 201, r.text
    for code, name in VILLAGES.items():
        r = await registry.post("/v1/villages", json={"code": code, "name": name, "township_code": TOWNSHIP})
        assert r.status_code == 201, r.text
    # The borrower is not a poor household: its interest is not subsidised, so the loss has
    # interest in it and fen that do not divide evenly.
    borrower = await _household(registry, 1, V1, poor=False)
    good = await _household(registry, 2, V1, poor=True)
    neighbour = await _household(registry, 3, V2, poor=True)

    for household, score in ((borrower, 90), (good, 93), (neighbour, 93)):
        rating = await _rating(scoring, household, "pending_notice")
        assert (rating["score"], rating["grade"], rating["credit_limit"]) == (score, "AA", "100000.00")
        assert rating["notice_ends"] == str(START + timedelta(days=6))
    r = await eventually(
        lambda: risk.get(f"/v1/townships/{TOWNSHIP}"),
        lambda r: r.status_code == 200 and r.json()["villages"] == 3,
        what="risk to learn the township's three villages",
        seconds=SECONDS,
    )
    assert (r.json()["name"], r.json()["halted"]) == ("城关镇", False)

    # The notice runs its 7 days; closing its last day certifies.
    await _cob(loans, START + timedelta(days=7))
    for household in (borrower, good, neighbour):
        rating = await _rating(scoring, household, "certified")
        assert rating["effective"]["credit_limit"] == "100000.00"
    borrower_line = await _credit_line(loans, borrower)
    good_line = await _credit_line(loans, good)
    neighbour_line = await _credit_line(loans, neighbour)

    r = await loans.post(
        "/v1/loans",
        json={
            "credit_line_id": borrower_line,
            "amount": "12300.00",
            "term_months": 12,
            "repayment_method": "equal_principal",
        },
    )
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    first_due = date.fromisoformat(r.json()["schedule"][0]["due_on"])
    assert first_due == date(2026, 2, 22)  # a month after the drawdown on START + 7
    r = await eventually(
        lambda: risk.get(f"/v1/villages/{V1}"),
        lambda r: r.json()["outstanding"] == "12300.00",
        what="the disbursement to reach risk",
        seconds=SECONDS,
    )
    assert (r.json()["npl_ratio"], r.json()["non_performing"], r.json()["frozen"]) == ("0.0000", "0.00", False)

    # --- unpaid: special mention up to day 90, non-performing from day 91 --------------------
    await _cob(loans, first_due + timedelta(days=90))
    loan = (await loans.get(f"/v1/loans/{loan_id}")).json()
    assert (loan["days_past_due"], loan["classification"], loan["non_performing"]) == (90, "special_mention", False)
    # Scoring learnt of the overdue loan from loans' events: a loan currently overdue is a
    # veto (DOMAIN §2, V3).
    rating = (
        await eventually(
            lambda: scoring.get(f"/v1/households/{borrower}/rating"),
            lambda r: r.json()["vetoed"] is True,
            what="scoring to veto the overdue borrower",
            seconds=SECONDS,
        )
    ).json()
    assert (rating["score"], rating["grade"], rating["credit_limit"]) == (0, "NONE", "0.00")

    await _cob(loans, first_due + timedelta(days=91))
    loan = (await loans.get(f"/v1/loans/{loan_id}")).json()
    assert (loan["days_past_due"], loan["classification"], loan["non_performing"]) == (91, "substandard", True)

    # 12,300 of 12,300 non-performing: 100% > 3%. Frozen as of day 91, not day 90.
    village = (
        await eventually(
            lambda: risk.get(f"/v1/villages/{V1}"),
            lambda r: r.json()["frozen"] is True,
            what="risk to freeze V1",
            seconds=SECONDS,
        )
    ).json()
    figures = (village["npl_ratio"], village["outstanding"], village["non_performing"])
    assert figures == ("1.0000", "12300.00", "12300.00")
    assert (village["over_threshold"], village["frozen_since"]) == (True, str(first_due + timedelta(days=91)))
    assert (await risk.get(f"/v1/villages/{V2}")).json()["frozen"] is False

    # One village of three is over: 33% >= 30%, the township halts.
    township = (
        await eventually(
            lambda: risk.get(f"/v1/townships/{TOWNSHIP}"),
            lambda r: r.json()["halted"] is True,
            what="risk to halt the township",
            seconds=SECONDS,
        )
    ).json()
    assert (township["villages"], township["villages_over_threshold"], township["villages_frozen"]) == (3, 1, 1)

    await _refused(loans, good_line, "VILLAGE_FROZEN")
    await _refused(loans, neighbour_line, "TOWNSHIP_HALTED")

    bulletin = await _bulletin(notify, "township_halted")
    assert (bulletin["township_name"], bulletin["villages"], bulletin["villages_over_threshold"]) == ("城关镇", 3, 1)
    assert [v["code"] for v in bulletin["villages_over"]] == [V1]
    assert bulletin["business_date"] == str(first_due + timedelta(days=91))
    assert "城关镇" in bulletin["text_zh"] and "东村" in bulletin["text_zh"]

    # --- collection fails: a loss after 360 days, written off and shared 30/20/50 ------------
    await _cob(loans, first_due + timedelta(days=361))
    loan = (await loans.get(f"/v1/loans/{loan_id}")).json()
    # Nothing was repaid. Contract interest runs on the principal not in arrears (issue 24: the
    # overdue principal bears penalty instead): period k on 12,300 - 1,025 × (k - 1), each
    # 1,025 × 4.35% / 12 = 3.715625 × m for m = 12 .. 1 in fen: 44.59 + 40.87 + 37.16 + 33.44
    # + 29.73 + 26.01 + 22.29 + 18.58 + 14.86 + 11.15 + 7.43 + 3.72 = 289.83.
    assert (loan["classification"], loan["principal_outstanding"], loan["interest_outstanding"]) == (
        "loss",
        "12300.00",
        "289.83",
    )
    assert Decimal(loan["penalty_outstanding"]) > 0
    r = await loans.post(f"/v1/loans/{loan_id}/write-off")
    assert r.status_code == 201, r.text
    # Realised loss = outstanding principal + accrued unpaid interest (API.md); the penalty is
    # reversed out of income, never shared.
    assert (r.json()["loss"], r.json()["business_date"]) == ("12589.83", str(first_due + timedelta(days=361)))
    loss = Decimal(r.json()["loss"])
    split = expected_split(loss)
    # 1,258,983 fen: 377,694.9 / 251,796.6 / 629,491.5 exactly; the two fen left go to the
    # largest remainders, the government's (.9) and the bank's (.6).
    assert split == {"government": "3776.95", "bank": "2517.97", "insurer": "6294.91"}

    r = await eventually(
        lambda: risk.get("/v1/losses", params={"loan_id": loan_id}),
        lambda r: r.status_code == 200 and len(r.json()) == 1,
        what="the loss to reach risk",
        seconds=SECONDS,
    )
    (row,) = r.json()
    assert (row["loss"], row["village_code"], row["township_code"]) == (f"{loss:.2f}", V1, TOWNSHIP)
    assert {party: row[party] for party in split} == split
    assert sum(Decimal(v) for v in split.values()) == loss

    balance = OPENING_FUND - Decimal(split["government"])
    fund = (
        await eventually(
            lambda: risk.get("/v1/fund"),
            lambda r: r.json()["balance"] != f"{OPENING_FUND:.2f}",
            what="the fund to pay the government's share",
            seconds=SECONDS,
        )
    ).json()
    assert (fund["balance"], fund["capacity"], fund["outstanding"]) == (
        f"{balance:.2f}",
        f"{balance * 10:.2f}",
        "0.00",
    )

    # --- nothing non-performing is left: the freeze and the halt lift -----------------------
    village = (
        await eventually(
            lambda: risk.get(f"/v1/villages/{V1}"),
            lambda r: r.json()["frozen"] is False,
            what="V1's freeze to lift",
            seconds=SECONDS,
        )
    ).json()
    assert (village["npl_ratio"], village["outstanding"], village["frozen_since"]) == ("0.0000", "0.00", None)
    township = (
        await eventually(
            lambda: risk.get(f"/v1/townships/{TOWNSHIP}"),
            lambda r: r.json()["halted"] is False,
            what="the township to resume",
            seconds=SECONDS,
        )
    ).json()
    assert (township["villages_over_threshold"], township["villages_frozen"]) == (0, 0)
    resumed = await _bulletin(notify, "township_resumed")
    assert (resumed["villages"], resumed["villages_over_threshold"], resumed["villages_over"]) == (3, 0, [])

    for line in (good_line, neighbour_line):
        loan = await _lends(loans, line)
        assert (loan["credit_line_id"], loan["principal"], loan["classification"]) == (line, "1000.00", "normal")
    r = await eventually(
        lambda: risk.get("/v1/fund"),
        lambda r: r.json()["outstanding"] == "2000.00",
        what="the new loans to reach risk",
        seconds=SECONDS,
    )
    assert r.json()["balance"] == f"{balance:.2f}"
