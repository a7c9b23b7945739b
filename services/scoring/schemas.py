from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.money import Money
from shared.profile import Profile
from shared.timestamps import UtcDateTime

SubjectKind = Literal["household", "business"]
NoticeObjectionStatus = Literal["open", "sustained", "dismissed"]
Grade = Literal["AAA+", "AAA", "AA", "A", "NONE"]
Status = Literal["pending_notice", "objected", "certified", "rejected"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    poor_household: bool = False
    profile: Profile = Profile()


class ReasonOut(BaseModel):
    rule: str
    points: int
    text: str
    text_en: str
    source: str


class EvaluationOut(BaseModel):
    score: int
    grade: Grade
    credit_limit: Money
    vetoed: bool
    rule_set: str
    reasons: list[ReasonOut]


class RatingOut(EvaluationOut):
    rating_id: int
    business_date: date
    computed_at: UtcDateTime


class EffectiveOut(BaseModel):
    grade: Grade
    credit_limit: Money
    rating_id: int


class CurrentRatingOut(EvaluationOut):
    subject_kind: SubjectKind
    subject_id: str
    village_code: str
    rating_id: int
    status: Status
    notice_starts: date | None
    notice_ends: date | None
    certificate_no: str | None
    reason_code: str | None
    reason: str | None
    effective: EffectiveOut | None  # what lending may use now
    history: list[RatingOut]
    # Who rejected the rating, by credential name and role (issue 21); null unless rejected by
    # a principal (the bank, or an objection sustained).
    decided_by: str | None = None
    decided_by_role: str | None = None


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["sustained", "dismissed"]
    note: Text


class RejectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason_code: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")]
    reason: Text


class NoticeObjectionOut(BaseModel):
    objection_id: str
    subject_id: str
    rating_id: int
    reason: str
    raised_by: str
    raised_at: UtcDateTime
    status: NoticeObjectionStatus
    resolution_note: str | None
    # Who resolved it, by credential name and role (issue 21); never the objector.
    resolved_by: str | None = None
    resolved_by_role: str | None = None


class NoticeEntry(BaseModel):
    """One line of a village's public notice (公示): who, what grade and limit, until when."""

    subject_kind: SubjectKind
    subject_id: str
    name: str
    grade: Grade
    credit_limit: Money
    notice_starts: date
    notice_ends: date
    status: Status


class BusinessDateOut(BaseModel):
    business_date: date


class ScoringStatisticsOut(BaseModel):
    """Subjects rated and certified in an area (issue 26): counts, no subject."""

    township_code: str | None
    village_code: str | None
    households_rated: int
    households_certified: int
    businesses_rated: int
    businesses_certified: int
