"""A bank's reads of a borrower's credit through loans' HTTP API on both backends (issue 22
item 6): a subject's loans and credit lines, a loan's repayments, each instalment's bill, paid
part and state, and the borrower's statement (DOMAIN §4: interest charged, subsidy, net
due) in JSON and CSV. Amounts are worked by hand in each test."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.catalogue import RatingCertified
from shared.events import new_event
from tests.conftest import Infra
from tests.support.loans import TOWNSHIP, VILLAGE
from tests.support.system import System
from tests.support.waiting import wait_until

START = date(2026, 1, 15)
FIRST_DUE, SECOND_DUE = date(2026, 2, 15), date(2026, 3, 15)
D = Decimal


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans"], start_date=START) as system:
        yield system


async def _line(system: System, kind: str = "household") -> tuple[str, str]:
    """(subject id, credit line id) of a certified household or business."""
    subject = str(uuid.uuid4())
    await system.publish(
        new_event(
            "scoring.rating.certified",
            VILLAGE,
            RatingCertified(
                subject_kind=kind,
                subject_id=subject,
                village_code=VILLAGE,
                township_code=TOWNSHIP,
                rating_id=1,
                grade="AA",
                credit_limit="100000.00",
                certificate_no="XYZ-2026-1",
                poor_household=False,
            ),
        ),
    )
    created: dict[str, Any] = {}

    async def opens() -> bool:
        r = await system["loans"].post("/v1/credit-lines", json={f"{kind}_id": subject})
        created.update(r.json() if r.status_code == 201 else {})
        return r.status_code == 201

    await wait_until(opens, seconds=30, what="the certified rating to reach loans")
    return subject, str(created["credit_line_id"])


async def _draw(client: httpx.AsyncClient, line: str, amount: str = "10000.00") -> dict[str, Any]:
    body = {"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "equal_instalment"}
    r = await client.post("/v1/loans", json=body)
    assert r.status_code == 201, r.text
    loan: dict[str, Any] = r.json()
    return loan


async def _cob(client: httpx.AsyncClient, day: date) -> None:
    r = await client.post("/v1/cob", json={"date": str(day)})
    assert r.status_code == 200, r.text


async def _pay(client: httpx.AsyncClient, loan_id: str, amount: str) -> dict[str, Any]:
    r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": amount})
    assert r.status_code == 201, r.text
    paid: dict[str, Any] = r.json()
    return paid


def _instalment(loan: dict[str, Any], number: int) -> dict[str, Any]:
    found: dict[str, Any] = loan["schedule"][number - 1]
    assert found["number"] == number
    return found


def _progress(inst: dict[str, Any]) -> tuple[Any, ...]:
    return (inst["state"], inst["paid_interest"], inst["paid_principal"], inst["outstanding"])


def _reconciles(statement: dict[str, Any]) -> None:
    """closing = opening + drawn + interest - subsidy - paid - written_off, and each line's
    balance follows from the one before."""
    t = {k: D(v) for k, v in statement["totals"].items()}
    opening, closing = D(statement["opening_balance"]["total"]), D(statement["closing_balance"]["total"])
    assert closing == opening + t["drawn"] + t["interest"] - t["subsidy"] - t["paid"] - t["written_off"]
    balance = opening
    for line in statement["lines"]:
        balance += D(line["drawn"]) + D(line["interest"]) - D(line["subsidy"]) - D(line["paid"])
        balance -= D(line["written_off"])
        assert D(line["balance"]) == balance == D(line["balance_principal"]) + D(line["balance_interest"])
    assert balance == closing


async def test_a_partial_payment_a_missed_due_date_and_the_statement(loans: System) -> None:
    client = loans["loans"]
    _, line = await _line(loans)
    loan = await _draw(client, line)
    loan_id = loan["loan_id"]
    # By hand: 10,000.00 at 4.35% over 12 months, equal instalments: A = 853.10; period 1's
    # interest 10,000.00 × 0.0435 / 12 = 36.25, so its principal 853.10 - 36.25 = 816.85.
    first = _instalment(loan, 1)
    assert (first["principal"], first["interest"], first["net_due"]) == ("816.85", "36.25", "853.10")
    assert (first["billed"], _progress(first)) == (None, ("upcoming", "0.00", "0.00", "0.00"))

    await _cob(client, FIRST_DUE)
    first = _instalment((await client.get(f"/v1/loans/{loan_id}")).json(), 1)
    assert first["billed"] == {"principal": "816.85", "interest": "36.25", "subsidy": "0.00", "net_due": "853.10"}
    assert _progress(first) == ("due", "0.00", "0.00", "853.10")

    # 400.00 on the due date: the interest 36.25 first, then 363.75 of principal.
    paid = await _pay(client, loan_id, "400.00")
    assert (paid["interest"], paid["principal"]) == ("36.25", "363.75")
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    assert _progress(_instalment(state, 1)) == ("partly_paid", "36.25", "363.75", "453.10")  # 853.10 - 400.00
    assert _instalment(state, 2)["state"] == "upcoming"

    # Unpaid at the end of its due date: overdue the next day.
    await _cob(client, FIRST_DUE.replace(day=16))
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    assert (state["days_past_due"], _progress(_instalment(state, 1))) == (1, ("overdue", "36.25", "363.75", "453.10"))

    # The rest, 453.10, on 16 February. Period 2's contract interest is on 10,000.00 - 363.75
    # (the due date's payment counts) less the 453.10 of principal in arrears, which bears
    # penalty instead (issue 24, docs/loan-lifecycle.md): 9,183.15 × 0.003625 = 33.2889 → 33.29;
    # one of its 28 days accrued, round(33.29 / 28) = round(1.1889) = 1.19. The day in arrears
    # cost penalty: 453.10 × 4.35% × 1.5 / 360 = 0.0821 → 0.08 (no interest was in arrears, so
    # no compound). The payment pays penalty, then interest, then principal:
    # 0.08 + 1.19 + 451.83 = 453.10.
    paid = await _pay(client, loan_id, "453.10")
    assert (paid["penalty"], paid["interest"], paid["principal"]) == ("0.08", "1.19", "451.83")
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    # 853.10 paid in all, 0.08 of it penalty: 853.02 towards bill 1 (net interest first), so
    # 0.08 of its principal is still owed and still overdue.
    assert _progress(_instalment(state, 1)) == ("overdue", "36.25", "816.77", "0.08")

    r = await client.get(f"/v1/loans/{loan_id}/repayments")
    assert r.status_code == 200, r.text
    assert [(x["value_date"], x["amount"], x["interest"], x["principal"]) for x in r.json()] == [
        (str(FIRST_DUE), "400.00", "36.25", "363.75"),
        ("2026-02-16", "453.10", "1.19", "451.83"),
    ]
    second_page = (await client.get(f"/v1/loans/{loan_id}/repayments", params={"limit": 1, "offset": 1})).json()
    assert [x["amount"] for x in second_page] == ["453.10"]

    r = await client.get(f"/v1/loans/{loan_id}/statement", params={"from": str(START), "to": "2026-02-16"})
    assert r.status_code == 200, r.text
    statement = r.json()
    assert [(x["value_date"], x["kind"], x["balance"]) for x in statement["lines"]] == [
        (str(START), "drawdown", "10000.00"),
        (str(FIRST_DUE), "billing", "10036.25"),  # + interest 36.25 (the principal was owed already)
        (str(FIRST_DUE), "repayment", "9636.25"),  # - 400.00
        ("2026-02-16", "repayment", "9183.23"),  # - 453.02 (453.10 less the penalty 0.08)
    ]
    billing = statement["lines"][1]
    assert (billing["instalment"], billing["principal_due"], billing["interest"], billing["net_due"]) == (
        1,
        "816.85",
        "36.25",
        "853.10",
    )
    assert statement["opening_balance"] == {"principal": "0.00", "interest": "0.00", "total": "0.00"}
    # Principal 10,000.00 - 363.75 - 451.83 = 9,184.42; interest 36.25 billed - 37.44 paid = -1.19
    # (period 2's first day, paid before it is billed).
    assert statement["closing_balance"] == {"principal": "9184.42", "interest": "-1.19", "total": "9183.23"}
    assert statement["totals"] == {
        "drawn": "10000.00",
        "principal_due": "816.85",
        "interest": "36.25",
        "subsidy": "0.00",
        "net_due": "853.10",
        "paid": "853.02",  # 400.00 + 453.10 - 0.08 of penalty
        "paid_principal": "815.58",  # 363.75 + 451.83
        "paid_interest": "37.44",  # 36.25 + 1.19
        "written_off": "0.00",
        "paid_penalty": "0.08",
    }
    _reconciles(statement)

    # One day: opened after the first due date's lines.
    one_day = (await client.get(f"/v1/loans/{loan_id}/statement", params={"from": "2026-02-16"})).json()
    assert one_day["to"] == "2026-02-16"  # the business date
    assert one_day["opening_balance"]["total"] == "9636.25"
    assert [x["kind"] for x in one_day["lines"]] == ["repayment"]
    _reconciles(one_day)

    # The same as CSV, by format= and by Accept.
    for extra, headers in (({"format": "csv"}, {}), ({}, {"Accept": "text/csv"})):
        r = await client.get(
            f"/v1/loans/{loan_id}/statement", params={"from": str(START), "to": "2026-02-16", **extra}, headers=headers
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
        _csv_equals_json(r.content, statement)

    # Bill 2 is charged on 9,183.15 (as above: the principal in arrears on the period's first
    # day bore penalty instead), here what the schedule projected: interest 33.29, principal as
    # scheduled 819.81 (853.10 - 33.29).
    await _cob(client, SECOND_DUE)
    second = _instalment((await client.get(f"/v1/loans/{loan_id}")).json(), 2)
    assert (second["principal"], second["interest"]) == ("819.81", "33.29")
    assert second["billed"] == {"principal": "819.81", "interest": "33.29", "subsidy": "0.00", "net_due": "853.10"}
    # Bill 1 still owes its 0.08, so none of bill 2 is paid.
    assert _progress(second) == ("due", "0.00", "0.00", "853.10")


def _csv_equals_json(content: bytes, statement: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert [r["row"] for r in rows] == ["opening_balance"] + ["line"] * len(statement["lines"]) + [
        "totals",
        "closing_balance",
    ]

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    for row, line in zip(rows[1:-2], statement["lines"], strict=True):
        assert {k: v for k, v in row.items() if k != "row"} == {k: text(v) for k, v in line.items()}
    totals = rows[-2]
    assert {k: totals[k] for k in statement["totals"]} == statement["totals"]
    for row, balance, day in ((rows[0], "opening_balance", "from"), (rows[-1], "closing_balance", "to")):
        assert (row["value_date"], row["balance_principal"], row["balance_interest"], row["balance"]) == (
            statement[day],
            *statement[balance].values(),
        )


async def test_a_business_statement_shows_the_subsidy_and_a_payoff_the_interest_to_that_day(loans: System) -> None:
    client = loans["loans"]
    _, line = await _line(loans, "business")
    loan = await _draw(client, line)
    loan_id = loan["loan_id"]
    assert (loan["annual_rate"], loan["subsidy_rate"]) == ("0.047850", "0.030000")  # 4.35% × 1.1; 3% a year
    await _cob(client, FIRST_DUE)
    # Period 1: interest 10,000.00 × 0.04785 / 12 = 39.875 → 39.88; subsidy 10,000.00 × 0.03 / 12
    # = 25.00; the borrower owes 14.88 of interest on top of the principal.
    first = _instalment((await client.get(f"/v1/loans/{loan_id}")).json(), 1)
    principal = D(first["principal"])
    assert first["billed"] == {
        "principal": first["principal"],
        "interest": "39.88",
        "subsidy": "25.00",
        "net_due": str(principal + D("14.88")),
    }
    await _pay(client, loan_id, first["billed"]["net_due"])
    # Five days into period 2 the loan is paid off: its interest to that day is charged on
    # the statement, never billed. Opening principal P2 = 10,000.00 - principal; interest
    # P2 × 0.04785 / 12, subsidy P2 × 0.03 / 12, each accrued 5/28 of (rounded to the fen).
    await _cob(client, date(2026, 2, 20))
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    owed = D(state["principal_outstanding"]) + D(state["interest_outstanding"])
    await _pay(client, loan_id, str(owed))
    p2 = D("10000.00") - principal
    fen = D("0.01")
    interest = (p2 * D("0.04785") / 12).quantize(fen)
    subsidy = (p2 * D("0.03") / 12).quantize(fen)
    five_days = ((interest * 5 / 28).quantize(fen), (subsidy * 5 / 28).quantize(fen))

    statement = (await client.get(f"/v1/loans/{loan_id}/statement")).json()
    assert [x["kind"] for x in statement["lines"]] == ["drawdown", "billing", "repayment", "interest", "repayment"]
    payoff_interest = statement["lines"][3]
    assert (payoff_interest["value_date"], payoff_interest["instalment"]) == ("2026-02-20", 2)
    assert (D(payoff_interest["interest"]), D(payoff_interest["subsidy"])) == five_days
    assert statement["closing_balance"] == {"principal": "0.00", "interest": "0.00", "total": "0.00"}
    assert statement["totals"]["interest"] == str(D("39.88") + five_days[0])
    assert statement["totals"]["subsidy"] == str(D("25.00") + five_days[1])
    _reconciles(statement)
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    assert state["status"] == "repaid"
    assert [x["state"] for x in state["schedule"]] == ["paid"] + ["prepaid"] * 11


async def test_a_subjects_loans_and_lines_are_listed_and_each_read_is_audited(loans: System) -> None:
    client = loans["loans"]
    household, line = await _line(loans)
    business, business_line = await _line(loans, "business")
    amounts = {(await _draw(client, line, amount))["loan_id"]: amount for amount in ("1000.00", "2000.00")}
    await _draw(client, business_line)
    drawn = sorted(amounts)  # drawn the same day: in id order, a stable order to page by

    r = await client.get("/v1/loans", params={"household_id": household})
    assert r.status_code == 200, r.text
    assert [(x["loan_id"], x["principal"]) for x in r.json()] == [(x, amounts[x]) for x in drawn]
    assert [x["loan_id"] for x in (await client.get("/v1/loans", params={"credit_line_id": line})).json()] == drawn
    paged = await client.get("/v1/loans", params={"household_id": household, "limit": 1, "offset": 1})
    assert [x["loan_id"] for x in paged.json()] == drawn[1:]
    # A household's id is not a business's.
    assert (await client.get("/v1/loans", params={"business_id": household})).json() == []
    assert (await client.get("/v1/loans", params={"household_id": str(uuid.uuid4())})).json() == []
    lines = (await client.get("/v1/credit-lines", params={"business_id": business})).json()
    assert [(x["credit_line_id"], x["business_id"]) for x in lines] == [(business_line, business)]

    # Each loan listed is a read of that household's credit data, with the stated purpose.
    log = (await client.get(f"/v1/households/{household}/queries")).json()["items"]
    listed = [q["resource_id"] for q in log if q["endpoint"] == "GET /v1/loans"]
    assert sorted(listed) == sorted(drawn + drawn + drawn[1:])
    assert {q["purpose"] for q in log} == {"vcredit test suite"}
    await client.get(f"/v1/loans/{drawn[0]}/statement")
    await client.get(f"/v1/loans/{drawn[0]}/repayments")
    log = (await client.get(f"/v1/households/{household}/queries")).json()["items"]
    assert [(q["endpoint"], q["resource_id"]) for q in log[:2]] == [
        ("GET /v1/loans/{loan_id}/repayments", drawn[0]),
        ("GET /v1/loans/{loan_id}/statement", drawn[0]),
    ]
    # Without a purpose, nothing is read.
    r = await client.get(f"/v1/loans/{drawn[0]}/statement", headers={"X-Query-Purpose": ""})
    assert (r.status_code, r.json()["code"]) == (422, "QUERY_PURPOSE_REQUIRED")


async def test_bad_filters_and_dates_are_refused_naming_the_field(loans: System) -> None:
    client = loans["loans"]
    household, line = await _line(loans)
    loan_id = (await _draw(client, line))["loan_id"]
    refused: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/loans", {}, "household_id"),
        ("/v1/loans", {"household_id": household, "credit_line_id": line}, "credit_line_id"),
        ("/v1/credit-lines", {}, "household_id"),
        ("/v1/credit-lines", {"household_id": household, "business_id": household}, "business_id"),
        (f"/v1/loans/{loan_id}/statement", {"from": "2026-01-15", "to": "2026-01-14"}, "from"),
        (f"/v1/loans/{loan_id}/statement", {"to": "9999-12-31"}, "to"),
        (f"/v1/loans/{loan_id}/statement", {"to": "2026-01-16"}, "to"),  # after the business date
        (f"/v1/loans/{loan_id}/statement", {"format": "xlsx"}, "query.format"),
        (f"/v1/loans/{loan_id}/repayments", {"limit": 5000}, "query.limit"),
    ]
    for path, params, field in refused:
        r = await client.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        body = r.json()
        fields = {body.get("field"), *(e["field"] for e in body.get("errors", []))}
        assert field in fields, (path, params, body)
    for bad in ("2026-02-30", "20260115", "'; drop table loans", "1" * 5000):
        r = await client.get(f"/v1/loans/{loan_id}/statement", params={"from": bad})
        assert r.status_code in (414, 422), (bad, r.text)
    r = await client.get(f"/v1/loans/{uuid.uuid4()}/statement")
    assert (r.status_code, r.json()["code"]) == (404, "LOAN_NOT_FOUND")
    # From long before the drawdown: an empty opening balance.
    r = await client.get(f"/v1/loans/{loan_id}/statement", params={"from": "0001-01-01"})
    assert r.status_code == 200 and r.json()["opening_balance"]["total"] == "0.00", r.text
