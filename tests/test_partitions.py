"""The audit and event tables by month on PostgreSQL (issue 19; app.partitions, migration 0025):
months made ahead, each a partition the service's role cannot read by name, months of events
closed so that the change feed skips them, and retention that drops whole months (never a row
at a time) while the audit chain still verifies. SQLite stays one table: retention refuses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.audit import service as audit_service
from app.audit.chain import seal_audit, verify_audit
from app.auth.scopes import Scope
from app.config import Settings
from app.db import Database
from app.events.feed import Position, _page_query
from app.events.months import closed_months, forget_closed_months
from app.events.service import Change, emit
from app.migrate import upgrade
from app.models import AuditChainHead, OutboxEvent
from app.partitions import add_months, ensure_partitions_in, partitions_of
from app.retention import run_retention
from tests.conftest import SERVICE_ROLE, Api, MakeApp, new_client, owner_url, run_sync
from tests.factories import record

postgres_only = pytest.mark.postgres_only


class Worker:
    client_id = None
    request_id = "test-partitions"


async def owner_plan(database_url: str, statement: Any) -> str:
    """EXPLAIN of a statement (its values inlined), as the tables' owner."""
    sql = str(statement.compile(dialect=_dialect(), compile_kwargs={"literal_binds": True}))
    engine = create_async_engine(owner_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT set_config('lfd.scope', 'all', false)"))
            rows = (await connection.execute(text(f"EXPLAIN {sql}"))).scalars().all()
    finally:
        await engine.dispose()
    return "\n".join(rows)


def _dialect() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


@postgres_only
async def test_each_month_is_a_partition_the_service_cannot_read_by_name(
    api: Api, database: Database, database_url: str
) -> None:
    recorded = await record(api)
    assert (await api.get(f"/v1/deaths/{recorded['death']['id']}")).status_code == 200
    this_month = datetime.now(UTC).date().replace(day=1)
    async with database.transaction() as session:
        for table in ("audit_events", "outbox_events"):
            months = {part.month for part in await partitions_of(session, table)}
            assert {add_months(this_month, n) for n in range(4)} <= months, table
    # Through the parent the policies let the whole deployment's scope see the month's rows;
    # naming the partition, the service's role sees nothing (row-level security, no policy).
    part = f"audit_events_p{this_month:%Y_%m}"
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection, connection.begin():
            await connection.execute(text("SELECT set_config('lfd.scope', 'all', true)"))
            assert await connection.scalar(text("SELECT current_user")) == SERVICE_ROLE
            through_parent = await connection.scalar(
                text("SELECT count(*) FROM audit_events WHERE occurred_at >= :start"),
                {"start": datetime(this_month.year, this_month.month, 1, tzinfo=UTC)},
            )
            assert through_parent and through_parent > 0
            assert await connection.scalar(text(f"SELECT count(*) FROM {part}")) == 0
            unprotected = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent IN ('audit_events'::regclass, 'outbox_events'::regclass)"
                    " AND NOT c.relrowsecurity"
                )
            )
            assert unprotected == 0
    finally:
        await engine.dispose()


@postgres_only
async def test_months_are_made_ahead_once(database: Database) -> None:
    later = datetime.now(UTC) + timedelta(days=31 * 30)
    async with database.transaction() as session:
        made = await ensure_partitions_in(session, later, 2)
    assert made == 6  # three months of each table
    async with database.transaction() as session:
        assert await ensure_partitions_in(session, later, 2) == 0
        months = {part.month for part in await partitions_of(session, "audit_events")}
    assert later.date().replace(day=1) in months


@postgres_only
async def test_a_closed_month_refuses_late_events_and_the_feed_skips_it(
    database: Database, database_url: str
) -> None:
    january = datetime(2003, 1, 15, tzinfo=UTC)
    resource = uuid.uuid4()
    async with database.transaction() as session:
        [first] = await emit(
            session, Worker(), [Change("theme.updated", "theme", resource, None)], at=january
        )
    # Dated before any month existed: kept in the default partition, then moved into its
    # month when the month is made.
    async with database.transaction() as session:
        where = await session.scalar(
            select(text("tableoid::regclass::text"))
            .select_from(OutboxEvent)
            .where(OutboxEvent.id == first)
        )
        assert where == "outbox_events_default"
        await session.execute(
            text("SELECT lfd_ensure_partitions('outbox_events', :month, 0)"),
            {"month": date(2003, 1, 1)},
        )
        where = await session.scalar(
            select(text("tableoid::regclass::text"))
            .select_from(OutboxEvent)
            .where(OutboxEvent.id == first)
        )
        assert where == "outbox_events_p2003_01"
        event = await session.scalar(select(OutboxEvent).where(OutboxEvent.id == first))
        assert event is not None
        position = Position(event.txid, event.seq)
    async with database.transaction() as session:
        closed = await session.scalar(
            text("SELECT lfd_close_event_months(:before)"),
            {"before": datetime(2003, 3, 1, tzinfo=UTC)},
        )
    assert closed == 1
    forget_closed_months()
    try:
        # A row for the closed month after it closed is refused, not silently skipped.
        with pytest.raises(DBAPIError, match="outbox_events_p2003_01_closed"):
            async with database.transaction() as session:
                await emit(
                    session,
                    Worker(),
                    [Change("theme.updated", "theme", uuid.uuid4(), None)],
                    at=january + timedelta(days=1),
                )
        async with database.transaction() as session:
            months = await closed_months(session)
        assert months.months[0] == date(2003, 1, 1)
        assert months.max_txids[0] == position.txid
        # A page from a position past the month's highest txid does not read its partition;
        # one from within it does (an event of that txid with a later seq may follow).
        after = _page_query(Position(position.txid + 1, 0), 100, None, months)
        before = _page_query(Position(position.txid, 0), 100, None, months)
        assert "outbox_events_p2003_01" not in await owner_plan(database_url, after)
        assert "outbox_events_p2003_01" in await owner_plan(database_url, before)
    finally:
        forget_closed_months()


async def _audit_rows_dated(monkeypatch: pytest.MonkeyPatch, api: Api, moment: datetime) -> None:
    """Audit rows written as if at ``moment`` (the service stamps rows with the time now)."""
    recorded = await record(api)
    monkeypatch.setattr(audit_service, "utcnow", lambda: moment)
    try:
        assert (await api.get(f"/v1/deaths/{recorded['death']['id']}")).status_code == 200
        assert (await api.get("/v1/deaths", params={"limit": 5})).status_code == 200
    finally:
        monkeypatch.undo()


@pytest.fixture
async def retained(
    scratch_url: str, app_factory: MakeApp, base_settings: Settings
) -> AsyncIterator[tuple[Database, Api, Settings]]:
    """A scratch database of its own (retention moves its audit chain's start) with an admin
    client, and settings that keep everything from February 2001 on."""
    await run_sync(upgrade, scratch_url)
    app, http = await app_factory(database_url=scratch_url)
    database: Database = app.state.database
    key, client_id = await new_client(database, [Scope.admin])
    this_month = datetime.now(UTC).date().replace(day=1)
    keep = (this_month.year - 2001) * 12 + this_month.month - 2
    settings = base_settings.model_copy(
        update={
            "database_url": scratch_url,
            "retention_audit_months": keep,
            "retention_event_months": keep,
        }
    )
    yield database, Api(http, key, client_id), settings


async def test_retention_drops_whole_months_and_the_chain_still_verifies(
    retained: tuple[Database, Api, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, api, settings = retained
    if database.dialect != "postgresql":
        report = await run_retention(Database(settings))
        assert report.refused and "SQLite" in report.refused[0]
        assert not any(step.dropped for step in report.tables)
        return
    async with database.transaction() as session:
        for table in ("audit_events", "outbox_events"):
            await session.execute(
                text("SELECT lfd_ensure_partitions(:table, :month, 1)"),
                {"table": table, "month": date(2001, 1, 1)},
            )
    await _audit_rows_dated(monkeypatch, api, datetime(2001, 1, 10, 9, tzinfo=UTC))
    await _audit_rows_dated(monkeypatch, api, datetime(2001, 2, 10, 9, tzinfo=UTC))
    async with database.transaction() as session:
        for moment in (datetime(2001, 1, 12, tzinfo=UTC), datetime(2001, 2, 12, tzinfo=UTC)):
            await emit(
                session, Worker(), [Change("theme.updated", "theme", uuid.uuid4(), None)], moment
            )
    await seal_audit(database)

    held = await run_retention(
        Database(settings.model_copy(update={"retention_hold": True})), dry_run=False
    )
    assert held.refused and not any(step.dropped for step in held.tables)
    assert [part.name for part in held.tables[0].dropping] == ["audit_events_p2001_01"]

    owner = Database(settings)
    try:
        report = await run_retention(owner)
    finally:
        await owner.dispose()
    assert report.refused == []
    assert [
        (step.table, [p.name for p in step.dropping], step.dropped) for step in report.tables
    ] == [
        ("audit_events", ["audit_events_p2001_01"], True),
        ("outbox_events", ["outbox_events_p2001_01"], True),
    ]
    async with database.transaction() as session:
        names = {
            part.name
            for table in ("audit_events", "outbox_events")
            for part in await partitions_of(session, table)
        }
        head = await session.scalar(select(AuditChainHead))
        left = await session.scalar(
            text("SELECT count(*) FROM audit_events WHERE occurred_at < '2001-02-01'")
        )
    assert "audit_events_p2001_01" not in names and "outbox_events_p2001_01" not in names
    assert {"audit_events_p2001_02", "outbox_events_p2001_02"} <= names
    assert left == 0
    assert head is not None and report.chain_start == (head.start_seq, head.start_hash)
    assert head.start_seq > 0
    verified = await verify_audit(database)
    assert verified.intact, [str(finding) for finding in verified.findings]
    assert (await api.get("/v1/deaths", params={"limit": 1})).status_code == 200
