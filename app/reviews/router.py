from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.auth.deps import ReferralsReader, ReviewsWriter
from app.db import DatabaseDep
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
from app.kit.etag import NOT_MODIFIED, Conditional, etag
from app.privacy import views
from app.privacy.schemas import ReviewPseudonymised
from app.privacy.writes import Written
from app.referrals.workflow import TransitionRefused
from app.reviews import labels, service
from app.reviews.schemas import ReviewAmendment, ReviewOut, ReviewVersionOut, Scales

router = APIRouter(tags=["reviews"])
AUTH = (Unauthorized, Forbidden)


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
        view.show(review, views.review),
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
    review_id: uuid.UUID,
    body: ReviewAmendment,
    principal: ReviewsWriter,
    database: DatabaseDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description="The review's ETag.")
    ] = None,
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
    return service.shown_to(principal, review)


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
    return view.show_all(versions, views.review_version)


@router.get("/v1/scales", response_model=Scales, responses=problem_responses(*AUTH))
async def get_scales(principal: ReferralsReader, database: DatabaseDep) -> Scales:
    """The labels of every scored scale (care ratings, quality of records, avoidability), from
    the one table the responses take them from.

    Scope: `referrals:read`.
    """
    async with database.transaction() as session:
        return await labels.scales(session)
