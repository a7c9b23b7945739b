"""A bank's code generated from the committed OpenAPI documents, and nothing else, drives the
lending flow across registry, scoring and loans, and reads every refusal as a Problem
(issue 22): register a township, a village and a household; its rating goes through the
public notice (the business date advanced by loans' close of business) to certified; a
credit line, a drawdown, its schedule, a repayment, a debit run and the statement. The
clients come from tests/support/generated_clients.py (openapi-python-client, cached by the
documents' hash); the services run in-process on SQLite with the embedded bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.generated_clients import models, operation
from tests.support.infra import TOKEN, Infra, new_topic_prefix
from tests.support.system import System, resident_id
from tests.support.waiting import wait_until

START = date(2026, 3, 2)
TOWNSHIP, VILLAGE = "410102005", "410102005002"
PURPOSE = "generated client test"
# A profile that scores AA (tests/integration/test_scoring.py): a 100000.00 limit.
AA_PROFILE = {
    "head_party_member": True,
    "head_healthy": True,
    "income_project": True,
    "certificates": ["land_contract", "homestead"],
    "family_harmony": True,
    "commercial_insurance": True,
}


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    async with System(
        Infra("embedded", tmp_path, new_topic_prefix()), ["registry", "scoring", "loans"], start_date=START
    ) as s:
        yield s


class Bank:
    """The generated clients, each on its service's in-process transport."""

    def __init__(self, packages: dict[str, ModuleType], system: System) -> None:
        self.packages = packages
        self.clients: dict[str, Any] = {}
        for name, package in packages.items():
            client = package.AuthenticatedClient(base_url=f"http://{name}", token=TOKEN)
            client.set_async_httpx_client(system[name])
            self.clients[name] = client

    async def call(self, service: str, operation_id: str, *args: Any, **kwargs: Any) -> Any:
        module = operation(self.packages[service], operation_id)
        return await module.asyncio_detailed(*args, client=self.clients[service], **kwargs)

    def models(self, service: str) -> Any:
        return models(self.packages[service])


def _problem(bank: Bank, service: str, answer: Any, status: int, code: str) -> Any:
    assert answer.status_code == status, answer.content
    assert isinstance(answer.parsed, bank.models(service).Problem), answer.parsed
    assert (answer.parsed.status, answer.parsed.code) == (status, code), answer.parsed
    assert isinstance(answer.parsed.detail, str) and answer.parsed.detail
    return answer.parsed


async def test_the_bank_flow_and_its_refusals_through_generated_clients_only(
    client_packages: dict[str, ModuleType], system: System
) -> None:
    bank = Bank({name: client_packages[name] for name in system.services}, system)
    registry, scoring, loans = bank.models("registry"), bank.models("scoring"), bank.models("loans")

    # Registry: the hierarchy and a household with a profile (scoring rates it at once).
    r = await bank.call(
        "registry", "create_township_v1_townships_post", body=registry.TownshipIn(code=TOWNSHIP, name="南湾乡")
    )
    assert r.status_code == 201, r.content
    village = registry.VillageIn(code=VILLAGE, name="七里村", township_code=TOWNSHIP)
    assert (await bank.call("registry", "create_village_v1_villages_post", body=village)).status_code == 201
    household = registry.HouseholdIn.from_dict(
        {
            "id_number": resident_id(7),
            "name": "农户7",
            "village_code": VILLAGE,
            "poor_household": True,
            "profile": AA_PROFILE,
        }
    )
    r = await bank.call("registry", "create_household_v1_households_post", body=household)
    assert r.status_code == 201, r.content
    household_id = r.parsed.household_id

    # 422 with its field, parsed: a household in a village that is not a code at all.
    bad = registry.HouseholdIn.from_dict({"id_number": resident_id(8), "name": "农户8", "village_code": "no such"})
    problem = _problem(
        bank,
        "registry",
        await bank.call("registry", "create_household_v1_households_post", body=bad),
        422,
        "VALIDATION_FAILED",
    )
    assert [e.field for e in problem.errors] == ["village_code"]

    rating: dict[str, Any] = {}

    async def rating_is(status: str) -> bool:
        r = await bank.call(
            "scoring", "household_rating_v1_households_household_id_rating_get", household_id, x_query_purpose=PURPOSE
        )
        if r.status_code != 200:
            return False
        rating["current"] = r.parsed
        return bool(r.parsed.status == status)

    await wait_until(lambda: rating_is("pending_notice"), seconds=20, what="the household's rating on notice")
    noticed = rating["current"]
    assert isinstance(noticed, scoring.CurrentRatingOut)
    assert (noticed.grade, noticed.notice_starts, noticed.notice_ends) == ("AA", START, START + timedelta(days=6))

    # 409 RATING_NOT_CERTIFIED: no line while the rating is on its public notice.
    line_in = loans.CreditLineIn(household_id=household_id)
    answer = await bank.call("loans", "create_credit_line_v1_credit_lines_post", body=line_in)
    _problem(bank, "loans", answer, 409, "RATING_NOT_CERTIFIED")

    # Close of business past the notice's last day: scoring certifies the rating.
    cob = await bank.call("loans", "run_cob_endpoint_v1_cob_post", body=loans.CobIn(date=START + timedelta(days=7)))
    assert cob.status_code == 200, cob.content
    assert cob.parsed.business_date == START + timedelta(days=7) and len(cob.parsed.closed) == 7
    await wait_until(lambda: rating_is("certified"), seconds=20, what="the rating certified after its notice")
    assert rating["current"].certificate_no

    line: dict[str, Any] = {}

    async def line_opens() -> bool:
        r = await bank.call("loans", "create_credit_line_v1_credit_lines_post", body=line_in, idempotency_key="line-1")
        line["answer"] = r
        return bool(r.status_code == 201)

    await wait_until(line_opens, seconds=20, what="the certified rating to reach loans")
    credit_line = line["answer"].parsed
    assert isinstance(credit_line, loans.CreditLineOut) and credit_line.limit == "100000.00"

    # 409 LIMIT_EXCEEDED: a drawdown above the line.
    above = loans.LoanIn(credit_line_id=credit_line.credit_line_id, amount="100000.01", term_months=12)
    _problem(bank, "loans", await bank.call("loans", "create_loan_v1_loans_post", body=above), 409, "LIMIT_EXCEEDED")
    # 422 naming the field: a term over three years (DOMAIN §4).
    long = loans.LoanIn(credit_line_id=credit_line.credit_line_id, amount="1000.00", term_months=37)
    problem = _problem(
        bank, "loans", await bank.call("loans", "create_loan_v1_loans_post", body=long), 422, "VALIDATION_FAILED"
    )
    assert [e.field for e in problem.errors] == ["term_months"]

    drawn = await bank.call(
        "loans",
        "create_loan_v1_loans_post",
        body=loans.LoanIn(credit_line_id=credit_line.credit_line_id, amount="12000.00", term_months=12),
        idempotency_key="draw-1",
    )
    assert drawn.status_code == 201, drawn.content
    loan_id = drawn.parsed.loan_id

    # The schedule, read back: twelve instalments whose principal adds up to the loan.
    read = await bank.call("loans", "get_loan_v1_loans_loan_id_get", loan_id, x_query_purpose=PURPOSE)
    assert read.status_code == 200, read.content
    schedule = read.parsed.schedule
    assert [i.number for i in schedule] == list(range(1, 13))
    assert sum(Decimal(i.principal) for i in schedule) == Decimal("12000.00")
    assert {i.state for i in schedule} == {"upcoming"} and all(i.billed is None for i in schedule)

    repaid = await bank.call(
        "loans", "create_repayment_v1_loans_loan_id_repayments_post", loan_id, body=loans.RepaymentIn(amount="500.00")
    )
    assert repaid.status_code == 201, repaid.content
    assert Decimal(repaid.parsed.principal_outstanding) < Decimal("12000.00")

    # The debit run: each item applied or refused alone, a refusal as the single endpoint's problem.
    run = loans.RepaymentBatchIn.from_dict(
        {"repayments": [{"loan_id": loan_id, "amount": "300.00"}, {"loan_id": "no-such-loan", "amount": "1.00"}]}
    )
    batch = await bank.call("loans", "create_repayment_batch_v1_repayment_batches_post", body=run)
    assert batch.status_code == 200, batch.content
    assert (batch.parsed.applied, batch.parsed.refused) == (1, 1)
    applied, refused = batch.parsed.results
    assert applied.status == 201 and applied.repayment.amount == "300.00"
    assert refused.status == 404 and isinstance(refused.problem, loans.Problem)
    assert (refused.problem.status, refused.problem.code) == (404, "LOAN_NOT_FOUND")

    statement = await bank.call(
        "loans", "get_statement_v1_loans_loan_id_statement_get", loan_id, x_query_purpose=PURPOSE
    )
    assert statement.status_code == 200, statement.content
    assert isinstance(statement.parsed, loans.StatementOut)
    assert statement.parsed.from_ == START + timedelta(days=7) and statement.parsed.household_id == household_id
    assert [line.kind for line in statement.parsed.lines] == ["drawdown", "repayment", "repayment"]
    assert statement.parsed.totals.drawn == "12000.00" and statement.parsed.totals.paid == "800.00"

    # 404: an unknown loan, read and statement alike.
    unknown = await bank.call("loans", "get_loan_v1_loans_loan_id_get", "no-such-loan", x_query_purpose=PURPOSE)
    _problem(bank, "loans", unknown, 404, "LOAN_NOT_FOUND")
    unknown = await bank.call(
        "loans", "get_statement_v1_loans_loan_id_statement_get", "no-such-loan", x_query_purpose=PURPOSE
    )
    _problem(bank, "loans", unknown, 404, "LOAN_NOT_FOUND")
