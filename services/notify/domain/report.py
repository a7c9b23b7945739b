"""The monthly programme report (issue 26 item 5), as of a past month-end, from dated sources.

Pure: the caller fetches the figures (risk's village histories, decisions, losses and the
fund's statement, loans' trial balance) and this builds a ``Report`` of what the district
stood at on the month's last day. Every figure is from a dated record, so the same month
gives the same report however much business came after:

- a village's figures: its last history row on or before the month end (risk keeps one row
  per business date on which they changed; carried forward, as domain/trend.py);
- frozen villages and halted townships: the decision log replayed in order up to the first
  decision dated after the month end (the last village_frozen/unfrozen, township_halted/
  resumed of each); a decision without a business date (a township re-decided when the
  registry adds a village) counts where it stands in that order;
- losses: those written off on or before the month end, with the split made at the write-off
  (recoveries after it are the fund statement's, not a loss's);
- the fund: the statement of the month (opening, movements by kind, closing).

What has no dated source is named in ``notes`` rather than shown as if historical.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from services.notify.domain.trend import DayFigures, npl_ratio, township_trend

ZERO = Decimal("0.00")
PARTIES = ("mutual_guarantee", "government", "bank", "insurer")
FUND_KINDS = ("top_up", "loss", "recovery")


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def over_threshold(non_performing: Decimal, outstanding: Decimal, threshold: Decimal) -> bool:
    # 004 §6(3): a village is over the line when its NPL ratio exceeds 3%, strictly, decided on
    # the exact figures (both two-place decimals, so the product is exact).
    return outstanding > 0 and non_performing > threshold * outstanding


@dataclass(frozen=True)
class Place:
    code: str
    name: str
    township_code: str = ""


@dataclass(frozen=True)
class DecisionRecord:
    kind: str  # village_frozen, village_unfrozen, township_halted, township_resumed
    code: str
    manual: bool
    reason: str
    decided_by: str
    business_date: date | None


@dataclass(frozen=True)
class LossRecord:
    loan_id: str
    village_code: str
    business_date: date
    loss: Decimal
    shares: Mapping[str, Decimal]  # by party (PARTIES)


@dataclass(frozen=True)
class FundMonth:
    opening: Decimal
    totals: Mapping[str, Decimal]  # by kind, signed (a loss is negative)
    closing: Decimal


@dataclass(frozen=True)
class Sources:
    """What the report reads, each figure dated (oldest decision first)."""

    year: int
    month: int
    townships: Sequence[Place]
    villages: Sequence[Place]
    histories: Mapping[str, Sequence[DayFigures]]
    decisions: Sequence[DecisionRecord]
    losses: Sequence[LossRecord]
    fund: FundMonth
    leverage: Decimal
    ledger_principal: Decimal  # loans' trial balance, the loans account as of the month end
    threshold: Decimal


@dataclass(frozen=True)
class VillageRow:
    code: str
    name: str
    township_code: str
    outstanding: Decimal
    non_performing: Decimal
    npl_ratio: Decimal
    over: bool


@dataclass(frozen=True)
class TownshipRow:
    code: str
    name: str
    villages: int
    over: int
    frozen: int
    outstanding: Decimal
    non_performing: Decimal
    npl_ratio: Decimal
    halted: bool


@dataclass(frozen=True)
class FrozenVillage:
    code: str
    name: str
    township_name: str
    since: date | None
    manual: bool
    reason: str
    decided_by: str
    npl_ratio: Decimal


@dataclass(frozen=True)
class LossTotals:
    count: int
    loss: Decimal
    shares: Mapping[str, Decimal]


@dataclass(frozen=True)
class Report:
    year: int
    month: int
    month_end: date
    outstanding: Decimal
    non_performing: Decimal
    npl_ratio: Decimal
    ledger_principal: Decimal
    villages: int
    villages_over: int
    villages_frozen: int
    townships: Sequence[TownshipRow]
    townships_halted: int
    frozen: Sequence[FrozenVillage]
    losses_month: LossTotals
    losses_year: LossTotals
    fund: FundMonth
    capacity: Decimal
    capacity_used: Decimal  # the district's outstanding over the capacity, four places
    trend: Sequence[tuple[date, Decimal]]  # the district's NPL ratio, this year to the month end
    threshold: Decimal
    notes: Sequence[str] = field(default_factory=tuple)

    @property
    def period(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def _latest(days: Sequence[DayFigures], end: date) -> DayFigures | None:
    found = [d for d in days if d.business_date <= end]
    return max(found, key=lambda d: d.business_date) if found else None


def _in_force(decisions: Sequence[DecisionRecord], end: date) -> list[DecisionRecord]:
    """The decisions made by the month end: those before the first one dated after it."""
    out: list[DecisionRecord] = []
    for d in decisions:
        if d.business_date is not None and d.business_date > end:
            break
        out.append(d)
    return out


def _loss_totals(losses: Sequence[LossRecord]) -> LossTotals:
    return LossTotals(
        count=len(losses),
        loss=sum((x.loss for x in losses), ZERO),
        shares={p: sum((x.shares.get(p, ZERO) for x in losses), ZERO) for p in PARTIES},
    )


def build(src: Sources) -> Report:
    end = month_end(src.year, src.month)
    names = {t.code: t.name for t in src.townships}
    rows: list[VillageRow] = []
    for v in src.villages:
        last = _latest(src.histories.get(v.code, ()), end)
        o, n = (last.outstanding, last.non_performing) if last else (ZERO, ZERO)
        rows.append(
            VillageRow(v.code, v.name, v.township_code, o, n, npl_ratio(n, o), over_threshold(n, o, src.threshold))
        )

    decided = _in_force(src.decisions, end)
    frozen_by: dict[str, DecisionRecord] = {}
    halted: set[str] = set()
    for d in decided:
        if d.kind == "village_frozen":
            frozen_by[d.code] = d
        elif d.kind == "village_unfrozen":
            frozen_by.pop(d.code, None)
        elif d.kind == "township_halted":
            halted.add(d.code)
        elif d.kind == "township_resumed":
            halted.discard(d.code)

    townships = []
    for t in src.townships:
        own = [r for r in rows if r.township_code == t.code]
        o = sum((r.outstanding for r in own), ZERO)
        n = sum((r.non_performing for r in own), ZERO)
        townships.append(
            TownshipRow(
                t.code,
                t.name,
                len(own),
                sum(r.over for r in own),
                sum(r.code in frozen_by for r in own),
                o,
                n,
                npl_ratio(n, o),
                t.code in halted,
            )
        )

    by_code = {r.code: r for r in rows}
    frozen = [
        FrozenVillage(
            code,
            by_code[code].name if code in by_code else code,
            names.get(by_code[code].township_code, "") if code in by_code else "",
            d.business_date,
            d.manual,
            d.reason,
            d.decided_by,
            by_code[code].npl_ratio if code in by_code else Decimal("0.0000"),
        )
        for code, d in sorted(frozen_by.items())
    ]

    outstanding = sum((r.outstanding for r in rows), ZERO)
    non_performing = sum((r.non_performing for r in rows), ZERO)
    month_start, year_start = date(src.year, src.month, 1), date(src.year, 1, 1)
    capacity = src.fund.closing * src.leverage
    used = (
        (outstanding / capacity).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        if capacity > 0
        else Decimal("0.0000")
    )
    trend = [
        (day, ratio)
        for day, _, _, ratio in township_trend({c: list(days) for c, days in src.histories.items()})
        if year_start <= day <= end
    ]
    return Report(
        year=src.year,
        month=src.month,
        month_end=end,
        outstanding=outstanding,
        non_performing=non_performing,
        npl_ratio=npl_ratio(non_performing, outstanding),
        ledger_principal=src.ledger_principal,
        villages=len(rows),
        villages_over=sum(r.over for r in rows),
        villages_frozen=len(frozen),
        townships=townships,
        townships_halted=sum(t.halted for t in townships),
        frozen=frozen,
        losses_month=_loss_totals([x for x in src.losses if month_start <= x.business_date <= end]),
        losses_year=_loss_totals([x for x in src.losses if year_start <= x.business_date <= end]),
        fund=src.fund,
        capacity=capacity,
        capacity_used=used,
        trend=trend,
        threshold=src.threshold,
        notes=NOTES,
    )


# What the report cannot date, said in it (docs/console.md, "The monthly programme report").
NOTES = (
    "信用户覆盖率(003 附件1)无按日记录,本报告不列;当前数见 GET /v1/indicators。",
    "行政村与乡镇名录为生成时的名录(登记无生效日期);月末后新登记的村计为余额为零。",
    "风险补偿基金放大倍数为生成时的设定(VCREDIT_RISK_FUND_LEVERAGE)。",
    "损失按核销时的分担计;其后的追偿见风险补偿基金变动。",
)
