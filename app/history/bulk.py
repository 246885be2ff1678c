"""PostgreSQL's bulk path for a batch of history rows: binary COPY through the session's own
asyncpg connection, in its transaction, in as few round trips as the rules allow.

PostgreSQL refuses COPY FROM into a table whose row-level security applies to the role, and
the service's own role is under it (app.scoping, docs/organisations.md). There the rows go by
COPY into temporary tables of the same shape (made once per connection, emptied at commit),
then into the tables by INSERT ... SELECT, which the policies check row by row (WITH CHECK)
like any other insert: the deaths first and alone (ON CONFLICT on the sender's key, RETURNING
the ids that went in), then every other table's rows in one round trip of statements. A role
the policies do not apply to (the owner, a superuser) COPYs straight into the tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Table, text
from sqlalchemy.ext.asyncio import AsyncSession

Row = dict[str, Any]


@cache
def _shape(table: Table) -> tuple[tuple[str, ...], frozenset[str]]:
    return (
        tuple(column.key for column in table.columns),
        frozenset(c.key for c in table.columns if isinstance(c.type, JSON)),
    )


@cache
def _getter(names: tuple[str, ...]) -> Callable[[Row], tuple[Any, ...]]:
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    return itemgetter(*names)


def records(table: Table, rows: list[Row]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows as COPY records, and their columns' order: every column of the table, those
    the rows do not name (a nullable column added later) as NULL, as a Core INSERT leaves
    them. JSON as the text the connection's codec takes (SQLAlchemy's asyncpg dialect sends
    JSON pre-serialised), serialised here unless the planner did it already. The rows of one
    planner share their keys; a row that lacks one of the first row's is read column by
    column instead."""
    columns, json = _shape(table)
    first = rows[0]
    present = tuple(name for name in columns if name in first)
    missing = tuple(name for name in columns if name not in first)
    for name in json:
        if name not in first:
            continue
        for row in rows:
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                row[name] = orjson.dumps(value).decode()
    nones = (None,) * len(missing)
    get = _getter(present)
    try:
        built = [get(row) + nones for row in rows] if missing else list(map(get, rows))
    except KeyError:
        built = [tuple(row.get(name) for name in present) + nones for row in rows]
    return [*present, *missing], built


_ROW_SECURITY: dict[str, bool] = {}


async def under_row_security(session: AsyncSession) -> bool:
    """Whether row-level security applies to the role the session connects as (not a
    superuser, no BYPASSRLS): asked once per database URL."""
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    known = _ROW_SECURITY.get(key)
    if known is None:
        bypass = await session.scalar(
            text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        )
        known = _ROW_SECURITY[key] = not bypass
    return known


def _stage(table: Table) -> str:
    return f"lfd_stage_{table.name}"


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


async def _raw(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    return raw


async def copy_new(
    session: AsyncSession, table: Table, rows: list[Row], key: tuple[str, ...]
) -> set[str]:
    """Rows of a table with a unique ``key`` (the deaths): a row that would break the key is
    left out (ON CONFLICT DO NOTHING; a key a row out of the role's sight holds is found so,
    never by a query). The ids (as text) of the rows that went in."""
    if not rows:
        return set()
    raw = await _raw(session)
    columns, built = records(table, rows)
    stage = _stage(table)
    await raw.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE "{table.name}") ON COMMIT DELETE ROWS'
    )
    await raw.copy_records_to_table(stage, records=built, columns=columns)
    names = _names(columns)
    went_in = await raw.fetch(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{stage}"'  # noqa: S608
        f" ON CONFLICT ({_names(key)}) DO NOTHING RETURNING id"
    )
    await raw.execute(f'TRUNCATE "{stage}"')
    return {str(row["id"]) for row in went_in}


async def copy_tables(session: AsyncSession, tables: list[tuple[Table, list[Row]]]) -> None:
    """Every table's rows, parents first: by COPY into each table when the role is not under
    row-level security; otherwise by COPY into each table's stage, then one round trip of
    INSERT ... SELECT statements (in the order given) that also empties the stages."""
    tables = [(table, rows) for table, rows in tables if rows]
    if not tables:
        return
    raw = await _raw(session)
    if not await under_row_security(session):
        for table, rows in tables:
            columns, built = records(table, rows)
            await raw.copy_records_to_table(table.name, records=built, columns=columns)
        return
    await raw.execute(
        "".join(
            f'CREATE TEMP TABLE IF NOT EXISTS "{_stage(table)}" (LIKE "{table.name}")'
            " ON COMMIT DELETE ROWS;"
            for table, _ in tables
        )
    )
    moves = []
    for table, rows in tables:
        columns, built = records(table, rows)
        await raw.copy_records_to_table(_stage(table), records=built, columns=columns)
        names = _names(columns)
        moves.append(
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{_stage(table)}";'  # noqa: S608
        )
    stages = ", ".join(f'"{_stage(table)}"' for table, _ in tables)
    await raw.execute("".join(moves) + f"TRUNCATE {stages};")
