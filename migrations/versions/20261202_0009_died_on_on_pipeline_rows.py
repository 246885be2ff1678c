"""The death's local date of death (`died_on`) copied onto its screening, route overrides,
referrals and reviews, as findings already carry it, so that a report reads a period's rows
of each table from an index range on the table itself instead of joining every row of every
year to the period's deaths. The service writes the copy with each row and rewrites it when a
death's time of death is corrected (PATCH /v1/deaths).

The backfill is one UPDATE per table with a correlated subquery, which SQLite and PostgreSQL
both run; the columns are made NOT NULL after it. INCLUDE columns are PostgreSQL's; SQLite
builds the key columns only. SQLite changes a column's nullability (and drops a column) by
copying the table, and the copy keeps only the indexes SQLAlchemy can reflect there: 0008's
index on `lower(assigned_to)` is dropped before each copy of `referrals` and made again after.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, index, the columns the timeliness report reads from the index alone on PostgreSQL)
COPIES = [
    ("screenings", "ix_screenings_died_on", ["death_id", "screened_at"]),
    ("route_overrides", "ix_route_overrides_died_on", []),
    ("referrals", "ix_referrals_died_on", []),
    ("reviews", "ix_reviews_died_on", []),
]

DEATHS = sa.table("deaths", sa.column("id"), sa.column("died_on"))


@contextmanager
def copied_on_sqlite() -> Iterator[None]:
    """Around the batch operations, which SQLite runs by copying a table after reflecting it
    and the tables it refers to: 0008's expression index on referrals, which reflection skips
    (so a copy of referrals would lose it), dropped before and made again after."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.drop_index("ix_referrals_assigned_to_folded", table_name="referrals")
    yield
    if sqlite:
        op.create_index(
            "ix_referrals_assigned_to_folded",
            "referrals",
            [sa.text("lower(assigned_to)"), "status"],
            unique=False,
        )


def upgrade() -> None:
    with copied_on_sqlite():
        for table, index, include in COPIES:
            op.add_column(table, sa.Column("died_on", sa.Date(), nullable=True))
            rows = sa.table(table, sa.column("death_id"), sa.column("died_on"))
            op.execute(
                rows.update().values(
                    died_on=sa.select(DEATHS.c.died_on)
                    .where(DEATHS.c.id == rows.c.death_id)
                    .scalar_subquery()
                )
            )
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.alter_column("died_on", existing_type=sa.Date(), nullable=False)
                batch_op.create_index(index, ["died_on"], unique=False, postgresql_include=include)


def downgrade() -> None:
    with copied_on_sqlite():
        for table, index, _ in reversed(COPIES):
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_index(index)
                batch_op.drop_column("died_on")
