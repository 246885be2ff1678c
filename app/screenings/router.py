from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from app.auth.deps import DeathsReader, ReviewsWriter, ScreeningsWriter
from app.auth.routing import AuthFirstRoute
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
from app.idempotency.responses import as_response
from app.kit.etag import NOT_MODIFIED, Conditional, Precondition, etag, if_match_header
from app.privacy import views
from app.privacy.writes import Written
from app.screenings import judgements, pseudonymised, service, submit
from app.screenings.intake import BatchResult, ScreeningBatch, ScreeningCreate, ScreeningRecorded
from app.screenings.pseudonymised import ScreeningPseudonymised
from app.screenings.schemas import ScreeningAmend, ScreeningOut, ScreeningVersionOut

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/screenings", tags=["screenings"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Required. A unique value per logical request (a UUID, say). A retry with "
        "the same key and body replays the first response.",
    ),
]
IfMatch = Annotated[Precondition, Depends(if_match_header("The screening's ETag."))]
AUTH = (Unauthorized, Forbidden)


@router.post(
    "",
    status_code=201,
    response_model=ScreeningRecorded | Written,
    responses=problem_responses(
        *AUTH,
        BadRequest,
        Conflict,
        IdempotencyInFlight,
        IdempotencyMismatch,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
    ),
)
async def post_screening(
    body: ScreeningCreate,
    principal: ScreeningsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record a medical examiner's screening of a death.

    The death is created, or found by `source_system` + `source_reference`; a second screening
    for a death that already has one is a 409 whose `existing` member links to it (amend it
    with `PUT /v1/screenings/{id}`). The referral rules run and the required referrals are
    created, each with its reason codes and due date; a required route the ME declines needs
    an entry in `overrides` with a reason. The response lists every required route and whether
    it was referred or overridden, for a client that also holds `deaths:read`; a client
    without it gets only the screening's id, version, death id and links (it may not read
    the death). The 409's `existing` links are shown to the client that reported the death
    and to clients with `deaths:read`.

    Retries: send an `Idempotency-Key`. The same key with the same body replays the first
    response (header `Idempotent-Replayed: true`); with another body it is a 422; while the
    first request is still running it is a 409 with `Retry-After`.

    Scope: `screenings:write`.
    """
    stored = await submit.record_once(database, principal, idempotency_key, body)
    return as_response(stored)


@router.post(
    "/batch",
    response_model=BatchResult,
    responses=problem_responses(
        *AUTH, BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
    ),
)
async def post_screening_batch(
    batch: ScreeningBatch,
    principal: ScreeningsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> BatchResult:
    """Record several screenings; the answer goes item by item.

    Each item is validated and recorded on its own (`created`, `replayed`, or `failed` with
    the problem for that item, its pointers prefixed `/screenings/{index}`), so one bad item
    does not lose the others. Items are idempotent under the batch's `Idempotency-Key` and
    their index: a retried batch replays what was recorded and retries what failed. At most
    `LFD_BATCH_MAX_ITEMS` (default 100) items.

    Scope: `screenings:write`.
    """
    return await submit.submit_batch(database, principal, idempotency_key, batch)


@router.get(
    "/{screening_id}",
    response_model=ScreeningOut | ScreeningPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_screening(
    screening_id: uuid.UUID,
    principal: DeathsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> ScreeningOut | ScreeningPseudonymised | Response:
    """A screening, with its overrides. The `ETag` is what `PUT` needs in `If-Match`, and
    what `If-None-Match` needs for a 304. A pseudonymised client gets it without free text and
    with months for dates.

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        screening = await service.read_screening(session, principal, screening_id)
    view = await views.view_for(database, principal)
    return conditional.reply(
        etag(screening.id, screening.version),
        view.show(screening, pseudonymised.screening),
        pseudonymised=view.pseudonymised,
    )


@router.get(
    "/{screening_id}/versions",
    response_model=list[ScreeningVersionOut],
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def get_screening_versions(
    screening_id: uuid.UUID, principal: DeathsReader, database: DatabaseDep
) -> list[ScreeningVersionOut]:
    """Earlier versions of an amended screening, oldest first, each as it stood (for a
    pseudonymised client, each snapshot as it would see the screening).

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        versions = await service.screening_versions(session, principal, screening_id)
    view = await views.view_for(database, principal)
    return view.show_all(versions, pseudonymised.screening_version)


@router.put(
    "/{screening_id}",
    response_model=ScreeningRecorded | Written,
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
async def put_screening(
    if_match: IfMatch,
    screening_id: uuid.UUID,
    body: ScreeningAmend,
    principal: ScreeningsWriter,
    database: DatabaseDep,
    response: Response,
) -> ScreeningRecorded | Written:
    """Amend a screening: the body is the whole screening as it should now stand.

    Needs `If-Match` with the current ETag (428 without, 412 when stale). The previous version
    is kept (`GET .../versions`). The referral rules run again: newly required routes are
    referred, and referrals still waiting in the queue that nothing requires any more are
    cancelled; work a reviewer holds or finished is never touched.

    The answer is as for `POST`: in full with `deaths:read`, else the id, version and links.

    Scope: `screenings:write`.
    """
    async with database.transaction() as session:
        amended = await service.amend_screening(
            session, principal, database.settings, screening_id, body, if_match
        )
    response.headers["ETag"] = etag(amended.id, amended.version)
    return submit.shown_to(principal, amended)


JudgementIfMatch = Annotated[
    Precondition,
    Depends(
        if_match_header(
            "The current judgement's ETag: required to replace a judgement, absent for the first."
        )
    ),
]


@router.put(
    "/{screening_id}/referral-judgement",
    response_model=judgements.JudgementOut,
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
async def put_referral_judgement(
    if_match: JudgementIfMatch,
    screening_id: uuid.UUID,
    body: judgements.JudgementIn,
    principal: ReviewsWriter,
    database: DatabaseDep,
    response: Response,
) -> judgements.JudgementOut:
    """Judge the medical examiner's referral decision on this screened death, in retrospect:
    `appropriate`, `possibly_missed` or `should_have_been_referred`, with the referral
    criterion it concerns and the reason. Who judged is the `X-On-Behalf-Of` person.

    The first judgement is recorded without `If-Match` (201; an `If-Match` then is a 412: there
    is nothing to match). A later one replaces it and needs the current judgement's `ETag` in
    `If-Match` (428 without, 412 when stale); the judgement replaced is kept
    (`GET .../referral-judgement/versions`) and `version` counts (200). The same judgement sent
    again by the same person changes nothing. Raises `screening.referral_judged`, the ME
    office's feedback.

    Scope: `reviews:write`.
    """
    async with database.transaction() as session:
        judged, created = await judgements.judge(session, principal, screening_id, body, if_match)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = judgements.judgement_etag(judged)
    return judged


@router.get(
    "/{screening_id}/referral-judgement",
    response_model=judgements.JudgementOut | judgements.JudgementPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_referral_judgement(
    screening_id: uuid.UUID,
    principal: DeathsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> judgements.JudgementOut | judgements.JudgementPseudonymised | Response:
    """The current judgement of the ME's referral decision (404 when none), with the `ETag` a
    replacing `PUT` needs in `If-Match` (and `If-None-Match` a 304). A pseudonymised client
    gets it without the written reason or who judged.

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        judged = await judgements.read_judgement(session, principal, screening_id)
    view = await views.view_for(database, principal)
    return conditional.reply(
        judgements.judgement_etag(judged),
        view.show(judged, judgements.pseudonymised),
        pseudonymised=view.pseudonymised,
    )


@router.get(
    "/{screening_id}/referral-judgement/versions",
    response_model=list[judgements.JudgementVersionOut | judgements.JudgementVersionPseudonymised],
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def get_referral_judgement_versions(
    screening_id: uuid.UUID, principal: DeathsReader, database: DatabaseDep
) -> list[judgements.JudgementVersionOut | judgements.JudgementVersionPseudonymised]:
    """The judgements replaced so far, oldest first, each as it stood (an empty list for a
    judgement never replaced; 404 when the decision was never judged). A pseudonymised client
    gets each without its reason, who judged or when.

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        versions = await judgements.judgement_versions(session, principal, screening_id)
    view = await views.view_for(database, principal)
    return view.show_all(versions, judgements.version_pseudonymised)
