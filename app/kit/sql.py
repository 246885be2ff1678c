"""Small SQL helpers that differ by dialect.

The foundation: these take the ORM classes (or tables) they work on as arguments and import
none, so that app.kit stays below app.models (the models use kit's enumerations).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Row, Table, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


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
