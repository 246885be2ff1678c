"""The deployment's cursor key: list cursors (`next_cursor`) carry an HMAC under it, so that a
cursor a client edits or makes up is refused (app.kit.cursor). Generated here, once per
deployment, as 0004 generated the pseudonym key; a separate key, so that neither can be
learnt from the other.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:30:00
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRETS = sa.table(
    "service_secrets", sa.column("name"), sa.column("value"), sa.column("created_at")
)


def upgrade() -> None:
    op.bulk_insert(
        SECRETS,
        [{"name": "cursor_key", "value": secrets.token_hex(32), "created_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.execute(SECRETS.delete().where(SECRETS.c.name == "cursor_key"))
