"""Engine, session factory and the one way a request opens a transaction.

Services flush and never commit. A router opens one transaction with ``Database.transaction()``
and the change, its outbox event and its audit row commit together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeGuard

import asyncpg  # type: ignore[import-untyped]
from fastapi import Depends, Request
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from app.config import Settings
from app.kit.listen import Listener
from app.scoping import SET_SCOPE_SQL, current_scope, install, scope_settings


class Work(StrEnum):
    """What a transaction is for, which sets its PostgreSQL timeouts (docs/security.md)."""

    request = "request"  # the connection's defaults: short, a request must not wait long
    report = "report"  # reports, exports and imports: long statements, still bounded
    worker = "worker"  # the background loop (app.worker)


@dataclass(frozen=True)
class Timeouts:
    statement_ms: int
    lock_ms: int
    idle_in_transaction_ms: int

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": str(self.statement_ms),
            "lock_timeout": str(self.lock_ms),
            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_ms),
        }


# Every connection's own settings besides the timeouts. No JIT: the service's statements are
# short, and compiling one that spans the monthly partitions of audit_events or outbox_events
# (a plan of a hundred and more partitions whose estimated cost passes jit_above_cost) took
# 8 s of a "who read patient X" search that runs in 0.1 s without it (docs/benchmarks.md,
# national scale). A report gains little from it either.
CONNECTION_SETTINGS = {"jit": "off"}


def timeouts_for(settings: Settings, work: Work) -> Timeouts:
    if work is Work.report:
        return Timeouts(
            settings.database_report_statement_timeout_ms,
            settings.database_report_lock_timeout_ms,
            settings.database_report_idle_in_transaction_timeout_ms,
        )
    if work is Work.worker:
        return Timeouts(
            settings.database_worker_statement_timeout_ms,
            settings.database_worker_lock_timeout_ms,
            settings.database_worker_idle_in_transaction_timeout_ms,
        )
    return Timeouts(
        settings.database_statement_timeout_ms,
        settings.database_lock_timeout_ms,
        settings.database_idle_in_transaction_timeout_ms,
    )


# The kind of work the current task does when a transaction does not say (the background loop
# sets it for its own task: app.worker).
_current_work: ContextVar[Work] = ContextVar("lfd_db_work", default=Work.request)


@contextmanager
def doing(work: Work) -> Iterator[None]:
    """Transactions opened in this block (by this task) without a `work=` get ``work``'s
    timeouts."""
    token = _current_work.set(work)
    try:
        yield
    finally:
        _current_work.reset(token)


_TIMEOUTS_SQL = (
    "set_config('statement_timeout', :statement, true),"
    " set_config('lock_timeout', :lock, true),"
    " set_config('idle_in_transaction_session_timeout', :idle, true)"
)
_SET_SCOPE = text(SET_SCOPE_SQL)
# Session.info keys: the transaction's kind of work, and a session whose statements each
# commit on their own (no transaction to set anything in).
_WORK, _AUTOCOMMIT = "lfd_work", "lfd_autocommit"
_SET_SCOPE_AND_TIMEOUTS = text(f"{SET_SCOPE_SQL}, {_TIMEOUTS_SQL}")


_PARAMETER = re.compile(r":(\w+)")


def _inline(statement: str, values: dict[str, str]) -> str:
    """``statement`` with its named parameters as SQL string literals."""
    return _PARAMETER.sub(lambda m: "'" + values[m.group(1)].replace("'", "''") + "'", statement)


class ScopedConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that sends a transaction's settings with its BEGIN, in one round
    trip (a simple-protocol query of two statements), instead of a statement of their own
    after it: every transaction of a request saves a round trip (issue 19)."""

    lfd_after_begin: str | None = None

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        after = self.lfd_after_begin
        if after is not None and not args and query.startswith("BEGIN"):
            self.lfd_after_begin = None
            query = f"{query} {after};"
        result: str = await super().execute(query, *args, timeout=timeout)
        return result


def _scoped(driver: Any) -> TypeGuard[ScopedConnection]:
    """Whether ``driver`` is a ScopedConnection. Not isinstance: asyncpg's metaclass answers
    isinstance(c, Connection-subclass) True for every asyncpg connection (a replica's too)."""
    return issubclass(type(driver), ScopedConnection)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """SQLite: WAL, foreign keys, a busy timeout, and write transactions that take the lock up
    front (BEGIN IMMEDIATE), so that two requests never deadlock upgrading a read lock."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, pool_pre_ping=False)
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it would cost a round trip on every checkout. A connection that died with the
    # server fails its request with a 503 (app.errors) and is discarded by the pool.
    # The request timeouts are the connection's own defaults (sent once, when it connects):
    # a request's transaction costs no extra round trip for them. A request waits at most
    # database_pool_timeout_seconds for a connection, then gets its 503 (app.errors).
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "server_settings": {
                **timeouts_for(settings, Work.request).server_settings(),
                **CONNECTION_SETTINGS,
            },
            "connection_class": ScopedConnection,
        },
    )

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        # Settings meant for a transaction that never ran a statement never reach another.
        driver = getattr(dbapi_connection, "driver_connection", None)
        if _scoped(driver):
            driver.lfd_after_begin = None

    return engine


def create_read_engine(settings: Settings) -> AsyncEngine | None:
    """The read replica's engine (app.replica, docs/replica.md), or None when there is none:
    the primary's pool sizes and request timeouts, and a short connect timeout, so that an
    unreachable replica costs a read a moment before it falls back to the primary, not the
    driver's minute."""
    if settings.read_database_url is None:
        return None
    return create_async_engine(
        settings.read_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "server_settings": {
                **timeouts_for(settings, Work.request).server_settings(),
                **CONNECTION_SETTINGS,
            },
            "timeout": settings.read_replica_connect_timeout_seconds,
        },
    )


class Database:
    def __init__(self, settings: Settings) -> None:
        install()  # the organisation scope's criteria on every ORM statement (app.scoping)
        self.settings = settings
        self.engine = create_engine(settings)
        # A hot standby for the reads that may lag (app.replica decides which go there).
        self.read_engine = create_read_engine(settings)
        # This database's sessions set each transaction's settings on PostgreSQL (_on_begin).
        self.session_class: type[Session] = type("DatabaseSession", (Session,), {})
        if self.dialect == "postgresql":
            event.listen(self.session_class, "after_begin", self._on_begin)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self.session_class
        )
        # PostgreSQL: a LISTEN connection of its own, for the caches every process must drop
        # at once (app.auth.cache); started by the first request that needs it.
        self.listener: Listener | None = None
        if self.dialect == "postgresql":
            self.listener = Listener(
                self._listen_connection, self.engine.url.render_as_string(hide_password=True)
            )

    async def _listen_connection(self) -> Any:
        url = self.engine.url.set(drivername="postgresql")
        return await asyncpg.connect(url.render_as_string(hide_password=False))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, work: Work | None = None) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back if it raises. ``work``
        (else the task's, see doing()) chooses its timeouts on PostgreSQL."""
        async with self.sessionmaker() as session, session.begin():
            if work is not None:
                session.info[_WORK] = work
            yield session

    def _settings_for(self, work: Work | None) -> tuple[Any, dict[str, str]]:
        """The statement that sets a transaction's settings on PostgreSQL (SET LOCAL: they end
        with it), and its values: the data scope the row-level security policies read
        (app.scoping), and, for anything but a request, its own timeouts."""
        work = work or _current_work.get()
        values = scope_settings(current_scope())
        if work is Work.request:
            return _SET_SCOPE, values
        timeouts = timeouts_for(self.settings, work)
        return _SET_SCOPE_AND_TIMEOUTS, {
            **values,
            "statement": str(timeouts.statement_ms),
            "lock": str(timeouts.lock_ms),
            "idle": str(timeouts.idle_in_transaction_ms),
        }

    def _on_begin(self, session: Session, _transaction: Any, connection: Connection) -> None:
        """A transaction's settings, sent on its connection just before its first statement
        (the moment SQLAlchemy takes a connection for it): a transaction that waits in the
        process before its first statement (app.kit.sql's hot-row gate) holds no connection,
        and one that runs none costs no round trip."""
        if connection.dialect.name != "postgresql" or session.info.get(_AUTOCOMMIT):
            return
        statement, values = self._settings_for(session.info.get(_WORK))
        driver = connection.connection.driver_connection
        if _scoped(driver) and not connection.in_nested_transaction():
            # Sent with the BEGIN that the first statement makes (ScopedConnection).
            driver.lfd_after_begin = _inline(statement.text, values)
            return
        connection.execute(statement, values)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose statements each commit on their own, for a lone lookup or a lone
        atomic write (the credential check, the idempotency claim): on PostgreSQL this saves
        the BEGIN and COMMIT round trips. SQLite gets an ordinary transaction. No data scope is
        set (a plain Session: no transaction to set it in): on PostgreSQL the row-level
        security policies show such a session no patient data (only the clients, secrets,
        organisations and idempotency records it is for)."""
        if self.dialect != "postgresql":
            async with self.transaction() as session:
                yield session
            return
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(
                bind=autocommit, expire_on_commit=False, info={_AUTOCOMMIT: True}
            ) as session:
                yield session

    @asynccontextmanager
    async def snapshot(
        self, work: Work | None = None, *, replica: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A read-only transaction whose statements all see one snapshot (REPEATABLE READ on
        PostgreSQL), for reads that must agree with each other, such as the change feed's
        horizon and its page. SQLite transactions see one snapshot anyway. ``replica``: on
        the read replica (read_engine), with the same per-transaction data scope and timeouts
        (_on_begin), so that row-level security holds there as on the primary."""
        if self.dialect != "postgresql":
            async with self.transaction(work) as session:
                yield session
            return
        engine = self.engine
        if replica:
            if self.read_engine is None:
                raise RuntimeError("no read replica is configured (LFD_READ_DATABASE_URL)")
            engine = self.read_engine
        async with engine.connect() as connection:
            repeatable = await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with (
                AsyncSession(
                    bind=repeatable,
                    expire_on_commit=False,
                    sync_session_class=self.session_class,
                    info={_WORK: work} if work else {},
                ) as session,
                session.begin(),
            ):
                yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.listener is not None:
            await self.listener.close()
        await self.engine.dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()


async def get_database(request: Request) -> Database:
    # async: FastAPI runs a plain function dependency in a worker thread (a thread hop per
    # request for a dictionary lookup).
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]
