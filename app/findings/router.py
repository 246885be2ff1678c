from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from app.auth.deps import Administrator, FindingsReader, FindingsWriter
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
from app.findings import pseudonymised, service, themes
from app.findings.pseudonymised import FindingPseudonymised
from app.findings.schemas import (
    FindingCreate,
    FindingKind,
    FindingOut,
    FindingPatch,
    ThemeCreate,
    ThemeOut,
    ThemePatch,
)
from app.findings.service import FindingFilters
from app.idempotency.responses import as_response, create_once, new
from app.kit.enums import Route
from app.kit.etag import NOT_MODIFIED, Conditional, Precondition, etag, if_match_header
from app.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.privacy import views
from app.privacy.filters import refuse_identifying_filters
from app.privacy.writes import Written, written

router = APIRouter(route_class=AuthFirstRoute)
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
UPDATE = (NotFound, PreconditionFailed, PreconditionRequired, *BODY)
IfMatch = Annotated[Precondition, Depends(if_match_header("The resource's ETag."))]


def shown_to(principal: Principal, finding: FindingOut) -> FindingOut | Written:
    """A write's answer: the finding with `findings:read`, else its id, version and link."""
    link = {"self": f"/v1/findings/{finding.id}"}
    return written(principal, Scope.findings_read, finding, finding.id, finding.version, link)


# --- themes -----------------------------------------------------------------------------------


@router.get(
    "/v1/themes",
    tags=["themes"],
    response_model=Page[ThemeOut],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_themes(
    principal: FindingsReader,
    database: DatabaseDep,
    include_retired: Annotated[
        bool, Query(description="Include retired themes (hidden by default).")
    ] = False,
    cursor: Cursor = None,
    limit: Limit = MAX_PAGE_SIZE,
) -> Page[ThemeOut]:
    """The themes findings are recorded under, by name. The list is short (the seeded themes
    and those an administrator added), so one page of the default size usually holds it all.

    Scope: `findings:read`.
    """
    async with database.transaction() as session:
        items, next_cursor = await themes.list_themes(session, include_retired, cursor, limit)
    return Page[ThemeOut](items=items, next_cursor=next_cursor)


@router.post(
    "/v1/themes",
    tags=["themes"],
    response_model=ThemeOut,
    status_code=201,
    responses=problem_responses(*AUTH, Conflict, *BODY),
)
async def create_theme(
    body: ThemeCreate, principal: Administrator, database: DatabaseDep, response: Response
) -> ThemeOut:
    """Add a theme. Its code (made from the name when omitted) is the theme's stable key for
    filters and reports; names and codes are unique (409 naming the existing theme).

    Scope: `admin`.
    """
    async with database.transaction() as session:
        theme = await themes.create_theme(session, principal, body)
    response.headers["ETag"] = etag(theme.id, theme.version)
    response.headers["Location"] = f"/v1/themes/{theme.id}"
    return theme


@router.get(
    "/v1/themes/{theme_id}",
    tags=["themes"],
    response_model=ThemeOut,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_theme(
    theme_id: uuid.UUID, principal: FindingsReader, database: DatabaseDep, conditional: Conditional
) -> ThemeOut | Response:
    """A theme, retired or not, with its `ETag` for `PATCH` and `If-None-Match`.

    Scope: `findings:read`.
    """
    async with database.transaction() as session:
        theme = await themes.read_theme(session, theme_id)
    return conditional.reply(etag(theme.id, theme.version), theme)


@router.patch(
    "/v1/themes/{theme_id}",
    tags=["themes"],
    response_model=ThemeOut,
    responses=problem_responses(*AUTH, Conflict, *UPDATE),
)
async def patch_theme(
    if_match: IfMatch,
    theme_id: uuid.UUID,
    patch: ThemePatch,
    principal: Administrator,
    database: DatabaseDep,
    response: Response,
) -> ThemeOut:
    """Rename, describe, retire (`retired: true`) or reopen (`retired: false`) a theme.

    The id and code never change, so the findings under a renamed theme show its new name, and
    a retired theme's findings keep it; a retired theme takes no new findings. Needs `If-Match`
    (428 without, 412 when stale); a name another theme has is a 409.

    Scope: `admin`.
    """
    async with database.transaction() as session:
        theme = await themes.patch_theme(session, principal, theme_id, patch, if_match)
    response.headers["ETag"] = etag(theme.id, theme.version)
    return theme


# --- findings ---------------------------------------------------------------------------------


@router.post(
    "/v1/findings",
    tags=["findings"],
    response_model=FindingOut | Written,
    status_code=201,
    responses=problem_responses(*AUTH, BadRequest, IdempotencyInFlight, IdempotencyMismatch, *BODY),
)
async def record_finding(
    body: FindingCreate,
    principal: FindingsWriter,
    database: DatabaseDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional: a retry with the same key and body replays the first answer.",
        ),
    ] = None,
) -> Response:
    """Record a finding (a problem in care, good practice, a learning point or a concern)
    against a death and, optionally, the review it came from, under a theme given by id or by
    code.

    The death's date (UK local) and specialty, and the review's route, are copied onto the
    finding for filters and reports. Refused with a 422 at the field: an unknown death, review
    or theme; a review of another death; a retired theme; both or neither of `theme_id` and
    `theme_code`. `recorded_by` defaults to `X-On-Behalf-Of`. The answer is the finding for a
    client that also holds `findings:read`, else its id, version and link.

    Scope: `findings:write`.
    """
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path="/v1/findings",
        body=body,
        work=lambda session: new(service.record_finding(session, principal, body)),
        location=lambda finding: f"/v1/findings/{finding.id}",
        tag=service.finding_etag,
        show=lambda finding: shown_to(principal, finding),
    )
    return as_response(stored)


@router.get(
    "/v1/findings",
    tags=["findings"],
    response_model=Page[FindingOut | FindingPseudonymised],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_findings(
    principal: FindingsReader,
    database: DatabaseDep,
    theme: Annotated[
        str | None,
        Query(min_length=1, max_length=60, description="A theme's id or code (retired too)."),
    ] = None,
    kind: FindingKind | None = None,
    died_from: Annotated[
        date | None, Query(description="Died on or after (UK local date).")
    ] = None,
    died_to: Annotated[date | None, Query(description="Died on or before (UK local date).")] = None,
    specialty: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="The specialty copied from the death."),
    ] = None,
    route: Annotated[Route | None, Query(description="The route of the finding's review.")] = None,
    death_id: uuid.UUID | None = None,
    review_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[FindingOut | FindingPseudonymised]:
    """Findings, most recent death first, with filters. An unknown theme is a 422 (a typo
    should not look like "no findings"). Every finding returned is recorded in the audit log.
    A pseudonymised client gets them without descriptions and with the month of death, and
    filters by whole months of death (400 otherwise).

    Scope: `findings:read`.
    """
    refuse_identifying_filters(principal, {}, died_from, died_to)
    filters = FindingFilters(theme, kind, died_from, died_to, specialty, route, death_id, review_id)
    async with database.transaction() as session:
        items, next_cursor = await service.list_findings(session, principal, filters, cursor, limit)
    view = await views.view_for(database, principal)
    return Page[FindingOut | FindingPseudonymised](
        items=view.show_all(items, pseudonymised.finding), next_cursor=next_cursor
    )


@router.get(
    "/v1/findings/{finding_id}",
    tags=["findings"],
    response_model=FindingOut | FindingPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_finding(
    finding_id: uuid.UUID,
    principal: FindingsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> FindingOut | FindingPseudonymised | Response:
    """A finding with its theme as it stands now, and its `ETag` for `PATCH` (and for
    `If-None-Match`: a 304 when nothing shown changed, a renamed theme included).

    Scope: `findings:read`.
    """
    async with database.transaction() as session:
        finding = await service.read_finding(session, principal, finding_id)
    view = await views.view_for(database, principal)
    return conditional.reply(
        service.finding_etag(finding, pseudonymised=view.pseudonymised),
        view.show(finding, pseudonymised.finding),
        pseudonymised=view.pseudonymised,
    )


@router.patch(
    "/v1/findings/{finding_id}",
    tags=["findings"],
    response_model=FindingOut | Written,
    responses=problem_responses(*AUTH, *UPDATE),
)
async def patch_finding(
    if_match: IfMatch,
    finding_id: uuid.UUID,
    patch: FindingPatch,
    principal: FindingsWriter,
    database: DatabaseDep,
    response: Response,
) -> FindingOut | Written:
    """Correct a finding (only the fields sent change; `null` clears an optional one): its
    kind, theme (not to a retired one), phase, description, `recorded_by`, or the review it
    came from (a review of the same death). The death never changes. Needs `If-Match` (428
    without, 412 when stale). The answer is the finding for a client that also holds
    `findings:read`, else its id, version and link.

    Scope: `findings:write`.
    """
    async with database.transaction() as session:
        finding = await service.patch_finding(session, principal, finding_id, patch, if_match)
    response.headers["ETag"] = service.finding_etag(finding)
    return shown_to(principal, finding)
