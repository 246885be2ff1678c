from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from app.auth.deps import ReferralsReader, ReviewsWriter
from app.auth.principal import Principal
from app.auth.routing import AuthFirstRoute
from app.auth.scopes import Scope
from app.db import DatabaseDep
from app.errors import (
    Conflict,
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
from app.idempotency.responses import as_response, create_once
from app.kit.etag import NOT_MODIFIED, Conditional, Precondition, etag, if_match_header
from app.privacy import views
from app.privacy.writes import Written, written
from app.referrals.workflow import LeaseConflict, TransitionRefused, audited_lease_refusals
from app.reviews import labels, pseudonymised, service
from app.reviews.pseudonymised import ReviewPseudonymised
from app.reviews.schemas import (
    ReviewAmendment,
    ReviewOut,
    ReviewSubmission,
    ReviewVersionOut,
    Scales,
)

router = APIRouter(route_class=AuthFirstRoute, tags=["reviews"])
# POST /v1/referrals/{id}/review: a review is posted on its referral (the URL and the OpenAPI tag
# are the referral's), but the route is the reviews domain's.
referral_review_router = APIRouter(
    route_class=AuthFirstRoute, prefix="/v1/referrals", tags=["referrals"]
)
AUTH = (Unauthorized, Forbidden)
IfMatch = Annotated[Precondition, Depends(if_match_header("The review's ETag."))]
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
TRANSITION = (NotFound, TransitionRefused, LeaseConflict, *BODY)


def shown_to(principal: Principal, review: ReviewOut) -> ReviewOut | Written:
    """What a write of a review answers: in full to a client that may read reviews
    (`referrals:read`), else the id, version and links (app.privacy.writes)."""
    return written(
        principal,
        Scope.referrals_read,
        review,
        review.id,
        review.version,
        {
            "self": f"/v1/reviews/{review.id}",
            "referral": f"/v1/referrals/{review.referral_id}",
        },
        death_id=review.death_id,
    )


@referral_review_router.post(
    "/{referral_id}/review",
    response_model=ReviewOut | Written,
    status_code=201,
    responses={
        200: {"description": "An existing draft updated (or submitted)"},
        **problem_responses(*AUTH, *TRANSITION, Conflict),
    },
)
async def post_review(
    referral_id: uuid.UUID,
    body: ReviewSubmission,
    principal: ReviewsWriter,
    database: DatabaseDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional: a retry with the same key and body replays the first answer.",
        ),
    ] = None,
) -> Response:
    """Save a draft (`submit: false`) or submit the review of a referral.

    The instrument must be the route's (`sjr`, `mm`, `leder`; `external` for the other
    routes); present the lease when the referral is claimed. A submitted review completes the
    referral and raises what it calls for: a stage-1 SJR rating overall care 1-2 or
    avoidability 1-3 raises a stage-2 SJR that its reviewer cannot take; a stage-2 SJR with
    avoidability 1-3 raises a PSII; an M&M escalation raises an SJR or a PSII. 201 when the
    review is new, 200 when a draft is updated. Amend a submitted review with
    `PUT /v1/reviews/{id}`. The answer is the review for a client that also holds
    `referrals:read`, else its id, version and links.

    Scope: `reviews:write`.
    """
    async with audited_lease_refusals(database, principal):
        stored = await create_once(
            database,
            principal,
            idempotency_key,
            path=f"/v1/referrals/{referral_id}/review",
            body=body,
            work=lambda session: service.submit_review(
                session, principal, database.settings, referral_id, body
            ),
            location=lambda review: f"/v1/reviews/{review.id}",
            tag=lambda review: etag(review.id, review.version),
            show=lambda review: shown_to(principal, review),
        )
    return as_response(stored)


@router.get(
    "/v1/reviews/{review_id}",
    response_model=ReviewOut | ReviewPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_review(
    review_id: uuid.UUID,
    principal: ReferralsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> ReviewOut | ReviewPseudonymised | Response:
    """A review, with a label beside every score; `If-None-Match` with its `ETag` gets a 304.
    A pseudonymised client gets the instrument's structured parts only (no narratives).

    Scope: `referrals:read`.
    """
    async with database.transaction() as session:
        review = await service.read_review(session, principal, review_id)
    view = await views.view_for(database, principal)
    return conditional.reply(
        etag(review.id, review.version),
        view.show(review, pseudonymised.review),
        pseudonymised=view.pseudonymised,
    )


@router.put(
    "/v1/reviews/{review_id}",
    response_model=ReviewOut | Written,
    responses=problem_responses(
        *AUTH,
        NotFound,
        TransitionRefused,
        PreconditionFailed,
        PreconditionRequired,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
    ),
)
async def amend_review(
    if_match: IfMatch,
    review_id: uuid.UUID,
    body: ReviewAmendment,
    principal: ReviewsWriter,
    database: DatabaseDep,
    response: Response,
) -> ReviewOut | Written:
    """Amend a submitted review: the whole instrument as it should now stand (a LeDeR
    review's progress as the ICB reports it, a corrected SJR). Needs `If-Match`. The previous
    version is kept (`GET .../history`), and what the amended review calls for is raised if it
    was not already. The answer is the review for a client that also holds `referrals:read`,
    else its id, version and links.

    Scope: `reviews:write`.
    """
    async with database.transaction() as session:
        review = await service.amend_review(
            session, principal, database.settings, review_id, body, if_match
        )
    response.headers["ETag"] = etag(review.id, review.version)
    return shown_to(principal, review)


@router.get(
    "/v1/reviews/{review_id}/history",
    response_model=list[ReviewVersionOut],
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def get_review_history(
    review_id: uuid.UUID, principal: ReferralsReader, database: DatabaseDep
) -> list[ReviewVersionOut]:
    """Earlier versions of an amended review, oldest first, each as it stood (for a
    pseudonymised client, each snapshot as it would see the review).

    Scope: `referrals:read`.
    """
    async with database.transaction() as session:
        versions = await service.review_history(session, principal, review_id)
    view = await views.view_for(database, principal)
    return view.show_all(versions, pseudonymised.review_version)


@router.get("/v1/scales", response_model=Scales, responses=problem_responses(*AUTH))
async def get_scales(principal: ReferralsReader, database: DatabaseDep) -> Scales:
    """The labels of every scored scale (care ratings, quality of records, avoidability), from
    the one table the responses take them from.

    Scope: `referrals:read`.
    """
    async with database.transaction() as session:
        return await labels.scales(session)
