"""Deaths: creation (from a screening), reading with the whole pipeline, listing, correcting."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.searches import audit_searches
from app.audit.service import record_access
from app.auth.principal import Principal
from app.deaths.duplicates import pending_duplicates
from app.deaths.schemas import ORGANISATION_CODES, DeathFields
from app.deaths.validation import check_death, default_nhs_number_status
from app.errors import Conflict, ValidationFailed, field_error
from app.kit.cursor import encode_row_cursor, row_sort_key
from app.kit.enums import (
    DeathStatus,
)
from app.kit.sql import insert_unless_exists, load_one, next_counter, table_of
from app.kit.time import age_in_years, local_date, now
from app.models import Counter, Death
from app.organisations.lookup import named_by
from app.organisations.service import recording_organisation
from app.privacy.order import by_month

DERIVED = ("died_on", "age_at_death", "age_in_days_at_death", "within_30_days_of_discharge")


class SourceKeyTaken(Conflict):
    """A sender's key (``source_system`` + ``source_reference``) held by a record the client
    cannot see: another organisation's, in a deployment several share (keys are unique across
    the deployment: docs/organisations.md). Names no record; a retry gets the same answer."""

    slug, title = "source-key-taken", "The sender's key is taken"

    def __init__(self, pointer: str) -> None:
        super().__init__(
            "This source_system + source_reference is already held by a record of another "
            "organisation (keys are unique across the deployment; each organisation names its "
            "systems with a prefix of its own, e.g. RWE-PAS). Send it under a key of your own.",
            errors=[
                field_error(
                    pointer,
                    "held by another organisation's record: use a key of your own",
                    "source_key_taken",
                )
            ],
        )


def derived_fields(values: dict[str, Any]) -> dict[str, Any]:
    died_on = local_date(values["died_at"])
    born: date = values["date_of_birth"]
    discharged_at: datetime | None = values.get("discharged_at")
    return {
        "died_on": died_on,
        "age_at_death": age_in_years(born, died_on),
        "age_in_days_at_death": (died_on - born).days,
        "within_30_days_of_discharge": discharged_at is not None
        and 0 <= (died_on - local_date(discharged_at)).days <= 30,
    }


def death_values(fields: DeathFields) -> dict[str, Any]:
    # The organisation codes are the registry's to resolve (app.deaths.organisations).
    values = fields.model_dump(mode="python", exclude=set(ORGANISATION_CODES))
    values = {k: (v.value if hasattr(v, "value") else v) for k, v in values.items()}
    if values.get("nhs_number_status") is None:
        values["nhs_number_status"] = default_nhs_number_status(values.get("nhs_number")).value
    return values


def validate_death(values: dict[str, Any], prefix: str) -> None:
    errors = check_death(values, now(), prefix)
    if errors:
        raise ValidationFailed(
            "The death's details are not possible as given; see errors.",
            errors=[error.as_dict() for error in errors],
        )


async def insert_death(
    session: AsyncSession, principal: Principal, values: dict[str, Any], status: DeathStatus
) -> Death | None:
    """Insert a new death from its validated field values (with the derived ones and its id),
    or return None when the sender's reference already names one (ON CONFLICT DO NOTHING, so
    two racing requests cannot both create it). The case number comes from the column's
    default (a sequence) on PostgreSQL, from a counter on SQLite."""
    moment = now()
    row = {
        **values,
        "organisation_id": values.get("organisation_id")
        or await recording_organisation(session, principal),
        "status": status.value,
        "version": 1,
        "created_by_client_id": principal.client_id,
        "created_at": moment,
        "updated_at": moment,
    }
    if session.get_bind().dialect.name != "postgresql":
        row["case_number"] = await next_counter(session, table_of(Counter), "case_number")
    inserted = await insert_unless_exists(
        session, Death, ("source_system", "source_reference"), row, ("case_number",)
    )
    if inserted is None:
        return None
    row["case_number"] = inserted.case_number
    return Death(**row)


async def find_by_source(session: AsyncSession, system: str, reference: str) -> Death | None:
    return await session.scalar(
        select(Death).where(Death.source_system == system, Death.source_reference == reference)
    )


async def load_death(
    session: AsyncSession, death_id: uuid.UUID, *, for_update: bool = False
) -> Death:
    return await load_one(session, Death, death_id, "death", for_update=for_update)


@dataclass(frozen=True)
class DeathFilters:
    died_from: date | None = None
    died_to: date | None = None
    specialty: str | None = None
    status: DeathStatus | None = None
    nhs_number: str | None = None
    site: str | None = None
    source_system: str | None = None
    source_reference: str | None = None
    case_number: int | None = None
    case_year: int | None = None
    possible_duplicate: bool | None = None
    # An ODS code or registry id: the deaths that organisation records.
    organisation: str | None = None


async def list_deaths(
    session: AsyncSession,
    principal: Principal,
    filters: DeathFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[Death], str | None]:
    """Newest death first, by keyset on (died_at, id); for a pseudonymised client newest
    month of death first, then by id (app.privacy.order)."""
    query = select(Death)
    if filters.died_from is not None:
        query = query.where(Death.died_on >= filters.died_from)
    if filters.died_to is not None:
        query = query.where(Death.died_on <= filters.died_to)
    if filters.specialty is not None:
        query = query.where(
            or_(
                Death.specialty_at_death == filters.specialty,
                Death.admitting_specialty == filters.specialty,
            )
        )
    if filters.status is not None:
        query = query.where(Death.status == filters.status.value)
    if filters.nhs_number is not None:
        query = query.where(Death.nhs_number == filters.nhs_number)
    if filters.site is not None:
        query = query.where(Death.site == filters.site)
    if filters.source_system is not None:
        query = query.where(Death.source_system == filters.source_system)
    if filters.organisation is not None:
        # A code the registry lacks names no organisation: an empty page, as for any filter.
        query = query.where(Death.organisation_id.in_(named_by(filters.organisation)))
    if filters.source_reference is not None:
        query = query.where(Death.source_reference == filters.source_reference)
    if filters.case_number is not None and filters.case_year is not None:
        query = query.where(
            Death.case_number == filters.case_number,
            Death.died_on >= date(filters.case_year, 1, 1),
            Death.died_on <= date(filters.case_year, 12, 31),
        )
    if filters.possible_duplicate is not None:
        flagged = pending_duplicates(Death.id)
        query = query.where(flagged if filters.possible_duplicate else ~flagged)
    if principal.pseudonymised:
        # Month of death, then the random id: the order says nothing finer than the month.
        order = by_month(Death.died_on, Death.id)
        if cursor is not None:
            key = await row_sort_key(session, cursor, Death.id, order[0])
            query = query.where(tuple_(*order) < key)
        query = query.order_by(order[0].desc(), Death.id.desc())
    else:
        if cursor is not None:
            died_at, last_id = await row_sort_key(session, cursor, Death.id, Death.died_at)
            query = query.where(
                or_(Death.died_at < died_at, and_(Death.died_at == died_at, Death.id < last_id))
            )
        query = query.order_by(Death.died_at.desc(), Death.id.desc())
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = await encode_row_cursor(session, page[-1].id) if len(rows) > limit else None
    await record_access(session, principal, "death.list", "death", [(d.id, d.id) for d in page])
    if filters.nhs_number is not None:
        await audit_searches(session, principal, [filters.nhs_number], page)
    return page, next_cursor
