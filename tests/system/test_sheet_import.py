"""Registry's sheet import among the other services of one process, as `vcredit up` runs them
(one event loop, real uvicorn servers): a heavy import does not stall another service, a sheet
past the limits is refused before the work, and the error report is bounded (issue 21)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bench.registry_import import resident_ids
from services.registry.models import Household, Import
from tests.support.http_server import serve
from tests.support.infra import TOKEN, Infra, new_topic_prefix
from tests.support.sheets import row_xml, xlsx_with_rows
from tests.support.system import System, resident_id
from tests.support.waiting import wait_until

VILLAGE = "410102001001"
URL = f"/v1/villages/{VILLAGE}/households/import"
PROBLEM = "application/problem+json"
# The issue asks for no stall over ~100 ms; on a busy 2-core CI the margin must not flake.
# Before issue 21 the whole parse stalled every service: seconds for this sheet.
STALL_MARGIN_S = 1.0


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    async with System(Infra("embedded", tmp_path, new_topic_prefix()), ["registry", "scoring"]) as system:
        registry = system["registry"]
        r = await registry.post("/v1/townships", json={"code": "410102001", "name": "城关镇"})
        assert r.status_code == 201, r.text
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "东村", "township_code": "410102001"})
        assert r.status_code == 201, r.text
        yield system


def heavy_sheet(households: int) -> bytes:
    """Every column filled, as a collector's full sheet: read and validated in full, then
    refused row by row (a collector may not state a court fact), so nothing is written and
    the work measured is the reading and validating."""
    header = ["身份证号", "姓名", "贫困户", "党员", "大专以上", "身体健康", "服过兵役", "宅基地房屋价值"]
    header += ["增收项目", "经营主体规模", "证书", "设备", "荣誉", "家庭和睦", "邻里和睦", "非法上访次数"]
    header += ["商业保险", "三年内被执行"]
    rows = [row_xml(1, header)]
    for n, id_number in enumerate(resident_ids(households), start=2):
        cells = [id_number, f"农户{n}", "否", "是", "否", "是", "否", f"{150000 + n}", "是", "20,000.00"]
        cells += ["承包证、宅基地证", "80000", "村级", "是", "是", "0", "是", "否"]
        rows.append(row_xml(n, cells))
    return xlsx_with_rows(rows)


async def test_a_heavy_import_does_not_stall_another_services_healthz(system: System) -> None:
    data = heavy_sheet(20_000)
    async with serve(system.apps["registry"]) as registry_url, serve(system.apps["scoring"]) as scoring_url:
        latencies: list[float] = []
        stop = threading.Event()

        def poll_scoring() -> None:
            # From another thread, as a load balancer's health check: it sees what the loop does.
            with httpx.Client(base_url=scoring_url, timeout=120) as client:
                while not stop.is_set():
                    began = time.perf_counter()
                    assert client.get("/healthz").status_code == 200
                    latencies.append(time.perf_counter() - began)
                    stop.wait(0.02)

        poller = threading.Thread(target=poll_scoring, daemon=True)
        poller.start()
        try:
            await wait_until(lambda: _true(len(latencies) >= 5), what="scoring's /healthz answering")
            baseline = len(latencies)
            async with httpx.AsyncClient(
                base_url=registry_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600
            ) as client:
                began = time.perf_counter()
                r = await client.post(URL, content=data, params={"filename": "东村.xlsx"})
                took = time.perf_counter() - began
        finally:
            stop.set()
            poller.join(130)
    assert r.status_code == 200, r.text
    during = latencies[baseline:]
    print(f"import {took:.1f} s; scoring /healthz: {len(during)} polls, worst {max(during) * 1000:.0f} ms")
    # Without a long import the test shows nothing: it must last many times the margin.
    assert took > 3 * STALL_MARGIN_S, f"the import took {took:.1f} s: too light to show a stall"
    assert max(during) < STALL_MARGIN_S, f"scoring's /healthz took {max(during):.2f} s during the import"
    assert len(during) > took / 0.5  # polled all along, not once after the import
    report = r.json()
    assert (report["rows"], report["failed"], report["registered"]) == (20_000, 20_000, 0)
    assert report["errors_by_field"] == {"profile.court_enforcement_within_3y": 20_000}


async def _true(value: bool) -> bool:
    return value


async def test_a_sheet_past_the_limits_is_413_and_nothing_is_written(system: System) -> None:
    registry = system["registry"]
    # The file: small, a million empty rows.
    rows = [row_xml(1, ["身份证号", "姓名"]), row_xml(2, [resident_id(1), "张三"])]
    data = xlsx_with_rows([*rows, *(f'<row r="{n}"/>' for n in range(3, 1_000_002))], compresslevel=9)
    assert len(data) < 3_000_000
    r = await registry.post(URL, content=data, params={"filename": "东村.xlsx"})
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert (problem["code"], problem["field"]) == ("SHEET_TOO_LARGE", "body")
    assert "more than 30,000 rows" in problem["detail"]
    async with system.runtimes["registry"].sessions() as session:
        assert (await session.scalars(select(Import))).all() == []
        assert (await session.scalars(select(Household))).all() == []


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([["身份证号", "姓名", "党员", "自建房价值"], *rows])
    return out.getvalue().encode()


async def test_the_error_report_lists_the_first_errors_and_counts_them_all(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCREDIT_REGISTRY_IMPORT_REPORT_MAX_ERRORS", "5")
    registry = system["registry"]
    member = resident_id(1)
    body = {
        "id_number": resident_id(2),
        "name": "王五",
        "village_code": VILLAGE,
        "members": [{"name": "王小五", "id_number": member}],
    }
    r = await registry.post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    # Row 2 is refused only when written (its head is already another household's member),
    # after the 600 errors of the 300 unreadable rows below it were found.
    bad = [[resident_id(100 + n), f"农户{n}", "也许", "很多"] for n in range(300)]
    sheet = _csv([[member, "王小五", "", ""], *bad, [resident_id(3), "李四", "是", "20万"]])
    r = await registry.post(URL, content=sheet, params={"filename": "东村.csv"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows"], report["registered"], report["failed"]) == (302, 1, 301)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (2, "id_number"),
        (3, "head_party_member"),
        (3, "homestead_house_value"),
        (4, "head_party_member"),
        (4, "homestead_house_value"),
    ]
    assert "member of another household" in report["errors"][0]["reason"]
    assert (report["errors_total"], report["errors_truncated"]) == (601, True)
    assert report["errors_by_field"] == {"head_party_member": 300, "homestead_house_value": 300, "id_number": 1}

    async with system.runtimes["registry"].sessions() as session:
        stored = await session.get(Import, report["import_id"])
    assert stored is not None
    assert json.loads(stored.report) == report["errors"]
    assert (stored.errors_total, json.loads(stored.errors_by_field)) == (601, report["errors_by_field"])

    # Within the limit, nothing is left out and the report says so.
    monkeypatch.setenv("VCREDIT_REGISTRY_IMPORT_REPORT_MAX_ERRORS", "601")
    again = (await registry.post(URL, content=sheet)).json()
    assert (len(again["errors"]), again["errors_total"], again["errors_truncated"]) == (601, 601, False)
