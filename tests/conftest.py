"""Test fixtures: one database per run, built by the migrations; the real app over httpx.

The suite runs on SQLite by default. Set ``LFD_TEST_DATABASE_URL`` to a PostgreSQL URL
(``postgresql+asyncpg://...``) to run it there; the PostgreSQL-only tests (real concurrency)
then run too, and if that database cannot be reached the run fails: it never skips silently.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.scopes import PSEUDONYMISED_SCOPES, Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.migrate import grant_service_role, upgrade
from tests.webhook_receiver import Receiver, running_receiver

POSTGRES_URL = os.environ.get("LFD_TEST_DATABASE_URL", "")
ON_POSTGRES = POSTGRES_URL.startswith("postgresql")
SERVICE_ROLE = "lfd_test_service"


def owner_url(url: str) -> str:
    """The same database as the tables' owner (the run's own user): for a test that works
    beside the service on the database itself (locks it, makes databases), past the
    row-level security the service's role is held to."""
    if not url.startswith("postgresql"):
        return url
    owner = make_url(POSTGRES_URL).username
    return make_url(url).set(username=owner).render_as_string(hide_password=False)


# CI's PostgreSQL pass sets this: what does not depend on the database ran in its SQLite pass
# just before, the same code on the same input (.ci/run).
DATABASE_TESTS_ONLY = os.environ.get("LFD_TEST_DATABASE_TESTS_ONLY") == "1"


def _same_on_any_database(item: pytest.Item) -> bool:
    """A test that never opens the run's database, or a migration test's SQLite case."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("scratch_url") == "sqlite":
        return True
    return "database_url" not in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ON_POSTGRES:
        if DATABASE_TESTS_ONLY:
            ran = [item for item in items if _same_on_any_database(item)]
            items[:] = [item for item in items if not _same_on_any_database(item)]
            config.hook.pytest_deselected(items=ran)
        return
    skip = pytest.mark.skip(
        reason="PostgreSQL only: set LFD_TEST_DATABASE_URL=postgresql+asyncpg://... (CI does)"
    )
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def _worker_postgres_url(url: str, worker: str) -> str:
    """Under pytest-xdist each worker has a database of its own on the run's server, named
    after the run's database and the worker (``lfd_test_gw0``), made afresh for the run."""
    base = make_url(url)
    name = f"{base.database}_{worker}"

    async def remake() -> None:
        engine = create_async_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            await drop_scratch_postgres(engine, name)
            await create_scratch_postgres(engine, name)
        finally:
            await engine.dispose()

    asyncio.run(remake())
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The run's database, migrated to head: on PostgreSQL the one LFD_TEST_DATABASE_URL
    names, or, under pytest-xdist, one per worker made beside it (and dropped after the run);
    on SQLite a temporary file (per worker, as tmp_path_factory is)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if ON_POSTGRES:
        url = _worker_postgres_url(POSTGRES_URL, worker) if worker else POSTGRES_URL
    else:
        path: Path = tmp_path_factory.mktemp("db") / "lfd-test.db"
        url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    if ON_POSTGRES:
        # The service connects as a role that owns nothing and cannot bypass row-level
        # security, as a deployment should (docs/organisations.md): every PostgreSQL test runs
        # through the policies, and the owner's URL (the test's own) migrates.
        grant_service_role(url, SERVICE_ROLE)
        yield make_url(url).set(username=SERVICE_ROLE).render_as_string(hide_password=False)
    else:
        yield url
    if ON_POSTGRES and worker:
        name = make_url(url).database

        async def drop() -> None:
            engine = create_async_engine(
                make_url(POSTGRES_URL), poolclass=NullPool, isolation_level="AUTOCOMMIT"
            )
            try:
                await drop_scratch_postgres(engine, str(name))
            finally:
                await engine.dispose()

        asyncio.run(drop())


@pytest.fixture(scope="session")
def base_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        learning_sample_percent=0,
        mortality_alert_specialties=["Cardiology"],
        mortality_alert_diagnosis_groups=["Sepsis"],
        mm_specialties=["General Surgery", "Obstetrics"],
        log_json=True,
        # No background loop unless a test starts one (tests/test_overdue.py).
        run_worker_in_serve=False,
    )


@pytest.fixture(scope="session")
async def database(base_settings: Settings) -> AsyncIterator[Database]:
    database = Database(base_settings)
    yield database
    await database.dispose()


class Api:
    """An httpx client for the real app, authenticated as a client with the given scopes."""

    def __init__(self, http: httpx.AsyncClient, key: str, client_id: uuid.UUID) -> None:
        self.http = http
        self.key = key
        self.client_id = client_id
        self.headers = {"Authorization": f"Bearer {key}"}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)


MakeApp = Callable[..., Awaitable[tuple[Any, httpx.AsyncClient]]]


@pytest.fixture
async def app_factory(base_settings: Settings) -> AsyncIterator[MakeApp]:
    """Build the app with settings overridden for one test."""
    made: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(**overrides: Any) -> tuple[Any, httpx.AsyncClient]:
        settings = base_settings.model_copy(update=overrides) if overrides else base_settings
        app = create_app(settings)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        )
        made.append((app, http))
        return app, http

    yield make
    for app, http in made:
        await http.aclose()
        await app.state.database.dispose()


@pytest.fixture
async def app_and_http(app_factory: MakeApp) -> tuple[Any, httpx.AsyncClient]:
    return await app_factory()


@pytest.fixture
def http(app_and_http: tuple[Any, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_http[1]


async def new_client(
    database: Database,
    scopes: list[Scope],
    name: str = "test client",
    pseudonymised: bool = False,
    organisation_id: uuid.UUID | None = None,
    deployment_level: bool = False,
) -> tuple[str, uuid.UUID]:
    async with database.transaction() as session:
        created = await create_client(
            session,
            name,
            scopes,
            pseudonymised=pseudonymised,
            organisation_id=organisation_id,
            deployment_level=deployment_level,
        )
    return created.key, created.client.id


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
def make_api(database: Database, http: httpx.AsyncClient) -> MakeApi:
    async def make(
        *scopes: Scope,
        client: httpx.AsyncClient | None = None,
        pseudonymised: bool = False,
        organisation_id: uuid.UUID | None = None,
        deployment_level: bool = False,
    ) -> Api:
        """A client with these scopes (admin when none); `pseudonymised=True` makes it a
        commissioner's client that must never see patient identifiers (every scope such a
        client can hold when none are given). It belongs to `organisation_id` (the default
        organisation when not given), or to none with `deployment_level`."""
        default = sorted(PSEUDONYMISED_SCOPES) if pseudonymised else [Scope.admin]
        key, client_id = await new_client(
            database,
            list(scopes) or default,
            pseudonymised=pseudonymised,
            organisation_id=organisation_id,
            deployment_level=deployment_level,
        )
        return Api(client or http, key, client_id)

    return make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    """A client with every scope (admin)."""
    return await make_api(Scope.admin)


def run_sync(function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return asyncio.to_thread(function, *args)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver for webhook deliveries (tests/webhook_receiver.py), stopped after
    the test."""
    with running_receiver() as receiver:
        yield receiver


# --- scratch databases ------------------------------------------------------------------------


async def create_scratch_postgres(admin: AsyncEngine, name: str) -> None:
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')


async def drop_scratch_postgres(admin: AsyncEngine, name: str) -> None:
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres_only)])
async def scratch_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[str]:
    """A new, empty database of its own (for migration tests): a temporary SQLite file, or a
    database on the run's PostgreSQL server, dropped at the end whatever happens."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    url = make_url(owner_url(database_url))
    name = f"lfd_scratch_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        await create_scratch_postgres(admin, name)
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            await drop_scratch_postgres(admin, name)
    finally:
        await admin.dispose()
