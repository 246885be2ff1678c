"""Death notifications: a trust system's word that a patient died (JSON, HL7 v2 ADT, FHIR)
creates the death awaiting screening; each notification's key (source system and reference)
names the death it created or found. The death remembers when it was first notified, and the
medical examiner office's worklist leases a death to the ME who takes it. The screening gains
the scrutiny in full: notes received and scrutiny completed times, and the rest as JSON; a
governance reviewer's retrospective judgement of the ME's referral decision is a row of its own.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("deaths") as batch:
        batch.add_column(sa.Column("notified_at", TIMESTAMP, nullable=True))
    with op.batch_alter_table("screenings") as batch:
        batch.add_column(sa.Column("notes_received_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("scrutiny_completed_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("scrutiny", JSON, nullable=True))
    op.create_table(
        "death_notifications",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("source_system", sa.String(length=100), nullable=False),
        sa.Column("source_reference", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("message_id", sa.String(length=100), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_death_notifications_death_id_deaths")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_death_notifications")),
        sa.UniqueConstraint(
            "source_system",
            "source_reference",
            name=op.f("uq_death_notifications_source_system_source_reference"),
        ),
    )
    op.create_index(
        op.f("ix_death_notifications_death_id"), "death_notifications", ["death_id"], unique=False
    )
    op.create_table(
        "referral_judgements",
        sa.Column("screening_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=False),
        sa.Column("judgement", sa.String(length=30), nullable=False),
        sa.Column("criterion", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("judged_at", TIMESTAMP, nullable=False),
        sa.Column("judged_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("judged_by", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_referral_judgements_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["screening_id"],
            ["screenings.id"],
            name=op.f("fk_referral_judgements_screening_id_screenings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_judgements")),
        sa.UniqueConstraint("screening_id", name=op.f("uq_referral_judgements_screening_id")),
    )
    op.create_index(
        op.f("ix_referral_judgements_died_on"), "referral_judgements", ["died_on"], unique=False
    )
    op.create_table(
        "worklist_claims",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("leased_by", sa.Uuid(), nullable=False),
        sa.Column("leased_to", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", TIMESTAMP, nullable=False),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_worklist_claims_death_id_deaths")
        ),
        sa.PrimaryKeyConstraint("death_id", name=op.f("pk_worklist_claims")),
    )


def downgrade() -> None:
    op.drop_table("worklist_claims")
    op.drop_index(op.f("ix_referral_judgements_died_on"), table_name="referral_judgements")
    op.drop_table("referral_judgements")
    op.drop_index(op.f("ix_death_notifications_death_id"), table_name="death_notifications")
    op.drop_table("death_notifications")
    with op.batch_alter_table("screenings") as batch:
        batch.drop_column("scrutiny")
        batch.drop_column("scrutiny_completed_at")
        batch.drop_column("notes_received_at")
    with op.batch_alter_table("deaths") as batch:
        batch.drop_column("notified_at")
