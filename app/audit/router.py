from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.audit.queries import AuditFilters, list_audit_events
from app.audit.schemas import AuditEventOut
from app.audit.service import Outcome
from app.auth.deps import AuditReader
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed, problem_responses
from app.kit.nhs_number import InvalidNhsNumber, normalise_nhs_number
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page, Timestamp

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/audit-events", tags=["audit"])

Code = Annotated[str | None, Query(min_length=1, max_length=60, pattern=r"^[a-z_.]+$")]


@router.get(
    "",
    response_model=Page[AuditEventOut],
    responses=problem_responses(Unauthorized, Forbidden, BadRequest, ValidationFailed),
)
async def read_audit_log(
    principal: AuditReader,
    database: DatabaseDep,
    death_id: Annotated[
        uuid.UUID | None, Query(description="Every read and change of one death's records.")
    ] = None,
    client_id: Annotated[
        uuid.UUID | None, Query(description="Everything one client (system) did.")
    ] = None,
    resource_type: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=40,
            pattern=r"^[a-z_]+$",
            description="e.g. `death`, `referral`, `review`, `finding`, `screening`.",
        ),
    ] = None,
    resource_id: Annotated[uuid.UUID | None, Query(description="One record's trail.")] = None,
    action: Code = None,
    occurred_from: Annotated[
        Timestamp | None, Query(description="At or after this time (with its UTC offset).")
    ] = None,
    occurred_before: Annotated[
        Timestamp | None, Query(description="Before this time (with its UTC offset).")
    ] = None,
    outcome: Annotated[
        Outcome | None,
        Query(description="`success`, `refused` (403), `not_found` (404) or `no_match`."),
    ] = None,
    nhs_number: Annotated[
        str | None,
        Query(
            max_length=20,
            description="Every search for this NHS number (and every audit search for it), by "
            "its keyed hash: the log never holds the number.",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[AuditEventOut]:
    """The audit log, newest first: who read or changed which record, for whom (the
    `X-On-Behalf-Of` person), when, and in which request. Answers "who has looked at this
    patient's record?" (`death_id`) and "what has this system done?" (`client_id`).

    Rows carry ids, never a name or NHS number: a search by NHS number is logged with the
    number's keyed hash, and `nhs_number=` finds those rows ("who searched for this patient,
    and was told they are not here?"). Each row has its `outcome`: refused (403) and
    not-found (404) requests are logged too. Reading the log is audited too (`audit.read`,
    with the death when `death_id` was given). Pseudonymised clients cannot hold this scope.

    Scope: `audit:read`.
    """
    if occurred_from and occurred_before and occurred_from >= occurred_before:
        raise ValidationFailed(
            "occurred_from is not before occurred_before.",
            errors=[
                {
                    "pointer": "query:/occurred_from",
                    "code": "range",
                    "detail": "not before occurred_before",
                }
            ],
        )
    number = None
    if nhs_number is not None:
        try:
            number = normalise_nhs_number(nhs_number)
        except InvalidNhsNumber as error:
            raise ValidationFailed(
                "The NHS number filter is not a valid NHS number.",
                errors=[
                    {"pointer": "query:/nhs_number", "code": "nhs_number", "detail": str(error)}
                ],
            ) from error
    filters = AuditFilters(
        death_id,
        client_id,
        resource_type,
        resource_id,
        action,
        occurred_from,
        occurred_before,
        outcome.value if outcome is not None else None,
        number,
    )
    async with database.transaction() as session:
        items, next_cursor = await list_audit_events(session, principal, filters, cursor, limit)
    return Page[AuditEventOut](items=items, next_cursor=next_cursor)
