"""Referral leases (lease holder, claim time, excluded stage-1 reviewer) and the claimable
queue index; referral transitions; reviews with their phase ratings, problems in care and
versions; the scale labels table, seeded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:41:35.713286
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Royal College of Physicians SJR scales, with the national dashboard's avoidability numbering.
_CARE = ["Very poor care", "Poor care", "Adequate care", "Good care", "Excellent care"]
_RECORDS = ["Very poor", "Poor", "Adequate", "Good", "Excellent"]
_AVOIDABILITY = [
    ("Definitely avoidable", None),
    ("Strong evidence of avoidability", None),
    ("Probably avoidable", "more than 50:50"),
    ("Possibly avoidable but not very likely", "less than 50:50"),
    ("Slight evidence of avoidability", None),
    ("Definitely not avoidable", None),
]
SCALE_LABELS = (
    [
        {"scale": "care_rating", "value": i, "label": label, "description": None}
        for i, label in enumerate(_CARE, 1)
    ]
    + [
        {"scale": "records_quality", "value": i, "label": label, "description": None}
        for i, label in enumerate(_RECORDS, 1)
    ]
    + [
        {"scale": "avoidability", "value": i, "label": label, "description": note}
        for i, (label, note) in enumerate(_AVOIDABILITY, 1)
    ]
)


def upgrade() -> None:
    op.create_table(
        "scale_labels",
        sa.Column("scale", sa.String(length=30), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("scale", "value", name=op.f("pk_scale_labels")),
    )
    op.create_table(
        "referral_transitions",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("on_behalf_of", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_transitions_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_transitions")),
    )
    with op.batch_alter_table("referral_transitions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_transitions_referral_id", ["referral_id", "occurred_at"], unique=False
        )

    op.create_table(
        "reviews",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=True),
        sa.Column("instrument", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("overall_rating", sa.SmallInteger(), nullable=True),
        sa.Column("quality_of_records", sa.SmallInteger(), nullable=True),
        sa.Column("avoidability", sa.SmallInteger(), nullable=True),
        sa.Column("meeting_date", sa.Date(), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("external_reference", sa.String(length=100), nullable=True),
        sa.Column("external_status", sa.String(length=20), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("external_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_reviews_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_reviews_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_reviews_referral_id")),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index("ix_reviews_death_id", ["death_id"], unique=False)
        batch_op.create_index(
            "ix_reviews_route_submitted_at", ["route", "submitted_at"], unique=False
        )

    op.create_table(
        "review_phase_ratings",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_phase_ratings_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_phase_ratings")),
        sa.UniqueConstraint(
            "review_id", "phase", name=op.f("uq_review_phase_ratings_review_id_phase")
        ),
    )
    op.create_table(
        "review_problems",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("problem_type", sa.String(length=20), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("harm", sa.String(length=10), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_problems_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_problems")),
    )
    with op.batch_alter_table("review_problems", schema=None) as batch_op:
        batch_op.create_index("ix_review_problems_review_id", ["review_id"], unique=False)

    op.create_table(
        "review_versions",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "snapshot",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_versions_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_versions")),
        sa.UniqueConstraint(
            "review_id", "version", name=op.f("uq_review_versions_review_id_version")
        ),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("leased_to", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("excluded_reviewer", sa.String(length=200), nullable=True))
        batch_op.drop_index(batch_op.f("ix_referrals_lease_expires_at"))
        batch_op.drop_index(batch_op.f("ix_referrals_specialty_queue"))
        batch_op.create_index(
            "ix_referrals_specialty_queue",
            ["specialty", "status", "priority", "due_at", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_referrals_claimable",
            ["route", "priority", "due_at", "created_at", "id"],
            unique=False,
            postgresql_where=sa.text("status IN ('ready', 'in_progress')"),
            sqlite_where=sa.text("status IN ('ready', 'in_progress')"),
        )
        batch_op.create_index(
            "ix_referrals_claimable_specialty",
            ["route", "specialty", "priority", "due_at", "created_at", "id"],
            unique=False,
            postgresql_where=sa.text("status IN ('ready', 'in_progress')"),
            sqlite_where=sa.text("status IN ('ready', 'in_progress')"),
        )
        batch_op.create_index(
            "ix_referrals_status_queue",
            ["status", "priority", "due_at", "created_at", "id"],
            unique=False,
        )
    labels = sa.table(
        "scale_labels",
        sa.column("scale", sa.String),
        sa.column("value", sa.SmallInteger),
        sa.column("label", sa.String),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(labels, SCALE_LABELS)


def downgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_status_queue")
        batch_op.drop_index("ix_referrals_claimable_specialty")
        batch_op.drop_index(
            "ix_referrals_claimable",
            postgresql_where=sa.text("status IN ('ready', 'in_progress')"),
            sqlite_where=sa.text("status IN ('ready', 'in_progress')"),
        )
        batch_op.drop_index("ix_referrals_specialty_queue")
        batch_op.create_index(
            batch_op.f("ix_referrals_specialty_queue"),
            ["specialty", "route", "status", "priority", "due_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_referrals_lease_expires_at"), ["lease_expires_at"], unique=False
        )
        batch_op.drop_column("excluded_reviewer")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("leased_to")

    op.drop_table("review_versions")
    with op.batch_alter_table("review_problems", schema=None) as batch_op:
        batch_op.drop_index("ix_review_problems_review_id")

    op.drop_table("review_problems")
    op.drop_table("review_phase_ratings")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_reviews_route_submitted_at")
        batch_op.drop_index("ix_reviews_death_id")

    op.drop_table("reviews")
    with op.batch_alter_table("referral_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_transitions_referral_id")

    op.drop_table("referral_transitions")
    op.drop_table("scale_labels")
