"""Small SQL helpers that differ by dialect.

The foundation: these take the ORM classes (or tables) they work on as arguments and import
none, so that app.kit stays below app.models (the models use kit's enumerations).
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from app.errors import NotFound, RecordBusy


def insert_for(session: AsyncSession, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def table_of(model: type[DeclarativeBase]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def row_of(instance: DeclarativeBase) -> dict[str, Any]:
    """A transient ORM object's column values, as an INSERT's parameters."""
    return {
        column.key: getattr(instance, column.key) for column in table_of(type(instance)).columns
    }


@cache
def _insert(table: Table) -> Any:
    return insert(table)


async def insert_rows(
    session: AsyncSession, model: type[DeclarativeBase], rows: list[dict[str, Any]]
) -> None:
    """A plain Core INSERT of one or many rows (one statement, no RETURNING, no ORM unit of
    work): for the intake's hot path, where every value is known before it is written."""
    if rows:
        await session.execute(_insert(table_of(model)), rows)


@cache
def _insert_unless_exists(
    dialect: str, table: Table, conflict: tuple[str, ...], returning: tuple[str, ...]
) -> Any:
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        make(table)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(*(table.c[name] for name in returning))
    )


async def insert_unless_exists(
    session: AsyncSession,
    model: type[DeclarativeBase],
    conflict: tuple[str, ...],
    row: dict[str, Any],
    returning: tuple[str, ...] = ("id",),
) -> Row[Any] | None:
    """INSERT ... ON CONFLICT DO NOTHING on ``conflict``: the ``returning`` columns if the row
    went in, None if it was already there. The statement is built once per table (Core, no
    ORM unit of work): this is on the intake's hot path."""
    dialect = session.get_bind().dialect.name
    statement = _insert_unless_exists(dialect, table_of(model), conflict, returning)
    return (await session.execute(statement, row)).first()


async def next_counter(session: AsyncSession, counters: Table, name: str) -> int:
    """The next number of a named counter row of ``counters`` (a table with ``name`` and
    ``value`` columns: app.models.Counter's), for SQLite, which has no sequences (it serialises
    writers, so the row lock costs nothing). PostgreSQL uses real sequences."""
    value = await session.scalar(
        update(counters)
        .where(counters.c.name == name)
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    if value is None:
        raise RuntimeError(f"counter {name} is missing; run the migrations")
    return int(value)


Model = TypeVar("Model", bound=DeclarativeBase)

# How many requests of one process may wait at once for the lock of one row (a hot record),
# each holding a database connection while it waits; the others queue for their turn in the
# process, holding no connection, for at most ROW_QUEUE_SECONDS, and are then a 409
# record-busy. So clients hammering one locked row cannot take the
# pool from everyone else, while honest concurrent writes to one record still take turns
# (docs/security.md).
ROW_LOCK_WAITERS = 2
ROW_QUEUE_SECONDS = 10.0


class _Gate:
    def __init__(self) -> None:
        self.turns = asyncio.Semaphore(ROW_LOCK_WAITERS)
        self.users = 0


_gates: dict[tuple[str, Any], _Gate] = {}


async def load_one(
    session: AsyncSession,
    model: type[Model],
    row_id: Any,
    what: str,
    *,
    for_update: bool = False,
    where: tuple[ColumnElement[bool], ...] = (),
    detail: str | None = None,
) -> Model:
    """The row of ``model`` with this id (and the extra ``where`` conditions, such as "the
    caller's own"), locked FOR UPDATE if asked; a 404 ``detail`` (by default "No <what> with
    that id.") when there is none. Every "load by id, optionally locked, else 404" of the
    services is this. A lock is waited for by at most ``ROW_LOCK_WAITERS`` requests of this
    process at once; the others take their turn in the process (holding no connection) for at
    most ``ROW_QUEUE_SECONDS``, then are a 409 record-busy."""
    query = select(model).where(model.id == row_id, *where)  # type: ignore[attr-defined]
    if not for_update:
        found = await session.scalar(query)
    else:
        key = (model.__tablename__, row_id)
        gate = _gates.get(key) or _gates.setdefault(key, _Gate())
        gate.users += 1
        try:
            try:
                await asyncio.wait_for(gate.turns.acquire(), ROW_QUEUE_SECONDS)
            except TimeoutError:
                raise RecordBusy(
                    "Other requests are already waiting for this record; retry shortly.",
                    headers={"Retry-After": "1"},
                ) from None
            try:
                found = await session.scalar(query.with_for_update())
            finally:
                gate.turns.release()
        finally:
            gate.users -= 1
            if not gate.users:
                _gates.pop(key, None)
    if found is None:
        raise NotFound(detail or f"No {what} with that id.")
    return found
