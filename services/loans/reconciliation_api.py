"""The bank's daily reconciliation (对账) endpoints: a closed business date's file (JSON, CSV,
XLSX), the bank's own file compared with it, and the differences until resolved. The rules
are in services/loans/reconciliation.py and domain/reconciliation.py; docs/settlement.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from services.loans import reconciliation
from services.loans.domain.reconciliation import KINDS, SUBSIDY_ACCRUED, ZERO, BankFile, BankLine, DayFile
from services.loans.models import ReconciliationDifference
from services.loans.schemas import (
    BankFileIn,
    BankFileOut,
    DifferenceOut,
    KindComparisonOut,
    ReconciliationFileOut,
    ReconciliationLineOut,
    ReconciliationTotalOut,
    ResolveIn,
)
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.tabular import FILE_RESPONSES, Column, Sheet, download
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1", tags=["reconciliation"])
BANK_FILE_ROUTE = "POST /v1/reconciliation/{date}/bank-file"

DATE_ERRORS = {
    404: ["RECONCILIATION_DATE_UNKNOWN"],
    409: ["RECONCILIATION_DATE_OPEN"],
    422: ["RECONCILIATION_DATE_IN_FUTURE"],
}
DATE_NOTES = {
    404: "RECONCILIATION_DATE_UNKNOWN: before the ledger's first business date (no close of business closed it)",
    409: "RECONCILIATION_DATE_OPEN: the business date itself; final once close of business closes it",
    422: "RECONCILIATION_DATE_IN_FUTURE: after the business date; VALIDATION_FAILED: not a date",
}

# The CSV and XLSX: one row per movement with each kind's figures in columns of their own, so
# the totals row sums every column into a meaningful total (disbursed, repaid by allocation,
# written off, recovered, subsidy accrued); a kind's count is its number of rows.
COLUMNS = (
    Column("kind", "类型 kind"),
    Column("loan_id", "贷款编号 loan"),
    Column("village_code", "村 village"),
    Column("disbursed", "发放 disbursed", "money"),
    Column("repaid", "还款 repaid", "money"),
    Column("repaid_principal", "还本 principal", "money"),
    Column("repaid_interest", "还息 interest", "money"),
    Column("repaid_penalty", "罚息复利 penalty", "money"),
    Column("written_off", "核销 written off", "money"),
    Column("written_off_principal", "核销本金 principal", "money"),
    Column("written_off_interest", "核销利息 interest", "money"),
    Column("recovered", "核销后清收 recovered", "money"),
    Column("subsidy_accrued", "应收贴息 subsidy accrued", "money"),
)
_MONEY = [c.key for c in COLUMNS if c.kind == "money"]


def _sheet(made: DayFile) -> Sheet:
    rows: list[dict[str, object]] = []
    for m in made.movements:
        row: dict[str, object] = {"kind": m.kind, "loan_id": m.loan_id, "village_code": m.village_code}
        if m.kind == "disbursement":
            row["disbursed"] = m.amount
        elif m.kind == "repayment":
            row |= {
                "repaid": m.amount,
                "repaid_principal": m.principal,
                "repaid_interest": m.interest,
                "repaid_penalty": m.penalty,
            }
        elif m.kind == "write_off":
            row |= {"written_off": m.amount, "written_off_principal": m.principal, "written_off_interest": m.interest}
        else:
            row["recovered"] = m.amount
        rows.append(row)
    rows.append({"kind": SUBSIDY_ACCRUED, "subsidy_accrued": made.subsidy_accrued})
    sums: dict[str, object] = {}
    for key in _MONEY:
        sums[key] = sum((cast(Decimal, row[key]) for row in rows if key in row), ZERO)
    return Sheet(
        name=f"对账 {made.business_date}",
        columns=COLUMNS,
        rows=rows,
        totals=sums,
        heading=(
            ("业务日期 business date", made.business_date),
            ("SHA-256", made.checksum),
            *((f"{t.kind} count", t.count) for t in made.totals),
        ),
    )


def _file_out(made: DayFile) -> ReconciliationFileOut:
    return ReconciliationFileOut(
        business_date=made.business_date,
        checksum=made.checksum,
        totals=[ReconciliationTotalOut(**vars(t)) for t in made.totals],
        subsidy_accrued=made.subsidy_accrued,
        lines=[ReconciliationLineOut(**vars(m)) for m in made.movements],
    )


@router.get(
    "/reconciliation/differences",
    response_model=list[DifferenceOut],
    summary="Differences between the bank's files and ours, open until resolved",
    dependencies=[scope("settlement:read")],
)
async def list_differences(
    session: ReadSession,
    limit: Limit = 100,
    offset: Offset = 0,
    status: Annotated[Literal["open", "resolved"] | None, Query(description="open or resolved; else all")] = None,
    date: Annotated[dt.date | None, Query(description="one business date's")] = None,
    loan_id: Annotated[str | None, Query(max_length=36, description="one loan's")] = None,
) -> list[DifferenceOut]:
    found = await reconciliation.differences(session, status, date, loan_id, limit, offset)
    return [_difference_out(d) for d in found]


@router.post(
    "/reconciliation/differences/{difference_id}/resolve",
    response_model=DifferenceOut,
    summary="Resolve a difference, saying how (bank)",
    dependencies=[scope("reconciliation:submit"), IDEMPOTENCY_KEY],
    responses=problems({404: ["DIFFERENCE_NOT_FOUND"], 409: ["DIFFERENCE_RESOLVED"]}),
)
async def resolve_difference(
    difference_id: str, body: ResolveIn, request: Request, session: Session, principal: CurrentPrincipal
) -> DifferenceOut | JSONResponse:
    async def resolved() -> DifferenceOut:
        return _difference_out(await reconciliation.resolve(session, difference_id, body.reason, principal.name))

    return await idempotent(session, request, body, resolved, status=200)


@router.get(
    "/reconciliation/{date}",
    response_model=ReconciliationFileOut,
    summary="A closed business date's reconciliation file (对账文件): movements, totals, checksum",
    description=(
        "Every disbursement, repayment (by allocation), write-off and recovery posted on the date, with "
        "counts and totals per kind, the subsidy accrued and a SHA-256 checksum of the canonical text "
        "(docs/settlement.md). Only a closed date has a file. format=csv or xlsx: one row per movement "
        "with each kind's figures in its own columns, a subsidy_accrued row and a totals row."
    ),
    responses={**FILE_RESPONSES, **problems(DATE_ERRORS, DATE_NOTES)},
    dependencies=[scope("settlement:read")],
)
async def get_file(
    date: dt.date,
    session: ReadSession,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json (default), csv or xlsx")] = "json",
) -> ReconciliationFileOut | Response:
    await reconciliation.closed_date(session, date)
    made = await reconciliation.read_file(session, date)
    if format == "json":
        return _file_out(made)
    return download([_sheet(made)], format, f"reconciliation-{date}")


@router.post(
    "/reconciliation/{date}/bank-file",
    status_code=201,
    response_model=BankFileOut,
    summary="The bank's own file of a closed business date, compared with ours (bank)",
    description=(
        "Each (loan, kind) whose count or amount differs, and the subsidy accrued if it differs, is kept "
        "as an open difference until resolved. A later file for the same date replaces that date's open "
        "differences (resolved ones stay). The file's totals must be the sums of its own lines "
        "(422 BANK_FILE_INCONSISTENT); at most VCREDIT_LOANS_RECONCILIATION_MAX_LINES lines."
    ),
    dependencies=[scope("reconciliation:submit"), IDEMPOTENCY_KEY],
    responses=problems(
        {**DATE_ERRORS, 422: ["BANK_FILE_INCONSISTENT", "RECONCILIATION_DATE_IN_FUTURE", "VALIDATION_FAILED"]},
        DATE_NOTES,
    ),
)
async def post_bank_file(
    date: dt.date, body: BankFileIn, request: Request, session: Session, principal: CurrentPrincipal
) -> BankFileOut | JSONResponse:
    bank = BankFile(
        totals={kind: (getattr(body.totals, kind).count, getattr(body.totals, kind).amount) for kind in KINDS},
        subsidy_accrued=body.subsidy_accrued,
        lines=[BankLine(line.loan_id, line.kind, line.amount) for line in body.lines],
    )

    async def compared() -> BankFileOut:
        done = await reconciliation.submit(session, date, bank, body.checksum, principal.name)
        return _bank_file_out(done)

    return await idempotent(session, request, body, compared, status=201)


def _bank_file_out(done: reconciliation.Submitted) -> BankFileOut:
    s, ours, bank = done.submission, done.ours, done.bank
    totals = []
    for t in ours.totals:
        count, amount = bank.totals[t.kind]
        totals.append(
            KindComparisonOut(
                kind=t.kind,
                ours_count=t.count,
                ours_amount=t.amount,
                theirs_count=count,
                theirs_amount=amount,
                matches=(t.count, t.amount) == (count, amount),
            )
        )
    totals.append(
        KindComparisonOut(
            kind=SUBSIDY_ACCRUED,
            ours_count=None,
            ours_amount=ours.subsidy_accrued,
            theirs_count=None,
            theirs_amount=bank.subsidy_accrued,
            matches=ours.subsidy_accrued == bank.subsidy_accrued,
        )
    )
    return BankFileOut(
        submission_id=s.id,
        business_date=s.business_date,
        checksum=s.checksum,
        bank_checksum=s.bank_checksum,
        checksum_matches=None if s.bank_checksum is None else s.bank_checksum == s.checksum,
        totals=totals,
        differences=[_difference_out(d) for d in done.differences],
    )


def _difference_out(d: ReconciliationDifference) -> DifferenceOut:
    return DifferenceOut(
        difference_id=d.id,
        business_date=d.business_date,
        kind=d.kind,
        loan_id=d.loan_id,
        village_code=d.village_code,
        ours_count=d.ours_count,
        ours_amount=d.ours_amount,
        theirs_count=d.theirs_count,
        theirs_amount=d.theirs_amount,
        status=d.status,
        opened_at=d.opened_at,
        resolved_by=d.resolved_by,
        resolved_at=d.resolved_at,
        reason=d.reason,
    )
