"""A subsidy claim as the district finance receives it (shared/tabular.py): the sheet of its
lines with the district's usual columns (Chinese titles, heading lines: bank, period, filed
date; a 合计 row) and a second sheet of what is excluded. CSV carries the lines only."""

from __future__ import annotations

from collections.abc import Sequence

from services.loans.domain.subsidy_claims import masked_subject, policy_text
from services.loans.models import SubsidyClaim, SubsidyClaimLine
from shared.tabular import Column, Sheet

STATUS_TITLES = {
    "filed": "已申报",
    "approved": "已核准",
    "part_approved": "部分核准",
    "returned": "已退回",
    "paid": "已拨付",
}

# The district's usual columns of a 贴息资金拨付 list. 身份证号 is left out: loans holds no ID
# numbers (registry does, encrypted), so the borrower is its masked subject id.
LINE_COLUMNS = (
    Column("number", "序号", "int"),
    Column("borrower", "借款人"),
    Column("village_code", "村"),
    Column("principal", "贷款金额", "money"),
    Column("disbursed_on", "贷款发放日", "date"),
    Column("maturity_on", "到期日", "date"),
    Column("days", "计息天数", "int"),
    Column("annual_rate", "年利率", "rate"),
    Column("subsidy_rate", "贴息利率", "rate"),
    Column("policy", "贴息比例/政策"),
    Column("subsidy", "贴息金额", "money"),
    Column("approved", "核准金额", "money"),
    Column("reason", "核减原因"),
    Column("loan_id", "贷款编号"),
)
EXCLUDED_COLUMNS = (
    Column("number", "序号", "int"),
    Column("borrower", "借款人"),
    Column("village_code", "村"),
    Column("forfeited_days", "黑名单天数", "int"),
    Column("forfeited", "不予贴息金额", "money"),
    Column("penalty", "罚息及复利", "money"),
    Column("loan_id", "贷款编号"),
)


def _heading(claim: SubsidyClaim, bank: str, title: str) -> list[tuple[str, object]]:
    return [
        (title, ""),
        ("贷款银行", bank),
        ("贴息期间", f"{claim.period_start} 至 {claim.period_end}"),
        ("申报日期", claim.filed_on),
        ("申请编号", claim.id),
        ("状态", STATUS_TITLES.get(claim.status, claim.status)),
    ]


def claim_sheets(claim: SubsidyClaim, lines: Sequence[SubsidyClaimLine], bank: str) -> list[Sheet]:
    claimed = [line for line in lines if line.subsidy]
    rows = [
        {
            "number": n,
            "borrower": masked_subject(line.subject_id),
            "village_code": line.village_code,
            "principal": line.principal,
            "disbursed_on": line.disbursed_on,
            "maturity_on": line.maturity_on,
            "days": line.days,
            "annual_rate": line.annual_rate,
            "subsidy_rate": line.subsidy_rate,
            "policy": policy_text(line.annual_rate, line.subsidy_rate, claim.policy),
            "subsidy": line.subsidy,
            "approved": line.approved,
            "reason": line.reason,
            "loan_id": line.loan_id,
        }
        for n, line in enumerate(claimed, start=1)
    ]
    totals = {
        "borrower": "合计",
        "principal": sum(line.principal for line in claimed),
        "days": sum(line.days for line in claimed),
        "subsidy": claim.claimed,
        "approved": claim.approved,
    }
    excluded = [line for line in lines if line.forfeited or line.penalty]
    excluded_rows = [
        {
            "number": n,
            "borrower": masked_subject(line.subject_id),
            "village_code": line.village_code,
            "forfeited_days": line.forfeited_days,
            "forfeited": line.forfeited,
            "penalty": line.penalty,
            "loan_id": line.loan_id,
        }
        for n, line in enumerate(excluded, start=1)
    ]
    excluded_totals = {"borrower": "合计", "forfeited": claim.forfeited, "penalty": claim.penalty}
    return [
        Sheet(
            "贴息资金拨付申请表", LINE_COLUMNS, rows, totals, _heading(claim, bank, "扶贫小额贷款贴息资金拨付申请表")
        ),
        Sheet("不予贴息明细", EXCLUDED_COLUMNS, excluded_rows, excluded_totals, _heading(claim, bank, "不予贴息明细")),
    ]
