from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, TimestampMixin, utcnow

# The issue 13 columns: None is SQL NULL (nothing to decode when read), not JSON null.
NullableJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class ActionPlan(IdMixin, TimestampMixin, Base):
    """A set of improvement actions in sections, owned by one or more organisations."""

    __tablename__ = "action_plans"

    title: Mapped[str] = mapped_column(String(300))
    # The organisation that owns the plan in the registry (issue 16): its clients (and its
    # parents') see it. `organisations` keeps every organisation the plan names.
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    sponsor: Mapped[str | None] = mapped_column(String(200))
    organisations: Mapped[list[str]] = mapped_column(JSONType)  # ODS codes
    # As an imported file wrote them ("UHL", "Healthwatch"), codes resolved into organisations.
    organisation_names: Mapped[list[str] | None] = mapped_column(NullableJSON)
    description: Mapped[str | None] = mapped_column(Text)
    # An imported plan remembers the file it came from, so the same file is not imported twice.
    source_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    source_filename: Mapped[str | None] = mapped_column(String(255))
    layout: Mapped[str | None] = mapped_column(String(20))
    created_by_client_id: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(default=1)
    # A plan that came in as history (a bundle's action plan record, app.history.plans): the
    # bundle's key for it, unique across the deployment like a death's, and its fingerprint.
    source_system: Mapped[str | None] = mapped_column(String(100))
    source_reference: Mapped[str | None] = mapped_column(String(100))
    history_sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("source_system", "source_reference"),)


class ActionPlanSection(IdMixin, Base):
    """An improvement area of a plan."""

    __tablename__ = "action_plan_sections"
    __table_args__ = (UniqueConstraint("plan_id", "position"),)

    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("action_plans.id"))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(500))
    source_key: Mapped[str | None] = mapped_column(String(100))  # its key in a history bundle


action_findings = Table(
    "action_findings",
    Base.metadata,
    Column("action_id", ForeignKey("actions.id"), primary_key=True),
    Column("finding_id", ForeignKey("findings.id"), primary_key=True),
)


class Action(IdMixin, TimestampMixin, Base):
    """An improvement action (DESIGN.md section 6). Its RAG is derived, never stored."""

    __tablename__ = "actions"
    __table_args__ = (
        # Real plans reuse numbers across sections: unique within a section only.
        UniqueConstraint("section_id", "reference"),
        Index("ix_actions_plan_id_position", "plan_id", "position"),
        Index("ix_actions_status_due_date", "status", "due_date"),
        Index("ix_actions_overdue_watch", "falls_due_on", "overdue_notified_at"),
    )

    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("action_plans.id"))
    section_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("action_plan_sections.id"))
    position: Mapped[int]
    reference: Mapped[str] = mapped_column(String(50))
    improvement_requirement: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    leads: Mapped[list[str]] = mapped_column(JSONType)
    organisations: Mapped[list[str]] = mapped_column(JSONType)
    workstream: Mapped[str | None] = mapped_column(Text)
    recommendation: Mapped[str | None] = mapped_column(String(20))  # a system review's "A"
    # As written ("UHL", "Healthwatch"); ``organisations`` holds the ODS codes resolved.
    organisation_names: Mapped[list[str] | None] = mapped_column(NullableJSON)
    lead_history: Mapped[list[str] | None] = mapped_column(
        NullableJSON
    )  # earlier leads, oldest first
    # Other actions of the plan named in the text: [{"action_id", "reference", "kind"}].
    links: Mapped[list[dict[str, str]] | None] = mapped_column(NullableJSON)
    due_text: Mapped[str | None] = mapped_column(String(200))  # "By the end of March"
    start_date: Mapped[date | None]
    due_date: Mapped[date | None]
    due_precision: Mapped[str | None] = mapped_column(String(5))  # day | month
    due_note: Mapped[str | None] = mapped_column(String(100))  # "TBC", "Ongoing"
    # Derived on every write (app.actions.rag.falls_due): the last day the action is on time,
    # the due date or the end of its month, so that "overdue" is a plain indexed comparison.
    falls_due_on: Mapped[date | None]
    status: Mapped[int] = mapped_column(SmallInteger)  # 1 not started .. 5 complete
    # False: the imported file left the status blank (status then holds 1 for ordering only).
    status_recorded: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # A RAG written in a file: a judgement made by people on a date (day or month), kept
    # beside the RAG the service derives.
    reported_rag: Mapped[str | None] = mapped_column(String(10))
    reported_rag_on: Mapped[date | None]
    reported_rag_precision: Mapped[str | None] = mapped_column(String(5))
    comments: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[date | None]
    # "on_or_before": imported as complete, so completed on or before ``completed_at``.
    completed_precision: Mapped[str | None] = mapped_column(String(12))
    evidence: Mapped[str | None] = mapped_column(Text)
    assured_at: Mapped[date | None]
    assured_by: Mapped[str | None] = mapped_column(String(200))
    # When the action.overdue event was raised for the current due date (raised once).
    overdue_notified_at: Mapped[datetime | None]
    created_by_client_id: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(default=1)
    source_key: Mapped[str | None] = mapped_column(String(100))  # its key in a history bundle


class ActionUpdate(IdMixin, Base):
    """A dated entry in an action's history: a progress note, a status change, or both."""

    __tablename__ = "action_updates"
    __table_args__ = (Index("ix_action_updates_action_id", "action_id", "recorded_at"),)

    action_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("actions.id"))
    update_date: Mapped[date]
    author: Mapped[str | None] = mapped_column(String(200))
    narrative: Mapped[str | None] = mapped_column(Text)
    status_before: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[int] = mapped_column(SmallInteger)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    client_id: Mapped[uuid.UUID | None]
