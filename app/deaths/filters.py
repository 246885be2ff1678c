"""GET /v1/deaths's query as a dependency: the filters parsed and checked before the route
runs, into the DeathFilters the service takes, with the page's cursor and size."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Query

from app.auth.deps import DeathsReader
from app.deaths.service import DeathFilters
from app.errors import ValidationFailed
from app.kit.enums import DeathStatus
from app.kit.nhs_number import InvalidNhsNumber, normalise_nhs_number
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.organisations.lookup import is_reference
from app.privacy.filters import refuse_identifying_filters

CASE_REFERENCE = re.compile(r"^D-([0-9]{4})-([0-9]{1,12})$")
Name = Annotated[str | None, Query(min_length=1, max_length=100)]


@dataclass(frozen=True)
class DeathListQuery:
    filters: DeathFilters
    cursor: str | None
    limit: int


async def death_list_query(
    principal: DeathsReader,
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
    organisation: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=36,
            description="The organisation that records the deaths, by ODS code (any case) or "
            "registry id. Only organisations in this client's reach have deaths to show.",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> DeathListQuery:
    """The filters, checked: a pseudonymised client may not filter by identifiers or inside a
    month (400), an NHS number must be valid and a case reference well formed (422), and the
    period must not end before it starts (422)."""
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
        _organisation(organisation),
    )
    return DeathListQuery(filters, cursor, limit)


def _organisation(reference: str | None) -> str | None:
    if reference is None or is_reference(reference):
        return reference
    raise ValidationFailed(
        "The organisation filter is neither an ODS code nor an organisation id.",
        errors=[
            {
                "pointer": "query:/organisation",
                "code": "organisation",
                "detail": "expected an ODS code (e.g. RR8) or an organisation id (a UUID)",
            }
        ],
    )


DeathListQueryDep = Annotated[DeathListQuery, Depends(death_list_query)]
