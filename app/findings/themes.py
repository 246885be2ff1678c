"""Themes: an administrator's list (created, renamed, retired, never deleted) that findings
are recorded under."""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.errors import BadRequest, Conflict, ValidationFailed, field_error
from app.events.service import Change
from app.findings.schemas import (
    ThemeCreate,
    ThemeOut,
    ThemePatch,
)
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.etag import Precondition
from app.kit.sql import load_one
from app.kit.time import now
from app.models import Theme


def theme_out(theme: Theme) -> ThemeOut:
    return ThemeOut.model_validate(
        {
            **{name: getattr(theme, name) for name in ThemeOut.model_fields if name != "retired"},
            "retired": theme.retired_at is not None,
        }
    )


def code_from_name(name: str) -> str:
    """`Medication, including anticoagulation` -> `medication_including_anticoagulation`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:60].rstrip("_")


async def load_theme(
    session: AsyncSession, theme_id: uuid.UUID, *, for_update: bool = False
) -> Theme:
    return await load_one(session, Theme, theme_id, "theme", for_update=for_update)


async def list_themes(
    session: AsyncSession, include_retired: bool, cursor: str | None, limit: int
) -> tuple[list[ThemeOut], str | None]:
    """Themes by name (keyset on name, id)."""
    query = select(Theme)
    if not include_retired:
        query = query.where(Theme.retired_at.is_(None))
    if cursor is not None:
        name, last_id = await open_cursor(session, cursor, 2)
        if not isinstance(name, str):
            raise BadRequest("The cursor is not one this service issued.")
        query = query.where(tuple_(Theme.name, Theme.id) > tuple_(name, cursor_uuid(last_id)))
    rows = list(
        (await session.scalars(query.order_by(Theme.name, Theme.id).limit(limit + 1))).all()
    )
    page = rows[:limit]
    next_cursor = (
        await sign_cursor(session, [page[-1].name, str(page[-1].id)]) if len(rows) > limit else None
    )
    return [theme_out(theme) for theme in page], next_cursor


async def _name_taken(
    session: AsyncSession, name: str, other_than: uuid.UUID | None = None
) -> Theme | None:
    query = select(Theme).where(func.lower(Theme.name) == name.lower())
    if other_than is not None:
        query = query.where(Theme.id != other_than)
    return await session.scalar(query.limit(1))


def _clash(theme: Theme, pointer: str, what: str) -> Conflict:
    return Conflict(
        f"Another theme already has that {what}.",
        errors=[field_error(pointer, f"already the {what} of theme {theme.id}", "duplicate")],
        extra={"theme": f"/v1/themes/{theme.id}"},
    )


async def create_theme(session: AsyncSession, principal: Principal, body: ThemeCreate) -> ThemeOut:
    code = body.code or code_from_name(body.name)
    if not code:
        raise ValidationFailed(
            "No code can be made from that name; send a code.",
            errors=[field_error("/code", "required when the name has no letters a-z or digits")],
        )
    same_code = await session.scalar(select(Theme).where(Theme.code == code))
    if same_code is not None:
        raise _clash(same_code, "/code" if body.code else "/name", "code")
    same_name = await _name_taken(session, body.name)
    if same_name is not None:
        raise _clash(same_name, "/name", "name")
    moment = now()
    theme = Theme(
        id=uuid.uuid4(),
        code=code,
        name=body.name,
        description=body.description,
        retired_at=None,
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    session.add(theme)
    await session.flush()
    journal = Journal(principal)
    journal.event(Change("theme.created", "theme", theme.id, None))
    await journal.write(session)
    return theme_out(theme)


async def read_theme(session: AsyncSession, theme_id: uuid.UUID) -> ThemeOut:
    return theme_out(await load_theme(session, theme_id))


async def patch_theme(
    session: AsyncSession,
    principal: Principal,
    theme_id: uuid.UUID,
    patch: ThemePatch,
    if_match: Precondition,
) -> ThemeOut:
    """Rename, describe, retire or reopen a theme. Its id and code never change, so every
    finding under it shows the new name."""
    theme = await load_theme(session, theme_id, for_update=True)
    if_match.check(theme.id, theme.version)
    changes = patch.model_dump(exclude_unset=True)
    nulls = [
        field_error(f"/{name}", "this field cannot be cleared", "null_not_allowed")
        for name in ("name", "retired")
        if name in changes and changes[name] is None
    ]
    if nulls:
        raise ValidationFailed("Some fields cannot be cleared.", errors=nulls)
    changed: list[str] = []
    if "name" in changes and changes["name"] != theme.name:
        clash = await _name_taken(session, changes["name"], other_than=theme.id)
        if clash is not None:
            raise _clash(clash, "/name", "name")
        theme.name = changes["name"]
        changed.append("name")
    if "description" in changes and changes["description"] != theme.description:
        theme.description = changes["description"]
        changed.append("description")
    if "retired" in changes and changes["retired"] != (theme.retired_at is not None):
        theme.retired_at = now() if changes["retired"] else None
        changed.append("retired_at")
    if changed:
        theme.version += 1
        theme.updated_at = now()
        await session.flush()
        journal = Journal(principal)
        journal.event(Change("theme.updated", "theme", theme.id, None, changed))
        await journal.write(session)
    return theme_out(theme)


async def find_theme(session: AsyncSession, reference: str) -> Theme | None:
    """A theme by its id or its code (the `theme` filters take either)."""
    try:
        theme_id = uuid.UUID(reference)
    except ValueError:
        return await session.scalar(select(Theme).where(Theme.code == reference))
    return await session.get(Theme, theme_id)


def cursor_uuid(raw: Any) -> uuid.UUID:
    """A keyset cursor's id, or a 400 for a cursor this service did not issue."""
    try:
        return uuid.UUID(str(raw))
    except ValueError as error:
        raise BadRequest("The cursor is not one this service issued.") from error
