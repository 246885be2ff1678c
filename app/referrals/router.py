from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.deps import ReferralsClaimer, ReferralsReader
from app.auth.principal import Principal
from app.auth.routing import AuthFirstRoute
from app.auth.scopes import Scope
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
from app.kit.enums import ReferralStatus, Route
from app.kit.etag import NOT_MODIFIED, Conditional
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.kit.time import now
from app.privacy import views
from app.privacy.writes import Written, written
from app.referrals import pseudonymised, queue, workflow
from app.referrals.pseudonymised import ReferralPseudonymised, TransitionPseudonymised
from app.referrals.queue import ReferralFilters
from app.referrals.rows import json_response, of_referral, referrals_json
from app.referrals.schemas import (
    AssignRequest,
    CancelRequest,
    ClaimRequest,
    ClaimResult,
    LeaseRequest,
    OverdueSummary,
    ReasonRequest,
    ReferralOut,
    ReleaseRequest,
    ResumeRequest,
    TransitionOut,
    referral_etag,
    referral_out,
)
from app.referrals.workflow import LeaseConflict, TransitionRefused

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/referrals", tags=["referrals"])
Name = Annotated[str | None, Query(min_length=1, max_length=100)]
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
TRANSITION = (NotFound, TransitionRefused, LeaseConflict, *BODY)


def _out(referral: object, principal: Principal, response: Response | None = None) -> ReferralOut:
    out = referral_out(referral, principal.client_id)
    if response is not None:
        response.headers["ETag"] = referral_etag(out)
    return out


def _answer(principal: Principal, referral: object, response: Response) -> ReferralOut | Written:
    """A transition's answer: the referral for a client that also holds `referrals:read`,
    else its id, version and link (app.privacy.writes); the ETag either way."""
    out = _out(referral, principal, response)
    link = {"self": f"/v1/referrals/{out.id}"}
    return written(principal, Scope.referrals_read, out, out.id, out.version, link, out.death_id)


@router.get(
    "",
    response_model=Page[ReferralOut | ReferralPseudonymised],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_referrals(
    principal: ReferralsReader,
    database: DatabaseDep,
    route: Route | None = None,
    stage: Annotated[int | None, Query(ge=1, le=2, description="SJR stage.")] = None,
    status: Annotated[
        ReferralStatus | None,
        Query(description="As readers see it: `claimed` is a ready referral under a live lease."),
    ] = None,
    specialty: Name = None,
    site: Name = None,
    assigned_to: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="The assignee, by name; letter case does not matter (as in claims).",
        ),
    ] = None,
    death_id: uuid.UUID | None = None,
    overdue: Annotated[
        bool | None, Query(description="true: open and past due; false: the rest.")
    ] = None,
    due_before: Annotated[date | None, Query(description="Due before this UK local date.")] = None,
    programme_id: Annotated[
        uuid.UUID | None, Query(description="One review programme's queue (route `programme`).")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[ReferralOut | ReferralPseudonymised] | Response:
    """The referral queues, in queue order: priority (1 first), then due date, then creation.
    A pseudonymised client gets them without status reasons or external references.

    Scope: `referrals:read`.
    """
    filters = ReferralFilters(
        route, status, specialty, site, death_id, overdue, due_before, stage, assigned_to,
        programme_id,
    )  # fmt: skip
    async with database.transaction() as session:
        items, next_cursor = await queue.list_referrals(session, principal, filters, cursor, limit)
    if not principal.pseudonymised:
        # The rows straight to JSON (app.referrals.rows), no model per referral.
        return json_response({"items": items, "next_cursor": next_cursor})
    view = await views.view_for(database, principal)
    return Page[ReferralOut | ReferralPseudonymised](
        items=view.show_all(
            [ReferralOut.model_validate(item) for item in items], pseudonymised.referral
        ),
        next_cursor=next_cursor,
    )


@router.get("/overdue", response_model=OverdueSummary, responses=problem_responses(*AUTH))
async def overdue_referrals(principal: ReferralsReader, database: DatabaseDep) -> OverdueSummary:
    """What is late: open referrals past their due date, counted by route and specialty, with
    the oldest due date in each group. Due dates come from the configured rules.

    Scope: `referrals:read`.
    """
    async with database.transaction() as session:
        return await queue.overdue_summary(session)


@router.post(
    "/claim",
    response_model=ClaimResult,
    responses=problem_responses(*AUTH, *BODY),
)
async def claim_referrals(
    body: ClaimRequest, principal: ReferralsClaimer, database: DatabaseDep
) -> Response:
    """Lease the next referrals of a route to the caller, in queue order.

    Each comes back with its `lease_id` and `lease_expires_at`; present the lease to `renew`,
    `release`, or post the review. An expired lease simply makes the referral claimable again.
    Referrals assigned to another reviewer are skipped, and a stage-2 SJR is never leased to
    its stage-1 reviewer (name the reviewer in `reviewer` or `X-On-Behalf-Of`; without one,
    stage-2 SJRs and assigned referrals are not handed out). An empty `items` means nothing is
    claimable. Concurrent claimers never receive the same referral.

    Scope: `referrals:claim`.
    """
    async with database.transaction() as session:
        referrals = await workflow.claim(
            session,
            principal,
            database.settings,
            body.route,
            count=body.count,
            lease_seconds=body.lease_seconds,
            specialty=body.specialty,
            stage=body.stage,
            reviewer=workflow.reviewer_of(principal, body.reviewer),
            programme_id=body.programme_id,
        )
        # ClaimResult's document, straight from the rows (app.referrals.rows).
        items = referrals_json([of_referral(r) for r in referrals], principal.client_id, now())
    return json_response({"items": items})


@router.get(
    "/{referral_id}",
    response_model=ReferralOut | ReferralPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_referral(
    referral_id: uuid.UUID,
    principal: ReferralsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> ReferralOut | ReferralPseudonymised | Response:
    """One referral, with its lease while it is live. The `ETag` changes when anything shown
    changes (a lease lapsing or the due date passing too); `If-None-Match` gets a 304.

    Scope: `referrals:read`.
    """
    async with database.transaction() as session:
        referral = _out(await queue.read_referral(session, principal, referral_id), principal)
    view = await views.view_for(database, principal)
    return conditional.reply(
        referral_etag(referral),
        view.show(referral, pseudonymised.referral),
        pseudonymised=view.pseudonymised,
    )


@router.get(
    "/{referral_id}/history",
    response_model=list[TransitionOut | TransitionPseudonymised],
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def referral_history(
    referral_id: uuid.UUID, principal: ReferralsReader, database: DatabaseDep
) -> list[TransitionOut | TransitionPseudonymised]:
    """Every transition of the referral, oldest first: who (client, on-behalf-of, reviewer),
    when, from which state to which, and why (the why, free text, is not shown to a
    pseudonymised client).

    Scope: `referrals:read`.
    """
    async with database.transaction() as session:
        rows = await workflow.history(session, principal, referral_id)
        history = [TransitionOut.model_validate(row) for row in rows]
    view = await views.view_for(database, principal)
    return view.show_all(history, pseudonymised.transition)


@router.post(
    "/{referral_id}/renew",
    response_model=ReferralOut | Written,
    responses=problem_responses(*AUTH, *TRANSITION),
)
async def renew_lease(
    referral_id: uuid.UUID,
    body: LeaseRequest,
    principal: ReferralsClaimer,
    database: DatabaseDep,
    response: Response,
) -> ReferralOut | Written:
    """Extend a live lease (409 if the lease is wrong or has expired).

    Scope: `referrals:claim`.
    """
    async with (
        workflow.audited_lease_refusals(database, principal),
        database.transaction() as session,
    ):
        referral = await workflow.renew(
            session, principal, database.settings, referral_id, body.lease_id, body.lease_seconds
        )
        return _answer(principal, referral, response)


@router.post(
    "/{referral_id}/release",
    response_model=ReferralOut | Written,
    responses=problem_responses(*AUTH, *TRANSITION),
)
async def release_lease(
    referral_id: uuid.UUID,
    body: ReleaseRequest,
    principal: ReferralsClaimer,
    database: DatabaseDep,
    response: Response,
) -> ReferralOut | Written:
    """Give a leased referral back to its queue (409 if the lease is wrong or has expired).

    Scope: `referrals:claim`.
    """
    async with (
        workflow.audited_lease_refusals(database, principal),
        database.transaction() as session,
    ):
        referral = await workflow.release(session, principal, referral_id, body.lease_id)
        return _answer(principal, referral, response)


@router.post(
    "/{referral_id}/assign",
    response_model=ReferralOut | Written,
    responses=problem_responses(*AUTH, *TRANSITION),
)
async def assign_referral(
    referral_id: uuid.UUID,
    body: AssignRequest,
    principal: ReferralsClaimer,
    database: DatabaseDep,
    response: Response,
) -> ReferralOut | Written:
    """Assign an open referral to a named reviewer (`null` unassigns): only that reviewer can
    then claim it. A stage-2 SJR cannot be assigned to its stage-1 reviewer.

    Scope: `referrals:claim`.
    """
    async with database.transaction() as session:
        referral = await workflow.assign(session, principal, referral_id, body.assigned_to)
        return _answer(principal, referral, response)


@router.post(
    "/{referral_id}/decline",
    response_model=ReferralOut | Written,
    responses=problem_responses(*AUTH, *TRANSITION),
)
async def decline_referral(
    referral_id: uuid.UUID,
    body: ReasonRequest,
    principal: ReferralsClaimer,
    database: DatabaseDep,
    response: Response,
) -> ReferralOut | Written:
    """Decline an open referral, with a reason (its lease if it is claimed).

    Scope: `referrals:claim`.
    """
    async with (
        workflow.audited_lease_refusals(database, principal),
        database.transaction() as session,
    ):
        referral = await workflow.change_status(
            session, principal, referral_id, "decline", reason=body.reason, lease_id=body.lease_id
        )
        return _answer(principal, referral, response)


@router.post(
    "/{referral_id}/hold",
    response_model=ReferralOut | Written,
    responses=problem_responses(*AUTH, *TRANSITION),
)
async def hold_referral(
    referral_id: uuid.UUID,
    body: ReasonRequest,
    principal: ReferralsClaimer,
    database: DatabaseDep,
    response: Response,
) -> ReferralOut | Written:
    """Put a referral on hold (waiting for an inquest, say), with a reason; any lease ends.

    Scope: `referrals:claim`.
    """
    async with (
        workflow.audited_lease_refusals(database, principal),
        database.transaction() as session,
    ):
        referral = await workflow.change_status(
            session, principal, referral_id, "hold", reason=body.reason, lease_id=body.lease_id
        )
        return _answer(principal, referral, response)


@router.post(
    "/{referral_id}/resume",
    response_model=ReferralOut | Written,
    responses=problem_responses(*AUTH, *TRANSITION),
)
async def resume_referral(
    referral_id: uuid.UUID,
    body: ResumeRequest,
    principal: ReferralsClaimer,
    database: DatabaseDep,
    response: Response,
) -> ReferralOut | Written:
    """Take a referral off hold: back to its queue (in progress if a draft review exists).

    Scope: `referrals:claim`.
    """
    async with (
        workflow.audited_lease_refusals(database, principal),
        database.transaction() as session,
    ):
        referral = await workflow.change_status(
            session, principal, referral_id, "resume", reason=None, lease_id=None
        )
        return _answer(principal, referral, response)


@router.post(
    "/{referral_id}/cancel",
    response_model=ReferralOut | Written,
    responses=problem_responses(*AUTH, *TRANSITION),
)
async def cancel_referral(
    referral_id: uuid.UUID,
    body: CancelRequest,
    principal: ReferralsClaimer,
    database: DatabaseDep,
    response: Response,
) -> ReferralOut | Written:
    """Cancel an open referral, with a reason; any lease ends. Cancelled is final.

    Scope: `referrals:claim`.
    """
    async with (
        workflow.audited_lease_refusals(database, principal),
        database.transaction() as session,
    ):
        referral = await workflow.change_status(
            session, principal, referral_id, "cancel", reason=body.reason, lease_id=None
        )
        return _answer(principal, referral, response)
