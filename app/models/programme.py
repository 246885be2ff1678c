"""Review programmes (issue 17): a clinical audit of the deaths of a period, its cohort, the
cases it reviews, their second opinions and answers, its recommendations, and the mappings
between theme vocabularies that let two programmes' themes be compared."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.action import NullableJSON
from app.models.base import Base, IdMixin, JSONType, TimestampMixin, utcnow


class Programme(IdMixin, TimestampMixin, Base):
    """A review programme: what it audits (the period of death and the cohort rules), how it
    chooses the deaths it reviews, its own questions, and where its learning goes (the
    recommendations and the action plan, with the plan's approval)."""

    __tablename__ = "programmes"
    __table_args__ = (UniqueConstraint("organisation_id", "code"),)

    # The organisation that runs the programme (issue 16): its clients see it.
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[date]
    period_end: Mapped[date]
    # draft (defined, no cohort yet) | open (cohort built; late deaths join) | closed
    status: Mapped[str] = mapped_column(String(10))
    # The cohort rules as sent (app.programmes.schemas.CohortRules), organisations as ids.
    rules: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # How the cohort is reviewed: all | number | percent, chosen in the order of sample_key
    # (app.programmes.sampling), which the seed makes reproducible.
    sampling: Mapped[str] = mapped_column(String(10))
    sample_size: Mapped[int | None] = mapped_column(Integer)
    sample_percent: Mapped[int | None] = mapped_column(SmallInteger)
    seed: Mapped[int] = mapped_column(BigInteger)
    instrument: Mapped[str] = mapped_column(String(10))
    # A chosen death already reviewed (or referred) by the routine SJR route counts that SJR.
    link_routine_reviews: Mapped[bool]
    reviews_due_on: Mapped[date | None]
    # The programme's own theme vocabulary (theme ids), or null for every theme.
    theme_ids: Mapped[list[str] | None] = mapped_column(NullableJSON)
    plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("action_plans.id"))
    plan_approved_by: Mapped[str | None] = mapped_column(String(200))
    plan_approved_on: Mapped[date | None]
    cohort_built_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_by_client_id: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(default=1)


class ProgrammeQuestion(IdMixin, Base):
    """One of a programme's own questions: yes / no / not applicable, a 1-5 scale, or text."""

    __tablename__ = "programme_questions"
    __table_args__ = (
        UniqueConstraint("programme_id", "code"),
        UniqueConstraint("programme_id", "position"),
    )

    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))  # yes_no | scale | text
    required: Mapped[bool]


class ProgrammeCase(IdMixin, Base):
    """A death of a programme's cohort. ``selected``: chosen for review. Its review is its own
    programme referral's (``referral_id``) or, ``linked``, the death's routine final SJR."""

    __tablename__ = "programme_cases"
    __table_args__ = (
        UniqueConstraint("programme_id", "death_id"),
        # The sample is taken in this order (app.programmes.sampling).
        Index("ix_programme_cases_sample", "programme_id", "selected", "sample_key", "death_id"),
        Index("ix_programme_cases_death_id", "death_id"),
    )

    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id"))
    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"))
    died_on: Mapped[date]  # the death's, copied (as on referrals)
    sample_key: Mapped[int] = mapped_column(BigInteger)
    selected: Mapped[bool] = mapped_column(default=False, server_default=false())
    joined: Mapped[str] = mapped_column(String(10))  # build | late
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    selected_at: Mapped[datetime | None]
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    linked: Mapped[bool] = mapped_column(default=False, server_default=false())
    excluded_at: Mapped[datetime | None]
    excluded_reason: Mapped[str | None] = mapped_column(Text)
    # The relatives' view as the reviewer recorded it (the ME's contact log is shown beside it).
    relatives_sought: Mapped[str | None] = mapped_column(String(20))
    relatives_view: Mapped[str | None] = mapped_column(Text)
    relatives_recorded_by: Mapped[str | None] = mapped_column(String(200))
    relatives_recorded_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)


class ProgrammeOpinion(IdMixin, Base):
    """A second (third ...) opinion on a case, asked of a named colleague or a specialty: its
    own programme referral and review, kept beside the case's first."""

    __tablename__ = "programme_opinions"
    __table_args__ = (UniqueConstraint("case_id", "number"),)

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme_cases.id"))
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id"), index=True)
    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"))
    number: Mapped[int] = mapped_column(SmallInteger)  # 2, 3, ...
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), unique=True)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    requested_from: Mapped[str | None] = mapped_column(String(200))
    requested_specialty: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProgrammeAnswer(IdMixin, Base):
    """An answer to a programme question for one case, by one opinion (1 the case's first)."""

    __tablename__ = "programme_answers"
    __table_args__ = (
        UniqueConstraint("case_id", "opinion", "question_id"),
        Index("ix_programme_answers_programme_id", "programme_id", "question_id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme_cases.id"))
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id"))
    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"))
    opinion: Mapped[int] = mapped_column(SmallInteger)
    question_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme_questions.id"))
    choice: Mapped[str | None] = mapped_column(String(20))  # yes | no | not_applicable
    scale: Mapped[int | None] = mapped_column(SmallInteger)  # 1-5
    text: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProgrammeRecommendation(IdMixin, Base):
    """A recommendation of the programme, in a key area (A, B, C ...), answered by actions of
    the programme's action plan."""

    __tablename__ = "programme_recommendations"
    __table_args__ = (UniqueConstraint("programme_id", "position"),)

    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    key_area: Mapped[str] = mapped_column(String(5))
    key_area_title: Mapped[str] = mapped_column(String(300))
    reference: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)


class ProgrammeRecommendationAction(Base):
    """A link between a recommendation and an action of the programme's plan."""

    __tablename__ = "programme_recommendation_actions"

    recommendation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programme_recommendations.id"), primary_key=True
    )
    action_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("actions.id"), primary_key=True)


class ThemeMapping(IdMixin, Base):
    """Two themes that mean the same thing in two vocabularies ("DNAR orders" and "DNACPR
    decisions"), kept by an organisation for comparing its programmes' themes. Unordered: the
    pair is stored with the lower id first."""

    __tablename__ = "theme_mappings"
    __table_args__ = (UniqueConstraint("organisation_id", "theme_id", "other_theme_id"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    theme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("themes.id"))
    other_theme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("themes.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_client_id: Mapped[uuid.UUID | None]
