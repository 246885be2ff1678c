from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.deps import DeathsReader, WorklistClaimer
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.notifications import pseudonymised, worklist
from app.notifications.pseudonymised import WorklistItemPseudonymised
from app.notifications.schemas import (
    ClaimOut,
    LeaseRequest,
    NotesReceivedRequest,
    ReleaseRequest,
    WorklistClaimRequest,
    WorklistItem,
)
from app.notifications.worklist import WorklistConflict
from app.privacy import views

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/me/worklist", tags=["ME worklist"])
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)


@router.get(
    "",
    response_model=Page[WorklistItem | WorklistItemPseudonymised],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def get_worklist(
    principal: DeathsReader,
    database: DatabaseDep,
    site: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    unclaimed: Annotated[
        bool | None,
        Query(description="true: only deaths no live lease holds; false: only claimed ones."),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[WorklistItem | WorklistItemPseudonymised]:
    """The medical examiner office's worklist: deaths awaiting scrutiny, the oldest death
    first, each with how long it has waited since it was notified, the hours since the death,
    and when the MCCD falls due under the death-to-MCCD target (`LFD_ME_MCCD_TARGET_DAYS`,
    default 3), with the live claim on it, if any (its `lease_id` only for the holder).
    Filter by `site`. Every death listed is recorded in the audit log.

    A pseudonymised client gets each death pseudonymised, whole days waited and whether it is
    overdue or claimed, never exact times.

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        items, next_cursor = await worklist.worklist(
            session, principal, database.settings, site, unclaimed, cursor, limit
        )
    view = await views.view_for(database, principal)
    return Page[WorklistItem | WorklistItemPseudonymised](
        items=view.show_all(items, pseudonymised.worklist_item), next_cursor=next_cursor
    )


@router.post(
    "/{death_id}/claim",
    response_model=ClaimOut,
    responses=problem_responses(*AUTH, NotFound, WorklistConflict, *BODY),
)
async def claim_death(
    death_id: uuid.UUID,
    principal: WorklistClaimer,
    database: DatabaseDep,
    body: WorklistClaimRequest | None = None,
) -> ClaimOut:
    """Take a death awaiting screening: a lease for the calling client (and the person named
    in `X-On-Behalf-Of`), so that two MEs do not scrutinise the same death. 409 while another
    live lease holds it or once it is screened. The lease ends when it expires, when it is
    released, or when the death's screening is recorded.

    Scope: `worklist:claim`.
    """
    async with (
        worklist.audited_claim_refusals(database, principal),
        database.transaction() as session,
    ):
        return await worklist.claim(
            session, principal, database.settings, death_id, body.lease_seconds if body else None
        )


@router.post(
    "/{death_id}/renew",
    response_model=ClaimOut,
    responses=problem_responses(*AUTH, NotFound, WorklistConflict, *BODY),
)
async def renew_claim(
    death_id: uuid.UUID, body: LeaseRequest, principal: WorklistClaimer, database: DatabaseDep
) -> ClaimOut:
    """Extend the caller's live lease (409 for any lease but the caller's own live one).

    Scope: `worklist:claim`.
    """
    async with (
        worklist.audited_claim_refusals(database, principal),
        database.transaction() as session,
    ):
        return await worklist.renew(
            session, principal, database.settings, death_id, body.lease_id, body.lease_seconds
        )


@router.post(
    "/{death_id}/release",
    status_code=204,
    responses=problem_responses(*AUTH, NotFound, WorklistConflict, *BODY),
)
async def release_claim(
    death_id: uuid.UUID, body: ReleaseRequest, principal: WorklistClaimer, database: DatabaseDep
) -> Response:
    """Give the death back to the worklist (409 for any lease but the caller's own live one).

    Scope: `worklist:claim`.
    """
    async with (
        worklist.audited_claim_refusals(database, principal),
        database.transaction() as session,
    ):
        await worklist.release(session, principal, death_id, body.lease_id)
    return Response(status_code=204)


@router.put(
    "/{death_id}/notes-received",
    status_code=204,
    responses=problem_responses(*AUTH, NotFound, WorklistConflict, *BODY),
)
async def put_notes_received(
    death_id: uuid.UUID,
    body: NotesReceivedRequest,
    principal: WorklistClaimer,
    database: DatabaseDep,
) -> Response:
    """Record when the ME office received the notes of a death awaiting scrutiny: the
    worklist then shows `scrutiny_due_at` (24 hours later, the national target) and
    `scrutiny_overdue`, and the death's screening takes this time as its `notes_received_at`
    when it sends none of its own. Sent again, it replaces the time.

    While a live lease holds the death only its holder may record it, presenting `lease_id`
    (409 otherwise, naming when the lease expires; the refusal is audited). 409 once the death
    is screened (the time is then part of the screening); 422 for a time before the death or
    in the future.

    Scope: `worklist:claim`.
    """
    async with (
        worklist.audited_claim_refusals(database, principal),
        database.transaction() as session,
    ):
        await worklist.record_notes(
            session, principal, death_id, body.notes_received_at, body.lease_id
        )
    return Response(status_code=204)
