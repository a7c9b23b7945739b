from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from services.registry.domain.identifiers import validate_resident_id, validate_uscc
from shared.openapi import SCHEMA_REF
from shared.profile import Profile
from shared.timestamps import UtcDateTime

# Administrative division codes (GB/T 2260 and the statistical codes below it) are digits;
# letters, '-' and '_' are allowed for pilots that number their own units.
Code = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_-]{1,32}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ResidentId = Annotated[str, AfterValidator(validate_resident_id)]
CreditCode = Annotated[str, AfterValidator(validate_uscc)]
BusinessKind = Literal["leading_enterprise", "cooperative"]  # 龙头企业, 农民专业合作社
SubjectKind = Literal["household", "business"]
# The profile as registered facts make it, the unknown fields left out: the Profile schema
# (issue 22: it was published as a free-form object). Kept as the dict the facts give, so
# the answer stays as it was: a Profile model would add every unknown field as null.
KnownProfile = Annotated[dict[str, Any], WithJsonSchema({SCHEMA_REF: "Profile"})]
ObjectionStatus = Literal["open", "corrected", "upheld", "unresolved"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TownshipIn(_In):
    code: Code
    name: Name


class VillageIn(_In):
    code: Code
    name: Name
    township_code: Code


class CommunityIn(_In):
    code: Code
    name: Name
    township_code: Code


class RenameIn(_In):
    name: Name


class FormerName(BaseModel):
    name: str
    until: UtcDateTime


class TownshipOut(BaseModel):
    code: str
    name: str
    former_names: list[FormerName] = []


class VillageOut(BaseModel):
    code: str
    name: str
    township_code: str
    former_names: list[FormerName] = []


class CommunityOut(BaseModel):
    code: str
    name: str
    township_code: str


class MemberIn(_In):
    name: Name
    relation: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    id_number: ResidentId | None = None


class HouseholdIn(_In):
    id_number: ResidentId
    name: Name
    village_code: Code
    poor_household: bool = False
    profile: Profile = Profile()
    members: list[MemberIn] = Field(default_factory=list, max_length=30)


class MemberOut(BaseModel):
    name: str
    relation: str | None
    id_number: str | None  # masked


class HouseholdOut(BaseModel):
    household_id: str
    village_code: str
    township_code: str
    name: str
    id_number: str  # masked: 410***********1234
    poor_household: bool
    members: list[MemberOut]
    profile: KnownProfile
    disputed_fields: list[str]
    # The day each negative fact ended (征信业管理条例 §16), for those that have one.
    fact_ends: dict[str, date] = Field(default_factory=dict)
    version: int
    created_at: UtcDateTime


class BusinessIn(_In):
    credit_code: CreditCode
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    kind: BusinessKind
    village_code: Code
    profile: Profile = Profile()


class BusinessOut(BaseModel):
    business_id: str
    credit_code: str
    name: str
    kind: BusinessKind
    village_code: str
    township_code: str
    profile: KnownProfile
    disputed_fields: list[str]
    # The day each negative fact ended (征信业管理条例 §16), for those that have one.
    fact_ends: dict[str, date] = Field(default_factory=dict)
    version: int
    created_at: UtcDateTime


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last page")


class FactOut(BaseModel):
    fact_id: int
    field: str
    value: Any
    source: str
    supplied_by: str
    evidence_ref: str | None
    recorded_at: UtcDateTime
    current: bool
    disputed: bool
    ended_on: date | None = None


class FactEndIn(_In):
    ended_on: date = Field(
        description="the day the behaviour or event ended (不良行为或者事件终止之日, 征信业管理条例 §16); "
        "scoring stops counting the fact 5 years later"
    )


class ObjectionIn(_In):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class DecisionIn(_In):
    outcome: Literal["corrected", "upheld", "unresolved"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    corrected_value: Any = None
    subject_statement: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class ObjectionOut(BaseModel):
    objection_id: str
    fact_id: int
    subject_kind: SubjectKind
    subject_id: str
    village_code: str
    field: str
    reason: str
    raised_by: str
    opened_on: date
    due_on: date
    overdue: bool
    status: ObjectionStatus
    decision_note: str | None
    subject_statement: str | None
    decided_at: UtcDateTime | None
    decided_by: str | None


class RowError(BaseModel):
    row: int
    field: str
    reason: str


class ImportReport(BaseModel):
    import_id: str
    village_code: str
    rows: int
    registered: int
    updated: int
    unchanged: int
    failed: int
    errors: list[RowError] = Field(
        description="Errors by row, then field: all of them, or the first VCREDIT_REGISTRY_IMPORT_REPORT_MAX_ERRORS "
        "when errors_truncated"
    )
    errors_total: int = Field(description="Every error found, listed or not")
    errors_truncated: bool = Field(description="True when errors lists fewer than errors_total")
    errors_by_field: dict[str, int] = Field(description="Every error found, counted by its field")


class RegistryStatisticsOut(BaseModel):
    """Subjects registered in an area (issue 26): counts, no subject."""

    township_code: str | None
    village_code: str | None
    households: int
    businesses: int
