"""Drive a running system through a simulated district, day by day, over its public API.

Setup: townships and villages, then each village's collection sheet (采集表) as a CSV
import, as the village collectors would send it. Scoring rates every household and
notices the graded ones for 7 days; close of business (COB) moves the business date, so
the ratings are certified on the 8th day. From then on, each business day:
repayments that fall due, cures, write-offs and drawdowns, in that order; then COB to the
next day, beside a snapshot of the risk service's townships and the fund; the closed day's
reconciliation beside the next day's requests (a month end's settlement before them).

What each household does was decided when the district was generated (``district.py``);
what the system answers (grades, limits, refusals, freezes) is read back, never assumed.

Over 400 lines on purpose: one ``Simulation`` whose phases (setup, each business day's
queues of money in and out, snapshots, the tally) share its state of the district's loans.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

from services.registry.domain.provenance import COLLECTOR_SOURCES, SOURCES
from shared.money import to_fen
from shared.periods import add_months
from simulator.client import Api, ApiError, problem_code
from simulator.district import Borrowing, District, Household
from simulator.settlement import Settlement, month_end

NOTICE_DAYS = 8  # the 7-day 公示 (004 annex 2 step 4), certified on the day after it ends
CERTIFICATE_WAIT_S = 300
RETRY_REFUSED_AFTER = 30  # a refused household asks again a month later
REFUSALS_RETRIED = frozenset({"VILLAGE_FROZEN", "TOWNSHIP_HALTED", "FUND_CAPACITY_EXCEEDED"})
# A whole-village call skips a household whose certificate loans has not applied yet; the
# simulator asks again until none of its graded households is skipped for that.
NOT_CERTIFIED_YET = frozenset({"NOTICE_NOT_ENDED", "RATING_NOT_CERTIFIED"})
RECOVERY_EVERY_DAYS = 30  # after the write-off, then between a loan's recoveries
DEBIT_RUN_SIZE = 500  # repayments per POST /v1/repayment-batches
ZERO = Decimal("0.00")
T = TypeVar("T")

# Sheet columns by their usual Chinese headers (services/registry/domain/sheet.py).
_SHEET_HEADERS = {
    "id_number": "身份证号",
    "name": "姓名",
    "poor_household": "贫困户",
    "head_party_member": "党员",
    "head_college_or_above": "大专以上",
    "head_healthy": "身体健康",
    "military_service_in_family": "服过兵役",
    "homestead_house_value": "自建房价值",
    "income_project": "增收项目",
    "business_entity_scale": "经营主体规模",
    "certificates": "证书",
    "equipment": "设备",
    "honour_level": "荣誉",
    "family_harmony": "家庭和睦",
    "neighbour_harmony": "邻里和睦",
    "illegal_petitions_last_year": "非法上访次数",
    "urban_properties": "城镇房产",
    "commercial_insurance": "商业保险",
    "guarantees_given_total": "对外担保总额",
    "mortgages_given_total": "对外抵押总额",
    "court_enforcement_within_3y": "三年内被执行",
    "currently_under_enforcement": "正在被执行",
    "vice_record": "黄赌毒",
    "guarantee_currently_overdue": "担保逾期",
}
# Facts a village collector may not state come from their supplier (court, police, bank),
# each with its own statement and evidence, as the registry requires (004 annex 1 §2(3)).
SUPPLIER_OF = {f: sorted(roles)[0] for f, roles in SOURCES.items() if not roles & COLLECTOR_SOURCES}
_EVIDENCE = {"court": "(2026)豫1503执{n}号", "police": "信公(治)字[2026]{n}号", "bank": "征信查询{n}"}
_CERTIFICATE_WORDS = {"land_contract": "承包证", "homestead": "宅基地证", "forest": "林权证"}
_HONOUR_WORDS = {"district": "区级", "township": "乡镇级", "village": "村级"}


def _cell(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if key == "certificates":
        return "、".join(_CERTIFICATE_WORDS[c] for c in value) or "无"
    if key == "equipment":
        return "、".join(str(item["value"]) for item in value)
    if key == "honour_level":
        return _HONOUR_WORDS[value]
    if key == "urban_properties":
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def village_sheet(households: list[Household]) -> bytes:
    """A village's collection sheet as a UTF-8 CSV with the usual Chinese headers."""
    out = io.StringIO()
    writer = csv.writer(out)
    keys = list(_SHEET_HEADERS)
    writer.writerow([_SHEET_HEADERS[k] for k in keys])
    for h in households:
        row = {"id_number": h.id_number, "name": h.name, "poor_household": h.poor, **collector_facts(h)}
        writer.writerow(["" if row.get(k) is None else _cell(k, row[k]) for k in keys])
    return out.getvalue().encode()


def late_by(plan: Borrowing, n: int, *, first_loan: bool) -> int:
    """Days after its due date that instalment n is paid: the plan's lateness, within the
    grace period, on its first loan's instalment ``late_at``; 0 (on the due date) otherwise."""
    return plan.late_days if first_loan and plan.late_at == n else 0


def collector_facts(h: Household) -> dict[str, Any]:
    return {k: v for k, v in h.profile.items() if k not in SUPPLIER_OF}


def supplied_facts(h: Household) -> dict[str, dict[str, Any]]:
    """The household's other facts, by the role that supplies them."""
    by_source: dict[str, dict[str, Any]] = defaultdict(dict)
    for k, v in h.profile.items():
        if k in SUPPLIER_OF:
            by_source[SUPPLIER_OF[k]][k] = v
    return dict(by_source)


@dataclass
class LoanState:
    loan_id: str
    household: Household
    dues: list[tuple[date, Decimal]]  # (due_on, net_due) per instalment, from the schedule
    carries_default: bool  # a household's default plan applies to its first loan only
    defaulted: bool = False
    cured: bool = False
    status: str = "active"
    loss: Decimal = ZERO  # written off
    extended_months: int = 0  # approved by the second principal


@dataclass(frozen=True)
class Debit:
    """A repayment the bank collects in the day's debit run."""

    loan: LoanState
    amount: Decimal
    why: tuple[object, ...]


@dataclass
class Snapshot:
    business_date: date
    townships: dict[str, dict[str, Any]]
    fund: dict[str, Any]
    # Wall time of the day's parts and how many customer actions it ran: where a slow run went.
    seconds: dict[str, float] = field(default_factory=dict)
    actions: int = 0


@dataclass
class Tally:
    households_registered: int = 0
    import_failures: int = 0
    grades: Counter[str] = field(default_factory=Counter)
    lines_opened: int = 0
    lines_refused: Counter[str] = field(default_factory=Counter)
    village_credit_calls: int = 0  # POST /v1/villages/{code}/credit-lines, retries included
    villages_opened: int = 0  # villages whose call opened their lines
    lines_skipped: Counter[str] = field(default_factory=Counter)  # households not opened, by reason
    loans_drawn: int = 0
    amount_drawn: Decimal = ZERO
    drawdowns_refused: Counter[str] = field(default_factory=Counter)
    repayments: int = 0
    amount_repaid: Decimal = ZERO
    loans_repaid: int = 0
    defaults: int = 0
    cures: int = 0
    written_off: int = 0
    amount_written_off: Decimal = ZERO
    penalty_paid: Decimal = ZERO  # penalty and compound interest, from the repayments applied
    paid_within_grace: int = 0  # instalments paid 1..grace days late, the loan still on time
    amount_paid_within_grace: Decimal = ZERO
    extensions_proposed: int = 0
    extensions_approved: int = 0
    months_extended: int = 0
    extensions_refused: Counter[str] = field(default_factory=Counter)
    extensions_skipped_no_approver: int = 0
    recoveries: int = 0
    amount_recovered: Decimal = ZERO
    anomalies: list[str] = field(default_factory=list)


Action = Callable[[date], Awaitable[None]]


async def _timed(work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result and the seconds it took, for the day's parts run side by side."""
    began = time.monotonic()
    result = await work
    return result, time.monotonic() - began


class Simulation:
    def __init__(
        self,
        api: Api,
        district: District,
        *,
        months: int,
        write_off_after_days: int = 180,
        run_id: str | None = None,
        approver: Api | None = None,
    ) -> None:
        self.api = api
        # A second principal's credential: it approves the extensions the first proposes
        # (four eyes, 409 FOUR_EYES_REQUIRED otherwise). None: nothing is extended.
        self.approver = approver
        self.district = district
        self.months = months
        self.write_off_after_days = write_off_after_days
        self.run_id = run_id or f"sim{district.options.seed}"
        self.tally = Tally()
        self.snapshots: list[Snapshot] = []
        self.phases: dict[str, float] = {}
        self.household_ids: dict[int, str] = {}
        self.grade: dict[int, str] = {}
        self.limit: dict[int, Decimal] = {}
        self.lines: dict[int, str] = {}
        self.draws: Counter[int] = Counter()
        self.borrowers: set[int] = set()
        self.loans: list[LoanState] = []
        # The what-if score of each household with supplied facts, by index (setup).
        self.expected_scores: dict[int, int] = {}
        # Two queues a day: money comes in before it goes out, so repaid principal is
        # available to the drawdowns of the same day (revolving use).
        self._inflows: dict[date, list[Action]] = defaultdict(list)
        self._outflows: dict[date, list[Action]] = defaultdict(list)
        self._debits: list[Debit] = []
        # Villages asking again for lines whose certificates loans has not applied yet: one
        # at a time, until one finds all of its households certified (``_village_opener``).
        self._asking_again = asyncio.Lock()
        self._villages_through = 0
        self.start: date | None = None
        self.end: date | None = None
        # Settlement (issue 25), checked against the money the run itself moved each day.
        self.settlement = Settlement(api, approver, self._key, self.tally.anomalies)

    def _key(self, *parts: object) -> str:
        return "-".join([self.run_id, *map(str, parts)])

    # --- setup -------------------------------------------------------------------------

    async def setup(self) -> None:
        began = time.monotonic()
        self.phases["registration"] = 0.0  # set at the end; first here, so its parts follow it
        for t in self.district.townships:
            await self.api.post("registry", "/v1/townships", {"code": t.code, "name": t.name})
        await asyncio.gather(
            *(
                self.api.post(
                    "registry", "/v1/villages", {"code": v.code, "name": v.name, "township_code": v.township_code}
                )
                for v in self.district.villages
            )
        )
        # What the scorecard will say of each household whose other facts their suppliers
        # state (the stateless what-if, no household needed): asked before the sheets go in,
        # while scoring has nothing else to do. Asked during the rating, these calls shared
        # scoring's process with the rating of every sheet row (issue 27: the facts and these
        # scores took 82 s of the 150 s rating phase at 20,000 households).
        scored = time.monotonic()
        supplied = [h for h in self.district.households if supplied_facts(h)]
        scores = await asyncio.gather(*(self._evaluate(h) for h in supplied))
        self.expected_scores = dict(zip([h.index for h in supplied], scores, strict=True))
        self.phases["  what-if scores"] = time.monotonic() - scored
        reports = await asyncio.gather(*(self._import(v.code) for v in self.district.villages))
        self.tally.households_registered = sum(r["registered"] for r in reports)
        self.tally.import_failures = sum(r["failed"] for r in reports)
        for r in reports:
            for e in r["errors"][:3]:
                self.tally.anomalies.append(f"import {r['village_code']} row {e['row']} {e['field']}: {e['reason']}")
        self.phases["registration"] = time.monotonic() - began

    async def _import(self, village_code: str) -> dict[str, Any]:
        response = await self.api.request(
            "registry",
            "POST",
            f"/v1/villages/{village_code}/households/import",
            endpoint="/v1/villages/{code}/households/import",
            content=village_sheet(self.district.households_of(village_code)),
            params={"filename": f"{village_code}.csv"},
            headers={"Content-Type": "text/csv"},
        )
        if response.status_code != 200:
            raise ApiError(response)
        report: dict[str, Any] = response.json()
        return report

    async def learn_ratings(self, deadline_s: float = 600) -> None:
        """Household ids from registry, grades from scoring, once scoring has rated all."""
        began = time.monotonic()
        self.phases["rating"] = 0.0  # set at the end; first here, so its parts follow it in the summary
        by_name = {(h.village_code, h.name): h for h in self.district.households}
        listed = await asyncio.gather(
            *(
                self.api.cursor_pages("registry", "/v1/households", village_code=v.code, limit=500)
                for v in self.district.villages
            )
        )
        for village_items in listed:
            for item in village_items:
                h = by_name.get((item["village_code"], item["name"]))
                if h is not None:
                    self.household_ids[h.index] = item["household_id"]
        supplied = [h for h in self.district.households if h.index in self.household_ids and supplied_facts(h)]
        # A supplied household's grade is final when its score is the one the what-if gave
        # (setup), whether or not scoring has got to its new facts yet (a fact may change nothing).
        self.phases["  households listed"] = time.monotonic() - began
        await asyncio.gather(*(self._supply(h) for h in supplied))
        expected = {h.index: self.expected_scores[h.index] for h in supplied}
        self.phases["  facts supplied"] = time.monotonic() - began - self.phases["  households listed"]
        # Registry's events are keyed by village and scoring applies a partition in order, so
        # once a village's last sheet row is rated, all its sheet rows are.
        last_rows = {}
        for h in self.district.households:
            if h.index in self.household_ids:
                last_rows[h.village_code] = h.index
        # The supplied facts follow the sheets in each village's partition, so they are asked
        # after the sentinels: polling them all along would take scoring's time from rating.
        for phase, waiting in (
            ("  waiting for the sheets' ratings", set(last_rows.values())),
            ("  waiting for the supplied facts' ratings", set(expected)),
        ):
            awaited = time.monotonic()
            while waiting:
                if time.monotonic() - began > deadline_s:
                    raise TimeoutError(f"{len(waiting)} ratings still awaited after {deadline_s:.0f} s")
                pending = sorted(waiting)
                answers = await asyncio.gather(*(self._rating(i, expected.get(i)) for i in pending))
                waiting -= {i for i, done in zip(pending, answers, strict=True) if done}
                if waiting:
                    await asyncio.sleep(1)
            self.phases[phase] = time.monotonic() - awaited
        notices = await asyncio.gather(
            *(
                self.api.get("scoring", f"/v1/villages/{v.code}/notices", endpoint="/v1/villages/{code}/notices")
                for v in self.district.villages
            )
        )
        index_of = {hid: i for i, hid in self.household_ids.items()}
        for entries in notices:
            for e in entries:
                i = index_of[e["subject_id"]]
                if i not in expected:
                    self.grade[i], self.limit[i] = e["grade"], Decimal(e["credit_limit"])
        for i in self.household_ids:
            # Not noticed: no grade (a rating that gives no credit has nothing to notice).
            self.grade.setdefault(i, "NONE")
            self.limit.setdefault(i, ZERO)
        self.tally.grades = Counter(self.grade.values())
        self.phases["rating"] = time.monotonic() - began

    async def _supply(self, h: Household) -> None:
        for source, facts in supplied_facts(h).items():
            evidence = _EVIDENCE[source].format(n=h.index + 1)
            response = await self.api.request(
                "registry",
                "PATCH",
                f"/v1/households/{self.household_ids[h.index]}/profile",
                endpoint="/v1/households/{id}/profile",
                json=facts,
                headers={"X-Fact-Source": source, "X-Evidence-Ref": quote(evidence)},
            )
            if response.status_code != 200:
                raise ApiError(response)

    async def _evaluate(self, h: Household) -> int:
        body = {"poor_household": h.poor, "profile": h.profile}
        score: int = (await self.api.post("scoring", "/v1/scorecard/evaluate", body))["score"]
        return score

    async def _rating(self, i: int, expected_score: int | None = None) -> bool:
        response = await self.api.request(
            "scoring",
            "GET",
            f"/v1/households/{self.household_ids[i]}/rating",
            endpoint="/v1/households/{id}/rating",
        )
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise ApiError(response)
        rating = response.json()
        if expected_score is not None and rating["score"] != expected_score:
            return False  # the supplied facts are not rated yet
        self.grade[i], self.limit[i] = rating["grade"], Decimal(rating["credit_limit"])
        return True

    # --- the days ----------------------------------------------------------------------

    async def run_days(self, progress: Callable[[Snapshot], None] | None = None) -> None:
        began = time.monotonic()
        self.start = date.fromisoformat((await self.api.get("loans", "/v1/business-date"))["business_date"])
        self.end = add_months(self.start, self.months)
        opening = self.start + timedelta(days=NOTICE_DAYS)
        for village in self.district.villages:
            self._outflows[opening].append(self._village_opener(village.code))
        day = self.start
        spent: defaultdict[str, float] = defaultdict(float)
        # A closed ordinary day's reconciliation runs beside the next day's requests: the
        # file of a closed day no longer changes, and the bank's back office checks it while
        # the branches serve customers. Month ends stay in line (the period's close, trial
        # balance and claims before the next day's business).
        reconciling: asyncio.Task[None] | None = None

        async def settle(closed: date, snapshot: Snapshot) -> None:
            _, took = await _timed(self.settlement.after_close(closed))
            snapshot.seconds["settlement"] = took
            spent["  settlement"] += took

        try:
            while day < self.end:
                t0 = time.monotonic()
                ran = 0
                # An action may add another for the same day (a line opened today, drawn today).
                while actions := self._inflows.pop(day, []) or self._outflows.pop(day, []):
                    ran += len(actions)
                    await self._run(actions, day)
                    await self._debit_run(day)
                t1 = time.monotonic()
                if reconciling is not None:
                    await reconciling
                    reconciling = None
                # The snapshot reads risk's view of the day, the close moves loans' date: one
                # does not wait for the other (risk learns of the close only through events).
                (snapshot, shot), (_, closed) = await asyncio.gather(
                    _timed(self.snapshot(day)),
                    _timed(self.api.post("loans", "/v1/cob", {"date": (day + timedelta(days=1)).isoformat()})),
                )
                if progress is not None:
                    progress(snapshot)
                # Each part's own duration: the snapshot and the close overlap, and an ordinary
                # day's settlement overlaps the next day's requests.
                snapshot.seconds = {"requests": t1 - t0, "snapshot": shot, "close_of_business": closed}
                snapshot.actions = ran
                spent["  customers' requests"] += t1 - t0
                spent["  snapshots"] += shot
                spent["  close of business"] += closed
                spent["  snapshot and close of business, side by side"] += time.monotonic() - t1
                if month_end(day):
                    await settle(day, snapshot)
                else:
                    reconciling = asyncio.create_task(settle(day, snapshot))
                day += timedelta(days=1)
            if reconciling is not None:
                await reconciling
                reconciling = None
        finally:
            if reconciling is not None:
                reconciling.cancel()
        self.phases["business days"] = time.monotonic() - began
        self.phases.update(spent)

    async def _run(self, actions: list[Action], day: date) -> None:
        outcomes = await asyncio.gather(*(a(day) for a in actions), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, ApiError):
                # Surfaced in the summary; one household's surprise must not end the run.
                self.tally.anomalies.append(f"{day}: {outcome}")
            elif isinstance(outcome, BaseException):
                raise outcome

    async def snapshot(self, day: date) -> Snapshot:
        townships, fund = await asyncio.gather(self.api.get("risk", "/v1/townships"), self.api.get("risk", "/v1/fund"))
        snap = Snapshot(day, {t["code"]: t for t in townships}, fund)
        self.snapshots.append(snap)
        return snap

    def _later(self, queue: dict[date, list[Action]], day: date, action: Action) -> None:
        assert self.end is not None
        if day < self.end:
            queue[day].append(action)

    def _village_opener(self, village_code: str, attempt: int = 0) -> Action:
        """Whole-village credit (整村授信, docs/loan-lifecycle.md): one call opens the lines
        of every certified household of the village, on the day the certificates are
        issued. Loans learns of them from scoring's events within seconds, so a graded
        household skipped as not certified yet is asked for again with the next call (a new
        Idempotency-Key: the same one would replay the stored answer) until none is, or
        CERTIFICATE_WAIT_S has passed. A frozen village, a halted township or a full fund
        refuses the whole call; the village asks again a month later."""
        graded = {
            self._id(h)
            for h in self.district.households_of(village_code)
            if h.index in self.household_ids and self.grade.get(h.index, "NONE") != "NONE"
        }
        by_id = {self._id(h): h for h in self.district.households_of(village_code) if h.index in self.household_ids}

        async def open_lines(day: date) -> None:
            began, pause = time.monotonic(), 1.0
            outcome: dict[str, str] = {}  # household id -> "opened" or why it was skipped

            async def ask() -> set[str] | None:
                """One call; the graded households still not certified in loans, or None
                when the village is refused (asked again in a month)."""
                nonlocal attempt
                attempt += 1
                self.tally.village_credit_calls += 1
                response = await self.api.request(
                    "loans",
                    "POST",
                    f"/v1/villages/{village_code}/credit-lines",
                    endpoint="/v1/villages/{code}/credit-lines",
                    key=self._key("village-lines", village_code, attempt),
                )
                if response.status_code != 200:
                    code = problem_code(response)
                    self.tally.lines_refused[code or str(response.status_code)] += 1
                    if code in REFUSALS_RETRIED:
                        self._later(self._outflows, day + timedelta(days=RETRY_REFUSED_AFTER), open_lines)
                        return None
                    raise ApiError(response)
                answer = response.json()
                for line in answer["opened"]:
                    if (h := by_id.get(line["household_id"])) is not None:  # else not this district's
                        self._line_opened(h, line, day)
                    outcome[line["household_id"]] = "opened"
                for skip in answer["skipped"]:
                    if outcome.get(skip["household_id"]) != "opened":
                        outcome[skip["household_id"]] = skip["reason_code"]
                return {i for i in graded if outcome.get(i) in NOT_CERTIFIED_YET}

            pending = await ask()
            if pending is None:
                return
            while pending and time.monotonic() - began < CERTIFICATE_WAIT_S:
                # Every village's certificates reach loans in one stream (scoring certifies
                # the district in one transaction), so while they are on their way one
                # village at a time asks again, backing off, and the others wait for it: a
                # hundred villages asking every few seconds kept loans answering them rather
                # than applying the certificates (issue 27: 1,299 calls over the 68 s of the
                # opening day at 20,000 households). Once a village asking again finds all
                # its households certified, the others ask at once.
                through = self._villages_through
                async with self._asking_again:
                    if self._villages_through == through:
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, 4.0) * random.uniform(0.75, 1.0)
                        pending = await ask()
                        if pending is None:
                            return
                        if not pending:
                            self._villages_through += 1
                        continue
                pending = await ask()
                if pending is None:
                    return
                if not pending:
                    self._villages_through += 1
            if any(reason == "opened" for reason in outcome.values()):
                self.tally.villages_opened += 1
            self.tally.lines_skipped.update(reason for reason in outcome.values() if reason != "opened")

        return open_lines

    def _line_opened(self, h: Household, line: dict[str, Any], day: date) -> None:
        self.lines[h.index] = line["credit_line_id"]
        self.limit[h.index] = Decimal(line["limit"])
        self.tally.lines_opened += 1
        if h.borrowing is not None:
            self._later(self._outflows, day + timedelta(days=h.borrowing.draw_after_days), self._drawer(h))

    def _id(self, h: Household) -> str:
        return self.household_ids[h.index]

    def _drawer(self, h: Household) -> Action:
        plan = h.borrowing
        assert plan is not None

        async def draw(day: date) -> None:
            self.draws[h.index] += 1
            amount = min(plan.amount, self.limit[h.index])
            response = await self.api.request(
                "loans",
                "POST",
                "/v1/loans",
                key=self._key("draw", h.index, self.draws[h.index]),
                json={
                    "credit_line_id": self.lines[h.index],
                    "amount": str(amount),
                    "term_months": plan.term_months,
                    "repayment_method": plan.repayment_method,
                },
            )
            if response.status_code != 201:
                code = problem_code(response)
                self.tally.drawdowns_refused[code or str(response.status_code)] += 1
                if code in REFUSALS_RETRIED:
                    self._later(self._outflows, day + timedelta(days=RETRY_REFUSED_AFTER), draw)
                return
            loan = response.json()
            state = LoanState(
                loan["loan_id"],
                h,
                [(date.fromisoformat(i["due_on"]), Decimal(i["net_due"])) for i in loan["schedule"]],
                carries_default=h.index not in self.borrowers,
            )
            self.borrowers.add(h.index)
            self.loans.append(state)
            self.tally.loans_drawn += 1
            self.tally.amount_drawn += amount
            self.settlement.book.add(day, "disbursement", amount)
            for n, (due_on, _) in enumerate(state.dues, start=1):
                late = late_by(plan, n, first_loan=state.carries_default)
                self._later(self._inflows, due_on + timedelta(days=late), self._payer(state, n, late))
            if state.carries_default and plan.extend_at is not None:
                # After the day's repayments: the bank extends on the due date of extend_at.
                self._later(self._outflows, state.dues[plan.extend_at - 1][0], self._extender(state))

        return draw

    def _payer(self, loan: LoanState, n: int, late: int = 0) -> Action:
        plan = loan.household.borrowing
        assert plan is not None

        async def pay(day: date) -> None:
            if loan.status != "active":
                return
            if late:
                await self._pay_late(loan, n, late, day)
                return
            if loan.carries_default and plan.default_at is not None and n >= plan.default_at and not loan.cured:
                # A fully subsidised interest instalment asks nothing: the default shows at
                # the first instalment that asks for money.
                if not loan.defaulted and (loan.dues[n - 1][1] > 0 or n == len(loan.dues)):
                    loan.defaulted = True
                    self.tally.defaults += 1
                    if plan.cure_after_days is not None:
                        self._later(self._inflows, day + timedelta(days=plan.cure_after_days), self._curer(loan))
                    else:
                        self._later(self._inflows, day + timedelta(days=self.write_off_after_days), self._writer(loan))
                return
            if n == len(loan.dues):
                await self._pay_all_due(loan, ("pay", n))
            elif loan.dues[n - 1][1] > 0:
                self._debits.append(Debit(loan, loan.dues[n - 1][1], ("pay", n)))

        return pay

    async def _pay_late(self, loan: LoanState, n: int, late: int, day: date) -> None:
        """Instalment n paid ``late`` days after its due date, within the grace period: the
        loan must still be 0 days past due and normal (docs/loan-lifecycle.md, "Past due"),
        so no penalty, no classification and nothing scoring would veto. An extended loan
        keeps the extension's floor; its days past due must still be 0."""
        state = await self.api.get("loans", f"/v1/loans/{loan.loan_id}", endpoint="/v1/loans/{id}")
        due = Decimal(state["amount_due"])
        if due <= 0:
            return  # a fully subsidised instalment asks nothing; paid ahead: nothing billed
        # An extended loan is classified no better than the extension's floor (by default
        # special_mention), however it pays; lateness within the grace adds nothing to it.
        on_time = "normal" if not loan.extended_months else state["classification"]
        if state["days_past_due"] != 0 or state["classification"] != on_time:
            self.tally.anomalies.append(
                f"{day}: {loan.loan_id} instalment {n} paid {late} days late shows {state['days_past_due']} "
                f"days past due, {state['classification']} (are the services run with "
                f"VCREDIT_LOANS_GRACE_DAYS >= {self.district.options.grace_days}?)"
            )
        self.tally.paid_within_grace += 1
        self.tally.amount_paid_within_grace += due
        self._debits.append(Debit(loan, due, ("late", n)))

    def _extender(self, loan: LoanState) -> Action:
        plan = loan.household.borrowing
        assert plan is not None

        async def extend(day: date) -> None:
            if loan.status != "active":
                return
            if self.approver is None:
                self.tally.extensions_skipped_no_approver += 1
                return
            base = f"/v1/loans/{loan.loan_id}/extensions"
            proposed = await self.api.request(
                "loans",
                "POST",
                base,
                endpoint="/v1/loans/{id}/extensions",
                key=self._key("extension", loan.loan_id),
                json={"months": plan.extend_months, "reason": "收成受灾，申请展期 (harvest lost; simulated)"},
            )
            if proposed.status_code != 201:
                self.tally.extensions_refused[problem_code(proposed) or str(proposed.status_code)] += 1
                return
            self.tally.extensions_proposed += 1
            extension_id = proposed.json()["extension_id"]
            # The second principal decides (four eyes): a different credential from the proposer's.
            approved = await self.approver.request(
                "loans",
                "POST",
                f"{base}/{extension_id}/approval",
                endpoint="/v1/loans/{id}/extensions/{extension_id}/approval",
                key=self._key("extension-approval", loan.loan_id),
                json={"reasons": "核实受灾，同意展期"},
            )
            if approved.status_code != 200:
                self.tally.extensions_refused[problem_code(approved) or str(approved.status_code)] += 1
                return
            after = approved.json()["loan"]
            self.tally.extensions_approved += 1
            self.tally.months_extended += plan.extend_months
            loan.extended_months = after["extended_months"]
            # The due dates stay anchored on the drawdown; the amounts are re-planned and the
            # added instalments get payers of their own.
            old = len(loan.dues)
            loan.dues = [(date.fromisoformat(i["due_on"]), Decimal(i["net_due"])) for i in after["schedule"]]
            for n in range(old + 1, len(loan.dues) + 1):
                self._later(self._inflows, loan.dues[n - 1][0], self._payer(loan, n))

        return extend

    def _recoverer(self, loan: LoanState, k: int) -> Action:
        plan = loan.household.borrowing
        assert plan is not None

        async def recover(day: date) -> None:
            amount = to_fen(loan.loss * plan.recoveries[k])
            if amount > 0:
                out = await self.api.post(
                    "loans",
                    f"/v1/loans/{loan.loan_id}/recoveries",
                    {"amount": str(amount)},
                    endpoint="/v1/loans/{id}/recoveries",
                    key=self._key("recovery", loan.loan_id, k),
                )
                self.tally.recoveries += 1
                self.tally.amount_recovered += Decimal(out["amount"])
                self.settlement.book.add(day, "recovery", amount)
            if k + 1 < len(plan.recoveries):
                self._later(self._inflows, day + timedelta(days=RECOVERY_EVERY_DAYS), self._recoverer(loan, k + 1))

        return recover

    def _curer(self, loan: LoanState) -> Action:
        async def cure(day: date) -> None:
            loan.cured = True
            self.tally.cures += 1
            await self._pay_all_due(loan, ("cure",))

        return cure

    def _writer(self, loan: LoanState) -> Action:
        async def write_off(day: date) -> None:
            state = await self.api.get("loans", f"/v1/loans/{loan.loan_id}", endpoint="/v1/loans/{id}")
            if not state["non_performing"]:
                self.tally.anomalies.append(
                    f"{loan.loan_id} not non-performing at write-off: {state['classification']}"
                )
                return
            out = await self.api.post(
                "loans",
                f"/v1/loans/{loan.loan_id}/write-off",
                endpoint="/v1/loans/{id}/write-off",
                key=self._key("write-off", loan.loan_id),
            )
            loan.status = "written_off"
            loan.loss = Decimal(out["loss"])
            self.tally.written_off += 1
            self.tally.amount_written_off += loan.loss
            self.settlement.book.add(day, "write_off", loan.loss)
            plan = loan.household.borrowing
            if plan is not None and plan.recoveries:
                self._later(self._inflows, day + timedelta(days=RECOVERY_EVERY_DAYS), self._recoverer(loan, 0))

        return write_off

    async def _pay_all_due(self, loan: LoanState, why: tuple[object, ...]) -> None:
        state = await self.api.get("loans", f"/v1/loans/{loan.loan_id}", endpoint="/v1/loans/{id}")
        due = Decimal(state["amount_due"])
        if due > 0:
            self._debits.append(Debit(loan, due, why))

    async def _debit_run(self, day: date) -> None:
        """The day's repayments, collected as a bank collects instalments: in a debit run
        (批量扣款), each applied or refused on its own. Sorted, so a rerun of the seed
        sends the same runs under the same idempotency keys."""
        debits = sorted(self._debits, key=lambda d: (d.loan.loan_id, d.why))
        self._debits = []
        for start in range(0, len(debits), DEBIT_RUN_SIZE):
            chunk = debits[start : start + DEBIT_RUN_SIZE]
            out = await self.api.post(
                "loans",
                "/v1/repayment-batches",
                {
                    "date": day.isoformat(),
                    "repayments": [{"loan_id": d.loan.loan_id, "amount": str(d.amount)} for d in chunk],
                },
                key=self._key("debit-run", day, start // DEBIT_RUN_SIZE),
            )
            for debit, result in zip(chunk, out["results"], strict=True):
                if result["status"] == 201:
                    self._repaid(debit, result["repayment"])
                    self.settlement.book.add(day, "repayment", debit.amount)
                else:
                    # Surfaced in the summary; one household's surprise must not end the run.
                    problem = result["problem"] or {}
                    self.tally.anomalies.append(
                        f"{day}: repayment of {debit.loan.loan_id} refused: {result['status']} {problem.get('code')}"
                    )

    def _repaid(self, debit: Debit, out: dict[str, Any]) -> None:
        loan = debit.loan
        self.tally.repayments += 1
        self.tally.amount_repaid += debit.amount
        self.tally.penalty_paid += Decimal(out.get("penalty") or ZERO)
        if Decimal(out["principal_outstanding"]) == 0 and Decimal(out["interest_outstanding"]) == 0:
            loan.status = "repaid"
            self.tally.loans_repaid += 1
            plan = loan.household.borrowing
            assert plan is not None and self.start is not None
            if plan.reborrow_after_days is not None:
                day = date.fromisoformat(out["business_date"])
                self._later(
                    self._outflows, day + timedelta(days=plan.reborrow_after_days), self._drawer(loan.household)
                )

    async def settle(self, deadline_s: float = 120) -> None:
        """Wait until risk has booked every write-off and recovery (events are eventually
        consistent)."""
        began = time.monotonic()
        while True:
            losses = await self.api.offset_pages("risk", "/v1/losses")
            recovered = sum((Decimal(row.get("recovered", ZERO)) for row in losses), ZERO)
            booked = len(losses) >= self.tally.written_off and recovered >= self.tally.amount_recovered
            if booked or time.monotonic() - began > deadline_s:
                break
            await asyncio.sleep(0.5)
        self.phases["settling"] = time.monotonic() - began
