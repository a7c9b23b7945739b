"""The monthly programme report as XLSX: one worksheet per part, through shared/tabular.py
(money cells are numbers formatted ``#,##0.00`` in columns titled 元, exact to the fen)."""

from __future__ import annotations

from decimal import Decimal

from services.notify.domain.report import PARTIES, Report, over_threshold
from shared.tabular import Column, Sheet, to_xlsx

TITLE = "金融扶贫工作领导小组月度工作报告"  # for the leading group (004 annex 1)
PARTY_TITLES = {
    "mutual_guarantee": "互助担保基金",
    "government": "政府(风险补偿基金)",
    "bank": "银行",
    "insurer": "保险",
}
FUND_TITLES = {"top_up": "财政注资", "loss": "代偿损失", "recovery": "追偿收回"}
HALTED = {True: "暂停", False: "正常"}


def _heading(report: Report, part: str) -> list[tuple[str, object]]:
    return [("报告", f"{TITLE}({part})"), ("月份", report.period), ("数据截至", report.month_end)]


def sheets(report: Report) -> list[Sheet]:
    figure = [Column("item", "项目"), Column("amount", "金额(元)", "money"), Column("count", "数量", "int")]
    overview = Sheet(
        "概况",
        figure,
        [
            {"item": "贷款余额(各村合计)", "amount": report.outstanding},
            {"item": "不良贷款余额", "amount": report.non_performing},
            {"item": "贷款本金余额(总账)", "amount": report.ledger_principal},
            {"item": "行政村", "count": report.villages},
            {"item": f"不良率超过{report.threshold:.0%}的村", "count": report.villages_over},
            {"item": "冻结的村", "count": report.villages_frozen},
            {"item": "乡镇", "count": len(report.townships)},
            {"item": "暂停新增贷款的乡镇", "count": report.townships_halted},
            {"item": "风险补偿基金月末余额", "amount": report.fund.closing},
            {"item": "本月损失", "amount": report.losses_month.loss, "count": report.losses_month.count},
            {"item": "本年累计损失", "amount": report.losses_year.loss, "count": report.losses_year.count},
        ],
        heading=[*_heading(report, "概况"), ("不良贷款率", f"{report.npl_ratio:.4f}")],
    )
    townships = Sheet(
        "乡镇",
        [
            Column("code", "乡镇代码"),
            Column("name", "乡镇"),
            Column("villages", "行政村", "int"),
            Column("over", f"超过{report.threshold:.0%}的村", "int"),
            Column("frozen", "冻结的村", "int"),
            Column("outstanding", "贷款余额(元)", "money"),
            Column("non_performing", "不良贷款(元)", "money"),
            Column("npl_ratio", "不良贷款率", "rate"),
            Column("halted", "新增贷款"),
        ],
        [
            {
                "code": t.code,
                "name": t.name,
                "villages": t.villages,
                "over": t.over,
                "frozen": t.frozen,
                "outstanding": t.outstanding,
                "non_performing": t.non_performing,
                "npl_ratio": t.npl_ratio,
                "halted": HALTED[t.halted],
            }
            for t in report.townships
        ],
        totals={
            "code": "合计",
            "villages": report.villages,
            "over": report.villages_over,
            "frozen": report.villages_frozen,
            "outstanding": report.outstanding,
            "non_performing": report.non_performing,
            "npl_ratio": report.npl_ratio,
        },
        heading=_heading(report, "乡镇"),
    )
    frozen = Sheet(
        "冻结村",
        [
            Column("code", "村代码"),
            Column("name", "行政村"),
            Column("township", "乡镇"),
            Column("since", "冻结日期", "date"),
            Column("how", "方式"),
            Column("reason", "理由"),
            Column("decided_by", "决定人"),
            Column("npl_ratio", "月末不良贷款率", "rate"),
        ],
        [
            {
                "code": f.code,
                "name": f.name,
                "township": f.township_name,
                "since": f.since,
                "how": "人工" if f.manual else "自动",
                "reason": f.reason,
                "decided_by": f.decided_by,
                "npl_ratio": f.npl_ratio,
            }
            for f in report.frozen
        ],
        heading=_heading(report, "冻结村"),
    )
    party = [Column("party", "承担方"), Column("month", "本月(元)", "money"), Column("year", "本年累计(元)", "money")]
    losses = Sheet(
        "损失",
        party,
        [
            {"party": PARTY_TITLES[p], "month": report.losses_month.shares[p], "year": report.losses_year.shares[p]}
            for p in PARTIES
        ],
        totals={"party": "合计", "month": report.losses_month.loss, "year": report.losses_year.loss},
        heading=[
            *_heading(report, "损失"),
            ("本月核销笔数", report.losses_month.count),
            ("本年核销笔数", report.losses_year.count),
        ],
    )
    fund = Sheet(
        "风险补偿基金",
        [Column("item", "项目"), Column("amount", "金额(元)", "money")],
        [
            {"item": "月初余额", "amount": report.fund.opening},
            *({"item": FUND_TITLES[k], "amount": report.fund.totals.get(k)} for k in FUND_TITLES),
            {"item": "月末余额", "amount": report.fund.closing},
            {"item": "担保能力(放大倍数)", "amount": report.capacity},
        ],
        heading=[*_heading(report, "风险补偿基金"), ("担保能力使用率", f"{report.capacity_used:.4f}")],
    )
    indicators = Sheet(
        "指标",
        [
            Column("code", "代码"),
            Column("name", "地区"),
            Column("npl_ratio", "不良贷款率", "rate"),
            Column("over", f"超过{report.threshold:.0%}的村", "int"),
            Column("within", "达标"),
        ],
        [
            {
                "code": "district",
                "name": "全区",
                "npl_ratio": report.npl_ratio,
                "over": report.villages_over,
                "within": _within(report.non_performing, report.outstanding, report),
            },
            *(
                {
                    "code": t.code,
                    "name": t.name,
                    "npl_ratio": t.npl_ratio,
                    "over": t.over,
                    "within": _within(t.non_performing, t.outstanding, report),
                }
                for t in report.townships
            ),
        ],
        heading=[*_heading(report, "指标"), *(("说明", note) for note in report.notes)],
    )
    return [overview, townships, frozen, losses, fund, indicators]


def _within(non_performing: Decimal, outstanding: Decimal, report: Report) -> str:
    # 004 §6(4): within the line is an NPL ratio not above 3%, on the exact figures.
    return "否" if over_threshold(non_performing, outstanding, report.threshold) else "是"


def render(report: Report) -> bytes:
    return to_xlsx(sheets(report))
