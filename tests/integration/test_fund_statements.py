"""Fund statements (issue 25 item 5) with loans and risk on both backends: the risk
compensation fund's statement (opening, top-ups, losses, recoveries, closing) and a business's
mutual guarantee statement (contributions, draws, recoveries back), over a period, as JSON,
CSV and XLSX; every amount checked against hand-computed figures; a rebuild replays the
mutual guarantee's movements exactly; and migration 0025e backfills the movements of a
database that had only the accounts' totals. Registry and scoring appear as their events."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from services.risk.models import MutualGuaranteeAccount, MutualGuaranteeMovement
from services.risk.rebuild import dump, rebuild
from shared.auth import add_credential
from shared.catalogue import BusinessRegistered, RatingCertified
from shared.db import create_engine
from shared.events import new_event
from shared.messaging import inbox, outbox
from shared.migrations import upgrade
from tests.conftest import Infra
from tests.support.risk import START, TOWNSHIP, V1, publish_hierarchy, run_cob
from tests.support.system import System, certified_line
from tests.support.waiting import wait_until
from vcredit.services import load_spec

Keys = dict[str, dict[str, str]]
D = Decimal


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    keys: Keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name, roles in (("bank", ("bank",)), ("government", ("government",)), ("court", ("court",))):
        token, _ = add_credential(credentials, name, "api_key", roles)  # type: ignore[arg-type]
        keys[name] = {"Authorization": f"Bearer {token}"}
    async with System(infra, ["loans", "risk"], credentials_file=credentials, start_date=START) as s:
        yield s, keys


async def _business_line(system: System, business: str) -> str:
    """A business certified AA in V1 by a published scoring event, and the line loans opens."""
    await system.publish(
        new_event(
            "scoring.rating.certified",
            V1,
            RatingCertified(
                subject_kind="business",
                subject_id=business,
                village_code=V1,
                township_code=TOWNSHIP,
                rating_id=1,
                grade="AA",
                credit_limit="100000.00",
                certificate_no=f"QY-2026-{business[:6]}",
                poor_household=False,
            ),
        )
    )
    opened: dict[str, Any] = {}

    async def opens() -> bool:
        r = await system["loans"].post("/v1/credit-lines", json={"business_id": business})
        opened.update(r.json())
        return r.status_code == 201

    await wait_until(opens, what="the business's certified rating to reach loans")
    return str(opened["credit_line_id"])


async def _borrow(system: System, line: str, amount: str) -> tuple[str, date]:
    r = await system["loans"].post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "equal_principal"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["loan_id"]), date.fromisoformat(r.json()["schedule"][0]["due_on"])


async def _caught_up(system: System) -> None:
    """Risk has applied every event loans emitted that it handles (a positive witness)."""
    handled = set(system.runtimes["risk"].consumer.handlers)

    async def applied_all() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            emitted = set(await session.scalars(select(outbox.c.event_id).where(outbox.c.type.in_(handled))))
        async with system.runtimes["risk"].read_sessions() as session:
            applied = set(await session.scalars(select(inbox.c.event_id)))
        return emitted <= applied

    await wait_until(applied_all, what="risk to apply every event loans emitted")


async def accounts_equal_their_movements(system: System) -> int:
    """Every mutual guarantee account's totals are the sums of its movements: contributed the
    contributions, drawn the draws less the recoveries back. The number of accounts checked."""
    async with system.runtimes["risk"].read_sessions() as session:
        accounts = list(await session.scalars(select(MutualGuaranteeAccount)))
        sums = {
            (business, kind): total
            for business, kind, total in await session.execute(
                select(
                    MutualGuaranteeMovement.business_id,
                    MutualGuaranteeMovement.kind,
                    func.sum(MutualGuaranteeMovement.amount),
                ).group_by(MutualGuaranteeMovement.business_id, MutualGuaranteeMovement.kind)
            )
        }
    for a in accounts:
        contributed = D(sums.get((a.business_id, "contribution"), 0))
        drawn = -D(sums.get((a.business_id, "draw"), 0)) - D(sums.get((a.business_id, "recovery"), 0))
        assert (contributed, drawn) == (a.contributed, a.drawn), a.business_id
    return len(accounts)


def _csv(content: bytes) -> list[dict[str, str]]:
    assert content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def _xlsx(content: bytes) -> tuple[dict[str, str], list[str], list[list[Any]]]:
    """(heading label -> value, column titles, the rows below the titles) of the only sheet."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    (sheet,) = book.worksheets
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    blank = rows.index([None] * len(rows[0])) if [None] * len(rows[0]) in rows else None
    assert blank is not None, rows[:10]
    heading = {str(r[0]): str(r[1]) for r in rows[:blank]}
    return heading, [str(t) for t in rows[blank + 1]], rows[blank + 2 :]


async def test_the_fund_and_mutual_guarantee_statements_add_up(system: tuple[System, Keys], infra: Infra) -> None:
    s, keys = system
    loans, risk = s["loans"], s["risk"]
    await publish_hierarchy(s)
    business = str(uuid.uuid4())
    line = await _business_line(s, business)
    # Two loans of the business: 10% of each is its mutual guarantee contribution (004 §6(2)):
    # 20,000.00 x 10% = 2,000.00 and 5,000.00 x 10% = 500.00.
    big, first_due = await _borrow(s, line, "20000.00")
    small, _ = await _borrow(s, line, "5000.00")
    # A registered poor household: benchmark rate fully subsidised, so its loss is principal.
    _, household_line = await certified_line(s, V1, TOWNSHIP, poor_household=True)
    household_loan, _ = await _borrow(s, household_line, "12345.67")
    # The government tops the fund up by 50,000.00 on the first business date.
    r = await risk.post(
        "/v1/fund/top-ups",
        json={"amount": "50000.00", "reason": "区财政追加风险补偿基金"},
        headers={**keys["government"], "Idempotency-Key": f"top-up-{business}"},
    )
    assert r.status_code == 201, r.text

    # Day 91 past the first due date: both written off, the household's first (one village,
    # so risk applies them in this order).
    written_off_on = first_due + timedelta(days=91)
    await run_cob(s, written_off_on)
    r = await loans.post(f"/v1/loans/{household_loan}/write-off")
    assert (r.status_code, r.json()["loss"]) == (201, "12345.67"), r.text
    # The business's loss as loans computes it: the 20,000.00 principal and 105.40 of unpaid
    # interest (loans' own tests check the interest).
    r = await loans.post(f"/v1/loans/{big}/write-off")
    assert (r.status_code, r.json()["loss"]) == (201, "20105.40"), r.text
    # A recovery on the business's loan the next business date: 10,052.70, half the loss.
    recovered_on = written_off_on + timedelta(days=1)
    await run_cob(s, recovered_on)
    r = await loans.post(f"/v1/loans/{big}/recoveries", json={"amount": "10052.70"}, headers=keys["bank"])
    assert r.status_code == 201, r.text
    await _caught_up(s)

    # The losses, by hand (004 §6(1), the business's own contributions first, docs/risk.md):
    # - household: 12,345.67 = 1,234,567 fen; 30% = 370,370.1 fen, floors leave 1 fen to the
    #   insurer's larger remainder (test_recoveries.py): the fund pays 3,703.70.
    # - business: 20,105.40, of which its account's 2,000.00 + 500.00 = 2,500.00 first; the
    #   rest 17,605.40 = 1,760,540 fen splits exactly: 30% 528,162 / 20% 352,108 / 50% 880,270
    #   fen, so the fund pays 5,281.62.
    (loss,) = (await risk.get("/v1/losses", params={"loan_id": big})).json()
    assert (loss["mutual_guarantee"], loss["government"], loss["bank"], loss["insurer"]) == (
        "2500.00",
        "5281.62",
        "3521.08",
        "8802.70",
    )
    # The recovery, 1,005,270 fen against what each still bears (2,010,540 fen in all:
    # 250,000 / 528,162 / 352,108 / 880,270), is exactly half of each (004 §4(1)6): the
    # mutual guarantee gets 125,000 fen = 1,250.00 back and the fund 264,081 fen = 2,640.81.
    (loss,) = (await risk.get("/v1/losses", params={"loan_id": big})).json()
    assert (loss["recovered_mutual_guarantee"], loss["recovered_government"]) == ("1250.00", "2640.81")

    # --- the fund's statement, this year to the business date (the default) ---------------------
    # opening entry  +10,000,000.00 (15 Jan)  -> 10,000,000.00
    # top-up             +50,000.00 (15 Jan)  -> 10,050,000.00
    # household loss      -3,703.70 (17 May)  -> 10,046,296.30
    # business loss       -5,281.62 (17 May)  -> 10,041,014.68
    # recovery            +2,640.81 (18 May)  -> 10,043,655.49
    # losses -3,703.70 - 5,281.62 = -8,985.32; 0 + 10,000,000.00 + 50,000.00 - 8,985.32 +
    # 2,640.81 = 10,043,655.49.
    r = await risk.get("/v1/fund/statement", headers=keys["bank"])
    assert r.status_code == 200, r.text
    statement = r.json()
    assert (statement["from"], statement["to"]) == ("2026-01-01", str(recovered_on))
    assert [
        (m["business_date"], m["kind"], m["loan_id"], m["amount"], m["balance"]) for m in statement["movements"]
    ] == [
        (str(START), "opening", None, "10000000.00", "10000000.00"),
        (str(START), "top_up", None, "50000.00", "10050000.00"),
        (str(written_off_on), "loss", household_loan, "-3703.70", "10046296.30"),
        (str(written_off_on), "loss", big, "-5281.62", "10041014.68"),
        (str(recovered_on), "recovery", big, "2640.81", "10043655.49"),
    ]
    assert statement["movements"][1]["decided_by"] == "government"
    assert statement["movements"][1]["reason"] == "区财政追加风险补偿基金"
    assert (statement["opening_balance"], statement["closing_balance"]) == ("0.00", "10043655.49")
    assert statement["totals"] == {
        "opening": "10000000.00",
        "top_up": "50000.00",
        "loss": "-8985.32",
        "recovery": "2640.81",
    }
    fund = (await risk.get("/v1/fund")).json()
    assert fund["balance"] == statement["closing_balance"], "the statement closes at the fund's balance"

    # A period from the write-offs' date: the opening is everything before it,
    # 10,000,000.00 + 50,000.00; to that same date: closes after the two losses.
    r = await risk.get("/v1/fund/statement", params={"from": str(written_off_on), "to": str(written_off_on)})
    day = r.json()
    assert (day["opening_balance"], day["closing_balance"]) == ("10050000.00", "10041014.68"), r.text
    assert [m["kind"] for m in day["movements"]] == ["loss", "loss"]
    assert day["totals"] == {"opening": "0.00", "top_up": "0.00", "loss": "-8985.32", "recovery": "0.00"}
    r = await risk.get("/v1/fund/statement", params={"from": str(recovered_on)})
    assert (r.json()["opening_balance"], r.json()["closing_balance"]) == ("10041014.68", "10043655.49")
    # A year before the programme: nothing, opening = closing = 0.00.
    r = await risk.get("/v1/fund/statement", params={"to": "2025-12-31"})
    assert (r.json()["from"], r.json()["movements"], r.json()["closing_balance"]) == ("2025-01-01", [], "0.00")

    # Refused, naming the parameter: from after to, a date after the business date (9999),
    # dates that are not dates, a format there is none of; and a role that may not read it.
    for params, field in (
        ({"from": str(recovered_on), "to": str(written_off_on)}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"to": str(recovered_on + timedelta(days=1))}, "to"),
    ):
        r = await risk.get("/v1/fund/statement", params=params)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "VALIDATION_FAILED", field), r.text
    for params in ({"from": "2026-02-30"}, {"to": "99999-01-01"}, {"from": "yesterday"}, {"format": "pdf"}):
        assert (await risk.get("/v1/fund/statement", params=params)).status_code == 422, params
    assert (await risk.get("/v1/fund/statement", headers=keys["court"])).status_code == 403

    # The same statement as files. XLSX: the heading, then the titles, the balance brought
    # forward, the five movements and the 合计 row with the closing balance.
    r = await risk.get("/v1/fund/statement", params={"format": "xlsx"}, headers=keys["bank"])
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].endswith(f'fund-statement-2026-01-01-{recovered_on}.xlsx"')
    heading, titles, rows = _xlsx(r.content)
    assert titles == ["日期", "类型", "贷款编号", "事由", "经办", "金额", "余额"]
    assert heading == {
        "期间": f"2026-01-01 至 {recovered_on}",
        "期初余额": "0.00",
        "合计·期初拨入": "10000000.00",
        "合计·注资": "50000.00",
        "合计·代偿": "-8985.32",
        "合计·追偿收回": "2640.81",
        "期末余额": "10043655.49",
    }
    assert [r[1] for r in rows] == ["期初余额", "期初拨入", "注资", "代偿", "代偿", "追偿收回", "合计"]
    lines, totals = rows[1:-1], rows[-1]
    # Money cells are numbers, exact to the fen: the lines sum to the total, and opening plus
    # the total is the closing balance in the last line and in the 合计 row.
    assert sum(D(str(x[5])) for x in lines) == D(str(totals[5])) == D("10043655.49")
    assert D(str(lines[-1][6])) == D(str(totals[6])) == D("10043655.49")
    assert [x[0].date() for x in lines] == [START, START, written_off_on, written_off_on, recovered_on]
    # CSV: the same lines, keys as the header, the balance brought forward first.
    r = await risk.get("/v1/fund/statement", params={"format": "csv", "from": str(recovered_on)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    read = _csv(r.content)
    assert [(x["row"], x["kind"], x["amount"], x["balance"]) for x in read] == [
        ("line", "期初余额", "", "10041014.68"),
        ("line", "追偿收回", "2640.81", "10043655.49"),
        ("totals", "合计", "2640.81", "10043655.49"),
    ]

    # --- the business's mutual guarantee statement ------------------------------------------
    # contribution  +2,000.00 (15 Jan) -> 2,000.00
    # contribution    +500.00 (15 Jan) -> 2,500.00
    # draw          -2,500.00 (17 May) ->     0.00
    # recovery      +1,250.00 (18 May) -> 1,250.00
    url = f"/v1/businesses/{business}/mutual-guarantee/statement"
    r = await risk.get(url, headers=keys["bank"])
    assert r.status_code == 200, r.text
    mg = r.json()
    assert (mg["business_id"], mg["village_code"], mg["from"], mg["to"]) == (
        business,
        V1,
        "2026-01-01",
        str(recovered_on),
    )
    assert [(m["business_date"], m["kind"], m["loan_id"], m["amount"], m["balance"]) for m in mg["movements"]] == [
        (str(START), "contribution", big, "2000.00", "2000.00"),
        (str(START), "contribution", small, "500.00", "2500.00"),
        (str(written_off_on), "draw", big, "-2500.00", "0.00"),
        (str(recovered_on), "recovery", big, "1250.00", "1250.00"),
    ]
    assert mg["movements"][-1]["recovery_id"] is not None
    assert (mg["opening_balance"], mg["closing_balance"]) == ("0.00", "1250.00")
    assert mg["totals"] == {"contribution": "2500.00", "draw": "-2500.00", "recovery": "1250.00"}
    # The account: contributed 2,500.00, drawn 2,500.00 - 1,250.00 = 1,250.00, balance 1,250.00.
    (account,) = (await risk.get("/v1/mutual-guarantee", params={"business_id": business})).json()
    assert (account["contributed"], account["drawn"], account["balance"]) == ("2500.00", "1250.00", "1250.00")
    assert account["balance"] == mg["closing_balance"]
    assert await accounts_equal_their_movements(s) == 1
    r = await risk.get(url, params={"from": str(recovered_on)})
    assert (r.json()["opening_balance"], r.json()["closing_balance"], len(r.json()["movements"])) == (
        "0.00",
        "1250.00",
        1,
    )
    r = await risk.get(url, params={"format": "xlsx"})
    heading, titles, rows = _xlsx(r.content)
    assert titles == ["日期", "类型", "贷款编号", "追偿编号", "金额", "余额"]
    assert (heading["企业编号"], heading["期初余额"], heading["期末余额"]) == (business, "0.00", "1250.00")
    assert (heading["合计·缴存"], heading["合计·代偿支取"], heading["合计·追偿退回"]) == (
        "2500.00",
        "-2500.00",
        "1250.00",
    )
    lines, totals = rows[1:-1], rows[-1]
    assert [x[1] for x in lines] == ["缴存", "缴存", "代偿支取", "追偿退回"]
    assert sum(D(str(x[4])) for x in lines) == D(str(totals[4])) == D("1250.00") == D(str(totals[5]))
    read = _csv((await risk.get(url, params={"format": "csv"})).content)
    assert [(x["row"], x["amount"], x["balance"]) for x in read][-2:] == [
        ("line", "1250.00", "1250.00"),
        ("totals", "1250.00", "1250.00"),
    ]

    # Unknown to risk: 404. Registered but never borrowed: an empty statement. Bad periods and
    # roles without losses:read as for the fund.
    r = await risk.get("/v1/businesses/no-such-business/mutual-guarantee/statement")
    assert (r.status_code, r.json()["code"]) == (404, "BUSINESS_NOT_FOUND"), r.text
    newcomer = str(uuid.uuid4())
    await s.publish(
        new_event(
            "registry.business.registered",
            V1,
            BusinessRegistered(
                business_id=newcomer,
                credit_code="91410102MA00000000",
                name="东村农机合作社",
                kind="cooperative",
                village_code=V1,
                township_code=TOWNSHIP,
                profile={},
            ),
        )
    )

    async def registered() -> bool:
        return (await risk.get(f"/v1/businesses/{newcomer}/mutual-guarantee/statement")).status_code == 200

    await wait_until(registered, what="the business's registration to reach risk")
    r = await risk.get(f"/v1/businesses/{newcomer}/mutual-guarantee/statement")
    assert (r.json()["movements"], r.json()["closing_balance"], r.json()["village_code"]) == ([], "0.00", V1)
    r = await risk.get(url, params={"to": "9999-12-31"})
    assert (r.status_code, r.json()["field"]) == (422, "to"), r.text
    assert (await risk.get(url, headers=keys["court"])).status_code == 403

    # A rebuild from the topics writes the same movements (and everything else), nothing
    # published again.
    runtime = s.runtimes["risk"]
    async with runtime.read_sessions() as session:
        live = await dump(session)
    assert live.count('"kind": "contribution"') == 2 and '"kind": "draw"' in live

    async def relayed() -> bool:
        return not await runtime.relay.backlog()

    await wait_until(relayed, what="risk's outbox to be published")
    async with runtime.read_sessions() as session:
        emitted = await session.scalar(select(func.count()).select_from(outbox))
    bus = infra.bus("test-rebuild")
    await bus.start()
    try:
        await rebuild(runtime.sessions, bus, topic_prefix=infra.topic_prefix)
    finally:
        await bus.stop()
    async with runtime.read_sessions() as session:
        assert await dump(session) == live
        assert await session.scalar(select(func.count()).select_from(outbox)) == emitted
    assert (await risk.get(url)).json() == mg


async def test_migration_0025e_backfills_the_movements_from_the_accounts_and_losses(infra: Infra) -> None:
    """A database with accounts, a business's loss and its recovery from before 0025e: the
    draw and the recovery back are rebuilt exactly, the contributions carried forward in one
    line dated at the business's first disbursement, and the totals equal the movements."""
    spec = load_spec("risk")
    url = await infra.database_url("risk_0024c")
    await asyncio.to_thread(upgrade, spec.migrations_dir, url, "0024c_recoveries")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in (
                "INSERT INTO clock (id, business_date) VALUES (1, '2026-06-30')",
                # Business b1: two loans (2,000.00 + 500.00 contributed), the first written off
                # (2,500.00 drawn), then 1,250.00 recovered back: drawn 1,250.00.
                "INSERT INTO mutual_guarantee_accounts VALUES ('b1', 'v1', 2500.00, 1250.00)",
                "INSERT INTO loan_positions VALUES ('l1', 'business', 'b1', 'v1', 't1', '2026-02-01', 0, "
                + "false, 'loss', 'written_off')",
                "INSERT INTO loan_positions VALUES ('l2', 'business', 'b1', 'v1', 't1', '2026-01-20', 0, "
                + "false, 'normal', 'active')",
                "INSERT INTO losses VALUES ('l1', 'business', 'b1', 'v1', 't1', '2026-05-17', 20105.40, 2500.00, "
                + "5281.62, 3521.08, 8802.70, 1250.00, 2640.81, 1760.54, 4401.35)",
                "INSERT INTO loss_recoveries VALUES ('r1', 'l1', '2026-05-18', 10052.70, 1250.00, 2640.81, "
                + "1760.54, 4401.35)",
                # Business b2: contributed, no loss, and no position left (its loan unknown):
                # dated at risk's business date.
                "INSERT INTO mutual_guarantee_accounts VALUES ('b2', 'v1', 300.00, 0)",
                # A household's loss draws nothing from any account.
                "INSERT INTO losses VALUES ('l3', 'household', 'h1', 'v1', 't1', '2026-05-17', 100.00, 0, "
                + "30.00, 20.00, 50.00, 0, 0, 0, 0)",
            ):
                await connection.execute(sa.text(statement.replace("false", "0" if "sqlite" in url else "false")))
        await asyncio.to_thread(upgrade, spec.migrations_dir, url)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    sa.text(
                        "SELECT business_id, kind, amount, loan_id, recovery_id, business_date "
                        "FROM mutual_guarantee_movements ORDER BY id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(b, k, D(a), loan, rec, str(d)) for b, k, a, loan, rec, d in rows] == [
        ("b1", "contribution", D("2500.00"), None, None, "2026-01-20"),
        ("b2", "contribution", D("300.00"), None, None, "2026-06-30"),
        ("b1", "draw", D("-2500.00"), "l1", None, "2026-05-17"),
        ("b1", "recovery", D("1250.00"), "l1", "r1", "2026-05-18"),
    ]
    # The totals equal the movements: b1 contributed 2,500.00, drawn 2,500.00 - 1,250.00.
    assert sum(D(a) for b, k, a, *_ in rows if b == "b1") == D("2500.00") - D("1250.00")
