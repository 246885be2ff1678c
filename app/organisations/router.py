"""The organisation registry over HTTP (docs/organisations.md): any client reads it; clients
with the `admin` scope change it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, Security

from app.auth.deps import Administrator, authenticate
from app.auth.principal import Principal
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
from app.idempotency.responses import as_response, create_once, new
from app.kit.etag import NOT_MODIFIED, Conditional, Precondition, if_match_header
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.organisations import registry
from app.organisations.registry import OrganisationFilters
from app.organisations.rules import OrganisationKind
from app.organisations.schemas import OrganisationCreate, OrganisationOut, OrganisationPatch
from app.scoping import scoped

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/organisations", tags=["organisations"])
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
# The registry holds no patient data: every client may read it, whatever its scopes.
AnyClient = Annotated[Principal, Security(authenticate, scopes=[])]
IfMatch = Annotated[Precondition, Depends(if_match_header("The organisation's ETag."))]


@router.post(
    "",
    response_model=OrganisationOut,
    status_code=201,
    responses=problem_responses(*AUTH, Conflict, IdempotencyInFlight, IdempotencyMismatch, *BODY),
)
async def create_organisation(
    body: OrganisationCreate,
    principal: Administrator,
    database: DatabaseDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional: a retry with the same key and body replays the first answer.",
        ),
    ] = None,
) -> Response:
    """Register an organisation: its kind, name, ODS code (checked against the kind's format),
    parent (by id or ODS code; a site's trust is found from the site's code when omitted) and
    aliases, and optionally its own settings (`PATCH` documents them).

    A code or alias another organisation has is a 409 naming it; a code of the wrong format, a
    parent of a kind the organisation cannot sit under (a site under a trust or provider, a
    practice under an ICB or sub-ICB location, a provider under an ICB), or a site whose code
    does not start with its trust's, a 422 at the field.

    Scope: `admin`.
    """
    organisation_id = uuid.uuid4()
    with scoped(registry.registry_scope(organisation_id)):
        stored = await create_once(
            database,
            principal,
            idempotency_key,
            path="/v1/organisations",
            body=body,
            work=lambda session: new(
                registry.create_organisation(session, principal, body, organisation_id)
            ),
            location=lambda organisation: f"/v1/organisations/{organisation.id}",
            tag=registry.organisation_etag,
        )
    return as_response(stored)


@router.get(
    "",
    response_model=Page[OrganisationOut],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_organisations(
    principal: AnyClient,
    database: DatabaseDep,
    kind: Annotated[OrganisationKind | None, Query(description="Only this kind.")] = None,
    parent: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=40,
            description="Only those directly under this organisation (its id or ODS code; an "
            "unknown one is a 422).",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Search: names, ODS codes and aliases containing this text (any case).",
        ),
    ] = None,
    ods_code: Annotated[
        str | None,
        Query(min_length=1, max_length=10, description="Look up the organisation with this code."),
    ] = None,
    alias: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description='Look up the organisation with this alias ("UHL"), compared without '
            "regard to case or punctuation.",
        ),
    ] = None,
    closed: Annotated[
        bool | None,
        Query(description="`true`: only closed organisations; `false`: only open ones."),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[OrganisationOut]:
    """The registry by name, with filters. `ods_code` and `alias` look one organisation up:
    the page holds it, or nothing.

    Any authenticated client (the registry holds no patient data).
    """
    filters = OrganisationFilters(kind, parent, q, ods_code, alias, closed)
    async with database.transaction() as session:
        items, next_cursor = await registry.list_organisations(session, filters, cursor, limit)
    return Page[OrganisationOut](items=items, next_cursor=next_cursor)


@router.get(
    "/{organisation_id}",
    response_model=OrganisationOut,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_organisation(
    organisation_id: uuid.UUID,
    principal: AnyClient,
    database: DatabaseDep,
    conditional: Conditional,
) -> OrganisationOut | Response:
    """One organisation, with its `ETag` for `PATCH` and `If-None-Match`.

    Any authenticated client (the registry holds no patient data).
    """
    async with database.transaction() as session:
        organisation = await registry.read_organisation(session, organisation_id)
    return conditional.reply(registry.organisation_etag(organisation), organisation)


@router.patch(
    "/{organisation_id}",
    response_model=OrganisationOut,
    responses=problem_responses(
        *AUTH, Conflict, NotFound, PreconditionFailed, PreconditionRequired, *BODY
    ),
)
async def patch_organisation(
    if_match: IfMatch,
    organisation_id: uuid.UUID,
    patch: OrganisationPatch,
    principal: Administrator,
    database: DatabaseDep,
    response: Response,
) -> OrganisationOut:
    """Change an organisation: only the fields sent change (`null` clears the code or the
    parent; `closed: true` records that it closed, its records staying). The registry's rules
    are checked again, for the organisations under it too.

    `settings` replaces the organisation's own settings as a whole (`{}` or `null`: the
    deployment's apply): `mortality_alert_specialties`, `mortality_alert_diagnosis_groups`,
    `mm_specialties`, `learning_sample_percent` and `due_days` (by route). The referrals of its
    deaths follow them from the next screening, amendment or review on. Unknown keys are a 422.

    A deployment-level client changes any organisation; an organisation's admin client only
    its own and those below it, and never their kind or parent (403). Needs `If-Match` (428
    without, 412 when stale).

    Scope: `admin`.
    """
    with scoped(registry.registry_scope(organisation_id)):
        async with database.transaction() as session:
            organisation = await registry.patch_organisation(
                session, principal, organisation_id, patch, if_match
            )
    response.headers["ETag"] = registry.organisation_etag(organisation)
    return organisation
