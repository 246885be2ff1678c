"""A trust's period of referrals, reviews, screenings and findings by one index range (issue 19).

The reports of a trust in a deployment of many filter each table by the organisation and a
period of dates of death. With only `died_on` indexed, a trust's year read the whole
deployment's year and dropped the other trusts' rows: at 6,000,000 deaths (150 trusts, ten
years) the LfD dashboard of one trust took 203 ms against 42 ms for the same trust alone in its
database (docs/benchmarks.md, national scale). `(organisation_id, died_on)` on each, as deaths
have had since migration 0019, brings it to 56-75 ms.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 16:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("referrals", "reviews", "findings")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(
            f"ix_{table}_organisation_id_died_on", table, ["organisation_id", "died_on"]
        )
    op.create_index(
        "ix_screenings_organisation_id_died_on",
        "screenings",
        ["organisation_id", "died_on"],
        postgresql_include=["death_id", "screened_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_screenings_organisation_id_died_on", table_name="screenings")
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_organisation_id_died_on", table_name=table)
