"""`GET /v1/referrals?assigned_to=` compares names without letter case, as claims do: the index
on `assigned_to` becomes an index on `lower(assigned_to)` (with `status`, as before), so the
filter still reads an index range at millions of referrals.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_referrals_assigned_to_folded",
        "referrals",
        [sa.text("lower(assigned_to)"), "status"],
        unique=False,
    )
    op.drop_index("ix_referrals_assigned_to", table_name="referrals")


def downgrade() -> None:
    op.create_index(
        "ix_referrals_assigned_to", "referrals", ["assigned_to", "status"], unique=False
    )
    op.drop_index("ix_referrals_assigned_to_folded", table_name="referrals")
