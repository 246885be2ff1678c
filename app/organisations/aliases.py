"""The registry as an alias table for organisations written as names (action plans, whether
imported or sent to the API: app.actions.organisations): each organisation with an ODS code is
found by its code, its name and each of its aliases ("UHL" -> RWE, University Hospitals of
Leicester NHS Trust)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, cast, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.kit.ods import CODE_MARK, alias_key, is_ods_code, is_plainly_code
from app.models import Organisation
from app.scoping import UNSCOPED


async def registry_aliases(database: Database) -> dict[str, tuple[str, str]]:
    """Name, alias or code -> (ODS code, name), for every organisation of the registry that
    has an ODS code and is not closed."""
    async with database.transaction() as session:
        return await registry_aliases_in(session)


async def registry_aliases_in(
    session: AsyncSession, written: Iterable[str] | None = None
) -> dict[str, tuple[str, str]]:
    """As ``registry_aliases``, in the caller's transaction. ``written``: only the
    organisations these texts could name are read (a request's few names, not the whole
    registry): by code, or by a word of the name or an alias, then compared as aliases are."""
    query = (
        select(Organisation.ods_code, Organisation.name, Organisation.aliases)
        .where(Organisation.ods_code.is_not(None), Organisation.closed_at.is_(None))
        .order_by(Organisation.ods_code)
    )
    if written is not None:
        query = query.where(or_(false(), *(_could_name(text) for text in written)))
    rows = (await session.execute(query, execution_options={UNSCOPED: True})).all()
    return alias_rows((code, name, aliases) for code, name, aliases in rows if code is not None)


def alias_rows(
    rows: Iterable[tuple[str, str, Sequence[str] | None]],
) -> dict[str, tuple[str, str]]:
    """Alias key -> (ODS code, name) of the registry's rows (code, name, aliases): each row's
    code, name and aliases. A key two organisations share ("The Surgery", a name many
    practices have) names neither: it is left out, so that it stays a name as written (send
    the code)."""
    table: dict[str, tuple[str, str]] = {}
    shared: set[str] = set()
    for code, name, aliases in rows:
        for text in (code, name, *(aliases or [])):
            key = alias_key(text)
            held = table.setdefault(key, (code.upper(), name))
            if held[0] != code.upper():
                shared.add(key)
    for key in shared:
        del table[key]
    return table


def _could_name(text: str) -> ColumnElement[bool]:
    """Whether a row could be the organisation ``text`` names: a superset of the rows whose
    code, name or alias has its alias key (each word of a key is a run of letters and digits
    of the lower-cased text, "&" aside, so the longest one is in the text)."""
    codes = {text.strip().upper(), alias_key(text).upper()}  # "RR8.", "(RWE)": by alias key
    marked = CODE_MARK.match(text)
    if marked is not None:
        codes.add(text[marked.end() :].strip().upper())
    by_code: ColumnElement[bool] = Organisation.ods_code.in_(codes)  # held upper case
    if is_plainly_code(text) or (marked is not None and is_ods_code(text[marked.end() :])):
        return by_code  # a code whatever the table says (app.actions.organisations.Aliases)
    key = alias_key(text).split()
    words = [word for word in key if word not in {"and", "ods"}] or key
    if not words:
        return by_code
    pattern = _like(max(words, key=len))
    found: list[Any] = [
        by_code,
        func.lower(Organisation.name).like(pattern, escape="\\"),
        func.lower(cast(Organisation.aliases, String)).like(pattern, escape="\\"),
    ]
    return or_(*found)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
