from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, TimestampMixin


class HistoryImport(IdMixin, TimestampMixin, Base):
    """One run of a history bundle into the service (docs/history.md): an asynchronous job,
    processed in batches, each committed with the job's checkpoint so that a killed run resumes
    where it stopped, with nothing lost and nothing written twice."""

    __tablename__ = "history_imports"
    __table_args__ = (Index("ix_history_imports_status", "status", "lease_expires_at"),)

    # queued | validating | running | completed | refused | failed
    status: Mapped[str] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(10))  # api | cli
    bundle_format: Mapped[str] = mapped_column(String(10))  # jsonl | csv
    # Where the bundle waits while it is processed: the spooled upload, or the CLI's file.
    spool_path: Mapped[str] = mapped_column(String(1000))
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    bundle_bytes: Mapped[int] = mapped_column(BigInteger)
    all_or_nothing: Mapped[bool]
    records_total: Mapped[int | None] = mapped_column(Integer)
    # The checkpoint: records (lines) and bytes of the bundle already committed.
    records_done: Mapped[int] = mapped_column(Integer, default=0)
    offset_done: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    batches: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(String(500))
    client_id: Mapped[uuid.UUID | None]
    # The organisation the imported deaths belong to: the importing client's (issue 16).
    organisation_id: Mapped[uuid.UUID | None]
    client_name: Mapped[str | None] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    # The runner holding the job renews this; a job whose lease ran out is taken over.
    lease_expires_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class HistoryImportProblem(IdMixin, Base):
    """A record an import refused, with a JSON pointer per problem (never the values)."""

    __tablename__ = "history_import_problems"
    __table_args__ = (Index("ix_history_import_problems_import_id_line", "import_id", "line"),)

    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("history_imports.id"))
    line: Mapped[int] = mapped_column(Integer)
    source_reference: Mapped[str | None] = mapped_column(String(100))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)


class HistoryRecord(Base):
    """A death that came in as history: the bundle record's fingerprint (so that the same
    record again changes nothing), its rows by the bundle's own references, and what today's
    referral rules would have required beside what happened (the missed-referral question)."""

    __tablename__ = "history_records"
    __table_args__ = (Index("ix_history_records_died_on", "died_on", "missed"),)

    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"), primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(index=True)
    died_on: Mapped[date]  # the death's, copied (as on screenings)
    content_sha256: Mapped[str] = mapped_column(String(64))
    # {"referrals": {reference: id}, "reviews": {...}, "findings": {...}}
    links: Mapped[dict[str, dict[str, str]]] = mapped_column(JSONType)
    # Today's rules: {route: [reason codes]}; the required routes never referred nor overridden.
    required_routes: Mapped[dict[str, list[str]]] = mapped_column(JSONType)
    missed_routes: Mapped[list[str]] = mapped_column(JSONType)
    missed: Mapped[bool]
    version: Mapped[int] = mapped_column(default=1)
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]
