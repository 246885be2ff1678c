"""Signed-JWT client credentials and verified users (issue 18, docs/authentication.md):
clients get an expiry, a rotated API key's grace period, the identity provider of their user
assertions and whether free-text on-behalf-of is accepted; the public keys clients sign their
assertions with; the assertion ids already used (replay); the service's token signing keys;
the audit row says whether its on-behalf-of was verified, and the user's role.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("expires_at", TS, nullable=True))
        batch.add_column(sa.Column("previous_key_prefix", sa.String(32), nullable=True))
        batch.add_column(sa.Column("previous_key_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("previous_key_expires_at", TS, nullable=True))
        batch.add_column(sa.Column("user_assertion", JSON, nullable=True))
        batch.add_column(
            sa.Column(
                "allow_unverified_on_behalf_of",
                sa.Boolean(),
                nullable=False,
                server_default=sa.true(),
            )
        )
        batch.create_unique_constraint(
            "uq_api_clients_previous_key_prefix", ["previous_key_prefix"]
        )
    op.create_table(
        "client_public_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("kid", sa.String(200), nullable=True),
        sa.Column("pem", sa.Text(), nullable=True),
        sa.Column("jwks_url", sa.String(2000), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name="fk_client_public_keys_client_id_api_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_client_public_keys"),
    )
    op.create_index("ix_client_public_keys_client_id", "client_public_keys", ["client_id"])
    op.create_table(
        "oauth_used_assertions",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("jti", sa.String(200), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name="pk_oauth_used_assertions"),
    )
    op.create_index("ix_oauth_used_assertions_expires_at", "oauth_used_assertions", ["expires_at"])
    op.create_table(
        "oauth_signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("retired_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_oauth_signing_keys"),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("on_behalf_of_verified", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("on_behalf_of_role", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("on_behalf_of_role")
        batch.drop_column("on_behalf_of_verified")
    op.drop_table("oauth_signing_keys")
    op.drop_index("ix_oauth_used_assertions_expires_at", table_name="oauth_used_assertions")
    op.drop_table("oauth_used_assertions")
    op.drop_index("ix_client_public_keys_client_id", table_name="client_public_keys")
    op.drop_table("client_public_keys")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_constraint("uq_api_clients_previous_key_prefix", type_="unique")
        batch.drop_column("allow_unverified_on_behalf_of")
        batch.drop_column("user_assertion")
        batch.drop_column("previous_key_expires_at")
        batch.drop_column("previous_key_hash")
        batch.drop_column("previous_key_prefix")
        batch.drop_column("expires_at")
