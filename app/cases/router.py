"""GET and PATCH /v1/deaths/{id}, and the review of a possible duplicate person: the whole
case of one death (the list of deaths is the deaths domain's own router)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app.auth.deps import DeathsReader, DeathsWriter
from app.auth.principal import Principal
from app.auth.routing import AuthFirstRoute
from app.auth.scopes import Scope
from app.cases import pseudonymised, service
from app.cases.pseudonymised import DeathDetailPseudonymised
from app.cases.schemas import DeathDetail, detail_etag
from app.db import DatabaseDep
from app.deaths import duplicates
from app.deaths.duplicates import DuplicateStatus
from app.deaths.schemas import DeathPatch, DuplicateReview
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
from app.kit.etag import NOT_MODIFIED, Conditional, Precondition, if_match_header
from app.privacy import views
from app.privacy.writes import Written, written

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/deaths", tags=["deaths"])
AUTH = (Unauthorized, Forbidden)
IfMatch = Annotated[Precondition, Depends(if_match_header("The death's ETag."))]


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
    response_model=DeathDetail | Written,
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
    if_match: IfMatch,
    death_id: uuid.UUID,
    patch: DeathPatch,
    principal: DeathsWriter,
    database: DatabaseDep,
    response: Response,
) -> DeathDetail | Written:
    """Correct a death's details (only the fields sent change; `null` clears an optional one).

    Needs `If-Match` (428 without, 412 when stale). The same date rules as intake apply to the
    corrected death. When a correction changes what the referral rules see (a learning
    disability recorded late, say), the referrals follow. A corrected NHS number that another
    death holds flags the death (`possible_duplicate_of`).

    The answer is the corrected death for a client that also holds `deaths:read`; a client
    without it gets only the id, the new version and the link (its `ETag` in the header).

    Scope: `deaths:write`.
    """
    async with database.transaction() as session:
        death = await service.patch_death(
            session, principal, database.settings, death_id, patch, if_match
        )
    response.headers["ETag"] = detail_etag(death)
    return _shown(principal, death)


def _shown(principal: Principal, death: DeathDetail) -> DeathDetail | Written:
    """A write's answer: the death with `deaths:read`, else its id, version and link."""
    link = {"self": f"/v1/deaths/{death.id}"}
    return written(
        principal, Scope.deaths_read, death, death.id, death.version, link, death_id=death.id
    )


@router.post(
    "/{death_id}/duplicate-review",
    response_model=DeathDetail | Written,
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
async def review_duplicate(
    if_match: IfMatch,
    death_id: uuid.UUID,
    body: DuplicateReview,
    principal: DeathsWriter,
    database: DatabaseDep,
    response: Response,
) -> DeathDetail | Written:
    """Decide whether a death flagged as a possible duplicate (`possible_duplicate_of`: the
    same NHS number recorded under another source reference) is the same person as the other
    death. `same_person` links the two (`same_person_as` on both); `different_people` clears
    the flag. Nothing is merged or deleted. Either death of the pair may be named in the path;
    a pair that is not flagged is a 422 at `/other_death_id`. A decision may be changed by
    another review.

    Needs the death's `If-Match`. Both deaths get a new version, an audit row
    (`death.duplicate_review`) and the event `death.duplicate_reviewed`. The answer is the
    death for a client that also holds `deaths:read`, else its id, version and link.

    Scope: `deaths:write`.
    """
    async with database.transaction() as session:
        reviewed = await duplicates.review_duplicate(
            session,
            principal,
            death_id,
            body.other_death_id,
            DuplicateStatus(body.decision),
            if_match,
        )
        death = await service.detail(session, reviewed, principal.client_id)
    response.headers["ETag"] = detail_etag(death)
    return _shown(principal, death)
