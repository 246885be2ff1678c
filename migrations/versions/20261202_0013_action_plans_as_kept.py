"""Action plans as trusts keep them (issue 13): what an imported plan said is kept beside what
the service derives.

- actions: ``recommendation`` (a system review's letter, "A"), ``organisation_names`` (as
  written, "UHL", "Healthwatch"; ``organisations`` keeps the ODS codes), ``lead_history``
  (earlier leads, "(A > B)"), ``links`` (to other actions of the plan, "Linked to action 7"),
  ``due_text`` (the words a due date was derived from, "By the end of March"),
  ``status_recorded`` (false: the file left the status blank), ``reported_rag``,
  ``reported_rag_on`` and ``reported_rag_precision`` (a RAG judged by people, on a date),
  ``completed_precision`` ("on_or_before": completed by the file's as-at date);
- action_plans: ``organisation_names``.

Revision ID: 0013
Revises: 0016
Create Date: 2026-12-02 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("recommendation", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("organisation_names", JSON, nullable=True))
        batch.add_column(sa.Column("lead_history", JSON, nullable=True))
        batch.add_column(sa.Column("links", JSON, nullable=True))
        batch.add_column(sa.Column("due_text", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("status_recorded", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("reported_rag", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("reported_rag_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("reported_rag_precision", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("completed_precision", sa.String(length=12), nullable=True))
    with op.batch_alter_table("action_plans") as batch:
        batch.add_column(sa.Column("organisation_names", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_plans") as batch:
        batch.drop_column("organisation_names")
    with op.batch_alter_table("actions") as batch:
        for name in (
            "completed_precision",
            "reported_rag_precision",
            "reported_rag_on",
            "reported_rag",
            "status_recorded",
            "due_text",
            "links",
            "lead_history",
            "organisation_names",
            "recommendation",
        ):
            batch.drop_column(name)
