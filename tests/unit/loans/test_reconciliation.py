"""The reconciliation file's totals and checksum, and the comparison with a bank's file
(services/loans/domain/reconciliation.py, docs/settlement.md)."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

from services.loans.domain.reconciliation import (
    KINDS,
    BankFile,
    BankLine,
    Difference,
    KindTotal,
    Movement,
    canonical_text,
    compare,
    contradictions,
    day_file,
)

D = Decimal
DAY = date(2027, 4, 20)
MOVEMENTS = [
    Movement("repayment", "loan-b", "410102003001", D("1053.10"), D("1000.00"), D("50.00"), D("3.10")),
    Movement("disbursement", "loan-c", "410102003002", D("20000.00"), D("0.00")),
    Movement("write_off", "loan-a", "410102003001", D("12345.67"), D("12000.00"), D("345.67")),
    Movement("repayment", "loan-b", "410102003001", D("200.00"), D("200.00")),
    Movement("recovery", "loan-z", "410102003003", D("10000.00")),
]


def _bank(movements: list[Movement], subsidy: Decimal, *, drop: int | None = None) -> BankFile:
    kept = [m for i, m in enumerate(movements) if i != drop]
    lines = [BankLine(m.loan_id, m.kind, m.amount) for m in kept]
    totals = {
        kind: (
            sum(1 for line in lines if line.kind == kind),
            sum((line.amount for line in lines if line.kind == kind), D("0.00")),
        )
        for kind in KINDS
    }
    return BankFile(totals, subsidy, lines)


def test_the_canonical_text_is_the_date_the_sorted_lines_and_the_subsidy() -> None:
    # Sorted by code point: "disbursement" < "recovery" < "repayment|loan-b|1053.10" <
    # "repayment|loan-b|200.00" < "write_off"; money always with two places.
    assert canonical_text(DAY, MOVEMENTS, D("12.3")) == (
        "2027-04-20\n"
        "disbursement|loan-c|20000.00|0.00|0.00|0.00\n"
        "recovery|loan-z|10000.00|0.00|0.00|0.00\n"
        "repayment|loan-b|1053.10|1000.00|50.00|3.10\n"
        "repayment|loan-b|200.00|200.00|0.00|0.00\n"
        "write_off|loan-a|12345.67|12000.00|345.67|0.00\n"
        "subsidy_accrued|12.30\n"
    )


def test_the_checksum_is_sha256_of_the_canonical_text_whatever_the_order() -> None:
    made = day_file(DAY, MOVEMENTS, D("12.30"))
    expected = hashlib.sha256(canonical_text(DAY, MOVEMENTS, D("12.30")).encode()).hexdigest()
    assert made.checksum == expected
    assert day_file(DAY, list(reversed(MOVEMENTS)), D("12.30")).checksum == expected
    # The village is descriptive: not in the checksum.
    moved = [Movement("recovery", "loan-z", "elsewhere", D("10000.00")), *MOVEMENTS[:4]]
    assert day_file(DAY, moved, D("12.30")).checksum == expected


def test_the_checksum_changes_with_an_allocation_the_date_or_the_subsidy() -> None:
    base = day_file(DAY, MOVEMENTS, D("12.30")).checksum
    reallocated = [
        Movement("repayment", "loan-b", "410102003001", D("1053.10"), D("1003.10"), D("50.00"), D("0.00")),
        *MOVEMENTS[1:],
    ]
    assert day_file(DAY, reallocated, D("12.30")).checksum != base
    assert day_file(date(2027, 4, 21), MOVEMENTS, D("12.30")).checksum != base
    assert day_file(DAY, MOVEMENTS, D("12.31")).checksum != base


def test_totals_count_and_sum_each_kind_and_list_every_kind() -> None:
    made = day_file(DAY, MOVEMENTS, D("0.00"))
    assert made.totals == (
        KindTotal("disbursement", 1, D("20000.00"), D("0.00"), D("0.00"), D("0.00")),
        KindTotal("repayment", 2, D("1253.10"), D("1200.00"), D("50.00"), D("3.10")),
        KindTotal("write_off", 1, D("12345.67"), D("12000.00"), D("345.67"), D("0.00")),
        KindTotal("recovery", 1, D("10000.00"), D("0.00"), D("0.00"), D("0.00")),
    )
    empty = day_file(DAY, [], D("0.00"))
    assert [(t.kind, t.count, t.amount) for t in empty.totals] == [(k, 0, D("0.00")) for k in KINDS]


def test_a_bank_file_whose_totals_are_not_its_lines_contradicts_itself() -> None:
    bank = _bank(MOVEMENTS, D("0.00"))
    assert contradictions(bank) == []
    wrong = BankFile({**bank.totals, "repayment": (2, D("1253.11"))}, bank.subsidy_accrued, bank.lines)
    assert contradictions(wrong) == [
        "repayment: the totals say 2 for 1253.11, the lines are 2 for 1253.10",
    ]
    miscounted = BankFile({**bank.totals, "recovery": (0, D("10000.00"))}, bank.subsidy_accrued, bank.lines)
    assert contradictions(miscounted) == ["recovery: the totals say 0 for 10000.00, the lines are 1 for 10000.00"]


def test_the_same_figures_make_no_difference() -> None:
    assert compare(day_file(DAY, MOVEMENTS, D("12.30")), _bank(MOVEMENTS, D("12.30"))) == []


def test_a_repayment_the_bank_does_not_have_is_one_difference_naming_its_loan() -> None:
    ours = day_file(DAY, MOVEMENTS, D("12.30"))
    # The bank is missing the 200.00 repayment of loan-b (it has the other one).
    assert compare(ours, _bank(MOVEMENTS, D("12.30"), drop=3)) == [
        Difference("repayment", "loan-b", 2, D("1253.10"), 1, D("1053.10")),
    ]


def test_a_loans_movements_of_a_kind_compare_as_count_and_sum() -> None:
    ours = day_file(DAY, MOVEMENTS, D("0.00"))
    # One repayment of 1,253.10 where we have two: the same sum, a different count.
    lines = [BankLine("loan-b", "repayment", D("1253.10")), *(BankLine(m.loan_id, m.kind, m.amount) for m in MOVEMENTS)]
    lines = [line for line in lines if line.kind != "repayment" or line.amount == D("1253.10")]
    assert compare(ours, BankFile({}, D("0.00"), lines)) == [
        Difference("repayment", "loan-b", 2, D("1253.10"), 1, D("1253.10")),
    ]


def test_a_line_only_the_bank_has_and_a_different_subsidy_are_differences() -> None:
    ours = day_file(DAY, MOVEMENTS, D("12.30"))
    bank = _bank(MOVEMENTS, D("12.29"))
    extra = BankFile(bank.totals, bank.subsidy_accrued, [*bank.lines, BankLine("loan-q", "disbursement", D("5.00"))])
    assert compare(ours, extra) == [
        Difference("disbursement", "loan-q", 0, D("0.00"), 1, D("5.00")),
        Difference("subsidy_accrued", None, None, D("12.30"), None, D("12.29")),
    ]
