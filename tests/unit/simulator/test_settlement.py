"""The simulator's settlement (issue 25): its own record of each day's money against the
reconciliation file, the month and quarter ends, the summary section, and a step the
second principal may not take skipped and counted rather than ending the run."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from simulator.client import Api
from simulator.report import settlement_lines
from simulator.settlement import (
    DayBook,
    Settlement,
    SettlementTally,
    month_end,
    quarter_ending,
    reconciliation_mismatches,
    trial_balance_problem,
)

DAY = date(2027, 3, 31)


def _file(**totals: tuple[int, str]) -> dict[str, Any]:
    kinds = ("disbursement", "repayment", "write_off", "recovery")
    return {
        "totals": [
            {"kind": k, "count": totals.get(k, (0, "0.00"))[0], "amount": totals.get(k, (0, "0.00"))[1]} for k in kinds
        ]
    }


def test_the_day_book_sums_each_kind_and_lists_every_kind() -> None:
    book = DayBook()
    book.add(DAY, "repayment", Decimal("100.10"))
    book.add(DAY, "repayment", Decimal("0.90"))
    book.add(DAY, "disbursement", Decimal("5000.00"))
    book.add(date(2027, 4, 1), "recovery", Decimal("7.00"))
    assert book.totals(DAY) == {
        "disbursement": (1, Decimal("5000.00")),
        "repayment": (2, Decimal("101.00")),
        "write_off": (0, Decimal("0.00")),
        "recovery": (0, Decimal("0.00")),
    }
    assert book.totals(date(2027, 1, 1))["recovery"] == (0, Decimal(0))
    with pytest.raises(AssertionError):
        book.add(DAY, "subsidy_accrued", Decimal(1))


def test_a_file_that_agrees_has_no_mismatch_and_each_disagreement_is_named() -> None:
    book = DayBook()
    book.add(DAY, "repayment", Decimal("100.10"))
    book.add(DAY, "write_off", Decimal("12345.67"))
    agrees = _file(repayment=(1, "100.10"), write_off=(1, "12345.67"))
    assert reconciliation_mismatches(DAY, book.totals(DAY), agrees) == []
    # One repayment short by a fen, a recovery the simulator never made.
    differs = _file(repayment=(1, "100.09"), write_off=(1, "12345.67"), recovery=(1, "5.00"))
    found = reconciliation_mismatches(DAY, book.totals(DAY), differs)
    assert found == [
        "2027-03-31: reconciliation recovery: the file has 1 for 5.00, the simulator made 0 for 0.00",
        "2027-03-31: reconciliation repayment: the file has 1 for 100.09, the simulator made 1 for 100.10",
    ]
    # A count that differs with the same amount is a mismatch too.
    book.add(DAY, "disbursement", Decimal("0.00"))
    assert len(reconciliation_mismatches(DAY, book.totals(DAY), agrees)) == 1


@pytest.mark.parametrize(
    ("day", "is_end", "quarter"),
    [
        (date(2027, 3, 31), True, (date(2027, 1, 1), date(2027, 3, 31))),
        (date(2027, 12, 31), True, (date(2027, 10, 1), date(2027, 12, 31))),
        (date(2028, 2, 29), True, None),
        (date(2027, 2, 28), True, None),
        (date(2027, 6, 29), False, None),
        (date(2027, 6, 30), True, (date(2027, 4, 1), date(2027, 6, 30))),
    ],
)
def test_month_and_quarter_ends(day: date, is_end: bool, quarter: tuple[date, date] | None) -> None:
    assert month_end(day) is is_end
    assert quarter_ending(day) == quarter


def test_an_unbalanced_trial_balance_is_named() -> None:
    balanced = {"totals": {"debit_normal": "10.00", "credit_normal": "10.00"}}
    assert trial_balance_problem(balanced, "after 2027-03") is None
    off = {"totals": {"debit_normal": "10.00", "credit_normal": "9.99"}}
    assert trial_balance_problem(off, "after 2027-03") == (
        "trial balance after 2027-03: debit-normal 10.00 != credit-normal 9.99"
    )


def test_the_summary_section_gives_the_settlement_figures() -> None:
    t = SettlementTally(days_reconciled=273, months_closed=["2027-01", "2027-02"], subsidy_claims_filed=1)
    t.subsidy_claimed = t.subsidy_approved = t.subsidy_paid = Decimal("1234.50")
    t.subsidy_claims_approved = t.subsidy_claims_paid = 1
    t.insurer_batches_filed = t.insurer_batches_settled = 2
    t.insurer_settled = Decimal("9000.00")
    t.skipped["subsidy review (approver lacks the scope)"] += 1
    text = "\n".join(settlement_lines(json.loads(json.dumps(t.summary()))))
    assert "## Settlement" in text
    assert "days reconciled against the run's own record: 273; mismatches: 0" in text
    assert "accounting months closed: 2 (2027-01, 2027-02)" in text
    assert "1 filed for 1,234.50, 1 approved for 1,234.50, 1 paid for 1,234.50" in text
    assert "2 settled for 9,000.00" in text
    assert "{'subsidy review (approver lacks the scope)': 1}" in text


Handler = Callable[[httpx.Request], httpx.Response]


def _api(handler: Handler) -> Api:
    api = Api({"loans": "http://loans", "risk": "http://risk"}, "token")
    api._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return api


def _forbidden(request: httpx.Request) -> httpx.Response:
    return httpx.Response(403, json={"code": "FORBIDDEN"})


async def test_a_quarter_end_the_approver_may_not_review_is_skipped_and_counted() -> None:
    seen: list[str] = []

    def bank(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append(f"{request.method} {path}")
        if path == "/v1/reconciliation/2027-03-31":
            return httpx.Response(200, json=_file(repayment=(1, "10.00")))
        if path == "/v1/ledger/periods/2027-03/close":
            return httpx.Response(200, json={"period": "2027-03"})
        if path == "/v1/ledger/trial-balance":
            return httpx.Response(
                200,
                json={
                    "totals": {"debit_normal": "1.00", "credit_normal": "1.00"},
                    "accounts": {"subsidy_claimed": "0.00"},
                },
            )
        if path == "/v1/subsidy-claims":
            return httpx.Response(201, json={"claim_id": "c1", "claimed": "12.30"})
        if path == "/v1/claim-batches":
            return httpx.Response(409, json={"code": "CLAIM_BATCH_EMPTY"})
        raise AssertionError(path)

    anomalies: list[str] = []
    api, approver = _api(bank), _api(_forbidden)
    settlement = Settlement(api, approver, lambda *parts: "-".join(map(str, parts)), anomalies)
    settlement.book.add(DAY, "repayment", Decimal("10.00"))
    await settlement.after_close(DAY)
    t = settlement.tally
    assert anomalies == []
    assert t.days_reconciled == 1 and t.reconciliation_mismatches == 0
    assert t.months_closed == ["2027-03"] and t.trial_balances_checked == 1
    assert t.subsidy_claims_filed == 1 and t.subsidy_claims_approved == t.subsidy_claims_paid == 0
    assert t.skipped == {"subsidy review (approver lacks the scope)": 1}
    assert t.insurer_batches_empty == 1 and t.insurer_batches_filed == 0
    # The subsidy claim filed for the whole quarter, once the month is closed.
    assert seen.index("POST /v1/ledger/periods/2027-03/close") < seen.index("POST /v1/subsidy-claims")
    await api.aclose()
    await approver.aclose()


async def test_a_mismatch_and_an_unpaid_subsidy_are_anomalies_and_the_batch_is_settled() -> None:
    bodies: dict[str, Any] = {}

    def bank(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.content:
            bodies[path] = json.loads(request.content)
        if path.startswith("/v1/reconciliation/"):
            return httpx.Response(200, json=_file(disbursement=(1, "5000.00")))
        if path.endswith("/close"):
            return httpx.Response(200, json={})
        if path == "/v1/ledger/trial-balance":
            return httpx.Response(
                200,
                json={
                    "totals": {"debit_normal": "1.00", "credit_normal": "1.00"},
                    "accounts": {"subsidy_claimed": "0.30"},
                },
            )
        if path == "/v1/subsidy-claims":
            return httpx.Response(201, json={"claim_id": "c1", "claimed": "12.30"})
        if path == "/v1/claim-batches":
            return httpx.Response(201, json={"batch_id": "b1", "lines": [{"loan_id": "L1"}, {"loan_id": "L2"}]})
        if path == "/v1/claim-batches/b1/settle":
            return httpx.Response(200, json={"settled_total": "150.00"})
        raise AssertionError(path)

    def finance(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        bodies[path] = json.loads(request.content)
        if path == "/v1/subsidy-claims/c1/review":
            return httpx.Response(200, json={"approved": "12.30"})
        if path == "/v1/subsidy-claims/c1/payments":
            return httpx.Response(201, json={})
        if path.startswith("/v1/claim-batches/b1/lines/"):
            return httpx.Response(200, json={})
        raise AssertionError(path)

    anomalies: list[str] = []
    api, approver = _api(bank), _api(finance)
    settlement = Settlement(api, approver, lambda *parts: "-".join(map(str, parts)), anomalies)
    settlement.book.add(DAY, "disbursement", Decimal("4000.00"))
    await settlement.after_close(DAY)
    t = settlement.tally
    assert anomalies == [
        "2027-03-31: reconciliation disbursement: the file has 1 for 5000.00, the simulator made 1 for 4000.00",
        "subsidy_claimed is 0.30 after the claim 2027-01-01..2027-03-31 was paid in full",
    ]
    assert t.reconciliation_mismatches == 1
    assert bodies["/v1/subsidy-claims"] == {"period_start": "2027-01-01", "period_end": "2027-03-31"}
    assert bodies["/v1/subsidy-claims/c1/payments"]["amount"] == "12.30"
    assert t.subsidy_claims_paid == 1 and t.subsidy_paid == Decimal("12.30")
    assert bodies["/v1/claim-batches"] == {"party": "insurer", "month": "2027-03"}
    assert bodies["/v1/claim-batches/b1/lines/L2/decision"] == {"decision": "accept"}
    assert t.insurer_lines_accepted == 2 and t.insurer_batches_settled == 1
    assert t.insurer_settled == Decimal("150.00")
    await api.aclose()
    await approver.aclose()


async def test_an_ordinary_day_is_only_reconciled() -> None:
    seen: list[str] = []

    def bank(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=_file())

    api = _api(bank)
    settlement = Settlement(api, None, str, [])
    await settlement.after_close(date(2027, 3, 30))
    assert seen == ["/v1/reconciliation/2027-03-30"] and settlement.tally.days_reconciled == 1
    await api.aclose()
