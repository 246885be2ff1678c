"""Issue 15 acceptance fixes: what a death notification's key was sent about, as keyed hashes
(the patient, the content) so that the same key for another patient is refused and a
correction is recognised; earlier versions of a referral judgement; and when the ME office
received the notes of a death still on its worklist (the 24-hour scrutiny target).

Notifications recorded before this migration have no hashes: sent again under their key, they
are answered as before (a replay).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# A version defers to its judgement, whose own policy (migration 0019) applies in the subquery.
VERSIONS_RULE = (
    "EXISTS (SELECT 1 FROM referral_judgements j"
    " WHERE j.id = referral_judgement_versions.judgement_id)"
)


def upgrade() -> None:
    with op.batch_alter_table("death_notifications") as batch:
        batch.add_column(sa.Column("patient_keys", JSON, nullable=True))
        batch.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("corrected_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("correction", sa.String(length=20), nullable=True))
    with op.batch_alter_table("deaths") as batch:
        batch.add_column(sa.Column("notes_received_at", TIMESTAMP, nullable=True))
    op.create_table(
        "referral_judgement_versions",
        sa.Column("judgement_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", JSON, nullable=False),
        sa.Column("superseded_at", TIMESTAMP, nullable=False),
        sa.Column("superseded_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["judgement_id"],
            ["referral_judgements.id"],
            name=op.f("fk_referral_judgement_versions_judgement_id_referral_judgements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_judgement_versions")),
        sa.UniqueConstraint(
            "judgement_id",
            "version",
            name=op.f("uq_referral_judgement_versions_judgement_id_version"),
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        table = "referral_judgement_versions"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY lfd_scope ON {table} USING (lfd_scope_all() OR {VERSIONS_RULE})"
            f" WITH CHECK (lfd_scope_all() OR {VERSIONS_RULE})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY lfd_scope ON referral_judgement_versions")
    op.drop_table("referral_judgement_versions")
    with op.batch_alter_table("deaths") as batch:
        batch.drop_column("notes_received_at")
    with op.batch_alter_table("death_notifications") as batch:
        batch.drop_column("correction")
        batch.drop_column("corrected_at")
        batch.drop_column("content_hash")
        batch.drop_column("patient_keys")
