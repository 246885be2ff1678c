"""Running the Alembic migrations from code (the CLI, the tests, the container)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


# What the service's own role may do: read and write rows, never own, alter or bypass.
_SERVICE_ROLE_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
    " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
)


def grant_service_role(owner_url: str, role: str, password: str | None = None) -> None:
    """Make (or bring up to date) the PostgreSQL role the service connects as: it may log in
    and read and write rows, but owns nothing, is no superuser and cannot bypass row-level
    security, so the policies of migration 0019 apply to every query it makes
    (docs/organisations.md). Run as the tables' owner, after `lfd migrate`."""
    import asyncio
    import re

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError("a role name is lower-case letters, digits and underscores")
    if not owner_url.startswith("postgresql"):
        raise ValueError("row-level security and service roles are PostgreSQL's")

    async def run() -> None:
        engine = create_async_engine(owner_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                exists = await connection.scalar(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
                )
                if not exists:
                    try:
                        await connection.execute(
                            text(
                                f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB"
                                " NOCREATEROLE"
                            )
                        )
                    except Exception as error:  # another process made it first
                        if "already exists" not in str(error):
                            raise
                await connection.execute(
                    text(f"ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
                )
                if password is not None:
                    quoted = password.replace("'", "''")
                    await connection.execute(text(f"ALTER ROLE {role} PASSWORD '{quoted}'"))
                database = await connection.scalar(text("SELECT current_database()"))
                await connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
                for grant in _SERVICE_ROLE_GRANTS:
                    await connection.execute(text(grant.format(role=role)))
        finally:
            await engine.dispose()

    asyncio.run(run())
