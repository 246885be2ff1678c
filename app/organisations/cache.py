"""Organisations' rows as the hot paths read them (the short reference a death shows, the
settings its referral rules use), kept in the process between requests (issue 19).

The registry changes rarely and every change NOTIFYs ``lfd_scopes`` (migration 0026's
trigger on ``organisations``): each process drops the whole cache on that notification and on
any loss of its LISTEN connection (app.kit.listen), serves from it only while a listener of
the database is live in the process, never stores a row read while a notification came in,
and keeps a row at most ``MAX_AGE_SECONDS`` in any case. SQLite (no LISTEN) reads every time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit import listen
from app.models import Organisation

SCOPES_CHANNEL = "lfd_scopes"
MAX_AGE_SECONDS = 10.0


@dataclass(frozen=True)
class CachedOrganisation:
    id: uuid.UUID
    ods_code: str | None
    name: str
    kind: str
    settings: dict[str, Any] | None
    until: float


_rows: dict[tuple[str, uuid.UUID], CachedOrganisation] = {}


def _forget(key: str) -> None:
    for cached in [k for k in _rows if k[0] == key]:
        _rows.pop(cached, None)


listen.watch(SCOPES_CHANNEL, _forget)


def _key(session: AsyncSession) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)


async def organisations(
    session: AsyncSession, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, CachedOrganisation]:
    """The rows of these organisations (those that exist), from the cache where it may
    serve, the rest in one query."""
    wanted = {value for value in ids if value is not None}
    if not wanted:
        return {}
    key = _key(session)
    serving = listen.is_live(key)
    now = time.monotonic()
    found: dict[uuid.UUID, CachedOrganisation] = {}
    if serving:
        for organisation_id in wanted:
            hit = _rows.get((key, organisation_id))
            if hit is not None and hit.until > now:
                found[organisation_id] = hit
    missing = wanted - found.keys()
    if not missing:
        return found
    epoch = listen.epoch()
    rows = (
        await session.execute(
            select(
                Organisation.id,
                Organisation.ods_code,
                Organisation.name,
                Organisation.kind,
                Organisation.settings,
            ).where(Organisation.id.in_(missing))
        )
    ).all()
    until = time.monotonic() + MAX_AGE_SECONDS
    store = serving and listen.is_live(key) and listen.epoch() == epoch
    for row in rows:
        cached = CachedOrganisation(row.id, row.ods_code, row.name, row.kind, row.settings, until)
        found[row.id] = cached
        if store:
            _rows[(key, row.id)] = cached
    return found
