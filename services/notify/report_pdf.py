"""The monthly programme report as PDF (reportlab), with the district's NPL trend drawn by
matplotlib against the 3% line.

Chinese text uses reportlab's built-in CID font STSong-Light (Adobe's Asian font pack names
it; readers supply the glyphs), so no font file ships with the service. The chart's labels
are ASCII: matplotlib's bundled fonts have no CJK glyphs. ``invariant`` leaves out the
creation time and random document id, so one month's report is the same bytes each time.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import numpy
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.notify.domain.report import PARTIES, Report
from services.notify.report_xlsx import FUND_TITLES, HALTED, PARTY_TITLES, TITLE
from shared.money import to_fen

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
_TEXT = ParagraphStyle("text", fontName=FONT, fontSize=9, leading=13)
_HEAD = ParagraphStyle("head", parent=_TEXT, fontSize=12, leading=18, spaceBefore=6)
_TITLE = ParagraphStyle("title", parent=_TEXT, fontSize=16, leading=22, alignment=1)


def money(value: Decimal) -> str:
    """``1,234,567.89 元`` (issue 26: money with thousands separators and its unit)."""
    return f"{to_fen(value):,.2f} 元"


def percent(ratio: Decimal) -> str:
    return f"{ratio * 100:.2f}%"


def _table(rows: list[list[str]]) -> Table:
    table = Table(rows, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 8),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def chart(trend: list[tuple[date, Decimal]], threshold: Decimal) -> bytes:
    """The district's NPL ratio this year to the month end, with the line it must stay under."""
    # Imported here, not with the module: importing matplotlib makes its config and cache
    # directory (MPLCONFIGDIR, else ~/.config/matplotlib, else a new one under the temp dir) and
    # raises OSError where none is writable. Every process that imports notify's app imports
    # this module - the Deployment's wait-for-migrations init container (`vcredit migrate
    # --check notify`) too, on a read-only root with no /tmp - and only a report needs a chart.
    # A bare Figure renders with Agg, without pyplot's global figures (no display, no close).
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 2.6), dpi=120)
    axes = figure.subplots()
    if trend:
        axes.step(
            numpy.array([d.isoformat() for d, _ in trend], dtype="datetime64[D]"),
            [float(r * 100) for _, r in trend],
            where="post",
            label="NPL ratio",
        )
    axes.axhline(float(threshold * 100), color="red", linestyle="--", label=f"{threshold:.0%} line")
    axes.set_ylabel("%")
    axes.set_title("District NPL ratio")
    axes.legend(loc="upper left", fontsize=8)
    axes.xaxis_date()
    figure.autofmt_xdate()
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def render(report: Report) -> bytes:
    r = report
    story: list[object] = [
        Paragraph(TITLE, _TITLE),
        Paragraph(f"{r.year}年{r.month}月,数据截至{r.month_end.isoformat()}", _TEXT),
        Paragraph("一、概况", _HEAD),
        _table(
            [
                ["项目", "数值"],
                ["贷款余额(各村合计)", money(r.outstanding)],
                ["不良贷款余额", money(r.non_performing)],
                ["不良贷款率", percent(r.npl_ratio)],
                ["贷款本金余额(总账)", money(r.ledger_principal)],
                ["行政村 / 超过限额 / 冻结", f"{r.villages} / {r.villages_over} / {r.villages_frozen}"],
                ["乡镇 / 暂停新增贷款", f"{len(r.townships)} / {r.townships_halted}"],
                ["风险补偿基金月末余额", money(r.fund.closing)],
                ["本月损失", money(r.losses_month.loss)],
                ["本年累计损失", money(r.losses_year.loss)],
            ]
        ),
        Spacer(1, 4 * mm),
        Image(io.BytesIO(chart(list(r.trend), r.threshold)), width=160 * mm, height=64 * mm),
        Paragraph("二、乡镇", _HEAD),
        _table(
            [
                ["乡镇", "行政村", "超过限额", "冻结", "贷款余额", "不良贷款", "不良率", "新增贷款"],
                *(
                    [
                        t.name or t.code,
                        str(t.villages),
                        str(t.over),
                        str(t.frozen),
                        money(t.outstanding),
                        money(t.non_performing),
                        percent(t.npl_ratio),
                        HALTED[t.halted],
                    ]
                    for t in r.townships
                ),
                [
                    "合计",
                    str(r.villages),
                    str(r.villages_over),
                    str(r.villages_frozen),
                    money(r.outstanding),
                    money(r.non_performing),
                    percent(r.npl_ratio),
                    "",
                ],
            ]
        ),
        Paragraph("三、冻结的村", _HEAD),
    ]
    if r.frozen:
        story.append(
            _table(
                [
                    ["行政村", "乡镇", "冻结日期", "方式", "不良率"],
                    *(
                        [
                            f.name,
                            f.township_name,
                            f.since.isoformat() if f.since else "",
                            "人工" if f.manual else "自动",
                            percent(f.npl_ratio),
                        ]
                        for f in r.frozen
                    ),
                ]
            )
        )
        story.extend(Paragraph(f"{f.name}:{f.reason}({f.decided_by})", _TEXT) for f in r.frozen)
    else:
        story.append(Paragraph("月末无冻结的村。", _TEXT))
    story += [
        Paragraph("四、损失及分担", _HEAD),
        _table(
            [
                ["承担方", "本月", "本年累计"],
                *([PARTY_TITLES[p], money(r.losses_month.shares[p]), money(r.losses_year.shares[p])] for p in PARTIES),
                ["合计", money(r.losses_month.loss), money(r.losses_year.loss)],
            ]
        ),
        Paragraph("五、风险补偿基金", _HEAD),
        _table(
            [
                ["项目", "金额"],
                ["月初余额", money(r.fund.opening)],
                *([FUND_TITLES[k], money(r.fund.totals.get(k, Decimal("0.00")))] for k in FUND_TITLES),
                ["月末余额", money(r.fund.closing)],
                ["担保能力", money(r.capacity)],
                ["担保能力使用率", percent(r.capacity_used)],
            ]
        ),
        Paragraph("六、指标", _HEAD),
        _table(
            [
                ["地区", "不良贷款率", "超过限额的村"],
                ["全区", percent(r.npl_ratio), str(r.villages_over)],
                *([t.name or t.code, percent(t.npl_ratio), str(t.over)] for t in r.townships),
            ]
        ),
        Paragraph("说明", _HEAD),
        *(Paragraph(note, _TEXT) for note in r.notes),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, title=f"{TITLE} {r.period}", leftMargin=15 * mm, rightMargin=15 * mm, invariant=1
    )
    doc.build(story)
    return out.getvalue()
