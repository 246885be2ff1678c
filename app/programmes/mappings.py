"""Theme mappings: two themes of two vocabularies that mean the same thing ("DNAR orders" and
"DNACPR decisions"), kept as data by an organisation, so that its programmes' themes can be
compared when their theme lists differ (docs/programmes.md, "Comparing two programmes")."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.errors import Conflict, ValidationFailed, field_error
from app.events.service import Change
from app.findings.schemas import ThemeRef
from app.findings.themes import find_theme
from app.kit.sql import load_one
from app.kit.time import now
from app.models import Theme, ThemeMapping
from app.organisations.service import recording_organisation
from app.programmes.schemas import MappingIn, MappingOut


async def _out(session: AsyncSession, mappings: list[ThemeMapping]) -> list[MappingOut]:
    ids = {value for m in mappings for value in (m.theme_id, m.other_theme_id)}
    themes = {
        theme.id: theme
        for theme in (await session.scalars(select(Theme).where(Theme.id.in_(ids)))).all()
    }

    def ref(theme_id: uuid.UUID) -> ThemeRef:
        theme = themes[theme_id]
        return ThemeRef(
            id=theme.id, code=theme.code, name=theme.name, retired=theme.retired_at is not None
        )

    return [
        MappingOut(
            id=m.id,
            themes=[ref(m.theme_id), ref(m.other_theme_id)],
            note=m.note,
            organisation_id=m.organisation_id,
            created_at=m.created_at,
        )
        for m in mappings
    ]


async def list_mappings(session: AsyncSession, theme: str | None) -> list[MappingOut]:
    """The organisation's mappings (a few hundred at most), by when they were made; `theme`
    (an id or code) keeps those naming it."""
    query = select(ThemeMapping).order_by(ThemeMapping.created_at, ThemeMapping.id)
    if theme is not None:
        found = await find_theme(session, theme)
        if found is None:
            raise ValidationFailed(
                "No such theme.",
                errors=[field_error("query:/theme", "no such theme", "unknown_theme")],
            )
        query = query.where(
            or_(ThemeMapping.theme_id == found.id, ThemeMapping.other_theme_id == found.id)
        )
    return await _out(session, list((await session.scalars(query)).all()))


async def read_mapping(session: AsyncSession, mapping_id: uuid.UUID) -> MappingOut:
    mapping = await load_one(session, ThemeMapping, mapping_id, "theme mapping")
    return (await _out(session, [mapping]))[0]


async def create_mapping(
    session: AsyncSession, principal: Principal, body: MappingIn
) -> tuple[MappingOut, bool]:
    """Map two themes (in either order); the same pair again answers the mapping held (200)."""
    organisation_id = await recording_organisation(session, principal)
    themes = []
    errors = []
    for index, reference in enumerate(body.themes):
        theme = await find_theme(session, reference)
        if theme is None:
            errors.append(field_error(f"/themes/{index}", "no such theme", "unknown_theme"))
        else:
            themes.append(theme)
    if errors:
        raise ValidationFailed("A mapping names a theme that does not exist.", errors=errors)
    first, second = sorted((theme.id for theme in themes), key=str)
    if first == second:
        raise ValidationFailed(
            "A theme is the same as itself; map two different themes.",
            errors=[field_error("/themes/1", "the same theme twice", "same_theme")],
        )
    held = await session.scalar(
        select(ThemeMapping).where(
            ThemeMapping.organisation_id == organisation_id,
            ThemeMapping.theme_id == first,
            ThemeMapping.other_theme_id == second,
        )
    )
    if held is not None:
        if held.note != body.note and body.note is not None:
            raise Conflict(
                "These two themes are mapped already (with another note).",
                extra={"mapping": f"/v1/theme-mappings/{held.id}"},
            )
        return (await _out(session, [held]))[0], False
    mapping = ThemeMapping(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        theme_id=first,
        other_theme_id=second,
        note=body.note,
        created_at=now(),
        created_by_client_id=principal.client_id,
    )
    session.add(mapping)
    await session.flush()
    journal = Journal(principal)
    journal.event(
        Change(
            "theme_mapping.created",
            "theme_mapping",
            mapping.id,
            None,
            organisation_id=organisation_id,
        )
    )
    await journal.write(session)
    return (await _out(session, [mapping]))[0], True


async def delete_mapping(
    session: AsyncSession, principal: Principal, mapping_id: uuid.UUID
) -> None:
    mapping = await load_one(session, ThemeMapping, mapping_id, "theme mapping", for_update=True)
    organisation_id = mapping.organisation_id
    await session.delete(mapping)
    await session.flush()
    journal = Journal(principal)
    journal.event(
        Change(
            "theme_mapping.deleted",
            "theme_mapping",
            mapping_id,
            None,
            organisation_id=organisation_id,
        )
    )
    await journal.write(session)
