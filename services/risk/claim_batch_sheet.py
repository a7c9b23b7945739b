"""A claim batch as the table the insurer works from (shared/tabular: CSV and XLSX): one line
per claim with the loss's details, the decision and its reason, and a 合计 row."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from services.risk.claim_batches import totals
from services.risk.domain.loss import DEFAULT_SHARES
from services.risk.models import ClaimBatch, ClaimBatchLine
from shared.tabular import Column, Sheet

_DECISIONS = {"accept": "接受", "dispute": "争议", None: "待定"}
_PARTIES = {"insurer": "保险公司"}
_STATUS = {"filed": "待结算", "settled": "已结算"}


def _percent(shares: dict[str, int] | None, party: str) -> str:
    """The party's part of the split as the district writes it, e.g. 50% (004 §6(1))."""
    weights = dict(shares or DEFAULT_SHARES)
    exact = Decimal(100 * weights[party]) / Decimal(sum(weights.values()))
    return f"{exact.quantize(Decimal('0.01')).normalize():f}%"


def batch_sheet(batch: ClaimBatch, lines: Sequence[ClaimBatchLine], shares: dict[str, int] | None) -> Sheet:
    columns = (
        Column("no", "序号", "int"),
        Column("loan_id", "贷款编号"),
        Column("village", "村"),
        Column("township", "乡镇"),
        Column("written_off_on", "核销日期", "date"),
        Column("loss", "损失金额", "money"),
        Column("share", f"保险分担 ({_percent(shares, batch.party)})", "money"),
        Column("recovered", "已追回", "money"),
        Column("payable", "应付金额", "money"),
        Column("decision", "处理结果"),
        Column("reason", "理由"),
        Column("settled_amount", "结算金额", "money"),
    )
    rows = [
        {
            "no": i,
            "loan_id": line.loan_id,
            "village": line.village_name or line.village_code,
            "township": line.township_name or line.township_code,
            "written_off_on": line.written_off_on,
            "loss": line.loss,
            "share": line.share,
            "recovered": line.recovered,
            "payable": line.payable,
            "decision": _DECISIONS[line.decision],
            "reason": line.reason,
            "settled_amount": line.settled_amount,
        }
        for i, line in enumerate(lines, start=1)
    ]
    sums = totals(lines)
    return Sheet(
        name=f"保险理赔 {batch.month}",
        columns=columns,
        rows=rows,
        totals={
            "loan_id": "合计",
            "loss": sums.loss,
            "share": sums.share,
            "recovered": sums.recovered,
            "payable": sums.payable,
            "settled_amount": batch.settled_total,
        },
        heading=(
            ("理赔对象 party", f"{_PARTIES.get(batch.party, batch.party)} ({batch.party})"),
            ("月份 month", batch.month),
            ("期间 period", f"{batch.period_start} — {batch.period_end}"),
            ("状态 status", _STATUS.get(batch.status, batch.status)),
            ("结算凭证 reference", batch.reference),
        ),
    )
