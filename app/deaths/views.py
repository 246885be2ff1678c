"""Death rows to response bodies, with the organisations they name (the recording
organisation, the site of death, the GP practice) shown as the registry has them: one query
for a page of deaths, none for the death's own fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.deaths.schemas import DeathOut
from app.models import Death
from app.organisations.lookup import OrganisationRef, organisation_refs


def named(death: Death, refs: dict[Any, OrganisationRef]) -> dict[str, OrganisationRef | None]:
    """The organisation fields of a death's body, from the refs of a page."""
    return {
        "organisation": refs.get(death.organisation_id),
        "site_organisation": refs.get(death.site_organisation_id),
        "gp_practice": refs.get(death.gp_practice_organisation_id),
    }


async def refs_of(session: AsyncSession, deaths: Sequence[Death]) -> dict[Any, OrganisationRef]:
    return await organisation_refs(
        session,
        (
            value
            for death in deaths
            for value in (
                death.organisation_id,
                death.site_organisation_id,
                death.gp_practice_organisation_id,
            )
        ),
    )


async def deaths_out(session: AsyncSession, deaths: Sequence[Death]) -> list[DeathOut]:
    refs = await refs_of(session, deaths)
    return [
        DeathOut.model_validate(death).model_copy(update=named(death, refs)) for death in deaths
    ]


async def death_out(session: AsyncSession, death: Death) -> DeathOut:
    (out,) = await deaths_out(session, [death])
    return out
