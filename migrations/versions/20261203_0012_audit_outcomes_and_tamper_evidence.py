"""Audit rows made tamper-evident, and searches audited by a keyed hash (issue 11, defect 7).

- `audit_events.query_hash`: the keyed hash of the NHS number a search looked for;
- `audit_events.row_hash`: HMAC-SHA256 of the row's content under the deployment's audit key
  (filled here for the rows already written), and `chain_seq` / `chain_hash`, the row's place
  in the chain and its link, which the background sealer sets (app.audit.chain);
- `audit_chain_heads`: where the chain ends (and starts), one row;
- the audit key in `service_secrets` (used unless `LFD_AUDIT_KEY` is set: set it in the
  environment of `lfd migrate` too, or the rows already written are hashed under the generated
  key and no longer match under yours);
- on PostgreSQL, triggers that refuse every UPDATE, DELETE and TRUNCATE of `audit_events`
  except the sealer's UPDATE (the chain columns set once, nothing else changed), and any
  change of the chain head that moves it backwards or deletes it. A trigger holds for the
  table's owner too; only a role that may disable triggers (the owner, a superuser) can get
  round it, and deployments should run the service as a role that is neither (docs/audit.md).

The row hash is computed as app.audit.integrity computes it (a frozen copy: migrations never
import the app).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 17:30:00
"""

import hashlib
import hmac
import json
import os
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
CONTENT = (
    "id",
    "occurred_at",
    "client_id",
    "client_name",
    "on_behalf_of",
    "action",
    "resource_type",
    "resource_id",
    "death_id",
    "request_id",
    "outcome",
    "query_hash",
)
EVENTS = sa.table(
    "audit_events",
    sa.column("id", sa.Uuid()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("client_id", sa.Uuid()),
    sa.column("client_name", sa.String()),
    sa.column("on_behalf_of", sa.String()),
    sa.column("action", sa.String()),
    sa.column("resource_type", sa.String()),
    sa.column("resource_id", sa.Uuid()),
    sa.column("death_id", sa.Uuid()),
    sa.column("request_id", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("query_hash", sa.String()),
    sa.column("row_hash", sa.String()),
)
BATCH = 5000

APPEND_ONLY = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL AND NEW.chain_hash IS NOT NULL
       AND (NEW.id, NEW.occurred_at, NEW.client_id, NEW.client_name, NEW.on_behalf_of,
            NEW.action, NEW.resource_type, NEW.resource_id, NEW.death_id, NEW.request_id,
            NEW.outcome, NEW.query_hash, NEW.row_hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.occurred_at, OLD.client_id, OLD.client_name, OLD.on_behalf_of,
            OLD.action, OLD.resource_type, OLD.resource_id, OLD.death_id, OLD.request_id,
            OLD.outcome, OLD.query_hash, OLD.row_hash)
    THEN
        RETURN NEW;  -- the sealer placing a row in the chain
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""
HEAD_FORWARD_ONLY = """
CREATE FUNCTION audit_chain_heads_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name = OLD.name AND NEW.last_seq >= OLD.last_seq
       AND NEW.start_seq = OLD.start_seq AND NEW.start_hash = OLD.start_hash
    THEN
        RETURN NEW;  -- the sealer moving the head on
    END IF;
    RAISE EXCEPTION 'audit_chain_heads only moves forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""


def _canonical(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return value


def _row_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"lfd-audit-row", hashlib.sha256).digest()


def _row_hash(key: bytes, row: dict[str, Any]) -> str:
    content = json.dumps(
        [_canonical(row.get(name)) for name in CONTENT], separators=(",", ":"), ensure_ascii=True
    )
    return hmac.new(key, content.encode(), hashlib.sha256).hexdigest()


def _hash_existing_rows(secret: str) -> None:
    connection = op.get_bind()
    key = _row_key(secret)
    columns = [EVENTS.c[name] for name in CONTENT]
    last: uuid.UUID | None = None
    while True:
        query = sa.select(*columns).order_by(EVENTS.c.id).limit(BATCH)
        if last is not None:
            query = query.where(EVENTS.c.id > last)
        rows = [row._asdict() for row in connection.execute(query)]
        if not rows:
            return
        connection.execute(
            EVENTS.update()
            .where(EVENTS.c.id == sa.bindparam("row_id"))
            .values(row_hash=sa.bindparam("hash")),
            [{"row_id": row["id"], "hash": _row_hash(key, row)} for row in rows],
        )
        last = rows[-1]["id"]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    heads = op.create_table(
        "audit_chain_heads",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("start_seq", sa.BigInteger(), nullable=False),
        sa.Column("start_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_audit_chain_heads")),
    )
    op.bulk_insert(
        heads,
        [
            {
                "name": "main",
                "last_seq": 0,
                "last_hash": GENESIS,
                "start_seq": 0,
                "start_hash": GENESIS,
                "sealed_at": None,
            }
        ],
    )
    generated = secrets.token_hex(32)
    op.bulk_insert(
        sa.table(
            "service_secrets",
            sa.column("name", sa.String()),
            sa.column("value", sa.String()),
            sa.column("created_at", sa.DateTime(timezone=True)),
        ),
        [{"name": "audit_key", "value": generated, "created_at": datetime.now(UTC)}],
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("query_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
    _hash_existing_rows(os.environ.get("LFD_AUDIT_KEY") or generated)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("row_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index("ix_audit_events_chain_seq", ["chain_seq"], unique=True)
        batch_op.create_index(
            "ix_audit_events_unsealed",
            ["occurred_at", "id"],
            unique=False,
            postgresql_where=sa.text("chain_seq IS NULL"),
            sqlite_where=sa.text("chain_seq IS NULL"),
        )
        batch_op.create_index(
            "ix_audit_events_query_hash_occurred_at",
            ["query_hash", "occurred_at"],
            unique=False,
            postgresql_where=sa.text("query_hash IS NOT NULL"),
            sqlite_where=sa.text("query_hash IS NOT NULL"),
        )
    if postgresql:
        op.execute(APPEND_ONLY)
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events"
            " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(HEAD_FORWARD_ONLY)
        op.execute(
            "CREATE TRIGGER audit_chain_heads_forward_only BEFORE UPDATE OR DELETE"
            " ON audit_chain_heads FOR EACH ROW EXECUTE FUNCTION audit_chain_heads_forward_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_heads_no_truncate BEFORE TRUNCATE ON audit_chain_heads"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_heads_forward_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_chain_heads_no_truncate ON audit_chain_heads")
        op.execute("DROP TRIGGER audit_chain_heads_forward_only ON audit_chain_heads")
        op.execute("DROP FUNCTION audit_chain_heads_forward_only()")
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_query_hash_occurred_at")
        batch_op.drop_index("ix_audit_events_unsealed")
        batch_op.drop_index("ix_audit_events_chain_seq")
        batch_op.drop_column("chain_hash")
        batch_op.drop_column("chain_seq")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("query_hash")
    op.execute("DELETE FROM service_secrets WHERE name = 'audit_key'")
    op.drop_table("audit_chain_heads")
