"""The monthly programme report (issue 26 item 5) through notify against real loans and risk
(uvicorn servers), on both backends: a small district over two months (a village frozen by
its NPL, one frozen by hand, a write-off shared out, fund top-ups). May's report, generated
on 1 June, holds the figures the APIs give for 31 May; after June's business (a lift, a
top-up, another write-off) May regenerated has the same cells. The XLSX is read with
openpyxl, the PDF rendered with pdftoppm (PNG saved as a CI artifact) and read with pdftotext."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from shared.auth import add_credential
from tests.conftest import Infra, missing
from tests.support.http_server import serve
from tests.support.risk import START, V1, V2, publish_hierarchy, run_cob, village_line
from tests.support.system import System
from tests.support.waiting import wait_until

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
D = Decimal
Keys = dict[str, dict[str, str]]


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    keys: Keys = {}
    for role in ("government", "insurer"):
        token, _ = add_credential(credentials, f"as-{role}", "api_key", (role,))
        keys[role] = {"Authorization": f"Bearer {token}"}
    async with System(infra, ["loans", "risk", "notify"], credentials_file=credentials, start_date=START) as s:
        yield s, keys


def _cells(content: bytes) -> dict[str, list[list[Any]]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in book.worksheets}


def _rows(cells: dict[str, list[list[Any]]], sheet: str) -> dict[Any, list[Any]]:
    return {row[0]: row[1:] for row in cells[sheet]}


def _run(args: list[str], stdin: bytes = b"") -> bytes:
    return subprocess.run(args, input=stdin, capture_output=True, check=True).stdout


def _money(value: Any) -> Decimal:
    return D(str(value)).quantize(D("0.01"))


async def _borrow(s: System, line: str, amount: str) -> tuple[str, date]:
    r = await s["loans"].post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "equal_principal"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["loan_id"]), date.fromisoformat(r.json()["schedule"][0]["due_on"])


async def _report(s: System, keys: Keys, period: str, fmt: str = "xlsx") -> bytes:
    r = await s["notify"].get(f"/v1/reports/monthly/{period}", params={"format": fmt}, headers=keys["government"])
    assert r.status_code == 200, r.text
    return r.content


async def _risk_has(s: System, path: str, check: Any, what: str) -> None:
    async def holds() -> bool:
        return bool(check((await s["risk"].get(path)).json()))

    await wait_until(holds, what=what)


@pytest.mark.integration
async def test_a_past_months_report_keeps_its_figures(
    system: tuple[System, Keys], infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        missing("no pdftoppm/pdftotext (poppler-utils; scripts/test.sh installs it)")
    s, keys = system
    gov = keys["government"]
    async with AsyncExitStack() as stack:
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", await stack.enter_async_context(serve(s.apps["risk"])))
        monkeypatch.setenv("VCREDIT_NOTIFY_LOANS_URL", await stack.enter_async_context(serve(s.apps["loans"])))

        await publish_hierarchy(s)
        # Two households of 东村 (V1) borrow; the fund gets 50,000.00 in January.
        _, line_a = await village_line(s, V1)
        _, line_b = await village_line(s, V1)
        loan_a, first_due = await _borrow(s, line_a, "12000.00")
        loan_b, _ = await _borrow(s, line_b, "8000.00")
        r = await s["risk"].post(
            "/v1/fund/top-ups",
            json={"amount": "50000.00", "reason": "区财政注入风险补偿基金"},
            headers={**gov, "Idempotency-Key": f"top-up-{uuid.uuid4()}"},
        )
        assert r.status_code == 201, r.text

        # Day 91 past the first due date (in May): both non-performing, 东村 frozen (100% > 3%);
        # loan A written off, its loss shared out; 西村 (V2) frozen by hand with a reason.
        npl_day = first_due + timedelta(days=91)
        assert npl_day.month == 5, npl_day
        await run_cob(s, npl_day)
        r = await s["loans"].post(f"/v1/loans/{loan_a}/write-off")
        assert r.status_code == 201, r.text
        await _risk_has(s, f"/v1/losses?loan_id={loan_a}", lambda x: len(x) == 1, "the write-off to reach risk")
        r = await s["risk"].post(
            f"/v1/villages/{V2}/freeze",
            json={"reason": "村两委换届, 暂停新增贷款"},
            headers={**gov, "Idempotency-Key": f"freeze-{uuid.uuid4()}"},
        )
        assert r.status_code == 200, r.text

        # May has not ended while the business date is in it (or on its last day).
        r = await s["notify"].get("/v1/reports/monthly/2026-05", headers=gov)
        assert (r.status_code, r.json()["code"]) == (422, "MONTH_NOT_ENDED"), r.text
        await run_cob(s, date(2026, 6, 1))
        # Risk learns the business date from loans' events, and refuses a fund statement to a
        # date it has not reached (422): the report is read once risk has closed May too.
        await _risk_has(s, "/v1/indicators", lambda x: x["business_date"] == "2026-06-01", "risk to reach 1 June")
        for bad in ("2026-13", "26-05", "2026-5", "２０２６-05", "0999-01"):
            r = await s["notify"].get(f"/v1/reports/monthly/{bad}", headers=gov)
            assert r.status_code == 422, (bad, r.text)
        for future in ("2026-06", "9999-12"):
            r = await s["notify"].get(f"/v1/reports/monthly/{future}", headers=gov)
            assert (r.status_code, r.json()["code"]) == (422, "MONTH_NOT_ENDED"), r.text
        # The insurer cannot read the ledger: refused here, not a 503 from loans.
        r = await s["notify"].get("/v1/reports/monthly/2026-05", headers=keys["insurer"])
        assert r.status_code == 403, r.text

        may = _cells(await _report(s, keys, "2026-05"))
        # -- the totals against the APIs as of 31 May ---------------------------------------------
        (township,) = (await s["risk"].get("/v1/townships", headers=gov)).json()
        total = _rows(may, "乡镇")["合计"]
        assert [total[1], total[2], total[3]] == [township["villages"], township["villages_over_threshold"], 2]
        assert (_money(total[4]), _money(total[5])) == (D(township["outstanding"]), D(township["non_performing"]))
        frozen = (await s["risk"].get("/v1/villages", params={"frozen": "true"}, headers=gov)).json()
        report_frozen = {row[0]: row for row in may["冻结村"] if row[0] in (V1, V2)}
        assert set(report_frozen) == {v["code"] for v in frozen} == {V1, V2}
        assert report_frozen[V2][4:6] == ["人工", "村两委换届, 暂停新增贷款"]
        losses = (await s["risk"].get("/v1/losses", headers=gov)).json()
        assert [x["loan_id"] for x in losses] == [loan_a]
        by_party = _rows(may, "损失")
        for party, title in (("government", "政府(风险补偿基金)"), ("bank", "银行"), ("insurer", "保险")):
            assert _money(by_party[title][0]) == D(losses[0][party]) == _money(by_party[title][1]), party
        assert _money(by_party["合计"][0]) == D(losses[0]["loss"]) > 0
        statement = (
            await s["risk"].get("/v1/fund/statement", params={"from": "2026-05-01", "to": "2026-05-31"}, headers=gov)
        ).json()
        fund = _rows(may, "风险补偿基金")
        opening = D(statement["opening_balance"])
        assert _money(fund["月初余额"][0]) == opening
        assert _money(fund["代偿损失"][0]) == -D(losses[0]["government"]) < 0
        assert _money(fund["月末余额"][0]) == D(statement["closing_balance"]) == opening - D(losses[0]["government"])
        trial = (await s["loans"].get("/v1/ledger/trial-balance", params={"as_of": "2026-05-31"}, headers=gov)).json()
        overview = _rows(may, "概况")
        assert _money(overview["贷款本金余额(总账)"][0]) == D(trial["accounts"]["loans_principal"]) == D("8000.00")
        assert _money(overview["贷款余额(各村合计)"][0]) == D(township["outstanding"])

        pdf = await _report(s, keys, "2026-05", "pdf")
        text = (await asyncio.to_thread(_run, ["pdftotext", "-", "-"], pdf)).decode()
        for figure in (statement["closing_balance"], losses[0]["loss"], township["outstanding"]):
            assert f"{D(figure):,.2f} 元" in text, figure
        assert "金融扶贫工作领导小组" in text and "东村" in text and "村两委换届" in text
        ARTIFACTS.mkdir(exist_ok=True)
        prefix = ARTIFACTS / f"monthly-report-{infra.backend}"
        pdf_path = prefix.with_suffix(".pdf")
        pdf_path.write_bytes(pdf)
        await asyncio.to_thread(
            _run, ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf_path), str(prefix)]
        )
        (png,) = ARTIFACTS.glob(f"monthly-report-{infra.backend}*.png")
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000, png.stat().st_size

        # -- June's business: a top-up, 西村 lifted, loan B written off (东村 back under 3%) ----
        r = await s["risk"].post(
            "/v1/fund/top-ups",
            json={"amount": "10000.00", "reason": "区财政追加"},
            headers={**gov, "Idempotency-Key": f"top-up-{uuid.uuid4()}"},
        )
        assert r.status_code == 201, r.text
        r = await s["risk"].post(
            f"/v1/villages/{V2}/unfreeze",
            json={"reason": "换届完成, 恢复贷款"},
            headers={**gov, "Idempotency-Key": f"unfreeze-{uuid.uuid4()}"},
        )
        assert r.status_code == 200, r.text
        r = await s["loans"].post(f"/v1/loans/{loan_b}/write-off")
        assert r.status_code == 201, r.text
        await _risk_has(s, "/v1/losses", lambda x: len(x) == 2, "the second write-off to reach risk")
        await _risk_has(s, f"/v1/villages/{V1}", lambda v: not v["frozen"], "东村 to be lifted")
        await run_cob(s, date(2026, 7, 1))
        await _risk_has(s, "/v1/indicators", lambda x: x["business_date"] == "2026-07-01", "risk to reach 1 July")

        assert _cells(await _report(s, keys, "2026-05")) == may
        june = _cells(await _report(s, keys, "2026-06"))
        assert [row[0] for row in june["冻结村"] if row[0] in (V1, V2)] == []
        june_fund = _rows(june, "风险补偿基金")
        assert june_fund["月初余额"][0] == fund["月末余额"][0]
        assert _money(june_fund["财政注资"][0]) == D("10000.00")
        june_losses = _rows(june, "损失")["合计"]
        assert _money(june_losses[1]) == sum((D(x["loss"]) for x in (await s["risk"].get("/v1/losses")).json()), D(0))


@pytest.mark.integration
async def test_a_month_before_any_business_reports_zeros(
    system: tuple[System, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loans lists only the accounts with a posting: before any, the ledger's principal is
    # absent from the trial balance, which is zero (it was a KeyError, a 500, found by the fuzz).
    s, keys = system
    async with AsyncExitStack() as stack:
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", await stack.enter_async_context(serve(s.apps["risk"])))
        monkeypatch.setenv("VCREDIT_NOTIFY_LOANS_URL", await stack.enter_async_context(serve(s.apps["loans"])))
        trial = (await s["loans"].get("/v1/ledger/trial-balance", params={"as_of": "2025-12-31"})).json()
        assert "loans_principal" not in trial["accounts"]
        overview = _rows(_cells(await _report(s, keys, "2025-12")), "概况")
        assert _money(overview["贷款本金余额(总账)"][0]) == D("0.00")
        assert _money(overview["贷款余额(各村合计)"][0]) == D("0.00")
