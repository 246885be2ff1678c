from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from app.actions import queries, service
from app.actions.action_rules import DuplicateReference
from app.actions.queries import ActionFilters
from app.actions.rag import Rag
from app.actions.schemas import (
    ActionCreate,
    ActionLinks,
    ActionOut,
    ActionPatch,
    FindingLinks,
    HistoryEntry,
    OdsCode,
    PlanCreate,
    PlanDetail,
    PlanOut,
    PlanPatch,
    ProgressRecorded,
    ProgressUpdateCreate,
    SectionCreate,
    SectionOut,
    action_etag,
    plan_etag,
)
from app.auth.deps import ActionsReader, ActionsWriter, FindingsReader, FindingsWriter
from app.auth.routing import AuthFirstRoute
from app.auth.scopes import Scope
from app.db import Database, DatabaseDep
from app.errors import (
    BadRequest,
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

router = APIRouter(route_class=AuthFirstRoute, tags=["actions"])
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
CREATE = (*AUTH, *BODY, BadRequest, IdempotencyInFlight, IdempotencyMismatch)
UPDATE = (*AUTH, *BODY, NotFound, PreconditionFailed, PreconditionRequired)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Optional: a retry with the same key and body replays the first answer.",
    ),
]
IfMatch = Annotated[Precondition, Depends(if_match_header("The ETag from the last read or write."))]
Organisation = Annotated[
    OdsCode | None, Query(description="An ODS code, e.g. RR8 (lower case is accepted).")
]


def _aliases(database: Database) -> dict[str, list[str]]:
    """The configured alias table the organisations named are resolved with, under the
    registry's (app.actions.organisation_refs)."""
    return database.settings.organisation_aliases


# --- plans -----------------------------------------------------------------------------------


@router.post(
    "/v1/action-plans",
    response_model=PlanDetail,
    status_code=201,
    responses=problem_responses(*CREATE),
)
async def create_plan(
    body: PlanCreate,
    principal: ActionsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create an action plan: title, sponsor, the owning organisations by ODS code, and its
    sections (improvement areas) in order. Returns the plan with its sections' ids, which new
    actions name. Event `action_plan.created`.

    Scope: `actions:write`.
    """
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path="/v1/action-plans",
        body=body,
        work=lambda session: new(service.new_plan(session, principal, body, _aliases(database))),
        location=lambda plan: f"/v1/action-plans/{plan.id}",
        tag=plan_etag,
    )
    return as_response(stored)


@router.get(
    "/v1/action-plans",
    response_model=Page[PlanOut],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_plans(
    principal: ActionsReader,
    database: DatabaseDep,
    organisation: Organisation = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[PlanOut]:
    """Action plans, newest first, with their sections; `organisation` keeps the plans that
    organisation owns.

    Scope: `actions:read`.
    """
    async with database.transaction() as session:
        items, next_cursor = await queries.list_plans(
            session, organisation, cursor, limit, aliases=_aliases(database)
        )
    return Page[PlanOut](items=items, next_cursor=next_cursor)


@router.get(
    "/v1/action-plans/{plan_id}",
    response_model=PlanDetail,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_plan(
    plan_id: uuid.UUID, principal: ActionsReader, database: DatabaseDep, conditional: Conditional
) -> PlanDetail | Response:
    """An action plan with its sections (and how many actions each holds), and its actions
    counted by status and by RAG as of today (UK local date): overdue open actions count as
    red. The `ETag` goes in `If-Match` to `PATCH` the plan, and in `If-None-Match` for a 304
    when nothing shown changed (the counts included).

    Scope: `actions:read`.
    """
    async with database.transaction() as session:
        plan = await queries.read_plan(session, plan_id, aliases=_aliases(database))
    return conditional.reply(plan_etag(plan), plan)


@router.patch(
    "/v1/action-plans/{plan_id}",
    response_model=PlanDetail | Written,
    responses=problem_responses(*UPDATE),
)
async def patch_plan(
    if_match: IfMatch,
    plan_id: uuid.UUID,
    patch: PlanPatch,
    principal: ActionsWriter,
    database: DatabaseDep,
    response: Response,
) -> PlanDetail | Written:
    """Change a plan's title, sponsor, organisations or description (only the fields sent;
    `null` clears sponsor or description). Needs `If-Match` (428 without, 412 when stale).
    Event `action_plan.updated` with the changed field names. The answer is the plan for a
    client that also holds `actions:read`, else its id, version and link.

    Scope: `actions:write`.
    """
    async with database.transaction() as session:
        plan = await service.patch_plan(
            session, principal, plan_id, patch, if_match, _aliases(database)
        )
    response.headers["ETag"] = plan_etag(plan)
    link = {"self": f"/v1/action-plans/{plan.id}"}
    return written(principal, Scope.actions_read, plan, plan.id, plan.version, link)


@router.post(
    "/v1/action-plans/{plan_id}/sections",
    response_model=SectionOut,
    status_code=201,
    responses=problem_responses(*CREATE, NotFound),
)
async def add_section(
    plan_id: uuid.UUID,
    body: SectionCreate,
    principal: ActionsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add a section at the end of a plan. Event `action_plan.updated` (`sections`).

    Scope: `actions:write`.
    """
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path=f"/v1/action-plans/{plan_id}/sections",
        body=body,
        work=lambda session: new(service.new_section(session, principal, plan_id, body)),
        location=lambda _: f"/v1/action-plans/{plan_id}",
    )
    return as_response(stored)


# --- actions ---------------------------------------------------------------------------------


@router.post(
    "/v1/actions",
    response_model=ActionOut,
    status_code=201,
    responses=problem_responses(*CREATE, DuplicateReference),
)
async def create_action(
    body: ActionCreate,
    principal: ActionsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add an action to a section of a plan.

    `reference` is unique within its section (409 naming the existing action), not across
    the plan. A due date is a day (`due_precision: day`) or a month (`month`: due by the
    month's end; stored and returned as the 1st); a `due_note` such as "TBC" alone never
    makes it overdue. `status` is 1 Not yet commenced, 2 Off track, 3 At risk, 4 On track,
    5 Complete; status 5 needs `completed_at` (today if omitted), and `completed_at` needs
    status 5. Assurance is separate from completion: `assured_at` needs `evidence`.
    `finding_ids` link the findings that motivated it. The RAG is derived, never sent.
    Event `action.created`.

    Scope: `actions:write`.
    """
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path="/v1/actions",
        body=body,
        work=lambda session: new(service.new_action(session, principal, body, _aliases(database))),
        location=lambda action: f"/v1/actions/{action.id}",
        tag=action_etag,
    )
    return as_response(stored)


@router.get(
    "/v1/actions",
    response_model=Page[ActionOut],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_actions(
    principal: ActionsReader,
    database: DatabaseDep,
    plan_id: uuid.UUID | None = None,
    section_id: uuid.UUID | None = None,
    organisation: Organisation = None,
    lead: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="A lead's name (any letter case)."),
    ] = None,
    status: Annotated[int | None, Query(ge=1, le=5, description="1 to 5.")] = None,
    rag: Annotated[Rag | None, Query(description="The derived RAG as of today.")] = None,
    overdue: Annotated[
        bool | None,
        Query(description="true: open and past due (UK local today); false: the rest."),
    ] = None,
    theme: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=60,
            description="Id or code of a theme: actions linked to a finding under it.",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[ActionOut]:
    """Actions by plan and their order within it, with filters that combine (all must hold).
    RAG and overdue are as of today's UK local date; an open action past its due date is red.
    `organisation` keeps the actions that list it, and those that list no organisation in a
    plan that does (as the actions report counts them).

    Scope: `actions:read`.
    """
    filters = ActionFilters(plan_id, section_id, organisation, lead, status, rag, overdue, theme)
    async with database.transaction() as session:
        items, next_cursor = await queries.list_actions(
            session, filters, cursor, limit, aliases=_aliases(database)
        )
    return Page[ActionOut](items=items, next_cursor=next_cursor)


@router.get(
    "/v1/actions/{action_id}",
    response_model=ActionOut | Written,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_action(
    action_id: uuid.UUID, principal: ActionsReader, database: DatabaseDep, conditional: Conditional
) -> ActionOut | Response:
    """An action with its derived RAG and whether it is overdue (UK local today). Send the
    `ETag` in `If-Match` to change it, or in `If-None-Match` for a 304 when nothing changed
    (it changes when the action falls overdue, too).

    Scope: `actions:read`.
    """
    async with database.transaction() as session:
        action = await queries.read_action(session, action_id, aliases=_aliases(database))
    return conditional.reply(action_etag(action), action)


@router.patch(
    "/v1/actions/{action_id}",
    response_model=ActionOut | Written,
    responses=problem_responses(*UPDATE, DuplicateReference),
)
async def patch_action(
    if_match: IfMatch,
    action_id: uuid.UUID,
    patch: ActionPatch,
    principal: ActionsWriter,
    database: DatabaseDep,
    response: Response,
) -> ActionOut | Written:
    """Change any of an action's fields (only those sent; `null` clears an optional one).
    Needs `If-Match` (428 without, 412 when stale).

    A status change is kept in the history (dated today, by the `X-On-Behalf-Of` person).
    Completing (status 5) without `completed_at` completes today; reopening clears it. The
    same rules as on create apply to the action as changed. Event `action.updated` with the
    changed field names. The answer is the action for a client that also holds
    `actions:read`, else its id, version and link.

    Scope: `actions:write`.
    """
    async with database.transaction() as session:
        action = await service.patch_action(
            session, principal, action_id, patch, if_match, _aliases(database)
        )
    response.headers["ETag"] = action_etag(action)
    link = {"self": f"/v1/actions/{action.id}"}
    return written(principal, Scope.actions_read, action, action.id, action.version, link)


@router.post(
    "/v1/actions/{action_id}/updates",
    response_model=ProgressRecorded,
    status_code=201,
    responses=problem_responses(*UPDATE),
)
async def add_progress_update(
    if_match: IfMatch,
    action_id: uuid.UUID,
    body: ProgressUpdateCreate,
    principal: ActionsWriter,
    database: DatabaseDep,
    response: Response,
) -> ProgressRecorded:
    """Record progress: a dated narrative (today, or an earlier `update_date`), by `author`
    or else the `X-On-Behalf-Of` person, optionally with the status it now has. Needs the
    action's `If-Match`; returns the entry and the action, whose new `ETag` is in the header.
    Event `action.updated` (`updates`, and `status` when it changed).

    Scope: `actions:write`.
    """
    async with database.transaction() as session:
        recorded = await service.post_progress(
            session, principal, action_id, body, if_match, _aliases(database)
        )
    response.headers["ETag"] = action_etag(recorded.action)
    response.headers["Location"] = f"/v1/actions/{action_id}/history"
    return recorded


@router.get(
    "/v1/actions/{action_id}/history",
    response_model=list[HistoryEntry],
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def get_history(
    action_id: uuid.UUID, principal: ActionsReader, database: DatabaseDep
) -> list[HistoryEntry]:
    """The action's dated history, oldest first: progress notes and status changes, each
    with its date, author and the status then (`status_before` is set on a change).

    Scope: `actions:read`.
    """
    async with database.transaction() as session:
        return await queries.history(session, action_id)


@router.get(
    "/v1/actions/{action_id}/findings",
    response_model=ActionLinks | Written,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_finding_links(
    action_id: uuid.UUID,
    principal: FindingsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> ActionLinks | Response:
    """The findings linked to an action, with the action's `ETag` (for a client that links
    findings but does not read actions; `If-None-Match` with it gets a 304).

    Scope: `findings:read`.
    """
    async with database.transaction() as session:
        links = await queries.read_links(session, action_id)
    return conditional.reply(etag(links.action_id, links.version), links)


@router.put(
    "/v1/actions/{action_id}/findings",
    response_model=ActionLinks | Written,
    responses=problem_responses(*UPDATE),
)
async def put_finding_links(
    if_match: IfMatch,
    action_id: uuid.UUID,
    body: FindingLinks,
    principal: FindingsWriter,
    database: DatabaseDep,
    response: Response,
) -> ActionLinks | Written:
    """Set the findings linked to an action (the whole set; `[]` unlinks all). Needs the
    action's `If-Match`. Event `action.updated` (`finding_ids`) when the links changed. The
    answer is the links for a client that also holds `findings:read`, else the action's id,
    version and the link to read them.

    Scope: `findings:write`.
    """
    async with database.transaction() as session:
        links = await service.put_findings(session, principal, action_id, body, if_match)
    response.headers["ETag"] = etag(links.action_id, links.version)
    link = {"self": f"/v1/actions/{links.action_id}/findings"}
    return written(principal, Scope.findings_read, links, links.action_id, links.version, link)
