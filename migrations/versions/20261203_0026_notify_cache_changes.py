"""NOTIFY the service's processes when what they cache changes (issue 19).

Each worker keeps the API keys it has checked and its clients' organisation reach in memory
(app.auth.cache), and LISTENs on a connection of its own so that it drops them the moment
they change, whoever changes them (the API, `lfd clients revoke`, an administrator's SQL):

- `lfd_credentials`, with the client's id, after any change to a row of `api_clients`
  (revoked, expired, a key rotated, scopes or organisation edited, deleted);
- `lfd_scopes` after any change to `organisations` (the tree that decides a client's reach) or
  `case_shares` (the deaths shared with an organisation), once per statement.

A NOTIFY is delivered when its transaction commits, and not at all if it rolls back.
PostgreSQL only: SQLite deployments do not cache (there is no LISTEN).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION lfd_notify_credentials() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('lfd_credentials', COALESCE(NEW.id, OLD.id)::text);
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION lfd_notify_scopes() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('lfd_scopes', TG_TABLE_NAME);
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER lfd_api_clients_notify AFTER UPDATE OR DELETE ON api_clients"
        " FOR EACH ROW EXECUTE FUNCTION lfd_notify_credentials()"
    )
    for table in ("organisations", "case_shares"):
        op.execute(
            f"CREATE TRIGGER lfd_{table}_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION lfd_notify_scopes()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ("organisations", "case_shares"):
        op.execute(f"DROP TRIGGER lfd_{table}_notify ON {table}")
    op.execute("DROP TRIGGER lfd_api_clients_notify ON api_clients")
    op.execute("DROP FUNCTION lfd_notify_scopes()")
    op.execute("DROP FUNCTION lfd_notify_credentials()")
