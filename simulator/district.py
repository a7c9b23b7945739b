"""A synthetic district: townships, villages and households with their profiles and the
way each will behave as a borrower. Pure and seeded: the same options give the same
district, so a run can be repeated and compared.

The profile probabilities are set so that the scorecard (004 annex 3) yields a plausible
grade mix: most households with an income project land in A or AA, a tenth or so reach
AAA or better, and those without a project or with a veto get no grade
(tests/unit/simulator/test_run.py checks the mix against the real rule set).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from services.registry.domain.identifiers import resident_id_check_char

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "建国军华明伟芳秀英兰玉梅桂珍凤德福贵财春生海山林平红丽强刚勇志成东峰霞云燕文斌涛敏杰静宏新荣"
TOWNSHIP_NAMES = (
    "城关镇",
    "五里店镇",
    "明港镇",
    "洋山乡",
    "高梁店乡",
    "肖王乡",
    "胡店乡",
    "彭家湾乡",
    "长台关乡",
    "邢集镇",
)
VILLAGE_STEMS = "东西南北前后上下大小新老高低河湖山岭岗湾桥店庄寨堡营集"
VILLAGE_TAILS = ("岗", "湾", "庄", "店", "寨", "营", "集", "冲", "洼", "坪")
# 信阳市平桥区: a real address code, so the generated ID numbers look like the district's.
REGION = "411503"


@dataclass(frozen=True)
class Options:
    seed: int = 2026
    townships: int = 5
    villages: int = 100
    households: int = 20_000
    poor_share: float = 0.25
    borrower_share: float = 0.20  # of households with a credit grade; 扶贫小额信贷 reaches a minority
    default_rate: float = 0.01  # share of borrowers who stop paying, in an ordinary village
    risky_villages: float = 0.08  # share of villages with a bad repayment culture
    risky_default_rate: float = 0.15
    troubled_townships: int = 1  # townships whose villages are mostly risky (so one halts)
    cure_rate: float = 0.25  # defaulters who later pay their arrears and carry on
    reborrow_rate: float = 0.6  # borrowers who draw again after repaying in full (周转使用)
    # Issue 24's lifecycle, drawn from a stream of their own (``lifecycle``), so the draws
    # above, and with them a seed's district as it was before, are unchanged.
    grace_days: int = 0  # the services' VCREDIT_LOANS_GRACE_DAYS; 0: nobody pays late
    late_share: float = 0.15  # paying borrowers who pay one instalment 1..grace_days late
    extension_share: float = 0.05  # paying borrowers whose loan the bank extends (展期)
    recovery_share: float = 0.6  # written-off loans on which the bank later recovers money


@dataclass(frozen=True)
class Township:
    code: str
    name: str


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    township_code: str
    default_rate: float


@dataclass(frozen=True)
class Borrowing:
    """How a household borrows and repays, decided before the run (the RNG draws happen
    once, so the behaviour does not depend on timing)."""

    draw_after_days: int  # after the credit line opens
    amount: Decimal  # wished; capped by the credit limit
    term_months: int
    repayment_method: str
    default_at: int | None  # first instalment it does not pay; None: pays every one
    cure_after_days: int | None  # days after default_at's due date when it pays the arrears
    reborrow_after_days: int | None
    # Issue 24 (``lifecycle``): one instalment paid late_days late, within the grace period.
    late_at: int | None = None
    late_days: int = 0
    # The bank extends the loan by extend_months on instalment extend_at's due date.
    extend_at: int | None = None
    extend_months: int = 0
    # Shares of the loss recovered after a write-off, one recovery every RECOVERY_EVERY_DAYS.
    recoveries: tuple[Decimal, ...] = ()


@dataclass(frozen=True)
class Household:
    index: int
    village_code: str
    name: str
    id_number: str
    poor: bool
    profile: dict[str, Any]
    borrowing: Borrowing | None


@dataclass
class District:
    options: Options
    townships: list[Township] = field(default_factory=list)
    villages: list[Village] = field(default_factory=list)
    households: list[Household] = field(default_factory=list)

    def households_of(self, village_code: str) -> list[Household]:
        return [h for h in self.households if h.village_code == village_code]


def _chance(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def _money(value: float) -> str:
    return str(Decimal(int(value) // 1000 * 1000))


def profile(rng: random.Random) -> dict[str, Any]:
    """One household's collection-sheet profile (API.md `Profile`); fields left unknown
    are absent, as on a real sheet. A latent prosperity draws the good items together, as
    they go together in life, which gives the grade mix its upper tail."""
    w = rng.random() ** 2  # prosperity: most households modest, a few well off
    p: dict[str, Any] = {
        "head_party_member": _chance(rng, 0.04 + 0.2 * w),
        "head_college_or_above": _chance(rng, 0.02 + 0.2 * w),
        "head_healthy": _chance(rng, 0.85),
        "military_service_in_family": _chance(rng, 0.07),
        "homestead_house_value": _money(rng.lognormvariate(11.3 + 1.5 * w, 0.4)),
        "income_project": _chance(rng, 0.8 + 0.2 * w),
        "commercial_insurance": _chance(rng, 0.1 + 0.6 * w),
    }
    p["certificates"] = [
        c for c, share in (("land_contract", 0.4), ("homestead", 0.3), ("forest", 0.1)) if _chance(rng, share + w / 2)
    ]
    if _chance(rng, 0.02 + 0.2 * w):
        p["business_entity_scale"] = _money(rng.uniform(30_000, 150_000))
    if _chance(rng, 0.05 + 0.4 * w):
        p["equipment"] = [{"registered": True, "value": _money(rng.uniform(20_000, 150_000))}]
    honour = rng.random() / (0.3 + w)
    if honour < 0.12:
        p["honour_level"] = "district" if honour < 0.01 else "township" if honour < 0.04 else "village"
    for key in ("family_harmony", "neighbour_harmony"):
        mood = rng.random()
        if mood < 0.3 + 0.4 * w:
            p[key] = True
        elif mood < 0.33 + 0.4 * w:
            p[key] = False
    if _chance(rng, 0.01):
        p["illegal_petitions_last_year"] = 1
    if _chance(rng, 0.03 + 0.4 * w):
        p["urban_properties"] = [
            {"area_m2": str(rng.randint(45, 130)), "certified": _chance(rng, 0.8), "mortgaged": _chance(rng, 0.3)}
        ]
    if _chance(rng, 0.05):
        p["guarantees_given_total"] = _money(rng.uniform(20_000, 350_000))
    if _chance(rng, 0.02):
        p["mortgages_given_total"] = _money(rng.uniform(20_000, 100_000))
    for key, share in (
        ("court_enforcement_within_3y", 0.01),
        ("currently_under_enforcement", 0.004),
        ("vice_record", 0.003),
        ("guarantee_currently_overdue", 0.004),
    ):
        if _chance(rng, share):
            p[key] = True
    return p


def borrowing(rng: random.Random, default_rate: float, options: Options) -> Borrowing:
    term = rng.choices((12, 24, 36), weights=(55, 25, 20))[0]
    method = rng.choices(("equal_instalment", "interest_only", "equal_principal"), weights=(50, 40, 10))[0]
    # 扶贫小额信贷 is "5万元以下": most draw 10,000 to 50,000.
    amount = Decimal(rng.choices((10_000, 20_000, 30_000, 50_000), weights=(20, 30, 25, 25))[0])
    default_at = rng.randint(1, min(6, term)) if _chance(rng, default_rate) else None
    cure = rng.randint(20, 80) if default_at is not None and _chance(rng, options.cure_rate) else None
    reborrow = rng.randint(5, 30) if _chance(rng, options.reborrow_rate) else None
    return Borrowing(rng.randint(0, 60), amount.quantize(Decimal("0.01")), term, method, default_at, cure, reborrow)


# 贷款通则 art. 12 and the programme's 36 months (docs/loan-lifecycle.md): a 12-month loan may
# take up to 12 more, a 24-month one 12, a 36-month one none.
EXTENSIBLE_MONTHS = {12: 12, 24: 12}


def lifecycle(rng: random.Random, plan: Borrowing, options: Options) -> Borrowing:
    """Issue 24's behaviours for one borrower: a payment late within the grace period, an
    extension, recoveries after a write-off. Only borrowers who keep paying pay late or are
    extended (a defaulter's lateness is the default); only defaulters can be written off."""
    late_at = late_days = extend_at = extend_months = None
    recoveries: tuple[Decimal, ...] = ()
    if plan.default_at is None:
        if options.grace_days > 0 and _chance(rng, options.late_share):
            # Within the first half year, so a run of a few months sees it.
            late_at, late_days = rng.randint(1, min(6, plan.term_months)), rng.randint(1, options.grace_days)
        if plan.term_months in EXTENSIBLE_MONTHS and _chance(rng, options.extension_share):
            # On a due date that leaves instalments to re-plan (an extension needs one not yet due).
            extend_at = rng.randint(1, min(3, plan.term_months - 1))
            extend_months = rng.randint(3, min(6, EXTENSIBLE_MONTHS[plan.term_months]))
    elif plan.cure_after_days is None and _chance(rng, options.recovery_share):
        # Collection after write-off recovers part of the loss, in one or two amounts.
        first = Decimal(rng.randint(10, 50)) / 100
        recoveries = (first,) if _chance(rng, 0.5) else (first, Decimal(rng.randint(5, 40)) / 100)
    return replace(
        plan,
        late_at=late_at,
        late_days=late_days or 0,
        extend_at=extend_at,
        extend_months=extend_months or 0,
        recoveries=recoveries,
    )


def _unique(draw: Callable[[], str], taken: set[str]) -> str:
    while (value := draw()) in taken:
        pass
    taken.add(value)
    return value


def resident_id(rng: random.Random) -> str:
    birth = date.fromordinal(rng.randint(date(1945, 1, 1).toordinal(), date(2000, 12, 31).toordinal()))
    first17 = f"{REGION}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
    return first17 + resident_id_check_char(first17)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _village_name(rng: random.Random) -> str:
    return rng.choice(VILLAGE_STEMS) + rng.choice(VILLAGE_STEMS) + rng.choice(VILLAGE_TAILS) + "村"


def generate(options: Options) -> District:
    if not 1 <= options.townships <= options.villages <= options.households:
        raise ValueError("need 1 <= townships <= villages <= households")
    rng = random.Random(options.seed)
    district = District(options)
    prefix = f"S{options.seed}"
    for t in range(options.townships):
        name = TOWNSHIP_NAMES[t % len(TOWNSHIP_NAMES)] + ("" if t < len(TOWNSHIP_NAMES) else str(t))
        district.townships.append(Township(f"{prefix}T{t + 1:02d}", name))
    troubled = {t.code for t in district.townships[: options.troubled_townships]}
    village_names: set[str] = set()
    for v in range(options.villages):
        township = district.townships[v % options.townships]
        # A troubled township has most of its villages risky, so 30% or more of them cross 3%.
        risky_share = 0.5 if township.code in troubled else options.risky_villages
        rate = options.risky_default_rate if _chance(rng, risky_share) else options.default_rate
        name = _unique(lambda: _village_name(rng), village_names)
        district.villages.append(Village(f"{township.code}V{v + 1:03d}", name, township.code, rate))
    ids: set[str] = set()
    names: dict[str, set[str]] = {v.code: set() for v in district.villages}
    for i in range(options.households):
        village = district.villages[i % options.villages]
        person = _unique(lambda: _name(rng), names[village.code])  # the simulation matches by name in a village
        number = _unique(lambda: resident_id(rng), ids)
        poor = _chance(rng, options.poor_share)
        prof = profile(rng)
        plan = borrowing(rng, village.default_rate, options) if _chance(rng, options.borrower_share) else None
        district.households.append(Household(i, village.code, person, number, poor, prof, plan))
    # After every other draw, from a stream of its own: a seed's district is what it was
    # before issue 24, plus these behaviours.
    life = random.Random(f"{options.seed}:lifecycle")
    district.households = [
        h if h.borrowing is None else replace(h, borrowing=lifecycle(life, h.borrowing, options))
        for h in district.households
    ]
    return district
