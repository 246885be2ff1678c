"""Action plans in the history bundle (issue 14): a plan that came in as history keeps the
bundle's key for it (source system and reference, unique across the deployment, like a
death's) and its fingerprint, and its sections and actions their keys within it, so that the
same bundle imported again finds them, and a corrected one updates them. Plans made through
the API or from a spreadsheet have none.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("action_plans") as batch:
        batch.add_column(sa.Column("source_system", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("source_reference", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("history_sha256", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_action_plans_source_system_source_reference"),
            ["source_system", "source_reference"],
        )
    with op.batch_alter_table("action_plan_sections") as batch:
        batch.add_column(sa.Column("source_key", sa.String(length=100), nullable=True))
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("source_key", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("source_key")
    with op.batch_alter_table("action_plan_sections") as batch:
        batch.drop_column("source_key")
    with op.batch_alter_table("action_plans") as batch:
        batch.drop_constraint(
            op.f("uq_action_plans_source_system_source_reference"), type_="unique"
        )
        batch.drop_column("history_sha256")
        batch.drop_column("source_reference")
        batch.drop_column("source_system")
