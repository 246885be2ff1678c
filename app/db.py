"""Engine, session factory and the one way a request opens a transaction.

Services flush and never commit. A router opens one transaction with ``Database.transaction()``
and the change, its outbox event and its audit row commit together or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings


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
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_recycle=1800,
    )


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose statements each commit on their own, for a lone lookup or a lone
        atomic write (the credential check, the idempotency claim): on PostgreSQL this saves
        the BEGIN and COMMIT round trips. SQLite gets an ordinary transaction."""
        if self.dialect != "postgresql":
            async with self.transaction() as session:
                yield session
            return
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(bind=autocommit, expire_on_commit=False) as session:
                yield session

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction whose statements all see one snapshot (REPEATABLE READ on
        PostgreSQL), for reads that must agree with each other, such as the change feed's
        horizon and its page. SQLite transactions see one snapshot anyway."""
        if self.dialect != "postgresql":
            async with self.transaction() as session:
                yield session
            return
        async with self.engine.connect() as connection:
            repeatable = await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with (
                AsyncSession(bind=repeatable, expire_on_commit=False) as session,
                session.begin(),
            ):
                yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]
