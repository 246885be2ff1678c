"""/v1/programmes/{programme_id}/cases: the cohort as the programme's team works it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from app.auth.deps import ProgrammesReader, ProgrammesWriter, ReviewsWriter
from app.auth.principal import Principal
from app.auth.routing import AuthFirstRoute
from app.auth.scopes import Scope
from app.db import DatabaseDep
from app.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.idempotency.responses import as_response, create_once, new
from app.kit.etag import NOT_MODIFIED, Conditional, Precondition, etag, if_match_header
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.privacy.writes import Written, written
from app.programmes import cases, reviewing
from app.programmes.case_schemas import (
    AnswersIn,
    CaseDetail,
    CaseOut,
    CaseReviewStatus,
    ExcludeRequest,
    OpinionOut,
    ProgrammeReviewSubmission,
    SecondOpinionRequest,
)
from app.programmes.reviewing import ProgrammeReviewOut
from app.referrals.workflow import LeaseConflict, TransitionRefused, audited_lease_refusals

router = APIRouter(
    route_class=AuthFirstRoute, prefix="/v1/programmes/{programme_id}/cases", tags=["programmes"]
)
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
IfMatch = Annotated[Precondition, Depends(if_match_header("The case's ETag."))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Optional: a retry with the same key and body replays the first answer.",
    ),
]


def case_etag(case: CaseOut) -> str:
    return etag(case.id, case.version)


def _shown(principal: Principal, case: CaseDetail) -> CaseDetail | Written:
    """A write's answer: the case for a client that reads programmes, else what was written."""
    link = {"self": f"/v1/programmes/{case.programme_id}/cases/{case.id}"}
    return written(
        principal, Scope.programmes_read, case, case.id, case.version, link, case.death_id
    )


@router.get(
    "",
    response_model=Page[CaseOut],
    responses=problem_responses(*AUTH, NotFound, BadRequest, ValidationFailed),
)
async def list_cases(
    programme_id: uuid.UUID,
    principal: ProgrammesReader,
    database: DatabaseDep,
    status: Annotated[
        CaseReviewStatus | None,
        Query(
            description="`not_selected`, `awaiting_review`, `reviewed`, `not_reviewed` (its "
            "programme referral declined or cancelled) or `excluded`."
        ),
    ] = None,
    selected: Annotated[bool | None, Query(description="Chosen for review or not.")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[CaseOut]:
    """The programme's cohort in sample order (the order deaths are chosen in: lowest
    `sample_key` first), each case with its death's particulars and where it stands. Every
    case listed is audited.

    Scope: `programmes:read`.
    """
    async with database.transaction() as session:
        items, next_cursor = await cases.list_cases(
            session, principal, programme_id, status, selected, cursor, limit
        )
    return Page[CaseOut](items=items, next_cursor=next_cursor)


@router.get(
    "/{case_id}",
    response_model=CaseDetail,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_case(
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    principal: ProgrammesReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> CaseDetail | Response:
    """One case: its first review (its own programme referral's, or the routine SJR it
    counts) and its second opinions, both views kept, the answers to the programme's
    questions by opinion, and the relatives' view: what the medical examiner's contact log with
    the bereaved says, beside what the reviewer recorded. Audited.

    Scope: `programmes:read`.
    """
    async with database.transaction() as session:
        case = await cases.read_case(session, principal, programme_id, case_id)
    return conditional.reply(case_etag(case), case)


@router.post(
    "/{case_id}/review",
    response_model=ProgrammeReviewOut | Written,
    status_code=201,
    responses={
        200: {"description": "An existing draft updated (or submitted)"},
        **problem_responses(
            *AUTH,
            *BODY,
            NotFound,
            Conflict,
            TransitionRefused,
            LeaseConflict,
            IdempotencyInFlight,
            IdempotencyMismatch,
        ),
    },
)
async def post_programme_review(
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: ProgrammeReviewSubmission,
    principal: ReviewsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Save or submit the SJR of the case's referral (`opinion` 1, or a second opinion's
    number) with the answers to the programme's questions and the relatives' view, in one
    transaction. The SJR is held to the rules of `POST /v1/referrals/{id}/review` (present the
    lease when the referral is claimed; what a submitted SJR raises, it raises here); a
    submitted first review must answer the programme's required questions (422 naming each).
    A case that counts its routine SJR takes its answers with `PUT .../answers` (409 here).
    The answer is the review and the case for a client that reads programmes, else what was
    written. Event `programme_case.answered` beside the review's own.

    Scope: `reviews:write`.
    """

    def show(made: ProgrammeReviewOut) -> ProgrammeReviewOut | Written:
        shown = _shown(principal, made.case)
        return shown if isinstance(shown, Written) else made

    async with audited_lease_refusals(database, principal):
        stored = await create_once(
            database,
            principal,
            idempotency_key,
            path=f"/v1/programmes/{programme_id}/cases/{case_id}/review",
            body=body,
            work=lambda session: reviewing.submit_programme_review(
                session, principal, database.settings, programme_id, case_id, body
            ),
            location=lambda made: f"/v1/reviews/{made.review.id}",
            tag=lambda made: case_etag(made.case),
            show=show,
        )
    return as_response(stored)


@router.put(
    "/{case_id}/answers",
    response_model=CaseDetail | Written,
    responses=problem_responses(
        *AUTH, *BODY, NotFound, Conflict, PreconditionFailed, PreconditionRequired
    ),
)
async def put_answers(
    if_match: IfMatch,
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: AnswersIn,
    principal: ReviewsWriter,
    database: DatabaseDep,
    response: Response,
) -> CaseDetail | Written:
    """Record answers to the programme's questions for one opinion of the case (each answer
    replaces an earlier one to the same question) and the relatives' view: for a case that
    counts its routine SJR, or a past audit entered after the fact (`answered_at` in the
    past, not before the death). Needs the case's `If-Match`. Event
    `programme_case.answered`.

    Scope: `reviews:write`.
    """
    async with database.transaction() as session:
        case = await reviewing.put_answers(
            session, principal, programme_id, case_id, body, if_match
        )
    response.headers["ETag"] = case_etag(case)
    return _shown(principal, case)


@router.post(
    "/{case_id}/second-opinions",
    response_model=OpinionOut,
    status_code=201,
    responses=problem_responses(
        *AUTH, *BODY, NotFound, Conflict, IdempotencyInFlight, IdempotencyMismatch
    ),
)
async def request_second_opinion(
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: SecondOpinionRequest,
    principal: ReviewsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Ask a named colleague (`requested_from`: the referral is assigned to them) or any
    reviewer of a specialty (`specialty`: claimed by a claim naming it) for a second opinion
    on the case. It is a programme referral of its own in the programme's queue, never
    handed to the case's first reviewer; its review is posted as opinion 2 (3 ...) and kept
    beside the first. The programme report counts each case by its first review and sets the
    second opinions beside them. Events `referral.created`,
    `programme_case.second_opinion_requested`.

    Scope: `reviews:write`.
    """
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path=f"/v1/programmes/{programme_id}/cases/{case_id}/second-opinions",
        body=body,
        work=lambda session: new(
            reviewing.request_second_opinion(
                session, principal, database.settings, programme_id, case_id, body
            )
        ),
        location=lambda opinion: f"/v1/programmes/{programme_id}/cases/{case_id}",
    )
    return as_response(stored)


@router.post(
    "/{case_id}/exclude",
    response_model=CaseDetail | Written,
    responses=problem_responses(*AUTH, *BODY, NotFound, Conflict),
)
async def exclude_case(
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: ExcludeRequest,
    principal: ProgrammesWriter,
    database: DatabaseDep,
    response: Response,
) -> CaseDetail | Written:
    """Take a case out of the cohort, with a reason (a death recorded in error; one that no
    longer meets the rules after a correction): it is kept, out of every figure, and its
    open programme referrals are cancelled with the reason; the next pass tops the sample up.
    Event `programme_case.excluded`.

    Scope: `programmes:write`.
    """
    async with database.transaction() as session:
        case = await reviewing.exclude_case(session, principal, programme_id, case_id, body)
    response.headers["ETag"] = case_etag(case)
    return _shown(principal, case)
