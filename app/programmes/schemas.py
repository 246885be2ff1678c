"""Review programme request and response bodies: the definition (cohort rules, sampling,
questions), the cohort's preview and build, recommendations, and theme mappings. The cases'
bodies are in app.programmes.case_schemas."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.findings.schemas import ThemeRef
from app.kit.enums import PlaceOfDeath
from app.kit.schemas import RequestModel, ResponseModel
from app.organisations.lookup import OrganisationRef

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Code = Annotated[
    str, StringConstraints(min_length=1, max_length=60, pattern=r"^[a-z0-9]+(_[a-z0-9]+)*$")
]
CODE = "Lower-case letters and digits joined by `_`; made from the name (or text) when omitted."


class ProgrammeStatus(StrEnum):
    draft = "draft"  # defined; no cohort yet
    open = "open"  # cohort built; deaths that qualify late join it
    closed = "closed"  # nothing joins any more; reviews and the report go on


class SamplingMode(StrEnum):
    all = "all"
    number = "number"
    percent = "percent"


class QuestionKind(StrEnum):
    yes_no = "yes_no"  # yes / no / not applicable
    scale = "scale"  # 1 to 5
    text = "text"


class CohortRules(RequestModel):
    """Which deaths of the period the programme audits. A death is in the cohort when it died
    in the period, is recorded by one of `organisations`, and passes every rule given."""

    places_of_death: list[PlaceOfDeath] | None = Field(
        default=None,
        max_length=len(PlaceOfDeath),
        description="Places of death that qualify (null: every place).",
    )
    discharged_within_days: Annotated[int, Field(ge=1, le=365, strict=True)] | None = Field(
        default=None,
        description="Deaths within this many days of discharge qualify too, wherever they died "
        "(the discharge window: 30 for 'or within 30 days of discharge').",
    )
    age_min: Annotated[int, Field(ge=0, le=130, strict=True)] | None = Field(
        default=None, description="Youngest age at death that qualifies (18 leaves out children)."
    )
    age_max: Annotated[int, Field(ge=0, le=130, strict=True)] | None = Field(
        default=None, description="Oldest age at death that qualifies."
    )
    excluded_wards: list[Short] = Field(
        default_factory=list,
        max_length=200,
        description="Deaths on these wards are left out (compared without regard to case).",
    )
    excluded_specialties: list[Short] = Field(
        default_factory=list,
        max_length=200,
        description="Deaths under these specialties (at death, else on admission) are left out "
        "(compared without regard to case).",
    )
    organisations: list[Annotated[str, StringConstraints(min_length=1, max_length=36)]] | None = (
        Field(
            default=None,
            max_length=100,
            description="The organisations whose deaths qualify, by ODS code or registry id "
            "(null: the programme's own organisation). Each must be within the caller's reach.",
        )
    )

    @field_validator("places_of_death")
    @classmethod
    def _places_once(cls, places: list[PlaceOfDeath] | None) -> list[PlaceOfDeath] | None:
        if places is not None and len(set(places)) != len(places):
            raise ValueError("a place of death is named twice")
        return places

    @field_validator("age_max")
    @classmethod
    def _ages_in_order(cls, age_max: int | None, info: ValidationInfo) -> int | None:
        age_min = info.data.get("age_min")
        if age_max is not None and age_min is not None and age_max < age_min:
            raise ValueError("age_max is below age_min")
        return age_max


class Sampling(RequestModel):
    """How the cohort is reviewed: every death, a number, or a percentage of it, chosen in the
    order of a seeded key (docs/programmes.md, "Sampling"): the same seed and the same cohort
    always choose the same deaths."""

    mode: SamplingMode = Field(
        default=SamplingMode.all, description="`all`, `number` or `percent` of the cohort."
    )
    size: Annotated[int, Field(ge=1, le=1_000_000, strict=True)] | None = Field(
        default=None, description="`number`: how many deaths to review."
    )
    percent: Annotated[int, Field(ge=1, le=100, strict=True)] | None = Field(
        default=None, description="`percent`: the share of the cohort to review (rounded up)."
    )
    seed: Annotated[int, Field(ge=0, le=2_147_483_646, strict=True)] | None = Field(
        default=None, description="The sample's seed; the service draws one when omitted."
    )

    @model_validator(mode="after")
    def _what_the_mode_needs(self) -> Sampling:
        if self.mode is SamplingMode.number and self.size is None:
            raise ValueError("`number` sampling needs `size`")
        if self.mode is SamplingMode.percent and self.percent is None:
            raise ValueError("`percent` sampling needs `percent`")
        if self.mode is not SamplingMode.number and self.size is not None:
            raise ValueError("`size` is for `number` sampling only")
        if self.mode is not SamplingMode.percent and self.percent is not None:
            raise ValueError("`percent` is for `percent` sampling only")
        return self


class QuestionIn(RequestModel):
    code: Code | None = Field(default=None, description=CODE)
    text: Text = Field(description="The question as reviewers read it.")
    kind: QuestionKind = Field(
        description="`yes_no` (yes, no, not applicable), `scale` (1 to 5) or `text`."
    )
    required: StrictBool = Field(
        default=False, description="A submitted programme review must answer it."
    )


NAME = "The programme's name, as its report is titled."
PURPOSE = "What the programme audits, and why."
COHORT = "Which deaths of the period the programme audits."
SAMPLING = "How many of the cohort are reviewed, and in what order they are chosen."
QUESTIONS = "The programme's own questions, asked of each review."
LINK = (
    "A chosen death already referred for a routine SJR counts that SJR instead of being "
    "reviewed twice."
)
DUE = (
    "When the programme's reviews are due (UK local date); else the `programme` route's due "
    "days from the day each is chosen."
)
PLAN_BY = "The committee that approved the action plan."
PLAN_ON = "When it approved it."


class ProgrammeCreate(RequestModel):
    name: Name = Field(description=NAME)
    code: Code | None = Field(default=None, description=CODE)
    purpose: Text | None = Field(default=None, description=PURPOSE)
    owner: Name = Field(description="Who leads the programme (a person or a committee).")
    period_start: date = Field(description="First day of death audited (UK local date).")
    period_end: date = Field(description="Last day of death audited, included.")
    cohort: CohortRules = Field(default_factory=CohortRules, description=COHORT)
    sampling: Sampling = Field(default_factory=Sampling, description=SAMPLING)
    instrument: Literal["sjr"] = Field(
        default="sjr", description="The review instrument: the Structured Judgement Review."
    )
    questions: list[QuestionIn] = Field(default_factory=list, max_length=50, description=QUESTIONS)
    link_routine_reviews: StrictBool = Field(default=True, description=LINK)
    reviews_due_on: date | None = Field(default=None, description=DUE)
    themes: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] | None = Field(
        default=None,
        max_length=500,
        description="The programme's theme vocabulary, by theme id or code (null: every theme).",
    )
    plan_id: uuid.UUID | None = Field(default=None, description="The programme's action plan.")
    plan_approved_by: Name | None = Field(default=None, description=PLAN_BY)
    plan_approved_on: date | None = Field(default=None, description=PLAN_ON)

    @field_validator("period_end")
    @classmethod
    def _period_in_order(cls, period_end: date, info: ValidationInfo) -> date:
        start = info.data.get("period_start")
        if start is not None and period_end < start:
            raise ValueError("period_end is before period_start")
        return period_end


class ProgrammePatch(RequestModel):
    """Only the fields sent change. The period, the cohort rules and the sampling's mode and
    seed are fixed once the cohort is built (409); a larger sample may still be asked for."""

    name: Name | None = Field(default=None, description=NAME)
    purpose: Text | None = Field(default=None, description=PURPOSE)
    owner: Name | None = Field(default=None, description="Who leads the programme.")
    period_start: date | None = Field(default=None, description="First day of death audited.")
    period_end: date | None = Field(default=None, description="Last day of death audited.")
    cohort: CohortRules | None = Field(default=None, description=COHORT)
    sampling: Sampling | None = Field(default=None, description=SAMPLING)
    questions: list[QuestionIn] | None = Field(
        default=None, max_length=50, description="Replaces the questions, until one is answered."
    )
    link_routine_reviews: StrictBool | None = Field(default=None, description=LINK)
    reviews_due_on: date | None = Field(default=None, description=DUE)
    themes: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] | None = Field(
        default=None, max_length=500, description="The theme vocabulary, by id or code."
    )
    plan_id: uuid.UUID | None = None
    plan_approved_by: Name | None = Field(default=None, description=PLAN_BY)
    plan_approved_on: date | None = Field(default=None, description=PLAN_ON)
    status: Literal["open", "closed"] | None = Field(
        default=None,
        description="`closed` stops deaths joining the cohort; `open` reopens a closed "
        "programme. A draft opens by building its cohort.",
    )


class QuestionOut(ResponseModel):
    id: uuid.UUID
    code: str = Field(description="The question's code, which answers name.")
    position: int = Field(description="Its place in the programme's list, from 1.")
    text: str = Field(description="The question as reviewers read it.")
    kind: QuestionKind = Field(description="`yes_no`, `scale` (1 to 5) or `text`.")
    required: bool = Field(description="A submitted first review must answer it.")


class RecommendationIn(RequestModel):
    key_area: Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,3}$")] = Field(
        description="The key area's letter: A, B, C ..."
    )
    key_area_title: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="The key area's title (the same for every recommendation in it)."
    )
    reference: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = Field(
        default=None, description="e.g. A1; numbered within its key area when omitted."
    )
    text: Text = Field(description="The recommendation.")
    action_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="Actions of the programme's action plan that answer it.",
    )


class Recommendations(RequestModel):
    recommendations: list[RecommendationIn] = Field(
        max_length=200, description="The programme's recommendations, in order."
    )


class RecommendationOut(ResponseModel):
    id: uuid.UUID
    key_area: str = Field(description="The key area's letter.")
    key_area_title: str = Field(description="The key area's title.")
    reference: str = Field(description="e.g. A1.")
    text: str = Field(description="The recommendation.")
    action_ids: list[uuid.UUID] = Field(description="The plan's actions that answer it.")


class CohortCounts(ResponseModel):
    """Where the programme's cohort stands now."""

    in_cohort: int = Field(description="Deaths in the cohort (not excluded).")
    selected: int = Field(description="Of those, chosen for review.")
    linked: int = Field(description="Chosen deaths that count their routine SJR.")
    reviewed: int = Field(description="Chosen deaths whose first review was submitted.")
    excluded: int = Field(description="Deaths taken out of the cohort by hand, with a reason.")


class ProgrammeOut(ResponseModel):
    id: uuid.UUID
    organisation: OrganisationRef = Field(description="The organisation that runs it.")
    code: str = Field(description=CODE)
    name: str = Field(description=NAME)
    purpose: str | None = Field(description=PURPOSE)
    owner: str = Field(description="Who leads the programme.")
    period_start: date = Field(description="First day of death audited (UK local date).")
    period_end: date = Field(description="Last day of death audited, included.")
    status: ProgrammeStatus = Field(description="`draft`, `open` (late deaths join) or `closed`.")
    cohort: CohortRules = Field(description="The rules (organisations by registry id).")
    sampling: Sampling = Field(description=SAMPLING + " The seed is always shown.")
    instrument: str = Field(description="`sjr`.")
    questions: list[QuestionOut] = Field(description=QUESTIONS)
    link_routine_reviews: bool = Field(description=LINK)
    reviews_due_on: date | None = Field(description=DUE)
    themes: list[uuid.UUID] | None = Field(description="The theme vocabulary (null: every theme).")
    plan_id: uuid.UUID | None
    plan_approved_by: str | None = Field(description=PLAN_BY)
    plan_approved_on: date | None = Field(description=PLAN_ON)
    recommendations: list[RecommendationOut] = Field(description="By key area.")
    counts: CohortCounts
    cohort_built_at: datetime | None = Field(description="When the cohort was first built.")
    closed_at: datetime | None = Field(description="When it was closed to late deaths.")
    version: int
    created_at: datetime
    updated_at: datetime


class RuleCount(ResponseModel):
    rule: str = Field(
        description="`place_of_death` (with the discharge window), `age`, `excluded_ward` or "
        "`excluded_specialty`."
    )
    excluded: int = Field(
        description="Deaths this rule left out, in the order the rules are listed (a death "
        "failing two rules counts under the first)."
    )
    failing: int = Field(description="Deaths failing this rule, whatever the others say.")


class CohortBuild(ResponseModel):
    """What building the cohort finds (a dry run) or did."""

    programme_id: uuid.UUID = Field(description="The programme.")
    dry_run: bool
    deaths_in_period: int = Field(
        description="Deaths of the programme's organisations that died in the period."
    )
    rules: list[RuleCount] = Field(description="The deaths each rule leaves out, in order.")
    meeting_rules: int = Field(description="Deaths of the period that pass every rule.")
    already_in_cohort: int = Field(description="Of those, deaths already in the cohort.")
    added: int = Field(description="Deaths added to the cohort (that would be, in a dry run).")
    no_longer_meeting_rules: int = Field(
        description="Cases of the cohort whose death no longer passes the rules (a corrected "
        "record); they stay until excluded by hand."
    )
    sample_target: int = Field(description="How many deaths of the cohort are to be reviewed.")
    selected_before: int = Field(description="Deaths chosen for review before this pass.")
    selected: int = Field(description="Deaths newly chosen for review.")
    linked: int = Field(description="Of the chosen, deaths that count their routine SJR.")
    unlinked: int = Field(
        description="Linked deaths whose routine SJR referral was declined or cancelled since: "
        "given a programme referral instead."
    )
    referred: int = Field(description="Programme referrals created (to be, in a dry run).")


class MappingIn(RequestModel):
    themes: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] = Field(
        min_length=2,
        max_length=2,
        description="The two themes that mean the same thing, by id or code, in either order.",
    )
    note: Text | None = None


class MappingOut(ResponseModel):
    id: uuid.UUID
    themes: list[ThemeRef] = Field(description="The two themes, by name.")
    note: str | None
    organisation_id: uuid.UUID = Field(description="The organisation whose mapping it is.")
    created_at: datetime
