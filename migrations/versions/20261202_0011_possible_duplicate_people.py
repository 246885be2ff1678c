"""Possible duplicate people: a death recorded with the NHS number of a death already held
(under another source reference) is flagged on the later death, for a person to decide whether
the two are the same person or not (POST /v1/deaths/{id}/duplicate-review). Nothing is merged.

Deaths already held that share an NHS number are flagged by the same rule: each is paired with
every earlier-recorded death of the same number.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "possible_duplicates",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("other_death_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detected_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("decided_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("decided_on_behalf_of", sa.String(length=200), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_possible_duplicates_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["other_death_id"],
            ["deaths.id"],
            name=op.f("fk_possible_duplicates_other_death_id_deaths"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_possible_duplicates")),
        sa.UniqueConstraint(
            "death_id",
            "other_death_id",
            name=op.f("uq_possible_duplicates_death_id_other_death_id"),
        ),
    )
    op.create_index(
        op.f("ix_possible_duplicates_other_death_id"),
        "possible_duplicates",
        ["other_death_id"],
        unique=False,
    )
    # The deaths already held that share an NHS number: the later (by case number, the order
    # they were recorded in) flagged against each earlier one.
    deaths = sa.table(
        "deaths",
        sa.column("id", sa.Uuid()),
        sa.column("nhs_number", sa.String()),
        sa.column("case_number", sa.BigInteger()),
    )
    later, earlier = deaths.alias("later"), deaths.alias("earlier")
    pairs = (
        op.get_bind()
        .execute(
            sa.select(later.c.id, earlier.c.id)
            .join(
                earlier,
                sa.and_(
                    later.c.nhs_number == earlier.c.nhs_number,
                    earlier.c.case_number < later.c.case_number,
                ),
            )
            .where(later.c.nhs_number.is_not(None))
        )
        .all()
    )
    if pairs:
        table = sa.table(
            "possible_duplicates",
            sa.column("id", sa.Uuid()),
            sa.column("death_id", sa.Uuid()),
            sa.column("other_death_id", sa.Uuid()),
            sa.column("status", sa.String()),
            sa.column("detected_at", TIMESTAMP),
        )
        moment = datetime.now(UTC)
        op.bulk_insert(
            table,
            [
                {
                    "id": uuid.uuid4(),
                    "death_id": later_id,
                    "other_death_id": earlier_id,
                    "status": "possible",
                    "detected_at": moment,
                }
                for later_id, earlier_id in pairs
            ],
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_possible_duplicates_other_death_id"), table_name="possible_duplicates")
    op.drop_table("possible_duplicates")
