from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, UuidList, utcnow

UNSEALED = text("chain_seq IS NULL")
SEARCHED = text("query_hash IS NOT NULL")


class AuditEvent(IdMixin, Base):
    """Who read or changed what, for whom, when, with what outcome. Append-only; no foreign
    keys, so that an audit row outlives anything it describes.

    Tamper evidence (app.audit.chain, docs/audit.md): ``row_hash`` is an HMAC of the row's
    content under the deployment's audit key, set at insert; the background sealer later gives
    each row its place in the chain (``chain_seq``) and ``chain_hash``, an HMAC over the
    previous row's chain hash and this row's hash. On PostgreSQL a trigger refuses every
    UPDATE and DELETE except the sealer's (chain columns set once, content unchanged).

    ``death_ids`` names every patient the access was about: one for a read or a change of one
    record, every death on the page for a list page (one row per page, not one per patient).
    "Who read this patient?" is ``death_ids @> {id}``, answered by a GIN index on PostgreSQL.

    On PostgreSQL the table is partitioned by month of ``occurred_at`` (migration 0025,
    app.partitions), so its primary key includes ``occurred_at``; SQLite's is one table."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # Who read (or changed) this patient: PostgreSQL only (SQLite searches the JSON).
        Index("ix_audit_events_death_ids", "death_ids", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_client_id_occurred_at", "client_id", "occurred_at"),
        Index("ix_audit_events_organisation_id_occurred_at", "organisation_id", "occurred_at"),
        Index("ix_audit_events_resource_id_occurred_at", "resource_id", "occurred_at"),
        # Not unique: a unique index on a partitioned table must include the partition key.
        # `lfd audit verify` reports a place taken twice.
        Index("ix_audit_events_chain_seq", "chain_seq"),
        Index(
            "ix_audit_events_unsealed",
            "occurred_at",
            "id",
            postgresql_where=UNSEALED,
            sqlite_where=UNSEALED,
        ),
        Index(
            "ix_audit_events_query_hash_occurred_at",
            "query_hash",
            "occurred_at",
            postgresql_where=SEARCHED,
            sqlite_where=SEARCHED,
        ),
    )

    occurred_at: Mapped[datetime] = mapped_column(primary_key=True, default=utcnow)
    client_id: Mapped[uuid.UUID | None]
    client_name: Mapped[str | None] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    # True: on_behalf_of is the subject of a verified user assertion; False: free text the
    # client sent; None: no one named (app.auth.oauth.users).
    on_behalf_of_verified: Mapped[bool | None]
    on_behalf_of_role: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[uuid.UUID | None]
    # The patients (deaths) the record or page belonged to, in the order shown; [] for none.
    death_ids: Mapped[list[uuid.UUID]] = mapped_column(UuidList, default=list)
    # The organisation the acting client belongs to (issue 16): access through a share is
    # audited under the organisation that was given it.
    organisation_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20), default="success")
    # A keyed hash of the NHS number a search looked for (never the number itself).
    query_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    chain_hash: Mapped[str | None] = mapped_column(String(64))

    @property
    def death_id(self) -> uuid.UUID | None:
        """The row's one patient, as the API's ``death_id`` shows it (None for a page of
        several, or for none). Query by patient with app.kit.id_lists.names."""
        return self.death_ids[0] if len(self.death_ids) == 1 else None


class AuditChainHead(Base):
    """Where the chain of sealed audit rows ends (one row, ``name='main'``), and where it
    starts (``start_seq``/``start_hash``: 0 and the genesis value until a retention step
    removes the oldest rows and records the cut here)."""

    __tablename__ = "audit_chain_heads"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    start_seq: Mapped[int] = mapped_column(BigInteger)
    start_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime | None]
