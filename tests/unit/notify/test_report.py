"""The monthly programme report built from dated figures (services/notify/domain/report.py),
every figure computed by hand; and its two renderings read back (openpyxl, pdftotext)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl

from services.notify import report_pdf, report_xlsx
from services.notify.domain.report import (
    DecisionRecord,
    FundMonth,
    LossRecord,
    Place,
    Sources,
    build,
    month_end,
    over_threshold,
)
from services.notify.domain.trend import DayFigures
from tests.conftest import missing

D = Decimal
T1, T2 = "410102001", "410102002"
A, B, C = "410102001001", "410102001002", "410102002001"


def _day(day: str, outstanding: str, non_performing: str) -> DayFigures:
    return DayFigures(date.fromisoformat(day), D(outstanding), D(non_performing))


def _loss(loan: str, day: str, loss: str, mg: str, gov: str, bank: str, ins: str) -> LossRecord:
    shares = {"mutual_guarantee": D(mg), "government": D(gov), "bank": D(bank), "insurer": D(ins)}
    return LossRecord(loan, A, date.fromisoformat(day), D(loss), shares)


def _decision(kind: str, code: str, day: str | None, manual: bool = False, reason: str = "r") -> DecisionRecord:
    return DecisionRecord(
        kind, code, manual, reason, "gov" if manual else "risk", date.fromisoformat(day) if day else None
    )


def sources(year: int = 2026, month: int = 2) -> Sources:
    return Sources(
        year=year,
        month=month,
        townships=[Place(T1, "城关镇"), Place(T2, "北镇")],
        villages=[Place(A, "东村", T1), Place(B, "西村", T1), Place(C, "上村", T2)],
        histories={
            # A: 10,000.00 out in January, 500.00 bad from 10 Feb (5% > 3%), and on 3 March
            # (after February: must not count) all repaid.
            A: [
                _day("2026-01-10", "10000.00", "0.00"),
                _day("2026-02-10", "10000.00", "500.00"),
                _day("2026-03-03", "0.00", "0.00"),
            ],
            # B: 20,000.00, 600.00 bad: exactly 3%, not over (strictly greater, 004 §6(3)).
            B: [_day("2026-01-20", "20000.00", "600.00")],
            # C: 5,000.00, none bad; frozen by hand on 15 Feb.
            C: [_day("2026-02-01", "5000.00", "0.00")],
        },
        decisions=[
            _decision("township_halted", T1, None),  # undated (hierarchy), before everything
            _decision("township_resumed", T1, None),
            _decision("village_frozen", A, "2026-02-10", reason="NPL ratio 0.0500 exceeds 0.03"),
            _decision("village_frozen", C, "2026-02-15", manual=True, reason="村两委换届, 暂停新增贷款"),
            _decision("township_halted", T1, "2026-02-20"),
            # After the month end: A lifted, C lifted, T1 resumed: none of it counts for February.
            _decision("village_unfrozen", A, "2026-03-03"),
            _decision("village_unfrozen", C, "2026-03-04", manual=True),
            _decision("township_resumed", T1, "2026-03-03"),
        ],
        losses=[
            _loss("l1", "2026-01-31", "1000.00", "0.00", "300.00", "200.00", "500.00"),
            _loss("l2", "2026-02-28", "2000.00", "200.00", "540.00", "360.00", "900.00"),
            _loss("l3", "2026-03-01", "9999.00", "0.00", "9999.00", "0.00", "0.00"),  # March: never
            _loss("l0", "2025-12-31", "7777.00", "0.00", "7777.00", "0.00", "0.00"),  # last year
        ],
        fund=FundMonth(
            D("50000.00"), {"top_up": D("10000.00"), "loss": D("-540.00"), "recovery": D("0.00")}, D("59460.00")
        ),
        leverage=D("10"),
        ledger_principal=D("35000.00"),
        threshold=D("0.03"),
    )


def test_month_end_handles_february_and_the_last_year() -> None:
    assert month_end(2024, 2) == date(2024, 2, 29)
    assert month_end(2026, 2) == date(2026, 2, 28)
    assert month_end(9999, 12) == date(9999, 12, 31)


def test_over_threshold_is_strict_on_exact_figures() -> None:
    assert not over_threshold(D("600.00"), D("20000.00"), D("0.03"))  # exactly 3%
    assert over_threshold(D("600.01"), D("20000.00"), D("0.03"))
    assert not over_threshold(D("0.00"), D("0.00"), D("0.03"))


def test_every_figure_is_as_of_the_month_end() -> None:
    r = build(sources())
    assert r.month_end == date(2026, 2, 28)
    # 10,000 + 20,000 + 5,000 out; 500 + 600 bad = 1,100 / 35,000 = 0.031428... -> 0.0314.
    assert (r.outstanding, r.non_performing, r.npl_ratio) == (D("35000.00"), D("1100.00"), D("0.0314"))
    assert (r.villages, r.villages_over, r.villages_frozen) == (3, 1, 2)
    t1, t2 = r.townships
    # 城关镇: A (5%, over) and B (3%, not over): 1,100 / 30,000 = 0.036666... -> 0.0367; halted 20 Feb.
    assert (t1.villages, t1.over, t1.frozen, t1.outstanding, t1.npl_ratio, t1.halted) == (
        2,
        1,
        1,
        D("30000.00"),
        D("0.0367"),
        True,
    )
    assert (t2.villages, t2.over, t2.frozen, t2.outstanding, t2.npl_ratio, t2.halted) == (
        1,
        0,
        1,
        D("5000.00"),
        D("0.0000"),
        False,
    )
    assert r.townships_halted == 1
    frozen = {f.code: f for f in r.frozen}
    assert frozen[A].since == date(2026, 2, 10) and not frozen[A].manual and frozen[A].npl_ratio == D("0.0500")
    assert (frozen[C].manual, frozen[C].reason, frozen[C].township_name) == (True, "村两委换届, 暂停新增贷款", "北镇")


def test_losses_of_the_month_and_the_year_to_date_by_party() -> None:
    r = build(sources())
    assert (r.losses_month.count, r.losses_month.loss) == (1, D("2000.00"))
    assert r.losses_month.shares == {
        "mutual_guarantee": D("200.00"),
        "government": D("540.00"),
        "bank": D("360.00"),
        "insurer": D("900.00"),
    }
    # January's and February's, not last December's nor March's.
    assert (r.losses_year.count, r.losses_year.loss) == (2, D("3000.00"))
    assert r.losses_year.shares["government"] == D("840.00")


def test_the_fund_and_its_capacity() -> None:
    r = build(sources())
    assert (r.fund.opening, r.fund.closing) == (D("50000.00"), D("59460.00"))
    # 10x the closing balance: 594,600.00; 35,000 of it used: 0.05886... -> 0.0589.
    assert (r.capacity, r.capacity_used) == (D("594600.00"), D("0.0589"))


def test_the_trend_is_this_years_to_the_month_end() -> None:
    r = build(sources())
    # 10 Jan: 0/10,000; 20 Jan: 600/30,000 = 0.02; 1 Feb: 600/35,000 = 0.0171; 10 Feb: 1,100/35,000.
    assert r.trend == [
        (date(2026, 1, 10), D("0.0000")),
        (date(2026, 1, 20), D("0.0200")),
        (date(2026, 2, 1), D("0.0171")),
        (date(2026, 2, 10), D("0.0314")),
    ]


def test_january_knows_nothing_of_february() -> None:
    r = build(sources(month=1))
    assert (r.outstanding, r.non_performing, r.villages_over, r.villages_frozen, r.townships_halted) == (
        D("30000.00"),
        D("600.00"),
        0,
        0,
        0,
    )
    assert (r.losses_month.loss, r.losses_year.loss) == (D("1000.00"), D("1000.00"))


def _cells(content: bytes) -> dict[str, list[list[object]]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in book.worksheets}


def test_the_xlsx_holds_the_figures_to_the_fen() -> None:
    cells = _cells(report_xlsx.render(build(sources())))
    assert list(cells) == ["概况", "乡镇", "冻结村", "损失", "风险补偿基金", "指标"]
    assert "金融扶贫工作领导小组" in str(cells["概况"][0][1])
    overview = {row[0]: row[1:] for row in cells["概况"]}
    assert overview["贷款余额(各村合计)"] == [35000, None] and overview["冻结的村"] == [None, 2]
    townships = cells["乡镇"]
    assert townships[-1][0] == "合计" and townships[-1][2:7] == [3, 1, 2, 35000, 1100]
    losses = {row[0]: row[1:] for row in cells["损失"]}
    assert losses["政府(风险补偿基金)"] == [540, 840] and losses["合计"] == [2000, 3000]
    fund = {row[0]: row[1] for row in cells["风险补偿基金"]}
    assert (fund["月初余额"], fund["财政注资"], fund["代偿损失"], fund["月末余额"]) == (50000, 10000, -540, 59460)
    frozen = cells["冻结村"]
    assert any(row[:2] == [C, "上村"] and row[4] == "人工" and row[5] == "村两委换届, 暂停新增贷款" for row in frozen)


def test_the_pdf_reads_back_with_money_in_yuan() -> None:
    if shutil.which("pdftotext") is None:
        missing("no pdftotext (poppler-utils; scripts/test.sh installs it)")
    pdf = report_pdf.render(build(sources()))
    assert pdf.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    for figure in ("35,000.00 元", "1,100.00 元", "59,460.00 元", "594,600.00 元", "3.14%", "金融扶贫工作领导小组"):
        assert figure in text, figure
    # The same month twice is the same bytes (no creation time, no random id).
    assert report_pdf.render(build(sources())) == pdf


def test_money_has_separators_and_its_unit() -> None:
    assert report_pdf.money(D("1234567.891")) == "1,234,567.89 元"


def test_importing_notify_writes_nothing_under_home(tmp_path: Path) -> None:
    # Importing matplotlib makes its config/cache directory (~/.config/matplotlib) and fails
    # where it can make none: so it did in the Deployment's wait-for-migrations init container
    # (read-only root, no /tmp), which imports notify's app to check its migrations, and the
    # pod never started. HOME here does not exist, and must still not exist after the import
    # (tests run as root, for whom no directory is read-only); matplotlib stays unimported.
    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if key != "MPLCONFIGDIR"}
    env |= {"HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    script = "import sys, services.notify.app; print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]"], done.stdout
    assert not home.exists(), sorted(str(p.relative_to(home)) for p in home.rglob("*"))
