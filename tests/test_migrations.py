"""The migrations build exactly the schema the models describe, and they run both ways.

The round trip (upgrade, downgrade to nothing, upgrade again) runs on a fresh database of its
own: a temporary SQLite file, and on PostgreSQL a database created on the run's server and
dropped afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.migrate import downgrade, upgrade
from app.models import Base
from app.partitions import is_partition, schema_compare_options
from tests.factories import idem, screening_body

MODEL_TABLES = set(Base.metadata.tables)

# Autogenerate cannot compare indexes on expressions (lower(assigned_to)) on SQLite and says
# so; test_the_expression_indexes_are_built_as_the_models_say checks those instead.
pytestmark = [
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression"),
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index"),
]


def schema_diff(connection: Connection) -> list[Any]:
    options = {"compare_type": True, **schema_compare_options(connection.dialect.name)}
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, Base.metadata))


def describe(connection: Connection) -> tuple[set[str], set[str]]:
    """The database's tables (not the monthly partitions of two of them on PostgreSQL, which
    the service makes as months come: app.partitions) and (on PostgreSQL) its sequences."""
    inspector = inspect(connection)
    sequences: set[str] = set()
    if connection.dialect.name == "postgresql":
        sequences = set(inspector.get_sequence_names())
    tables = {name for name in inspector.get_table_names() if not is_partition(name)}
    return tables, sequences


async def run_on(url: str, function: Any) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(function)
    finally:
        await engine.dispose()


async def test_the_migrations_build_the_schema_the_models_describe(database: Database) -> None:
    async with database.engine.connect() as connection:
        diff = await connection.run_sync(schema_diff)
    assert diff == []


def expression_indexes() -> dict[str, list[str]]:
    """The models' indexes on expressions (e.g. lower(assigned_to)), which autogenerate cannot
    compare on SQLite: index name -> the words of its expressions and columns."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            if all(isinstance(expression, Column) for expression in index.expressions):
                continue
            words = re.findall(r"[a-z_]+", " ".join(str(e) for e in index.expressions))
            found[str(index.name)] = words
    return found


def index_definitions(connection: Connection) -> dict[str, str]:
    if connection.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    return {name: definition for name, definition in connection.exec_driver_sql(query).all()}


async def test_the_expression_indexes_are_built_as_the_models_say(database: Database) -> None:
    wanted = expression_indexes()
    assert "ix_referrals_assigned_to_folded" in wanted
    async with database.engine.connect() as connection:
        built = await connection.run_sync(index_definitions)
    for name, words in wanted.items():
        assert name in built, name
        for word in words:
            assert word in built[name], (name, word, built[name])


async def test_the_migrations_upgrade_downgrade_and_upgrade_again(
    scratch_url: str, base_settings: Settings
) -> None:
    await asyncio.to_thread(upgrade, scratch_url, "head")
    tables, sequences = await run_on(scratch_url, describe)
    assert tables == MODEL_TABLES | {"alembic_version"}
    assert await run_on(scratch_url, schema_diff) == []

    await asyncio.to_thread(downgrade, scratch_url, "base")
    tables, sequences = await run_on(scratch_url, describe)
    assert tables == {"alembic_version"}
    assert sequences == set()

    await asyncio.to_thread(upgrade, scratch_url, "head")
    tables, sequences = await run_on(scratch_url, describe)
    assert tables == MODEL_TABLES | {"alembic_version"}
    if scratch_url.startswith("postgresql"):
        assert "case_number_seq" in sequences
    assert await run_on(scratch_url, schema_diff) == []

    # And the service works on it: the first death gets the first case number.
    await service_records_first_case(base_settings.model_copy(update={"database_url": scratch_url}))


async def service_records_first_case(settings: Settings) -> None:
    database = Database(settings)
    try:
        async with database.transaction() as session:
            created = await create_client(session, "migration check", [Scope.admin])
    finally:
        await database.dispose()
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        body = screening_body()
        response = await http.post(
            "/v1/screenings",
            json=body,
            headers={"Authorization": f"Bearer {created.key}", **idem()},
        )
    await app.state.database.dispose()
    assert response.status_code == 201, response.text
    assert response.json()["death"]["case_reference"].endswith("-000001")
