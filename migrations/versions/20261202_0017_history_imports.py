"""History imports (issue 14, docs/history.md): the import jobs with their checkpoint and
counts, the records each refused (with JSON pointers), and one row per death that came in as
history: the record's fingerprint, its rows by the bundle's references, and what today's
referral rules would have required beside what happened (the missed referrals).

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "history_imports",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("bundle_format", sa.String(length=10), nullable=False),
        sa.Column("spool_path", sa.String(length=1000), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("bundle_bytes", sa.BigInteger(), nullable=False),
        sa.Column("all_or_nothing", sa.Boolean(), nullable=False),
        sa.Column("records_total", sa.Integer(), nullable=True),
        sa.Column("records_done", sa.Integer(), nullable=False),
        sa.Column("offset_done", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("batches", JSON, nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("client_name", sa.String(length=200), nullable=True),
        sa.Column("on_behalf_of", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_imports")),
    )
    op.create_index(
        "ix_history_imports_status",
        "history_imports",
        ["status", "lease_expires_at"],
        unique=False,
    )
    op.create_table(
        "history_import_problems",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("source_reference", sa.String(length=100), nullable=True),
        sa.Column("errors", JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["history_imports.id"],
            name=op.f("fk_history_import_problems_import_id_history_imports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_import_problems")),
    )
    op.create_index(
        "ix_history_import_problems_import_id_line",
        "history_import_problems",
        ["import_id", "line"],
        unique=False,
    )
    op.create_table(
        "history_records",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("links", JSON, nullable=False),
        sa.Column("required_routes", JSON, nullable=False),
        sa.Column("missed_routes", JSON, nullable=False),
        sa.Column("missed", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("imported_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_history_records_death_id_deaths")
        ),
        sa.PrimaryKeyConstraint("death_id", name=op.f("pk_history_records")),
    )
    op.create_index(
        "ix_history_records_died_on", "history_records", ["died_on", "missed"], unique=False
    )
    op.create_index(
        op.f("ix_history_records_import_id"), "history_records", ["import_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_history_records_import_id"), table_name="history_records")
    op.drop_index("ix_history_records_died_on", table_name="history_records")
    op.drop_table("history_records")
    op.drop_index("ix_history_import_problems_import_id_line", table_name="history_import_problems")
    op.drop_table("history_import_problems")
    op.drop_index("ix_history_imports_status", table_name="history_imports")
    op.drop_table("history_imports")
