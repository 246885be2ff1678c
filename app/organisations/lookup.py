"""Organisations named by ODS code or registry id: finding the one a reference names, and the
short view of one (id, ODS code, name, kind) that deaths and reviews show beside their own
fields (docs/organisations.md)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import Field
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.ods import is_ods_code
from app.kit.schemas import ResponseModel
from app.models import Organisation
from app.organisations.cache import CachedOrganisation, organisations

LOAD_HINT = "load the registry (`lfd organisations load`) or add the organisation first"
# Where care is given: an NHS trust (R + 2) or one of its sites (R + 4), a care trust (T + 2),
# an independent provider or its site (N + 2 or N + 4).
SITE_CODE = re.compile(r"^(?:[RN][A-Z0-9]{2}(?:[A-Z0-9]{2})?|T[A-Z0-9]{2})$")
SITE_CODE_FORMS = "an ODS site code (R + 4, e.g. RR801) or a trust's code (R + 2, e.g. RR8)"
GP_PRACTICE_CODE = re.compile(r"^[A-Z][0-9]{5}$")
GP_PRACTICE_FORMS = "a GP practice's ODS code (a letter and 5 digits, e.g. B86001)"


class OrganisationRef(ResponseModel):
    """An organisation of the registry, as a record that names it shows it."""

    id: uuid.UUID = Field(description="The organisation's id in the registry.")
    ods_code: str | None = Field(
        description="Its ODS code (NHS Organisation Data Service); null for one without."
    )
    name: str = Field(description="Its name, as the registry has it.")
    kind: str = Field(
        description="What it is: `trust`, `site`, `icb`, `sub_icb`, `gp_practice`, "
        "`community_provider`, `mental_health_provider`, `local_authority`, `hospice`, "
        "`independent_provider` or `other`."
    )


def as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def is_reference(text: str) -> bool:
    """Whether ``text`` could name an organisation: a registry id or a code of an ODS format."""
    return as_uuid(text) is not None or is_ods_code(text)


def _named(reference: str) -> ColumnElement[bool]:
    code = reference.strip().upper()
    found = as_uuid(reference)
    by_code = func.upper(Organisation.ods_code) == code
    return or_(Organisation.id == found, by_code) if found is not None else by_code


def named_by(reference: str) -> Select[Any]:
    """The id of the organisation a reference names, as a subquery for a filter."""
    return select(Organisation.id).where(_named(reference))


async def resolve_organisation(session: AsyncSession, code_or_id: str) -> Organisation | None:
    """The organisation an ODS code (any case) or a registry id names; None when none does."""
    return await session.scalar(select(Organisation).where(_named(code_or_id)).limit(1))


async def resolve_organisations(
    session: AsyncSession, references: Iterable[str]
) -> dict[str, Organisation]:
    """Each reference (ODS code or id) mapped to the organisation it names, in one query;
    a reference that names none is absent."""
    wanted = {reference for reference in references if reference.strip()}
    if not wanted:
        return {}
    ids = {found for found in map(as_uuid, wanted) if found is not None}
    codes = {reference.strip().upper() for reference in wanted if as_uuid(reference) is None}
    rows = (
        await session.scalars(
            select(Organisation).where(
                or_(Organisation.id.in_(ids), func.upper(Organisation.ods_code).in_(codes))
            )
        )
    ).all()
    by_id = {row.id: row for row in rows}
    by_code = {row.ods_code.upper(): row for row in rows if row.ods_code}
    resolved: dict[str, Organisation] = {}
    for reference in wanted:
        key = as_uuid(reference)
        row = by_id.get(key) if key is not None else by_code.get(reference.strip().upper())
        if row is not None:
            resolved[reference] = row
    return resolved


def ref_of(organisation: Organisation | CachedOrganisation) -> OrganisationRef:
    return OrganisationRef(
        id=organisation.id,
        ods_code=organisation.ods_code,
        name=organisation.name,
        kind=organisation.kind,
    )


async def organisation_refs(
    session: AsyncSession, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, OrganisationRef]:
    """The short view of each organisation by id, in one query (none without ids)."""
    rows = await organisations(session, ids)  # kept between requests (app.organisations.cache)
    return {row_id: ref_of(row) for row_id, row in rows.items()}


async def ancestors(session: AsyncSession, organisation: Organisation) -> list[uuid.UUID]:
    """The organisations above one, nearest first (its trust, then the trust's ICB, ...)."""
    found: list[uuid.UUID] = []
    parent = organisation.parent_id
    while parent is not None and parent not in found:
        found.append(parent)
        parent = await session.scalar(
            select(Organisation.parent_id).where(Organisation.id == parent)
        )
    return found
