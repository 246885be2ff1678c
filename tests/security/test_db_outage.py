"""Issue 11, defect 5: a database restart.

While PostgreSQL shuts down or starts, every request that needs it must get a 503 with
`Retry-After`, never a 500; and an idempotent POST that failed that way must not stay "in
flight" (409) after the database is back: the client's retry with the same key goes through.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.auth.scopes import Scope
from tests.factories import screening_body

PROBLEM_JSON = "application/problem+json"


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"].endswith("/service-unavailable")
    assert response.headers["retry-after"].isdigit()


def simulate_outage(database: Any) -> dict[str, bool]:
    """While ``down["now"]``, every transaction the app opens is refused as by a database that
    is going away. The credential check and the idempotency claim (autocommit sessions) are
    let through: they happened just before it went. Returns the switch."""
    real_transaction = database.transaction
    real_autocommit = database.autocommit
    down = {"now": False}
    inside = {"autocommit": False}

    @asynccontextmanager
    async def transaction(*args: Any, **kwargs: Any) -> AsyncIterator[AsyncSession]:
        if down["now"] and not inside["autocommit"]:
            raise ConnectionRefusedError(111, "Connect call failed")
        async with real_transaction(*args, **kwargs) as session:
            yield session

    @asynccontextmanager
    async def autocommit(*args: Any, **kwargs: Any) -> AsyncIterator[AsyncSession]:
        # On SQLite an autocommit session is an ordinary transaction (Database.autocommit).
        inside["autocommit"] = True
        try:
            async with real_autocommit(*args, **kwargs) as session:
                inside["autocommit"] = False
                yield session
        finally:
            inside["autocommit"] = False

    database.transaction = transaction
    database.autocommit = autocommit
    return down


async def test_an_idempotent_post_cut_off_by_the_outage_can_be_retried(
    app_factory, make_api
) -> None:
    app, http = await app_factory()
    api = await make_api(Scope.screenings_write, client=http)
    down = simulate_outage(app.state.database)
    body = screening_body()
    headers = {"Idempotency-Key": "outage-retry-1"}

    down["now"] = True
    cut_off = await api.post("/v1/screenings", json=body, headers=headers)
    assert_unavailable(cut_off)

    down["now"] = False  # the database is back
    retried = await api.post("/v1/screenings", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    again = await api.post("/v1/screenings", json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["death_id"] == retried.json()["death_id"]


async def test_the_pending_release_also_happens_in_the_background(app_factory, make_api) -> None:
    """Another worker process may get the retry: the failed process releases the claim on
    its own once the database answers again."""
    from app.idempotency import service as idempotency

    app, http = await app_factory()
    api = await make_api(Scope.screenings_write, client=http)
    database = app.state.database
    down = simulate_outage(database)
    down["now"] = True
    cut_off = await api.post(
        "/v1/screenings", json=screening_body(), headers={"Idempotency-Key": "outage-retry-2"}
    )
    assert_unavailable(cut_off)
    pending = idempotency._pending[database]
    assert len(pending.ids) == 1
    down["now"] = False
    assert pending.task is not None
    await asyncio.wait_for(pending.task, 30)
    assert pending.ids == set()


@pytest.mark.postgres_only
async def test_a_database_that_is_starting_up_is_503_not_500(
    app_factory, make_api, database_url
) -> None:
    import asyncpg

    app, http = await app_factory()
    api = await make_api(Scope.admin, client=http)

    async def starting_up() -> Any:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    database = app.state.database
    await database.engine.dispose()
    database.engine = create_async_engine(database_url, async_creator=starting_up)
    database.sessionmaker.configure(bind=database.engine)
    for method, path in (("GET", "/v1/deaths"), ("POST", "/v1/screenings")):
        response = await api.request(
            method,
            path,
            json=screening_body() if method == "POST" else None,
            headers={"Idempotency-Key": "starting-up"} if method == "POST" else {},
        )
        assert_unavailable(response)


@pytest.mark.postgres_only
async def test_a_database_that_refuses_connections_is_503(
    app_factory, make_api, database_url
) -> None:
    app, http = await app_factory()
    api = await make_api(Scope.admin, client=http)
    database = app.state.database
    await database.engine.dispose()
    closed = make_url(database_url).set(port=1)  # nothing listens there
    database.engine = create_async_engine(closed)
    database.sessionmaker.configure(bind=database.engine)
    assert_unavailable(await api.get("/v1/deaths"))
