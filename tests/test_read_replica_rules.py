"""The read replica's rules without a database (app.replica, docs/replica.md): WAL positions,
the lag bound, which failures send a read to the primary, read-your-writes by client and by
token, the settings, and a deployment without a replica. tests/test_read_replica.py runs the
same against a real streaming standby."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.auth.scopes import Scope
from app.config import Settings
from app.db import Database
from app.errors import BadRequest
from app.replica.lsn import format_lsn, parse_lsn, read_after_header, record_boundary
from app.replica.monitor import ReplicaState, ReplicaStatus, lag_bound
from app.replica.reads import Failure, Reads, Source, replica_failure
from tests.conftest import MakeApi
from tests.factories import post_screening, screening_body

READER_SCOPES = (Scope.reports_read, Scope.events_read)
WRITER_SCOPES = (Scope.screenings_write, Scope.deaths_read, Scope.events_read)


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
    # The replica is gone or going: no reads there until a check finds it again.
    for sqlstate in ("57P01", "57P03", "08006", "53300"):
        assert replica_failure(_dbapi(sqlstate)) is Failure.gone, sqlstate
    assert replica_failure(ConnectionRefusedError()) is Failure.gone
    assert replica_failure(TimeoutError()) is Failure.gone
    closed = InterfaceError("SELECT 1", {}, Exception("connection is closed"))
    assert replica_failure(closed) is Failure.gone
    # This read was unlucky (a conflict with recovery, a full pool): the replica stays in use.
    for sqlstate in ("40001", "40P01"):
        assert replica_failure(_dbapi(sqlstate)) is Failure.unlucky, sqlstate
    assert replica_failure(PoolTimeout()) is Failure.unlucky
    # A statement that ran out of time would run as long on the primary; a fault is a fault.
    assert replica_failure(_dbapi("57014")) is None
    assert replica_failure(_dbapi("42P01")) is None
    assert replica_failure(ValueError()) is None


async def test_a_read_the_replica_cancelled_runs_on_the_primary_and_the_replica_stays_in_use(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry itself, on the run's database standing in for both (no standby needed): the
    first attempt fails as a recovery conflict would, the second is the primary's."""
    clock = _Clock()
    reads = _reads(clock)
    reads.database = database
    _status(reads, ReplicaState.in_use, replay=0)
    attempts: list[str] = []

    async def read(session: Any) -> str:
        attempts.append("attempt")
        if len(attempts) == 1:
            raise _dbapi("40001")
        return "answer"

    replica_snapshots: list[bool] = []
    real_snapshot = database.snapshot

    def snapshot(work: Any = None, *, replica: bool = False) -> Any:
        replica_snapshots.append(replica)
        return real_snapshot(work)

    monkeypatch.setattr(database, "snapshot", snapshot)
    assert await reads.run("anyone", None, read) == ("answer", Source.primary)
    assert replica_snapshots == [True, False]
    assert reads.monitor.last is not None and reads.monitor.last.usable
    # A replica that is gone is another matter: no reads there until a check finds it.
    attempts.clear()
    replica_snapshots.clear()

    async def gone(session: Any) -> str:
        attempts.append("attempt")
        if len(attempts) == 1:
            raise ConnectionResetError()
        return "answer"

    assert await reads.run("anyone", None, gone) == ("answer", Source.primary)
    assert reads.monitor.last is not None
    assert reads.monitor.last.state is ReplicaState.unreachable


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


async def test_with_no_database_answering_the_lag_is_unmeasured_and_reads_stay_on_the_primary() -> (
    None
):
    reads = _reads(_Clock())
    status = await reads.status()
    assert status.state is ReplicaState.unmeasured
    assert status.error  # the failure's type, nothing more
    assert await reads.choose("anyone", None) == (Source.primary, "unmeasured")
    shown = status.describe(reads.clock(), 30.0)
    assert shown["state"] == "unmeasured" and shown["reads"] == "primary"
    await reads.close()
    await reads.database.dispose()
