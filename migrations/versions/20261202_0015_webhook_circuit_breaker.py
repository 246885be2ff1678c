"""A circuit breaker per webhook endpoint, kept on the endpoint's row so that every worker sees
it (app/webhooks/circuit.py, docs/webhooks.md "Isolation"): the count of consecutive failed
attempts, until when nothing more is claimed for the endpoint (open, or a half-open probe in
flight), and how many times it has opened (a claim made before the latest opening is not sent).
Existing endpoints start closed.

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-02 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("circuit_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("circuit_open_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("circuit_trips", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("circuit_trips")
        batch_op.drop_column("circuit_open_until")
        batch_op.drop_column("circuit_failures")
