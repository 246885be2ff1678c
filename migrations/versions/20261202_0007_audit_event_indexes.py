"""Indexes for reading the audit log (GET /v1/audit-events): one client's trail and one
resource's trail, newest first, as the existing index does for one death's.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_client_id_occurred_at", ["client_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_resource_id_occurred_at",
            ["resource_id", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_resource_id_occurred_at")
        batch_op.drop_index("ix_audit_events_client_id_occurred_at")
