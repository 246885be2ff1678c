"""The read replica (app.replica, docs/replica.md): the reports and the change feed read from a
hot standby while it keeps up, a client that wrote reads its own write, a standby that lags or
is gone sends reads to the primary and /readyz says so, and row-level security holds there.

They run against a real streaming replica that they make and remove themselves
(tests/kit/replica.py: a primary cluster of their own and its standby, from the PostgreSQL
installation the run's server uses); when the run is on PostgreSQL and that cannot be made,
they fail. The rules without a database: tests/test_read_replica_rules.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.scopes import Scope
from app.config import Settings
from app.db import Database
from app.events.service import Change, emit
from app.migrate import grant_service_role, upgrade
from app.models import Organisation
from tests.conftest import POSTGRES_URL, SERVICE_ROLE, Api, MakeApp
from tests.factories import record_unexpected, screening_body
from tests.kit.organisations import bound_client
from tests.kit.replica import StreamingPair, server_bindir, server_major, streaming_pair

# Streaming replication is PostgreSQL's: skipped on SQLite (with the reason shown), run and
# required on PostgreSQL.
pytestmark = pytest.mark.postgres_only

DATABASE = "lfd_replica"
READER_SCOPES = (Scope.reports_read, Scope.events_read)
WRITER_SCOPES = (Scope.screenings_write, Scope.deaths_read, Scope.events_read)


@dataclass(frozen=True)
class Replicated:
    pair: StreamingPair
    primary: str  # the service role's URLs
    standby: str
    owner: str


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    """A primary and its streaming standby (tests/kit/replica.py), the service's database
    migrated on the primary, its role made, and both replayed onto the standby."""
    major = asyncio.run(server_major(POSTGRES_URL))
    with streaming_pair(server_bindir(major)) as pair:
        owner = pair.primary_url(DATABASE)
        asyncio.run(_create_database(pair))
        upgrade(owner)
        grant_service_role(owner, SERVICE_ROLE)
        asyncio.run(pair.caught_up())
        yield Replicated(
            pair,
            pair.primary_url(DATABASE, SERVICE_ROLE),
            pair.standby_url(DATABASE, SERVICE_ROLE),
            owner,
        )


async def _create_database(pair: StreamingPair) -> None:
    connection = await asyncpg.connect(
        host="127.0.0.1", port=pair.primary_port, user="postgres", database="postgres"
    )
    try:
        await connection.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await connection.close()


@pytest.fixture
async def primary_database(
    replicated: Replicated, base_settings: Settings
) -> AsyncIterator[Database]:
    database = Database(base_settings.model_copy(update={"database_url": replicated.primary}))
    yield database
    await database.dispose()


@pytest.fixture
async def replica_app(app_factory: MakeApp, replicated: Replicated) -> Any:
    async def make(**overrides: Any) -> tuple[Any, Any]:
        settings = {
            "database_url": replicated.primary,
            "read_database_url": replicated.standby,
            "read_replica_check_seconds": 0.05,
        }
        return await app_factory(**{**settings, **overrides})

    return make


def _resources(page: dict[str, Any]) -> set[str]:
    return {item["resource"]["id"] for item in page["items"]}


async def _feed(api: Api, cursor: str | None = None, **headers: str) -> tuple[Any, dict[str, Any]]:
    params = {"cursor": cursor} if cursor else {"start": "now"}
    response = await api.get("/v1/events", params={**params, "limit": 1000}, headers=headers)
    assert response.status_code == 200, response.text
    return response, response.json()


async def _ready(http: Any) -> dict[str, Any]:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["read_replica"]
    return body


async def _until_state(http: Any, state: str, deadline: float = 30.0) -> dict[str, Any]:
    stop = time.monotonic() + deadline
    while True:
        shown = await _ready(http)
        if shown["state"] == state:
            return shown
        assert time.monotonic() < stop, f"the replica never became {state}: {shown}"
        await asyncio.sleep(0.02)


async def test_reports_and_the_feed_read_from_the_standby(
    replicated: Replicated, primary_database: Database, replica_app: Any
) -> None:
    _, http = await replica_app()
    writer = await bound_client(primary_database, http, *WRITER_SCOPES)
    reader = await bound_client(primary_database, http, *READER_SCOPES)
    _, start = await _feed(reader)
    written = await record_unexpected(writer)
    await replicated.pair.caught_up()

    response, page = await _feed(reader, start["next_cursor"])
    assert response.headers["x-lfd-read-from"] == "replica"
    assert written["id"] in _resources(page)
    dashboard = await reader.get("/v1/reports/lfd-dashboard", params={"format": "csv"})
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.headers["x-lfd-read-from"] == "replica"
    shown = await _ready(http)
    assert shown["state"] == "in_use" and shown["reads"] == "replica"
    assert shown["lag_bytes"] == 0 and shown["lag_seconds"] == 0
    scraper = await bound_client(primary_database, http, Scope.metrics_read)
    metrics = (await scraper.get("/metrics")).text
    assert "lfd_read_replica_in_use 1.0" in metrics
    assert 'lfd_replica_reads_total{reason="in_use",source="replica"}' in metrics
    # Reads that are not the replica's never say where they came from.
    death = await writer.get(f"/v1/deaths/{written['death']['id']}")
    assert death.status_code == 200
    assert "x-lfd-read-from" not in death.headers


async def test_a_client_reads_its_own_write_while_the_standby_is_behind(
    replicated: Replicated, primary_database: Database, replica_app: Any
) -> None:
    _, http = await replica_app()
    _, other_worker = await replica_app()  # a second worker process: no memory shared
    writer = await bound_client(primary_database, http, *WRITER_SCOPES)
    bystander = await bound_client(primary_database, http, *READER_SCOPES)
    _, start = await _feed(writer)
    cursor = start["next_cursor"]
    await replicated.pair.pause_replay()
    try:
        response = await writer.post(
            "/v1/screenings",
            json=_screening(),
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text
        token = response.headers["x-lfd-read-after"]
        screening = response.json()["id"]
        # The writer, on the worker that saw its write: from the primary, with its write.
        seen, page = await _feed(writer, cursor)
        assert seen.headers["x-lfd-read-from"] == "primary"
        assert screening in _resources(page)
        # Anyone else reads the standby, which really is behind.
        seen, page = await _feed(bystander, cursor)
        assert seen.headers["x-lfd-read-from"] == "replica"
        assert screening not in _resources(page)
        # Another worker knows nothing of the write: the token carries it there.
        elsewhere = Api(other_worker, writer.key, writer.client_id)
        seen, page = await _feed(elsewhere, cursor)
        assert seen.headers["x-lfd-read-from"] == "replica"
        assert screening not in _resources(page)
        seen, page = await _feed(elsewhere, cursor, **{"X-LFD-Read-After": token})
        assert seen.headers["x-lfd-read-from"] == "primary"
        assert screening in _resources(page)
    finally:
        await replicated.pair.resume_replay()
    await replicated.pair.caught_up()
    # Once the standby has the write, the writer is back on it.
    seen, page = await _feed(writer, cursor)
    assert seen.headers["x-lfd-read-from"] == "replica"
    assert screening in _resources(page)


async def test_only_a_client_that_reads_from_the_replica_gets_a_token(
    primary_database: Database, replica_app: Any
) -> None:
    _, http = await replica_app()
    intake = await bound_client(primary_database, http, Scope.screenings_write)
    response = await intake.post(
        "/v1/screenings", json=_screening(), headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert response.status_code == 201, response.text
    assert "x-lfd-read-after" not in response.headers
    refused = await intake.post("/v1/screenings", json={}, headers={"Idempotency-Key": "x"})
    assert refused.status_code >= 400
    assert "x-lfd-read-after" not in refused.headers


async def test_a_lagging_standby_sends_reads_to_the_primary_and_readyz_says_so(
    replicated: Replicated, primary_database: Database, replica_app: Any
) -> None:
    _, http = await replica_app(read_replica_max_lag_seconds=0.3)
    writer = await bound_client(primary_database, http, *WRITER_SCOPES)
    reader = await bound_client(primary_database, http, *READER_SCOPES)
    await replicated.pair.caught_up()
    _, start = await _feed(reader)
    assert (await _until_state(http, "in_use"))["reads"] == "replica"
    await replicated.pair.pause_replay()
    try:
        written = await record_unexpected(writer)
        shown = await _until_state(http, "lagging")
        assert shown["reads"] == "primary"
        assert shown["lag_seconds"] > 0.3 and shown["lag_bytes"] > 0
        seen, page = await _feed(reader, start["next_cursor"])
        assert seen.headers["x-lfd-read-from"] == "primary"
        assert written["id"] in _resources(page)
    finally:
        await replicated.pair.resume_replay()
    assert (await _until_state(http, "in_use"))["reads"] == "replica"


async def test_an_unreachable_replica_leaves_the_service_ready_on_the_primary(
    replicated: Replicated, primary_database: Database, app_factory: MakeApp
) -> None:
    nowhere = replicated.pair.url(9, DATABASE, SERVICE_ROLE)
    _, http = await app_factory(database_url=replicated.primary, read_database_url=nowhere)
    reader = await bound_client(primary_database, http, *READER_SCOPES)
    shown = await _ready(http)
    assert shown["state"] == "unreachable" and shown["reads"] == "primary"
    assert shown["error"]  # the type of the failure, no address or message
    seen, _ = await _feed(reader)
    assert seen.headers["x-lfd-read-from"] == "primary"
    report = await reader.get("/v1/reports/me-office", params={"format": "csv"})
    assert report.status_code == 200, report.text
    assert report.headers["x-lfd-read-from"] == "primary"


async def test_a_read_that_loses_the_standby_midway_is_answered_from_the_primary(
    replicated: Replicated, primary_database: Database, replica_app: Any
) -> None:
    _, http = await replica_app(read_replica_check_seconds=60)
    reader = await bound_client(primary_database, http, *READER_SCOPES)
    seen, _ = await _feed(reader)
    assert seen.headers["x-lfd-read-from"] == "replica"
    # The standby ends the pooled connection (as a restart or a recovery conflict would).
    ended = await replicated.pair.standby_sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE usename = '{SERVICE_ROLE}' AND datname = '{DATABASE}'"
    )
    assert ended
    seen, _ = await _feed(reader)
    assert seen.status_code == 200
    assert seen.headers["x-lfd-read-from"] == "primary"
    assert (await _ready(http))["state"] == "in_use"  # a new check finds it again


async def test_row_level_security_holds_on_the_standby(
    replicated: Replicated, primary_database: Database, replica_app: Any
) -> None:
    _, http = await replica_app()
    organisations = []
    async with primary_database.transaction() as session:
        for name in ("Replica trust A", "Replica trust B"):
            made = Organisation(
                id=uuid.uuid4(), name=f"{name} {uuid.uuid4().hex[:6]}", kind="trust",
                aliases=[], settings={},
            )  # fmt: skip
            session.add(made)
            organisations.append(made.id)
    a = await bound_client(primary_database, http, *WRITER_SCOPES, organisation_id=organisations[0])
    b = await bound_client(primary_database, http, *WRITER_SCOPES, organisation_id=organisations[1])
    _, start = await _feed(a)
    # At noon UTC two days ago: one UK date, one month, whatever the time of the run.
    died = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0)
    in_a = await record_unexpected(a, died_at=died)
    in_b = await record_unexpected(b, died_at=died)
    await replicated.pair.caught_up()
    for client, own, other in ((a, in_a, in_b), (b, in_b, in_a)):
        seen, page = await _feed(client, start["next_cursor"])
        assert seen.headers["x-lfd-read-from"] == "replica"
        assert own["id"] in _resources(page)
        assert other["id"] not in _resources(page)
        assert other["death"]["id"] not in {item["death_id"] for item in page["items"]}
    # A report counts the organisation's own deaths only (each has exactly one that month).
    for organisation in organisations:
        board = await bound_client(
            primary_database, http, Scope.reports_read, organisation_id=organisation
        )
        report = await board.get(
            "/v1/reports/lfd-dashboard", params={"period": died.strftime("%Y-%m")}
        )
        assert report.status_code == 200, report.text
        assert report.headers["x-lfd-read-from"] == "replica"
        assert report.json()["tables"][0]["rows"][-1]["all_deaths"] == 1

    # On the standby itself, as the service's role: the policies alone decide.
    engine = create_async_engine(replicated.standby, poolclass=NullPool)
    deaths = {"a": in_a["death"]["id"], "b": in_b["death"]["id"]}
    query = text("SELECT id::text FROM deaths WHERE id IN (:a, :b)")
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_is_in_recovery()"))
            await connection.commit()
            seen_with = {}
            for name, settings in {
                "nothing": {},
                "a": {"lfd.scope": "some", "lfd.organisations": "{" + str(organisations[0]) + "}"},
                "all": {"lfd.scope": "all"},
            }.items():
                async with connection.begin():
                    for key, value in settings.items():
                        await connection.execute(
                            text("SELECT set_config(:key, :value, true)"),
                            {"key": key, "value": value},
                        )
                    seen_with[name] = set((await connection.scalars(query, deaths)).all())
    finally:
        await engine.dispose()
    assert seen_with == {"nothing": set(), "a": {deaths["a"]}, "all": set(deaths.values())}


@dataclass(frozen=True)
class _Actor:
    client_id: uuid.UUID | None
    request_id: str | None


async def test_the_feed_on_the_standby_holds_back_a_late_commit_and_loses_nothing(
    replicated: Replicated, primary_database: Database, replica_app: Any
) -> None:
    _, http = await replica_app()
    consumer = await bound_client(primary_database, http, *READER_SCOPES)
    await replicated.pair.caught_up()
    _, start = await _feed(consumer)
    cursor = start["next_cursor"]
    early, late = uuid.uuid4(), uuid.uuid4()
    actor = _Actor(None, "replica-late-commit")
    async with primary_database.transaction() as slow:
        # The slow transaction writes first (the lower transaction id) but commits last.
        await emit(slow, actor, [Change("theme.updated", "theme", early, None)])  # type: ignore[arg-type]
        async with primary_database.transaction() as quick:
            await emit(quick, actor, [Change("theme.updated", "theme", late, None)])  # type: ignore[arg-type]
        await replicated.pair.caught_up()
        seen, page = await _feed(consumer, cursor)
        assert seen.headers["x-lfd-read-from"] == "replica"
        # Replayed, committed, yet not handed out: an earlier transaction is still running.
        assert str(late) not in _resources(page)
        cursor = page["next_cursor"]
    await replicated.pair.caught_up()
    order: list[str] = []
    stop = time.monotonic() + 30
    while str(late) not in order:
        assert time.monotonic() < stop, "the late events never came"
        seen, page = await _feed(consumer, cursor)
        order += [item["resource"]["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert [item for item in order if item in {str(early), str(late)}] == [str(early), str(late)]


def _screening() -> dict[str, Any]:
    return screening_body(screening={"death_expected": False})


async def test_the_replica_check_recovers_after_the_standby_drops_its_connections(
    replicated: Replicated, replica_app: Any
) -> None:
    _, http = await replica_app()
    assert (await _ready(http))["state"] == "in_use"  # a pooled connection to the standby
    await replicated.pair.standby_sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE usename = '{SERVICE_ROLE}' AND datname = '{DATABASE}'"
    )
    # A check may fail on the dead connection once; it must not keep failing on it.
    await _until_state(http, "in_use", deadline=10)
