"""/v1/programmes and /v1/theme-mappings: defining review programmes, building their cohorts,
their recommendations, and the theme mappings that let two programmes be compared. The cases
are in app.programmes.cases_router; the report is a report (app.reports.programme_router)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from app.auth.deps import ProgrammesReader, ProgrammesWriter
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep, Work
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
from app.programmes import mappings, service
from app.programmes.schemas import (
    CohortBuild,
    MappingIn,
    MappingOut,
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammePatch,
    ProgrammeStatus,
    Recommendations,
)

router = APIRouter(route_class=AuthFirstRoute, tags=["programmes"])
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
CREATE = (*AUTH, *BODY, Conflict, IdempotencyInFlight, IdempotencyMismatch)
UPDATE = (*AUTH, *BODY, NotFound, Conflict, PreconditionFailed, PreconditionRequired)
IfMatch = Annotated[Precondition, Depends(if_match_header("The programme's ETag."))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Optional: a retry with the same key and body replays the first answer.",
    ),
]


def programme_etag(programme: ProgrammeOut) -> str:
    return etag(programme.id, programme.version)


@router.post(
    "/v1/programmes",
    response_model=ProgrammeOut,
    status_code=201,
    responses=problem_responses(*CREATE),
)
async def create_programme(
    body: ProgrammeCreate,
    principal: ProgrammesWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Define a review programme (a clinical audit of the deaths of a period): its name,
    purpose and owner, the period of death, the cohort rules (places of death, the discharge
    window, the age range, wards and specialties left out, the organisations whose deaths
    count), how the cohort is reviewed (every death, a number or a percentage, chosen in a
    seeded order), the instrument (SJR), its own questions, and its theme vocabulary and action
    plan. It starts as a `draft`; `POST .../cohort` builds the cohort and opens it. Event
    `programme.created`. Definitions: docs/programmes.md.

    Scope: `programmes:write`.
    """
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path="/v1/programmes",
        body=body,
        work=lambda session: new(service.create_programme(session, principal, body)),
        location=lambda programme: f"/v1/programmes/{programme.id}",
        tag=programme_etag,
    )
    return as_response(stored)


@router.get(
    "/v1/programmes",
    response_model=Page[ProgrammeOut],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_programmes(
    principal: ProgrammesReader,
    database: DatabaseDep,
    status: Annotated[
        ProgrammeStatus | None, Query(description="Only programmes in this state.")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[ProgrammeOut]:
    """The organisation's review programmes, latest period first, each with its cohort's
    counts.

    Scope: `programmes:read`.
    """
    async with database.transaction() as session:
        items, next_cursor = await service.list_programmes(session, status, cursor, limit)
    return Page[ProgrammeOut](items=items, next_cursor=next_cursor)


@router.get(
    "/v1/programmes/{programme_id}",
    response_model=ProgrammeOut,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_programme(
    programme_id: uuid.UUID,
    principal: ProgrammesReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> ProgrammeOut | Response:
    """One programme: its definition, questions, recommendations, the action plan's approval,
    and where its cohort stands (in cohort, chosen, linked to routine SJRs, reviewed,
    excluded), with its `ETag`.

    Scope: `programmes:read`.
    """
    async with database.transaction() as session:
        programme = await service.read_programme(session, programme_id)
    return conditional.reply(programme_etag(programme), programme)


@router.patch(
    "/v1/programmes/{programme_id}",
    response_model=ProgrammeOut,
    responses=problem_responses(*UPDATE),
)
async def patch_programme(
    if_match: IfMatch,
    programme_id: uuid.UUID,
    patch: ProgrammePatch,
    principal: ProgrammesWriter,
    database: DatabaseDep,
    response: Response,
) -> ProgrammeOut:
    """Change a programme: any field sent (`null` clears what may be cleared). Once the
    cohort is built its period and rules are fixed, and its sample may only grow (409
    `cohort-built`); questions can be replaced until one is answered. `plan_id`,
    `plan_approved_by` and `plan_approved_on` record the action plan and its approval (the
    committee and the date); `status` closes (`closed`) or reopens (`open`) the cohort to
    late deaths. Needs `If-Match`. Event `programme.updated`.

    Scope: `programmes:write`.
    """
    async with database.transaction() as session:
        programme = await service.patch_programme(session, principal, programme_id, patch, if_match)
    response.headers["ETag"] = programme_etag(programme)
    return programme


@router.put(
    "/v1/programmes/{programme_id}/recommendations",
    response_model=ProgrammeOut,
    responses=problem_responses(*UPDATE),
)
async def put_recommendations(
    if_match: IfMatch,
    programme_id: uuid.UUID,
    body: Recommendations,
    principal: ProgrammesWriter,
    database: DatabaseDep,
    response: Response,
) -> ProgrammeOut:
    """Replace the programme's recommendations: each in a key area (A, B, C ..., one title
    per area), each linked to the actions of the programme's action plan that answer it (set
    `plan_id` first). The programme report lists them with their actions' progress. Needs the
    programme's `If-Match`. Event `programme.updated`.

    Scope: `programmes:write`.
    """
    async with database.transaction() as session:
        programme = await service.put_recommendations(
            session, principal, programme_id, body, if_match
        )
    response.headers["ETag"] = programme_etag(programme)
    return programme


@router.post(
    "/v1/programmes/{programme_id}/cohort",
    response_model=CohortBuild,
    responses=problem_responses(*AUTH, NotFound, Conflict, BadRequest, ValidationFailed),
)
async def build_cohort(
    programme_id: uuid.UUID,
    principal: ProgrammesWriter,
    database: DatabaseDep,
    dry_run: Annotated[
        bool, Query(description="true: count what the build would do, and do nothing.")
    ] = False,
) -> CohortBuild:
    """Build the programme's cohort, or bring it up to date: the deaths of the period that
    meet the rules join it, the sample is chosen (or topped up) in its seeded order, chosen
    deaths with a routine SJR referral count that SJR (when the programme links routine
    reviews) and the others get a programme referral in the programme's queue
    (`POST /v1/referrals/claim` with `route: programme` and the `programme_id`). The answer
    counts the period's deaths, those each rule leaves out, and what was added, chosen,
    linked and referred. `dry_run=true` answers the same counts and changes nothing. The
    first build opens a draft programme; afterwards the background runner adds the deaths
    that qualify late. A closed programme is a 409 (its dry run still answers). Event
    `programme.cohort_built`.

    Scope: `programmes:write`.
    """
    async with database.transaction(Work.report) as session:
        return await service.build_cohort(
            session, principal, database.settings, programme_id, dry_run
        )


# --- theme mappings ---------------------------------------------------------------------------


@router.get(
    "/v1/theme-mappings",
    tags=["themes"],
    response_model=list[MappingOut],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_mappings(
    principal: ProgrammesReader,
    database: DatabaseDep,
    theme: Annotated[
        str | None,
        Query(min_length=1, max_length=60, description="Only mappings naming this theme."),
    ] = None,
) -> list[MappingOut]:
    """The organisation's theme mappings: pairs of themes from two vocabularies that mean the
    same thing ("DNAR orders" and "DNACPR decisions"), which the programme comparison joins.

    Scope: `programmes:read`.
    """
    async with database.transaction() as session:
        return await mappings.list_mappings(session, theme)


@router.post(
    "/v1/theme-mappings",
    tags=["themes"],
    response_model=MappingOut,
    status_code=201,
    responses={
        200: {"description": "The two themes were mapped already: that mapping."},
        **problem_responses(*CREATE),
    },
)
async def create_mapping(
    body: MappingIn,
    principal: ProgrammesWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Map two themes (by id or code, in either order) as meaning the same thing. A mapping
    is unordered and the organisation's own. The same pair again answers the mapping held
    (200). Event `theme_mapping.created`.

    Scope: `programmes:write`.
    """
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path="/v1/theme-mappings",
        body=body,
        work=lambda session: mappings.create_mapping(session, principal, body),
        location=lambda mapping: f"/v1/theme-mappings/{mapping.id}",
    )
    return as_response(stored)


@router.get(
    "/v1/theme-mappings/{mapping_id}",
    tags=["themes"],
    response_model=MappingOut,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_mapping(
    mapping_id: uuid.UUID,
    principal: ProgrammesReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> MappingOut | Response:
    """One theme mapping, with its `ETag` (a mapping never changes: it is made or removed).

    Scope: `programmes:read`.
    """
    async with database.transaction() as session:
        mapping = await mappings.read_mapping(session, mapping_id)
    return conditional.reply(etag(mapping.id, 1), mapping)


@router.delete(
    "/v1/theme-mappings/{mapping_id}",
    tags=["themes"],
    status_code=204,
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def delete_mapping(
    mapping_id: uuid.UUID, principal: ProgrammesWriter, database: DatabaseDep
) -> Response:
    """Remove a theme mapping: comparisons made afterwards treat the two themes as different.
    Event `theme_mapping.deleted`.

    Scope: `programmes:write`.
    """
    async with database.transaction() as session:
        await mappings.delete_mapping(session, principal, mapping_id)
    return Response(status_code=204)
