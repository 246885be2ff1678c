"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Counter


def insert_for(session: AsyncSession, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def next_value(session: AsyncSession, name: str) -> int:
    """The next number of a named sequence: a real sequence on PostgreSQL (no row lock held to
    commit), a counter row on SQLite (which serialises writers anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        value = await session.scalar(text(f"SELECT nextval('{name}_seq')"))
    else:
        value = await session.scalar(
            update(Counter)
            .where(Counter.name == name)
            .values(value=Counter.value + 1)
            .returning(Counter.value)
        )
    if value is None:
        raise RuntimeError(f"sequence {name} is missing; run the migrations")
    return int(value)
