"""A claim batch as the insurer's table (services/risk/claim_batch_sheet.py): the district's
Chinese titles, the insurer's part of the split in the share's title, lines in order and a
合计 row equal to the lines' sums."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from services.risk.claim_batch_sheet import batch_sheet
from services.risk.models import ClaimBatch, ClaimBatchLine


def _batch() -> ClaimBatch:
    return ClaimBatch(
        id="b1",
        party="insurer",
        month="2026-05",
        period_start=date(2026, 5, 1),
        period_end=date(2026, 5, 31),
        status="settled",
        filed_by="bank",
        filed_on=date(2026, 6, 1),
        filed_at=datetime(2026, 6, 1, tzinfo=UTC),
        reference="PICC-2026-05",
        settled_total=Decimal("7499.99"),
    )


def _line(loan_id: str, loss: str, share: str, recovered: str, decision: str | None) -> ClaimBatchLine:
    payable = Decimal(share) - Decimal(recovered)
    return ClaimBatchLine(
        batch_id="b1",
        loan_id=loan_id,
        party="insurer",
        village_code="410102003001",
        village_name="" if loan_id == "L3" else "东村",
        township_code="410102003",
        township_name="城关镇",
        written_off_on=date(2026, 5, 17),
        loss=Decimal(loss),
        share=Decimal(share),
        recovered=Decimal(recovered),
        payable=payable,
        decision=decision,
        reason="no collection record" if decision == "dispute" else None,
        settled_amount=payable if decision == "accept" else None,
        holding=False,
    )


def test_the_sheet_has_the_districts_columns_and_its_totals() -> None:
    lines = [
        _line("L1", "10000.00", "5000.00", "0.00", "accept"),
        _line("L2", "8000.02", "4000.01", "0.00", "dispute"),
        _line("L3", "6000.00", "3000.00", "500.01", "accept"),
    ]
    sheet = batch_sheet(_batch(), lines, None)
    assert [c.title for c in sheet.columns] == [
        "序号",
        "贷款编号",
        "村",
        "乡镇",
        "核销日期",
        "损失金额",
        "保险分担 (50%)",
        "已追回",
        "应付金额",
        "处理结果",
        "理由",
        "结算金额",
    ]
    assert [(r["no"], r["loan_id"], r["decision"]) for r in sheet.rows] == [
        (1, "L1", "接受"),
        (2, "L2", "争议"),
        (3, "L3", "接受"),
    ]
    assert sheet.rows[2]["village"] == "410102003001", "a village risk has no name for shows its code"
    assert sheet.totals == {
        "loan_id": "合计",
        "loss": Decimal("24000.02"),
        "share": Decimal("12000.01"),
        "recovered": Decimal("500.01"),
        "payable": Decimal("11500.00"),
        "settled_amount": Decimal("7499.99"),
    }
    assert ("月份 month", "2026-05") in sheet.heading


def test_the_share_title_follows_the_configured_split() -> None:
    sheet = batch_sheet(_batch(), [], {"government": 1, "bank": 1, "insurer": 1})
    assert sheet.columns[6].title == "保险分担 (33.33%)"
    sheet = batch_sheet(_batch(), [], {"government": 40, "bank": 20, "insurer": 40})
    assert sheet.columns[6].title == "保险分担 (40%)"
