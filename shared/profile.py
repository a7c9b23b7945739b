"""The household profile: the scorecard's inputs (API.md ``Profile``, DOMAIN.md §2).

Every field is optional: absent means not known, and an unknown fact earns no points.
Shared by registry (which records the facts) and scoring (which evaluates them).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator

from shared.money import Money

Certificate = Literal["forest", "land_contract", "homestead"]
HonourLevel = Literal["district", "township", "village"]


# A JSON number (API.md: ``"area_m2": number``) or a string of ASCII digits: Decimal() would
# also read "1e2", "1_00" and other scripts' digits ("١٢٠"), which no published schema allows.
_AREA_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
AREA_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


def _area(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("area must be a number of square metres")
    if isinstance(value, str) and not _AREA_TEXT.fullmatch(value):
        raise ValueError(f"area is a number of square metres in ASCII digits, such as 75.5; not {value[:40]!r}")
    try:
        area = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{value!r} is not a number of square metres") from None
    if not area.is_finite() or area <= 0 or area > 100_000:
        raise ValueError("area must be a positive number of square metres")
    return area


Area = Annotated[
    Decimal,
    BeforeValidator(_area),
    # Fixed-point, never "1E-7": what is written out must read back.
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000},
                {"type": "string", "pattern": AREA_PATTERN, "examples": ["75.5"]},
            ]
        }
    ),
]


class Equipment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    registered: bool  # has a licence number (004 annex 3 A6)
    value: Money


class UrbanProperty(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    area_m2: Area
    certified: bool
    mortgaged: bool


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Each field feeds the scorecard item named beside it. The items' points and thresholds
    # are in the rule set file (services/scoring/rulesets/), whose bytes are its version.
    head_party_member: bool | None = None  # 004 annex 3 A1
    head_college_or_above: bool | None = None  # 004 annex 3 A1
    head_healthy: bool | None = None  # 004 annex 3 A1
    military_service_in_family: bool | None = None  # 004 annex 3 A1b
    homestead_house_value: Money | None = None  # 004 annex 3 A2
    income_project: bool | None = None  # 004 annex 3 A3; false: 004 annex 3 D1
    business_entity_scale: Money | None = None  # 004 annex 3 A4
    certificates: list[Certificate] | None = None  # 004 annex 3 A5
    equipment: list[Equipment] | None = None  # 004 annex 3 A6
    honour_level: HonourLevel | None = None  # 004 annex 3 A7
    family_harmony: bool | None = None  # 004 annex 3 A8; false: 004 annex 3 D2
    neighbour_harmony: bool | None = None  # 004 annex 3 A8; false: 004 annex 3 D2
    illegal_petitions_last_year: int | None = Field(default=None, ge=0, le=1000)  # 004 annex 3 D2b
    urban_properties: list[UrbanProperty] | None = None  # 004 annex 3 A9
    commercial_insurance: bool | None = None  # 004 annex 3 A10
    guarantees_given_total: Money | None = None  # 004 annex 3 D4
    mortgages_given_total: Money | None = None  # 004 annex 3 D5
    court_enforcement_within_3y: bool | None = None  # 004 annex 3 D6
    currently_under_enforcement: bool | None = None  # 004 annex 3 V2
    # On the court's dishonest judgment-debtor list (失信被执行人名单): puts the subject on the
    # black list (issue 11). The scorecard's V2 reads currently_under_enforcement, which the
    # court states alongside.
    dishonest_debtor_list: bool | None = None
    vice_record: bool | None = None  # 004 annex 3 V1
    guarantee_currently_overdue: bool | None = None  # 004 annex 3 V4
    # Loan history: accepted by /v1/scorecard/evaluate only; in the system these are
    # derived from loan events (DOMAIN.md §2), never typed in.
    overdue_history_count: int | None = Field(default=None, ge=0, le=1000)  # 004 annex 3 D3
    npl_history_count: int | None = Field(default=None, ge=0, le=1000)  # 004 annex 3 D3b
    currently_overdue: bool | None = None  # 004 annex 3 V3
    # Loans repaid in full and on time (004 §7(5): repayment behaviour is bound to the rating).
    # Read by the rule set hubin-2017 only: it counted a loan drawn and repaid the same day.
    repaid_on_time_count: int | None = Field(default=None, ge=0, le=1000)
    # Loans repaid in full that ran at least one full instalment period (repaid on or after
    # the first due date) and never had a day past due (DOMAIN.md §2; hubin-2017-r2 on;
    # services/scoring/domain/repayment.py).
    repaid_full_period_count: int | None = Field(default=None, ge=0, le=1000)

    @field_validator("certificates")
    @classmethod
    def _unique_certificates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each certificate kind at most once")
        return value


PROFILE_FIELDS: tuple[str, ...] = tuple(Profile.model_fields)
LOAN_HISTORY_FIELDS = frozenset(
    {
        "overdue_history_count",
        "npl_history_count",
        "currently_overdue",
        "repaid_on_time_count",
        "repaid_full_period_count",
    }
)

# 不良信息 (征信业管理条例 §16): facts that count against a subject and that end, so their
# supplier may state the day the behaviour or event ended (court enforcement and the
# dishonest-debtor list, police records, an overdue guarantee). A negative fact is the
# field stated true.
NEGATIVE_FIELDS = frozenset(
    {
        "court_enforcement_within_3y",
        "currently_under_enforcement",
        "dishonest_debtor_list",
        "vice_record",
        "guarantee_currently_overdue",
    }
)


def is_negative(field: str, value: Any) -> bool:
    return field in NEGATIVE_FIELDS and value is True
