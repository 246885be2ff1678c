"""Indexes for the death-based reports (dashboard, care quality): the period's deaths read from
an index on the local date of death that covers every column a report reads or filters on, and
the cohort's reviews, referrals and SJR phase ratings reached by index-only probes.

`ix_reviews_death_id` and `ix_referrals_death_id_route` are replaced by indexes that start with
the same columns (so every lookup by death still uses them) and carry what the reports read.
INCLUDE columns are PostgreSQL's; SQLite builds the key columns only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEATHS_REPORT_COLUMNS = [
    "place_of_death",
    "within_30_days_of_discharge",
    "learning_disability",
    "autism",
    "age_at_death",
    "site",
    "specialty_at_death",
    "id",
]
REVIEWS_REPORT_COLUMNS = [
    "stage",
    "submitted_at",
    "id",
    "avoidability",
    "overall_rating",
    "notified_at",
    "external_status",
]


def upgrade() -> None:
    with op.batch_alter_table("deaths", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deaths_died_on_report",
            ["died_on"],
            unique=False,
            postgresql_include=DEATHS_REPORT_COLUMNS,
        )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reviews_death_id_route_status",
            ["death_id", "route", "status"],
            unique=False,
            postgresql_include=REVIEWS_REPORT_COLUMNS,
        )
        batch_op.drop_index("ix_reviews_death_id")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referrals_death_id_route_status",
            ["death_id", "route", "status"],
            unique=False,
        )
        batch_op.drop_index("ix_referrals_death_id_route")
    with op.batch_alter_table("review_phase_ratings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_phase_ratings_review_id_report",
            ["review_id"],
            unique=False,
            postgresql_include=["phase", "rating"],
        )


def downgrade() -> None:
    with op.batch_alter_table("review_phase_ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_review_phase_ratings_review_id_report")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index("ix_referrals_death_id_route", ["death_id", "route"], unique=False)
        batch_op.drop_index("ix_referrals_death_id_route_status")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index("ix_reviews_death_id", ["death_id"], unique=False)
        batch_op.drop_index("ix_reviews_death_id_route_status")
    with op.batch_alter_table("deaths", schema=None) as batch_op:
        batch_op.drop_index("ix_deaths_died_on_report")
