from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from app.auth.deps import DeathsReader, DeathsWriter
from app.auth.scopes import Scope
from app.db import DatabaseDep
from app.deaths import duplicates, service
from app.deaths.duplicates import DuplicateStatus
from app.deaths.schemas import DeathDetail, DeathOut, DeathPatch, DuplicateReview, detail_etag
from app.deaths.service import DeathFilters
from app.errors import (
    BadRequest,
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
from app.kit.enums import DeathStatus
from app.kit.etag import NOT_MODIFIED, Conditional
from app.kit.nhs_number import InvalidNhsNumber, normalise_nhs_number
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.privacy import views
from app.privacy.filters import refuse_identifying_filters
from app.privacy.schemas import DeathDetailPseudonymised, DeathPseudonymised
from app.privacy.writes import Written, written

router = APIRouter(prefix="/v1/deaths", tags=["deaths"])
CASE_REFERENCE = re.compile(r"^D-([0-9]{4})-([0-9]{1,12})$")
AUTH = (Unauthorized, Forbidden)
Name = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get(
    "",
    response_model=Page[DeathOut | DeathPseudonymised],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_deaths(
    principal: DeathsReader,
    database: DatabaseDep,
    died_from: Annotated[
        date | None, Query(description="Died on or after (UK local date).")
    ] = None,
    died_to: Annotated[date | None, Query(description="Died on or before (UK local date).")] = None,
    specialty: Annotated[
        str | None,
        Query(
            min_length=1, max_length=100, description="Admitting specialty or specialty at death."
        ),
    ] = None,
    status: DeathStatus | None = None,
    nhs_number: Annotated[str | None, Query(max_length=20)] = None,
    site: Name = None,
    source_system: Name = None,
    source_reference: Name = None,
    case_reference: Annotated[
        str | None,
        Query(max_length=24, description="The service's case reference, e.g. D-2026-000123."),
    ] = None,
    possible_duplicate: Annotated[
        bool | None,
        Query(
            description="true: only deaths flagged as a possible duplicate person and not yet "
            "reviewed (`possible_duplicate_of`); false: only the others."
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[DeathOut | DeathPseudonymised]:
    """Deaths, newest first, with filters. Every death returned is recorded in the audit log.

    A pseudonymised client gets each death pseudonymised, and may not filter by
    `nhs_number`, `source_reference` or `possible_duplicate`, nor by `died_from`/`died_to`
    inside a month (400).

    Scope: `deaths:read`.
    """
    refuse_identifying_filters(
        principal,
        {
            "nhs_number": nhs_number,
            "source_reference": source_reference,
            "possible_duplicate": possible_duplicate,
        },
        died_from,
        died_to,
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
    if died_from and died_to and died_from > died_to:
        raise ValidationFailed(
            "died_from is after died_to.",
            errors=[{"pointer": "query:/died_from", "code": "range", "detail": "after died_to"}],
        )
    case_number = case_year = None
    if case_reference is not None:
        match = CASE_REFERENCE.match(case_reference.strip().upper())
        if match is None:
            raise ValidationFailed(
                "The case reference is not of the form D-<year>-<number>.",
                errors=[
                    {
                        "pointer": "query:/case_reference",
                        "code": "case_reference",
                        "detail": "expected D-<year>-<number>, e.g. D-2026-000123",
                    }
                ],
            )
        case_year, case_number = int(match.group(1)), int(match.group(2))
    filters = DeathFilters(
        died_from,
        died_to,
        specialty,
        status,
        number,
        site,
        source_system,
        source_reference,
        case_number,
        case_year,
        possible_duplicate,
    )
    async with database.transaction() as session:
        deaths, next_cursor = await service.list_deaths(session, principal, filters, cursor, limit)
        items = [DeathOut.model_validate(death) for death in deaths]
    view = await views.view_for(database, principal)
    return Page[DeathOut | DeathPseudonymised](
        items=view.show_all(items, views.death), next_cursor=next_cursor
    )


@router.get(
    "/{death_id}",
    response_model=DeathDetail | DeathDetailPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_death(
    death_id: uuid.UUID,
    principal: DeathsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> DeathDetail | DeathDetailPseudonymised | Response:
    """A death with where it stands: its screening (with overrides) and its referrals.

    The `ETag` changes whenever the death's own details or status change; send it in
    `If-Match` to `PATCH`, or in `If-None-Match` to get a 304 when nothing changed.
    A pseudonymised client gets the death pseudonymised (under its own ETag).

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        death = await service.read_death(session, principal, death_id)
    view = await views.view_for(database, principal)
    return conditional.reply(
        detail_etag(death),
        view.show(death, views.death_detail),
        pseudonymised=view.pseudonymised,
    )


@router.patch(
    "/{death_id}",
    response_model=DeathDetail | Written,
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
async def patch_death(
    death_id: uuid.UUID,
    patch: DeathPatch,
    principal: DeathsWriter,
    database: DatabaseDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description="The death's ETag.")
    ] = None,
) -> DeathDetail | Written:
    """Correct a death's details (only the fields sent change; `null` clears an optional one).

    Needs `If-Match` (428 without, 412 when stale). The same date rules as intake apply to the
    corrected death. When a correction changes what the referral rules see (a learning
    disability recorded late, say), the referrals follow.

    The answer is the corrected death for a client that also holds `deaths:read`; a client
    without it gets only the id, the new version and the link (its `ETag` in the header).

    Scope: `deaths:write`.
    """
    async with database.transaction() as session:
        death = await service.patch_death(
            session, principal, database.settings, death_id, patch, if_match
        )
    response.headers["ETag"] = detail_etag(death)
    return written(
        principal,
        Scope.deaths_read,
        death,
        death.id,
        death.version,
        {"self": f"/v1/deaths/{death.id}"},
        death_id=death.id,
    )


@router.post(
    "/{death_id}/duplicate-review",
    response_model=DeathDetail | Written,
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
async def review_duplicate(
    death_id: uuid.UUID,
    body: DuplicateReview,
    principal: DeathsWriter,
    database: DatabaseDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description="The death's ETag.")
    ] = None,
) -> DeathDetail | Written:
    """Decide whether a death flagged as a possible duplicate (`possible_duplicate_of`: the
    same NHS number recorded under another source reference) is the same person as the other
    death. `same_person` links the two (`same_person_as` on both); `different_people` clears
    the flag. Nothing is merged or deleted. Either death of the pair may be named in the path;
    a pair that is not flagged is a 422 at `/other_death_id`. A decision may be changed by
    another review.

    Needs the death's `If-Match`. Both deaths get a new version, an audit row
    (`death.duplicate_review`) and the event `death.duplicate_reviewed`. The answer is the
    death for a client that also holds `deaths:read`, else its id, version and link.

    Scope: `deaths:write`.
    """
    async with database.transaction() as session:
        await duplicates.review_duplicate(
            session,
            principal,
            death_id,
            body.other_death_id,
            DuplicateStatus(body.decision),
            if_match,
        )
        death = await service.detail(session, await service.load_death(session, death_id))
    response.headers["ETag"] = detail_etag(death)
    return written(
        principal,
        Scope.deaths_read,
        death,
        death.id,
        death.version,
        {"self": f"/v1/deaths/{death.id}"},
        death_id=death.id,
    )
