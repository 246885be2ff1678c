"""The guard's cache of checked API keys and organisations' reach (app.auth.cache, issue 19):
served from a worker's memory, dropped by every worker at once when the database NOTIFYs a
change, never served while the LISTEN connection is down, and never older than its maximum
age."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.auth import cache as cache_module
from app.auth.cache import CREDENTIALS_CHANNEL, AuthCache
from app.auth.oauth.bearer import Resolved
from app.auth.scopes import Scope
from app.auth.service import revoke_client
from app.db import Database
from app.models import ApiClient
from tests.conftest import MakeApp, new_client, owner_url

ROUTE = "/v1/referrals?limit=1"
postgres_only = pytest.mark.postgres_only


async def _workers(app_factory: MakeApp, count: int) -> list[tuple[Any, httpx.AsyncClient]]:
    """``count`` apps on the same database: as many worker processes (each its own pool,
    cache and LISTEN connection)."""
    workers = [await app_factory() for _ in range(count)]
    for app, _ in workers:
        assert await app.state.database.listener.wait_live(10)
    return workers


async def _status(http: httpx.AsyncClient, key: str) -> int:
    response = await http.get(ROUTE, headers={"Authorization": f"Bearer {key}"})
    return response.status_code


@postgres_only
async def test_a_revoked_key_is_refused_by_every_worker_within_a_second(
    app_factory: MakeApp, database: Database
) -> None:
    workers = await _workers(app_factory, 3)
    key, client_id = await new_client(database, [Scope.referrals_read])
    for _, http in workers:
        assert await _status(http, key) == 200
        assert await _status(http, key) == 200  # the second from the worker's memory
    for app, _ in workers:
        assert app.state.auth_cache.holds(key)
    async with database.transaction() as session:  # as `lfd clients revoke` does
        await revoke_client(session, client_id)
    revoked_at = time.monotonic()
    pending = list(workers)
    while pending and time.monotonic() - revoked_at < 1.0:
        pending = [(app, http) for app, http in pending if await _status(http, key) != 401]
        if pending:
            await asyncio.sleep(0.02)
    assert not pending, f"{len(pending)} of 3 workers still accepted the key after a second"


@postgres_only
async def test_a_cached_key_costs_no_statement(app_factory: MakeApp, database: Database) -> None:
    [(app, http)] = await _workers(app_factory, 1)
    key, _ = await new_client(database, [Scope.referrals_read])
    assert await _status(http, key) == 200
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await _status(http, key) == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements, "the request itself ran no statement: the check below means nothing"
    assert not [s for s in statements if "api_clients" in s or "FROM organisations" in s]


@postgres_only
async def test_nothing_is_served_from_memory_while_the_listen_connection_is_down(
    app_factory: MakeApp, database: Database, database_url: str
) -> None:
    [(app, http)] = await _workers(app_factory, 1)
    listener = app.state.database.listener
    key, client_id = await new_client(database, [Scope.referrals_read])
    assert await _status(http, key) == 200
    assert app.state.auth_cache.holds(key)
    pid = listener._connection.get_server_pid()
    owner = create_async_engine(owner_url(database_url), poolclass=NullPool)
    try:
        async with owner.begin() as connection:
            # The listener's connection dies; the revocation's NOTIFY finds no one listening.
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await connection.execute(
                text("UPDATE api_clients SET revoked_at = now() WHERE id = :id"),
                {"id": client_id},
            )
    finally:
        await owner.dispose()
    deadline = time.monotonic() + 10
    while listener.live and listener._connection.get_server_pid() == pid:
        assert time.monotonic() < deadline, "the lost connection was never noticed"
        await asyncio.sleep(0.01)
    assert not app.state.auth_cache.holds(key)
    assert await _status(http, key) == 401


# --- the cache's own rules, without a database ------------------------------------------------


@dataclass
class FakeListener:
    live: bool = True
    epoch: int = 0
    subscribers: dict[str, Any] = field(default_factory=dict)

    def subscribe(self, channel: str, on_notify: Any, on_lost: Any) -> None:
        self.subscribers[channel] = (on_notify, on_lost)

    def ensure(self) -> None:
        pass

    def notify(self, channel: str, payload: str) -> None:
        self.epoch += 1
        self.subscribers[channel][0](payload)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The credentials the cache looked up in the database (resolve_credential, faked)."""
    made: list[str] = []
    client = ApiClient(id=uuid.uuid4(), name="c", key_prefix="abcdefabcdef", scopes=[])

    async def resolve(_request: Any, _database: Any, credential: str) -> Resolved:
        made.append(credential)
        return Resolved(client, frozenset(), "api_key")

    monkeypatch.setattr(cache_module, "resolve_credential", resolve)
    return made


KEY = "lfd_abcdefabcdef_secret"


def _cache(listener: FakeListener, clock: Clock, seconds: float = 10) -> AuthCache:
    database = SimpleNamespace(listener=listener, session_class=type("S", (Session,), {}))
    return AuthCache(database, seconds, clock)  # type: ignore[arg-type]


async def test_an_entry_lives_no_longer_than_the_maximum_age(lookups: list[str]) -> None:
    clock = Clock()
    cache = _cache(FakeListener(), clock)
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert len(lookups) == 1
    clock.now += 9.9
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert len(lookups) == 1
    clock.now += 0.2
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert len(lookups) == 2


async def test_a_notification_drops_the_clients_keys(lookups: list[str]) -> None:
    listener = FakeListener()
    cache = _cache(listener, Clock())
    resolved = await cache.credential(None, KEY)  # type: ignore[arg-type]
    listener.notify(CREDENTIALS_CHANNEL, str(uuid.uuid4()))  # another client: kept
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert len(lookups) == 1
    listener.notify(CREDENTIALS_CHANNEL, str(resolved.client.id))
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert len(lookups) == 2


async def test_a_lookup_overtaken_by_a_notification_is_not_stored(
    lookups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = FakeListener()
    cache = _cache(listener, Clock())
    real = cache_module.resolve_credential

    async def racing(request: Any, database: Any, credential: str) -> Resolved:
        resolved = await real(request, database, credential)
        listener.notify(CREDENTIALS_CHANNEL, str(resolved.client.id))  # revoked meanwhile
        return resolved

    monkeypatch.setattr(cache_module, "resolve_credential", racing)
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert not cache.holds(KEY)


async def test_nothing_is_cached_while_not_listening(lookups: list[str]) -> None:
    cache = _cache(FakeListener(live=False), Clock())
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert len(lookups) == 2
    assert not cache.holds(KEY)


async def test_zero_seconds_turns_the_cache_off(lookups: list[str]) -> None:
    cache = _cache(FakeListener(), Clock(), seconds=0)
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    await cache.credential(None, KEY)  # type: ignore[arg-type]
    assert len(lookups) == 2
