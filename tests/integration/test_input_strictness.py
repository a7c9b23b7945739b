"""Issue 19, defects 4 and 5, through the HTTP APIs on both backends: one person is one
identity whatever the digits' width, money is exactly the published pattern, and a JSON key
twice is refused, each with nothing written.

The spellings are written out by hand (or with ``_full_width``, which adds U+FEE0 to each
character: the Unicode chart's rule, not the code under test's table)."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.loans.models import LedgerEntry, Loan
from services.registry.models import Business, Household, Person
from tests.conftest import Infra
from tests.support.system import System, certified_line, resident_id

TOWNSHIP, VILLAGE = "410102001", "410102001001"
ID = "11010519491231002X"  # GB 11643-1999's own example
ID_FULL_WIDTH = "１１０１０５１９４９１２３１００２Ｘ"
ID_FULL_WIDTH_DIGITS = "１１０１０５１９４９１２３１００２X"  # the spelling of the incident: digits only
ID_FULL_WIDTH_SMALL_X = "１１０１０５１９４９１２３１００２ｘ"
ID_ARABIC_INDIC = "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X"
ID_DEVANAGARI = "११०१०५१९४९१२३१००२X"
CREDIT_CODE = "91350100M000100Y43"
CREDIT_CODE_FULL_WIDTH = "９１３５０１００Ｍ０００１００Ｙ４３"
CREDIT_CODE_ARABIC_INDIC = "٩١٣٥٠١٠٠M٠٠٠١٠٠Y٤٣"


def _full_width(ascii_text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in ascii_text)


@pytest.fixture
async def registry(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["registry"]) as system:
        client = system["registry"]
        assert (await client.post("/v1/townships", json={"code": TOWNSHIP, "name": "城关镇"})).status_code == 201
        r = await client.post("/v1/villages", json={"code": VILLAGE, "name": "东村", "township_code": TOWNSHIP})
        assert r.status_code == 201
        yield system


async def _rows(system: System, model: Any) -> int:
    async with system.runtimes["registry"].read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _names(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json().get("errors", [])] or [r.json().get("field", "")]


async def test_one_person_is_one_household_whatever_the_digits(registry: System) -> None:
    client = registry["registry"]
    first = await client.post("/v1/households", json={"id_number": ID, "name": "张三", "village_code": VILLAGE})
    assert first.status_code == 201, first.text

    for spelling in (
        ID_FULL_WIDTH_DIGITS,
        ID_FULL_WIDTH,
        ID_FULL_WIDTH_SMALL_X,
        ID.lower(),
        "\u3000" + ID_FULL_WIDTH + " ",
    ):
        r = await client.post("/v1/households", json={"id_number": spelling, "name": "张三", "village_code": VILLAGE})
        assert (r.status_code, r.json()["code"]) == (409, "ID_NUMBER_REGISTERED"), (spelling, r.text)
    for spelling in (ID_ARABIC_INDIC, ID_DEVANAGARI, ID + "\u00a0"):
        r = await client.post("/v1/households", json={"id_number": spelling, "name": "张三", "village_code": VILLAGE})
        assert (r.status_code, r.json()["code"], _names(r)) == (422, "VALIDATION_FAILED", ["id_number"]), r.text
    # A member is a person too: the head's number in full width is the head again.
    other = {"id_number": resident_id(5), "name": "李四", "village_code": VILLAGE}
    r = await client.post("/v1/households", json=other | {"members": [{"name": "张三", "id_number": ID_FULL_WIDTH}]})
    assert (r.status_code, r.json()["code"]) == (409, "ID_NUMBER_REGISTERED"), r.text
    r = await client.post(
        "/v1/households", json=other | {"members": [{"name": "李四", "id_number": _full_width(resident_id(5))}]}
    )
    assert (r.status_code, r.json()["code"]) == (422, "DUPLICATE_PERSON"), r.text
    assert (await _rows(registry, Household), await _rows(registry, Person)) == (1, 1)

    # The lookup hashes the same normal form.
    found = await client.get("/v1/households", params={"id_number": ID_FULL_WIDTH_SMALL_X})
    assert [h["household_id"] for h in found.json()["items"]] == [first.json()["household_id"]]
    r = await client.get("/v1/households", params={"id_number": ID_ARABIC_INDIC})
    assert (r.status_code, r.json()["field"]) == (422, "id_number")


def _csv(*rows: tuple[str, str]) -> bytes:
    return ("身份证号,姓名\n" + "".join(f"{number},{name}\n" for number, name in rows)).encode()


def _xlsx(*rows: tuple[str, str]) -> bytes:
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["身份证号", "姓名"])
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("build", "filename"), [(_csv, "东村.csv"), (_xlsx, "东村.xlsx")])
async def test_a_sheet_cannot_register_a_person_twice_either(registry: System, build: Any, filename: str) -> None:
    client = registry["registry"]
    url = f"/v1/villages/{VILLAGE}/households/import"
    assert (
        await client.post("/v1/households", json={"id_number": ID, "name": "张三", "village_code": VILLAGE})
    ).status_code == 201
    new = resident_id(7)
    sheet = build(
        (ID_FULL_WIDTH_DIGITS, "张三"),  # row 2: registered already (same household: unchanged)
        (_full_width(new), "王五"),  # row 3: new, registered under its ASCII form
        (new, "王五"),  # row 4: row 3 again
        (ID_ARABIC_INDIC, "赵六"),  # row 5: refused
        (ID_DEVANAGARI, "钱七"),  # row 6: refused
    )
    r = await client.post(url, content=sheet, params={"filename": filename})
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["registered"], report["unchanged"], report["failed"]) == (1, 1, 3), report
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "id_number"), (5, "id_number"), (6, "id_number")]
    assert "row 3" in report["errors"][0]["reason"]
    assert (await _rows(registry, Household), await _rows(registry, Person)) == (2, 2)

    # The person registered from full-width digits is found, and refused, in ASCII.
    r = await client.post("/v1/households", json={"id_number": new, "name": "王五", "village_code": VILLAGE})
    assert (r.status_code, r.json()["code"]) == (409, "ID_NUMBER_REGISTERED")
    again = (await client.post(url, content=build((new, "王五")), params={"filename": filename})).json()
    assert (again["registered"], again["unchanged"]) == (0, 1)


async def test_one_business_is_one_credit_code_whatever_the_width(registry: System) -> None:
    client = registry["registry"]
    business = {
        "credit_code": CREDIT_CODE,
        "name": "东风食用菌专业合作社",
        "kind": "cooperative",
        "village_code": VILLAGE,
    }
    r = await client.post("/v1/businesses", json=business)
    assert r.status_code == 201, r.text
    assert r.json()["credit_code"] == CREDIT_CODE
    for spelling in (CREDIT_CODE_FULL_WIDTH, CREDIT_CODE.lower(), CREDIT_CODE_FULL_WIDTH.lower()):
        r = await client.post("/v1/businesses", json=business | {"credit_code": spelling})
        assert (r.status_code, r.json()["code"]) == (409, "CREDIT_CODE_REGISTERED"), (spelling, r.text)
    r = await client.post("/v1/businesses", json=business | {"credit_code": CREDIT_CODE_ARABIC_INDIC})
    assert (r.status_code, _names(r)) == (422, ["credit_code"]), r.text
    assert await _rows(registry, Business) == 1


# --- money and duplicate keys on a drawdown -------------------------------------------------

LOAN_VILLAGE, LOAN_TOWNSHIP = "410102003001", "410102003"
BAD_AMOUNTS: list[Any] = [
    "1e3",
    "1E+3",
    "1_000",
    "+5",
    " 12 ",
    "0.1e1",
    "1e-2",
    "１０００",  # full-width
    "١٠٠٠",  # Arabic-Indic
    "۱۰۰۰",  # Extended Arabic-Indic
    "१०००",  # Devanagari
    "1.",
    ".5",
    "1.001",
    "-1",
    "NaN",
    "Infinity",
    "",
    12.5,  # a JSON number with a fraction
    1e3,  # a JSON float
    -5,
    True,
]


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans"]) as system:
        yield system


async def _loans_written(system: System) -> tuple[int, int]:
    async with system.runtimes["loans"].read_sessions() as session:
        loans = await session.scalar(select(func.count()).select_from(Loan))
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
    return int(loans or 0), int(entries or 0)


async def test_drawdowns_take_exactly_the_published_money_pattern(loans: System) -> None:
    _, line = await certified_line(loans, LOAN_VILLAGE, LOAN_TOWNSHIP, household=str(uuid.uuid4()))
    client = loans["loans"]
    for amount in BAD_AMOUNTS:
        body = {"credit_line_id": line, "amount": amount, "term_months": 12}
        r = await client.post("/v1/loans", json=body)
        assert (r.status_code, r.json()["code"], _names(r)) == (422, "VALIDATION_FAILED", ["amount"]), (amount, r.text)
    assert await _loans_written(loans) == (0, 0)

    # A key twice: the last value would have been lent; with an Idempotency-Key too.
    duplicated = f'{{"credit_line_id": "{line}", "amount": "1.00", "term_months": 12, "amount": "99999.00"}}'
    headers = {"Content-Type": "application/json"}
    for extra in ({}, {"Idempotency-Key": "dup-amount"}):
        r = await client.post("/v1/loans", content=duplicated, headers=headers | extra)
        assert (r.status_code, r.json()["code"], _names(r)) == (422, "VALIDATION_FAILED", ["amount"]), r.text
    assert await _loans_written(loans) == (0, 0)
    line_now = (await client.get(f"/v1/credit-lines/{line}")).json()
    assert line_now["available"] == line_now["limit"]

    # What the pattern allows is lent, to the fen; and a JSON integer.
    for amount, lent in (("0.01", "0.01"), ("01.50", "1.50"), ("50", "50.00"), (1000, "1000.00")):
        r = await client.post("/v1/loans", json={"credit_line_id": line, "amount": amount, "term_months": 12})
        assert r.status_code == 201, (amount, r.text)
        got = (await client.get(f"/v1/loans/{r.json()['loan_id']}")).json()
        assert got["principal_outstanding"] == lent
    assert (await _loans_written(loans))[0] == 4
