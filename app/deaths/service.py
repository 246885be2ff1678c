"""Deaths: creation (from a screening), reading with the whole pipeline, listing, correcting."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.deps import Principal
from app.config import Settings
from app.deaths.schemas import DeathDetail, DeathFields, DeathPatch
from app.deaths.validation import check_death, default_nhs_number_status
from app.errors import NotFound, ValidationFailed
from app.events.service import Change
from app.findings.service import refresh_death_copies
from app.kit.cursor import encode_row_cursor, row_sort_key
from app.kit.enums import (
    FINAL_EXTERNAL_STATUSES,
    OPEN_REFERRAL_STATUSES,
    DeathStatus,
    Instrument,
    ReviewStatus,
    Route,
)
from app.kit.etag import check_if_match
from app.kit.sql import insert_unless_exists, next_counter, table_of
from app.kit.time import age_in_years, local_date, now
from app.models import Counter, Death, Referral, Review, RouteOverride, Screening
from app.referrals.service import death_status, reconcile_referrals
from app.reviews.views import reviews_of_death
from app.screenings.views import screening_out

DERIVED = ("died_on", "age_at_death", "age_in_days_at_death", "within_30_days_of_discharge")


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
    values = fields.model_dump(mode="python")
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
    query = select(Death).where(Death.id == death_id)
    if for_update:
        query = query.with_for_update()
    death = await session.scalar(query)
    if death is None:
        raise NotFound("No death with that id.")
    return death


async def detail(session: AsyncSession, death: Death) -> DeathDetail:
    screening = await session.scalar(select(Screening).where(Screening.death_id == death.id))
    overrides: list[RouteOverride] = []
    if screening is not None:
        overrides = list(
            (
                await session.scalars(
                    select(RouteOverride)
                    .where(RouteOverride.screening_id == screening.id)
                    .order_by(RouteOverride.route)
                )
            ).all()
        )
    referrals = (
        await session.scalars(
            select(Referral)
            .where(Referral.death_id == death.id)
            .order_by(Referral.created_at, Referral.route)
        )
    ).all()
    base = DeathDetail.model_validate(
        {
            **{k: getattr(death, k) for k in DeathDetail.model_fields if hasattr(death, k)},
            "screening": screening_out(screening, overrides) if screening else None,
            "referrals": list(referrals),
            "reviews": await reviews_of_death(session, death.id),
        },
    )
    return base


async def read_death(
    session: AsyncSession, principal: Principal, death_id: uuid.UUID
) -> DeathDetail:
    death = await load_death(session, death_id)
    await record_access(session, principal, "death.read", "death", [(death.id, death.id)])
    return await detail(session, death)


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


async def list_deaths(
    session: AsyncSession,
    principal: Principal,
    filters: DeathFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[Death], str | None]:
    """Newest death first, by keyset on (died_at, id)."""
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
    if filters.source_reference is not None:
        query = query.where(Death.source_reference == filters.source_reference)
    if filters.case_number is not None and filters.case_year is not None:
        query = query.where(
            Death.case_number == filters.case_number,
            Death.died_on >= date(filters.case_year, 1, 1),
            Death.died_on <= date(filters.case_year, 12, 31),
        )
    if cursor is not None:
        died_at, last_id = await row_sort_key(session, cursor, Death.id, Death.died_at)
        query = query.where(
            or_(Death.died_at < died_at, and_(Death.died_at == died_at, Death.id < last_id))
        )
    rows = list(
        (
            await session.scalars(
                query.order_by(Death.died_at.desc(), Death.id.desc()).limit(limit + 1)
            )
        ).all()
    )
    page = rows[:limit]
    next_cursor = encode_row_cursor(page[-1].id) if len(rows) > limit else None
    await record_access(session, principal, "death.list", "death", [(d.id, d.id) for d in page])
    return page, next_cursor


async def follow_referrals(
    session: AsyncSession, death: Death, referrals: Sequence[Referral]
) -> bool:
    """Set a screened death's status from its referrals (and, once none is open, from whether
    an outside review is still running); True when it changed."""
    pending = False
    if not any(r.status in OPEN_REFERRAL_STATUSES for r in referrals):
        pending = await external_review_pending(session, death.id)
    status = death_status(True, referrals, pending).value
    if death.status != status:
        death.status = status
        return True
    return False


async def refresh_death_status(
    session: AsyncSession, journal: Journal, death_id: uuid.UUID
) -> None:
    """After a referral or review changed: the death's status follows, under a row lock so
    that two referrals of one death changing at once cannot lose an update."""
    death = await load_death(session, death_id, for_update=True)
    referrals = (await session.scalars(select(Referral).where(Referral.death_id == death_id))).all()
    if await follow_referrals(session, death, referrals):
        death.version += 1
        journal.event(Change("death.updated", "death", death.id, death.id, ["status"]))


async def external_review_pending(session: AsyncSession, death_id: uuid.UUID) -> bool:
    """A submitted LeDeR or external review whose outside process has not finished."""
    found = await session.scalar(
        select(Review.id)
        .where(
            Review.death_id == death_id,
            Review.status == ReviewStatus.submitted.value,
            Review.instrument.in_([Instrument.leder.value, Instrument.external.value]),
            or_(
                Review.external_status.is_(None),
                Review.external_status.not_in(list(FINAL_EXTERNAL_STATUSES)),
            ),
        )
        .limit(1)
    )
    return found is not None


async def patch_death(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    death_id: uuid.UUID,
    patch: DeathPatch,
    if_match: str | None,
) -> DeathDetail:
    """Correct a death's details. Derived fields follow, and when the correction changes what
    the referral rules see, the referrals follow too."""
    death = await load_death(session, death_id, for_update=True)
    check_if_match(if_match, death.id, death.version)
    journal = Journal(principal)
    changes = patch.model_dump(exclude_unset=True, mode="python")
    required = {
        "date_of_birth",
        "sex",
        "died_at",
        "place_of_death",
        "admission_method",
        "learning_disability",
        "autism",
        "serious_mental_illness",
        "pregnant_or_recently_pregnant",
    }
    nulls = [
        {
            "pointer": f"/{name}",
            "code": "null_not_allowed",
            "detail": "this field cannot be cleared",
        }
        for name, value in changes.items()
        if value is None and name in required
    ]
    if nulls:
        raise ValidationFailed("Some fields cannot be cleared.", errors=nulls)
    changes = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
    if (
        "nhs_number" in changes
        and "nhs_number_status" not in changes
        and changes["nhs_number"] != death.nhs_number
    ):
        # A new number has not been traced; resending the same one keeps its status.
        changes["nhs_number_status"] = default_nhs_number_status(changes["nhs_number"]).value
    if changes.get("nhs_number_status", "") is None:
        changes["nhs_number_status"] = default_nhs_number_status(
            changes.get("nhs_number", death.nhs_number)
        ).value
    current = {name: getattr(death, name) for name in DeathFields.model_fields}
    merged = {**current, **changes}
    validate_death(merged, "")
    merged.update(derived_fields(merged))
    changed = [name for name, value in merged.items() if getattr(death, name) != value]
    if changed:
        for name in changed:
            setattr(death, name, merged[name])
        if {"died_on", "specialty_at_death", "admitting_specialty"} & set(changed):
            await refresh_death_copies(session, death)
        if "died_on" in changed:
            await copy_died_on(session, death)
        death.version += 1
        journal.event(
            Change(
                "death.updated",
                "death",
                death.id,
                death.id,
                [name for name in changed if name not in DERIVED],
            )
        )
        screening = await session.scalar(select(Screening).where(Screening.death_id == death.id))
        if screening is not None:
            overrides = await _current_overrides(session, screening)
            reconciled = await reconcile_referrals(
                session, journal, settings, death, screening, overrides
            )
            await follow_referrals(session, death, reconciled.referrals)
    journal.audit("death.update", "death", death.id, death.id)
    await journal.write(session)
    return await detail(session, death)


async def copy_died_on(session: AsyncSession, death: Death) -> None:
    """A corrected local date of death, onto the rows that carry a copy of it so that reports
    read a period's rows by it (findings: refresh_death_copies)."""
    for model in (Screening, RouteOverride, Referral, Review):
        await session.execute(
            update(model).where(model.death_id == death.id).values(died_on=death.died_on)
        )


async def _current_overrides(session: AsyncSession, screening: Screening) -> dict[Route, str]:
    rows = (
        await session.scalars(
            select(RouteOverride).where(RouteOverride.screening_id == screening.id)
        )
    ).all()
    return {Route(row.route): row.override_reason for row in rows}
