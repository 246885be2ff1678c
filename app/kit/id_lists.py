"""SQL about a list-of-ids column (app.models.base.UuidList: uuid[] on PostgreSQL, a JSON array
of hex on SQLite), said once and rendered in each dialect's words.

- ``list_names(ids, value)``: the list holds ``value``. PostgreSQL: ``ids @> ARRAY[value]``,
  which a GIN index on the column answers; SQLite: an EXISTS over ``json_each``.
- ``id_in_list(column, ids)``: ``column`` (a key) is one of the list's ids. PostgreSQL:
  ``column = ANY (ids)``, which probes a primary key once per element; SQLite: ``column IN
  (SELECT value FROM json_each(ids))``.

Both are FunctionElements, so statements that use them are cached like any other.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Boolean, Uuid, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class list_names(FunctionElement[bool]):
    type = Boolean()
    inherit_cache = True
    name = "list_names"


class id_in_list(FunctionElement[bool]):
    type = Boolean()
    inherit_cache = True
    name = "id_in_list"


def names(ids: Any, value: uuid.UUID) -> list_names:
    """``ids`` holds ``value`` (a condition; GIN-indexed on PostgreSQL)."""
    return list_names(ids, literal(value, Uuid()))


def _parts(element: FunctionElement[bool], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(list_names, "postgresql")
def _names_postgresql(element: list_names, compiler: SQLCompiler, **kw: Any) -> str:
    ids, value = _parts(element, compiler, **kw)
    return f"({ids} @> ARRAY[{value}]::uuid[])"


@compiles(list_names)
def _names_sqlite(element: list_names, compiler: SQLCompiler, **kw: Any) -> str:
    ids, value = _parts(element, compiler, **kw)
    # Compiled SQL of the statement's own clauses (bound parameters), never a value.
    return f"EXISTS (SELECT 1 FROM json_each({ids}) AS listed WHERE listed.value = {value})"  # noqa: S608


@compiles(id_in_list, "postgresql")
def _in_postgresql(element: id_in_list, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = _parts(element, compiler, **kw)
    return f"({column} = ANY ({ids}))"


@compiles(id_in_list)
def _in_sqlite(element: id_in_list, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = _parts(element, compiler, **kw)
    return f"({column} IN (SELECT listed.value FROM json_each({ids}) AS listed))"  # noqa: S608
