"""A large history import leaves the planner fresh statistics (issue 14, migration 0029).

After a bulk load the planner believed the tables held what they held before (often nothing)
until autovacuum came round, and the first reports planned for empty tables. An import that
wrote at least ``ANALYZE_AFTER`` records calls ``lfd_analyze_history()``, the tables' owner's
function, since the service's role may not ANALYZE what it does not own. PostgreSQL only.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import text

from app.db import Database
from app.history import runner
from tests.conftest import Api
from tests.history_records import history_record, run, utc

pytestmark = pytest.mark.postgres_only


async def last_analyzed(database: Database, table: str) -> datetime | None:
    async with database.autocommit() as session:
        found: datetime | None = (
            await session.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = :table"),
                {"table": table},
            )
        ).scalar_one()
    return found


async def analyzed_since(database: Database, table: str, moment: datetime) -> bool:
    # A backend reports its statistics a moment after its transaction ends (PostgreSQL 15).
    for _ in range(100):
        seen = await last_analyzed(database, table)
        if seen is not None and seen >= moment:
            return True
        await asyncio.sleep(0.1)
    return False


async def server_now(database: Database) -> datetime:
    async with database.autocommit() as session:
        moment: datetime = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
    return moment


async def test_the_service_role_may_refresh_the_history_tables_statistics(
    database: Database,
) -> None:
    # The test run connects as the service role, which owns nothing: ANALYZE of its own would
    # be skipped with a warning; the owner's function does it.
    start = await server_now(database)
    async with database.transaction() as session:
        await session.execute(text("SELECT lfd_analyze_history()"))
    assert await analyzed_since(database, "deaths", start)
    assert await analyzed_since(database, "reviews", start)


async def test_an_import_of_many_records_refreshes_the_statistics(
    api: Api, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "ANALYZE_AFTER", 2)
    start = await server_now(database)
    job = await run(api, [history_record(utc(2019, 3, 1, 10)), history_record(utc(2019, 3, 2, 10))])
    assert (job["status"], job["created"]) == ("completed", 2)
    assert await analyzed_since(database, "screenings", start)
    assert await analyzed_since(database, "referrals", start)
