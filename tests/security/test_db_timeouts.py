"""Issue 11, defect 4: database timeouts.

A row lock held from outside the service (here: another connection's `SELECT ... FOR UPDATE`)
must not hang the requests that want the row, nor starve the pool so that unrelated reads fail:
a write that cannot get its lock within `database_lock_timeout_ms` is a 409 `record-busy`, a
statement over `database_statement_timeout_ms` a 503 with `Retry-After`, a request that cannot
get a pooled connection within `database_pool_timeout_seconds` a 503. Reports, exports and the
background loop get their own, longer timeouts.

The lock-holder tests need PostgreSQL (SQLite has no row locks and no statement timeout); the
mapping of the errors to answers runs on both.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.scopes import Scope
from app.deaths import service as deaths_service
from tests.conftest import owner_url
from tests.factories import idem, screening_body

PROBLEM_JSON = "application/problem+json"
# The bound on a whole scenario: far above the timeouts under test, far below "hangs".
SCENARIO_BOUND_SECONDS = 30
SQL_WORDS = ("SELECT ", "FOR UPDATE", "FROM deaths", "canceling statement", "sqlstate", "asyncpg")


async def record_death(api: Any) -> str:
    response = await api.post("/v1/screenings", json=screening_body(), headers=idem())
    assert response.status_code == 201, response.text
    death_id: str = response.json()["death_id"]
    return death_id


@asynccontextmanager
async def row_locked(database_url: str, death_id: str) -> AsyncIterator[AsyncConnection]:
    """Another session holds the death's row lock (FOR UPDATE) until the block ends."""
    engine = create_async_engine(owner_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as outside:
            transaction = await outside.begin()
            await outside.execute(
                text("SELECT id FROM deaths WHERE id = :id FOR UPDATE"), {"id": uuid.UUID(death_id)}
            )
            try:
                yield outside
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


def assert_clean_problem(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    for word in SQL_WORDS:
        assert word.lower() not in response.text.lower(), (word, response.text)


async def small_pool_app(app_factory: Any, **overrides: Any) -> httpx.AsyncClient:
    settings = {
        "database_pool_size": 2,
        "database_max_overflow": 0,
        "database_pool_timeout_seconds": 3.0,
        "database_lock_timeout_ms": 200,
        **overrides,
    }
    _, http = await app_factory(**settings)
    return http


@pytest.mark.postgres_only
async def test_a_locked_record_is_409_and_unrelated_reads_go_on(
    app_factory, make_api, database_url
) -> None:
    http = await small_pool_app(app_factory)
    api = await make_api(Scope.admin, client=http)
    hot, other = await record_death(api), await record_death(api)
    etag = (await api.get(f"/v1/deaths/{hot}")).headers["etag"]

    async with row_locked(database_url, hot):

        async def write(n: int) -> httpx.Response:
            return await api.patch(
                f"/v1/deaths/{hot}", json={"ward": f"Ward {n}"}, headers={"If-Match": etag}
            )

        async def read() -> httpx.Response:
            return await api.get(f"/v1/deaths/{other}")

        # Six writers on the hot row (three times the pool) and six unrelated reads at once.
        writes, reads = await asyncio.wait_for(
            asyncio.gather(
                asyncio.gather(*(write(n) for n in range(6))),
                asyncio.gather(*(read() for _ in range(6))),
            ),
            SCENARIO_BOUND_SECONDS,
        )

    assert [r.status_code for r in reads] == [200] * 6
    statuses = [r.status_code for r in writes]
    assert set(statuses) <= {409, 503}, statuses
    busy = [r for r in writes if r.status_code == 409]
    assert busy, statuses
    for response in writes:
        assert_clean_problem(response)
        assert response.headers["retry-after"].isdigit()
    assert busy[0].json()["type"].endswith("/record-busy")
    # Nothing was changed, and once the lock is gone the write goes through.
    death = (await api.get(f"/v1/deaths/{hot}")).json()
    assert death["ward"] == "Ward 7"
    done = await api.patch(f"/v1/deaths/{hot}", json={"ward": "Ward 9"}, headers={"If-Match": etag})
    assert done.status_code == 200, done.text


@pytest.mark.postgres_only
async def test_a_hot_row_cannot_take_the_pool_from_unrelated_reads(
    app_factory, make_api, database_url
) -> None:
    """The reviewer's scenario at the default lock timeout (2 s): many clients hammer one
    locked record while others read other deaths. Only ROW_LOCK_WAITERS of them wait for the
    lock at once (each holding a connection); the rest queue in the process without one (and
    are a 409 after ROW_QUEUE_SECONDS), so the small pool stays free for the reads."""
    http = await small_pool_app(app_factory, database_pool_size=4, database_lock_timeout_ms=2000)
    api = await make_api(Scope.admin, client=http)
    hot, other = await record_death(api), await record_death(api)
    etag = (await api.get(f"/v1/deaths/{hot}")).headers["etag"]

    async with row_locked(database_url, hot):

        async def write(n: int) -> httpx.Response:
            return await api.patch(
                f"/v1/deaths/{hot}", json={"ward": f"Ward {n}"}, headers={"If-Match": etag}
            )

        async def read() -> httpx.Response:
            return await api.get(f"/v1/deaths/{other}")

        writes, reads = await asyncio.wait_for(
            asyncio.gather(
                asyncio.gather(*(write(n) for n in range(20))),
                asyncio.gather(*(read() for _ in range(8))),
            ),
            SCENARIO_BOUND_SECONDS,
        )

    assert [r.status_code for r in reads] == [200] * 8
    assert {r.status_code for r in writes} == {409}
    for response in writes:
        assert_clean_problem(response)
        assert response.headers["retry-after"] == "1"


@pytest.mark.postgres_only
async def test_a_statement_over_its_timeout_is_503_with_retry_after(
    app_factory, make_api, database_url
) -> None:
    # No lock timeout here: the statement timeout is what ends the wait.
    http = await small_pool_app(
        app_factory, database_lock_timeout_ms=0, database_statement_timeout_ms=300
    )
    api = await make_api(Scope.admin, client=http)
    hot = await record_death(api)
    etag = (await api.get(f"/v1/deaths/{hot}")).headers["etag"]
    async with row_locked(database_url, hot):
        response = await asyncio.wait_for(
            api.patch(f"/v1/deaths/{hot}", json={"ward": "Ward 8"}, headers={"If-Match": etag}),
            SCENARIO_BOUND_SECONDS,
        )
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/service-unavailable")
    assert response.headers["retry-after"].isdigit()
    assert_clean_problem(response)


@pytest.mark.postgres_only
async def test_a_request_that_cannot_get_a_connection_is_a_quick_503(app_factory, make_api) -> None:
    app, http = await app_factory(
        database_pool_size=1, database_max_overflow=0, database_pool_timeout_seconds=0.5
    )
    api = await make_api(Scope.admin, client=http)
    # The pool's only connection is taken (as by a request stuck behind a lock).
    async with app.state.database.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        response = await asyncio.wait_for(api.get("/v1/deaths"), SCENARIO_BOUND_SECONDS)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert_clean_problem(response)


@pytest.mark.postgres_only
async def test_each_kind_of_work_has_its_own_timeouts(app_factory) -> None:
    from app.db import Work, doing

    app, _ = await app_factory(
        database_statement_timeout_ms=4_000,
        database_lock_timeout_ms=1_500,
        database_idle_in_transaction_timeout_ms=20_000,
        database_report_statement_timeout_ms=90_000,
        database_report_lock_timeout_ms=4_500,
        database_worker_statement_timeout_ms=45_000,
        database_worker_lock_timeout_ms=9_000,
    )
    database = app.state.database

    async def shown(work: Any = None) -> tuple[str, str, str]:
        async with database.transaction(work) as session:
            row = (
                await session.execute(
                    text(
                        "SELECT current_setting('statement_timeout'),"
                        " current_setting('lock_timeout'),"
                        " current_setting('idle_in_transaction_session_timeout')"
                    )
                )
            ).one()
        return (row[0], row[1], row[2])

    assert await shown() == ("4s", "1500ms", "20s")
    assert (await shown(Work.report))[:2] == ("90s", "4500ms")
    with doing(Work.worker):
        assert (await shown())[:2] == ("45s", "9s")
    # SET LOCAL: the connection goes back to the pool with the request defaults.
    assert await shown() == ("4s", "1500ms", "20s")
    async with database.snapshot(Work.report) as session:
        timeout = await session.scalar(text("SELECT current_setting('statement_timeout')"))
    assert timeout == "90s"
    # The reports' own transaction (REPEATABLE READ, then its timeouts).
    from app.reports.router import report_session

    async with report_session(database) as session:
        timeout = await session.scalar(text("SELECT current_setting('statement_timeout')"))
    assert timeout == "90s"
    # No JIT on any of the service's connections (app.db.CONNECTION_SETTINGS): compiling a plan
    # over a hundred monthly partitions cost seconds of a search that runs in milliseconds.
    for work in (None, Work.report, Work.worker):
        async with database.transaction(work) as session:
            assert await session.scalar(text("SELECT current_setting('jit')")) == "off"


class _FakeDriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("canceling statement due to lock timeout: SELECT * FROM deaths")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "status", "slug"),
    [
        ("55P03", 409, "record-busy"),  # lock_timeout
        ("57014", 503, "service-unavailable"),  # statement_timeout
        ("57P03", 503, "service-unavailable"),  # the database is starting up
        ("57P01", 503, "service-unavailable"),  # terminated by an administrator (shutdown)
        ("08006", 503, "service-unavailable"),  # connection failure
    ],
)
async def test_database_refusals_are_answered_not_500(
    app_factory, make_api, monkeypatch, sqlstate, status, slug
) -> None:
    _, http = await app_factory()
    api = await make_api(Scope.admin, client=http)

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise DBAPIError("SELECT * FROM deaths FOR UPDATE", {}, _FakeDriverError(sqlstate))

    monkeypatch.setattr(deaths_service, "list_deaths", refused)
    response = await api.get("/v1/deaths")
    assert response.status_code == status, response.text
    assert response.json()["type"].endswith(f"/{slug}")
    assert response.headers["retry-after"].isdigit()
    assert_clean_problem(response)
