"""A statement as the borrower or the bank receives it: JSON (``StatementOut``) or CSV.

CSV, asked for by ``?format=csv`` (a link a teller can open) or ``Accept: text/csv`` (a
client's content negotiation; ``format`` wins when both are given): one header row, then an
``opening_balance`` row, one row per line, a ``totals`` row and a ``closing_balance`` row,
with the JSON line's field names as columns and its values as text (money as fen-exact
decimal strings such as ``853.10``, dates ISO 8601, empty for none). It is UTF-8 with a byte
order mark: Excel in a Chinese locale opens a CSV without one as GBK (the ANSI code page),
which garbles any non-ASCII text, and with one as UTF-8; Python reads it with
``encoding="utf-8-sig"``. Lines end CRLF (RFC 4180, the csv module's default).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from fastapi.responses import Response

from services.loans.domain.statement import TOTALLED, Balance, Statement
from services.loans.models import Loan
from services.loans.schemas import (
    StatementBalanceOut,
    StatementLineOut,
    StatementOut,
    StatementTotalsOut,
)

COLUMNS = ["row", *StatementLineOut.model_fields]
BOM = "\ufeff"


def _balance(b: Balance) -> StatementBalanceOut:
    return StatementBalanceOut(principal=b.principal, interest=b.interest, total=b.total)


def statement_out(loan: Loan, made: Statement, start: date, end: date, today: date) -> StatementOut:
    lines = []
    for shown in made.lines:
        line, after = shown.line, shown.balance
        lines.append(
            StatementLineOut(
                value_date=line.value_date,
                kind=line.kind,
                instalment=line.instalment,
                reference=line.reference,
                received_at=line.received_at,
                **{name: getattr(line, name) for name in TOTALLED},
                balance_principal=after.principal,
                balance_interest=after.interest,
                balance=after.total,
            )
        )
    return StatementOut(
        loan_id=loan.id,
        credit_line_id=loan.credit_line_id,
        household_id=loan.subject_id if loan.subject_kind == "household" else None,
        business_id=loan.subject_id if loan.subject_kind == "business" else None,
        from_=start,
        to=end,
        business_date=today,
        opening_balance=_balance(made.opening),
        lines=lines,
        totals=StatementTotalsOut(**made.totals),
        closing_balance=_balance(made.closing),
    )


def wants_csv(accept: str | None) -> bool:
    """Whether the Accept header prefers CSV: text/csv listed, with no JSON type before it."""
    if not accept:
        return False
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "text/csv" not in types:
        return False
    json_at = [i for i, t in enumerate(types) if t in ("application/json", "*/*", "application/*")]
    return not json_at or types.index("text/csv") < json_at[0]


def _row(kind: str, values: dict[str, Any]) -> list[str]:
    return [kind, *("" if values.get(c) is None else str(values[c]) for c in COLUMNS[1:])]


def _balance_row(kind: str, day: date, b: StatementBalanceOut) -> list[str]:
    values = b.model_dump(mode="json")
    return _row(
        kind,
        {
            "value_date": day.isoformat(),
            "balance_principal": values["principal"],
            "balance_interest": values["interest"],
            "balance": values["total"],
        },
    )


def to_csv(out: StatementOut) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerow(_balance_row("opening_balance", out.from_, out.opening_balance))
    for line in out.lines:
        writer.writerow(_row("line", line.model_dump(mode="json")))
    writer.writerow(_row("totals", {"value_date": out.to.isoformat(), **out.totals.model_dump(mode="json")}))
    writer.writerow(_balance_row("closing_balance", out.to, out.closing_balance))
    return BOM + buffer.getvalue()


def csv_response(out: StatementOut) -> Response:
    name = f"statement-{out.loan_id}-{out.from_}-{out.to}.csv"
    return Response(
        to_csv(out).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Vary": "Accept"},
    )
