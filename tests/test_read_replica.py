"""The read replica (app.replica, docs/replica.md): the reports and the change feed read from a
hot standby while it keeps up, a client that wrote reads its own write, a standby that lags or
is gone sends reads to the primary and /readyz says so, and row-level security holds there.

The PostgreSQL tests run against a real streaming replica that they make and remove
themselves (tests/kit/replica.py: a primary cluster of their own and its standby, from the
PostgreSQL installation the run's server uses); when the run is on PostgreSQL and that cannot
be made, they fail. The rest (the positions, the routing rules, the settings, the header) need
no database and run on SQLite too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.scopes import Scope
from app.config import Settings
from app.db import Database
from app.errors import BadRequest
from app.events.service import Change, emit
from app.migrate import grant_service_role, upgrade
from app.models import Organisation
from app.replica.lsn import format_lsn, parse_lsn, read_after_header, record_boundary
from app.replica.monitor import ReplicaState, ReplicaStatus, lag_bound
from app.replica.reads import Reads, Source, replica_failure
from tests.conftest import POSTGRES_URL, SERVICE_ROLE, Api, MakeApi, MakeApp
from tests.factories import post_screening, record_unexpected, screening_body
from tests.kit.organisations import bound_client
from tests.kit.replica import StreamingPair, server_bindir, server_major, streaming_pair

DATABASE = "lfd_replica"
READER_SCOPES = (Scope.reports_read, Scope.events_read)
WRITER_SCOPES = (Scope.screenings_write, Scope.deaths_read, Scope.events_read)


# --- without a database -----------------------------------------------------------------------


def test_wal_positions_read_and_write_as_postgresql_writes_them() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    assert format_lsn(0) == "0/0"
    for bad in ("", "16", "16/", "/1", "G/1", "1/2/3", "123456789/0", " 1 / 2"):
        with pytest.raises(ValueError):
            parse_lsn(bad)
    # An insert position just past a page (or segment) header is where the last record ended.
    assert record_boundary(parse_lsn("0/3000028")) == parse_lsn("0/3000000")  # segment: 40
    assert record_boundary(parse_lsn("0/3002018")) == parse_lsn("0/3002000")  # page: 24
    assert record_boundary(parse_lsn("0/3002019")) == parse_lsn("0/3002019")
    assert record_boundary(parse_lsn("0/3000030")) == parse_lsn("0/3000030")


def test_a_malformed_read_after_is_refused_not_ignored() -> None:
    assert read_after_header(None) is None
    assert read_after_header("0/3A2F1C8") == parse_lsn("0/3A2F1C8")
    with pytest.raises(BadRequest) as refused:
        read_after_header("yesterday")
    assert refused.value.errors[0]["pointer"] == "header:/X-LFD-Read-After"


def test_the_lag_bound_is_the_newest_position_the_standby_has_passed() -> None:
    from collections import deque

    samples = deque([(10.0, 100), (11.0, 200), (12.0, 300)])
    # Replayed past 200 (seen at 11.0) but not 300: at most 2 s behind at 13.0.
    assert lag_bound(250, samples, 13.0, None) == 2.0
    # The replayed commit's age is the tighter bound when smaller.
    assert lag_bound(250, samples, 13.0, 0.5) == 0.5
    # Nothing passed and nothing replayed: unknown (the standby counts as lagging).
    assert lag_bound(50, samples, 13.0, None) is None
    assert lag_bound(50, samples, 13.0, 4.0) == 4.0


class _FakeDriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("canceling statement due to conflict with recovery")
        self.sqlstate = sqlstate


def _dbapi(sqlstate: str) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, _FakeDriverError(sqlstate))


def test_which_failures_on_the_replica_send_the_read_to_the_primary() -> None:
    for sqlstate in ("40001", "40P01", "57P01", "57P03", "08006", "53300"):
        assert replica_failure(_dbapi(sqlstate)), sqlstate
    assert replica_failure(ConnectionRefusedError())
    assert replica_failure(TimeoutError())
    assert replica_failure(InterfaceError("SELECT 1", {}, Exception("connection is closed")))
    # A statement that ran out of time would run as long on the primary; a fault is a fault.
    assert not replica_failure(_dbapi("57014"))
    assert not replica_failure(_dbapi("42P01"))
    assert not replica_failure(ValueError())


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reads(clock: _Clock, **overrides: Any) -> Reads:
    """Reads with a replica configured and its status set by hand (no database touched)."""
    settings = Settings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none",
        read_database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none",
        **overrides,
    )
    return Reads(Database(settings), settings, clock)


def _status(reads: Reads, state: ReplicaState, replay: int | None) -> None:
    status = ReplicaStatus(state, reads.clock(), replay_lsn=replay, lag_bytes=0, lag_seconds=0)
    reads.monitor._status = status

    async def fresh() -> ReplicaStatus:  # a new check finds the same
        return status

    reads.monitor.check = fresh  # type: ignore[method-assign]


async def test_a_client_that_wrote_reads_the_primary_until_the_replica_has_its_write() -> None:
    clock = _Clock()
    reads = _reads(clock, read_your_writes_seconds=60)
    _status(reads, ReplicaState.in_use, replay=1000)
    assert await reads.choose("writer", None) == (Source.replica, "in_use")
    reads.wrote("writer", 2000)
    assert await reads.choose("writer", None) == (Source.primary, "read_your_writes")
    assert await reads.choose("someone else", None) == (Source.replica, "in_use")
    # A token another worker gave: the same rule, for whoever carries it.
    assert await reads.choose("someone else", 1500) == (Source.primary, "read_your_writes")
    assert await reads.choose("someone else", 900) == (Source.replica, "in_use")
    _status(reads, ReplicaState.in_use, replay=2000)
    assert await reads.choose("writer", None) == (Source.replica, "in_use")
    # An older write never lowers what the client needs.
    reads.wrote("writer", 3000)
    reads.wrote("writer", 2500)
    assert reads.needed("writer", None) == 3000
    # The window bounds how long a worker remembers.
    clock.now += 61
    assert reads.needed("writer", None) is None
    await reads.database.dispose()


async def test_a_replica_not_in_use_sends_every_read_to_the_primary() -> None:
    clock = _Clock()
    reads = _reads(clock)
    for state in (
        ReplicaState.lagging,
        ReplicaState.unreachable,
        ReplicaState.not_a_standby,
        ReplicaState.unmeasured,
    ):
        _status(reads, state, replay=10**9)
        assert await reads.choose("anyone", None) == (Source.primary, state.value)
    await reads.database.dispose()


async def test_the_remembered_writers_are_bounded() -> None:
    reads = _reads(_Clock(), read_your_writes_max_clients=100)
    for number in range(250):
        reads.wrote(f"client {number}", number)
    assert len(reads._writes) == 100
    assert reads.needed("client 0", None) is None
    assert reads.needed("client 249", None) == 249
    await reads.database.dispose()


def test_a_read_replica_needs_a_postgresql_primary() -> None:
    with pytest.raises(ValidationError, match="read_database_url"):
        Settings(read_database_url="postgresql+asyncpg://x@127.0.0.1/db")
    with pytest.raises(ValidationError, match="hot standby"):
        Settings(
            database_url="postgresql+asyncpg://x@127.0.0.1/db",
            read_database_url="sqlite+aiosqlite:///./copy.db",
        )
    assert Settings(read_database_url="  ").read_database_url is None


async def test_without_a_replica_readyz_says_so_and_a_bad_token_is_a_400(
    http: Any, make_api: MakeApi, base_settings: Settings
) -> None:
    if base_settings.read_database_url is not None:
        pytest.fail("the run's own settings name no read replica")
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["read_replica"] == {"state": "not_configured", "reads": "primary"}
    reader = await make_api(*READER_SCOPES)
    answer = await reader.get("/v1/events", headers={"X-LFD-Read-After": "soon"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["pointer"] == "header:/X-LFD-Read-After"
    assert "x-lfd-read-from" not in answer.headers
    fine = await reader.get("/v1/events", headers={"X-LFD-Read-After": "0/0"})
    assert fine.status_code == 200
    assert "x-lfd-read-from" not in fine.headers
    # Nothing to wait for without a replica: a write carries no token.
    writer = await make_api(*WRITER_SCOPES)
    written = await post_screening(writer, screening_body())
    assert "x-lfd-read-after" not in written.headers


# --- a real streaming replica ------------------------------------------------------------------


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


@pytest.mark.postgres_only
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


@pytest.mark.postgres_only
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


@pytest.mark.postgres_only
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


@pytest.mark.postgres_only
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


@pytest.mark.postgres_only
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


@pytest.mark.postgres_only
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


@pytest.mark.postgres_only
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
    in_a = await record_unexpected(a)
    in_b = await record_unexpected(b)
    await replicated.pair.caught_up()
    for client, own, other in ((a, in_a, in_b), (b, in_b, in_a)):
        seen, page = await _feed(client, start["next_cursor"])
        assert seen.headers["x-lfd-read-from"] == "replica"
        assert own["id"] in _resources(page)
        assert other["id"] not in _resources(page)
        assert other["death"]["id"] not in {item["death_id"] for item in page["items"]}

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


@pytest.mark.postgres_only
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
