"""GET and PATCH /v1/deaths/{id}: the whole case of one death (the list of deaths is the
deaths domain's own router)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.auth.deps import DeathsReader, DeathsWriter
from app.auth.routing import AuthFirstRoute
from app.cases import pseudonymised, service
from app.cases.pseudonymised import DeathDetailPseudonymised
from app.cases.schemas import DeathDetail, detail_etag
from app.db import DatabaseDep
from app.deaths.schemas import DeathPatch
from app.errors import (
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.kit.etag import NOT_MODIFIED, Conditional
from app.privacy import views

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/deaths", tags=["deaths"])
AUTH = (Unauthorized, Forbidden)


@router.get(
    "/{death_id}",
    response_model=DeathDetail | DeathDetailPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_death(
    death_id: uuid.UUID,
    principal: DeathsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> DeathDetail | DeathDetailPseudonymised | Response:
    """A death with where it stands: its screening (with overrides) and its referrals.

    The `ETag` changes whenever the death's own details or status change; send it in
    `If-Match` to `PATCH`, or in `If-None-Match` to get a 304 when nothing changed.
    A pseudonymised client gets the death pseudonymised (under its own ETag).

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        death = await service.read_death(session, principal, death_id)
    view = await views.view_for(database, principal)
    return conditional.reply(
        detail_etag(death),
        view.show(death, pseudonymised.death_detail),
        pseudonymised=view.pseudonymised,
    )


@router.patch(
    "/{death_id}",
    response_model=DeathDetail,
    responses=problem_responses(
        *AUTH,
        NotFound,
        PreconditionFailed,
        PreconditionRequired,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
    ),
)
async def patch_death(
    death_id: uuid.UUID,
    patch: DeathPatch,
    principal: DeathsWriter,
    database: DatabaseDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description="The death's ETag.")
    ] = None,
) -> DeathDetail:
    """Correct a death's details (only the fields sent change; `null` clears an optional one).

    Needs `If-Match` (428 without, 412 when stale). The same date rules as intake apply to the
    corrected death. When a correction changes what the referral rules see (a learning
    disability recorded late, say), the referrals follow.

    Scope: `deaths:write`.
    """
    async with database.transaction() as session:
        death = await service.patch_death(
            session, principal, database.settings, death_id, patch, if_match
        )
    response.headers["ETag"] = detail_etag(death)
    return death
