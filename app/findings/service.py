"""Findings: the learning recorded against a death and the review it came from (under a theme
of app.findings.themes)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.principal import Principal
from app.errors import ValidationFailed, field_error
from app.events.service import Change
from app.findings.schemas import (
    FindingCreate,
    FindingKind,
    FindingOut,
    FindingPatch,
    ThemeRef,
)
from app.findings.themes import find_theme
from app.kit.cursor import encode_row_cursor, row_sort_key
from app.kit.enums import Route
from app.kit.etag import Precondition, etag
from app.kit.sql import load_one
from app.kit.time import now
from app.models import Death, Finding, Review, Theme
from app.privacy.order import by_month

Errors = list[dict[str, Any]]


def finding_out(finding: Finding, theme: Theme) -> FindingOut:
    values = {name: getattr(finding, name) for name in FindingOut.model_fields if name != "theme"}
    ref = ThemeRef(
        id=theme.id, code=theme.code, name=theme.name, retired=theme.retired_at is not None
    )
    return FindingOut.model_validate({**values, "theme": ref})


SHOWN_FROM_ELSEWHERE = {"theme", "died_on", "specialty", "route"}
"""What a finding shows that belongs to other rows: its theme (renamed or retired without a
new version of the finding), its death's date and specialty, its review's route."""


def finding_etag(finding: FindingOut, *, pseudonymised: bool = False) -> str:
    """The finding's tag: its own version (all If-Match compares) and a digest of what the
    reader is shown from its theme, death and review, so that If-None-Match re-downloads a
    finding whose theme was renamed or whose death was corrected. A pseudonymised reader is
    shown the month of death, not the day, and its digest is of the month: a digest of the
    day could be matched against the month's thirty-odd candidates."""
    shown = finding.model_dump(mode="json", include=SHOWN_FROM_ELSEWHERE)
    if pseudonymised:
        shown["died_on"] = shown["died_on"][:7]
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:12]
    return etag(finding.id, finding.version, digest)


def death_specialty(death: Death) -> str | None:
    return death.specialty_at_death or death.admitting_specialty


async def _theme_for_new_finding(
    session: AsyncSession,
    theme_id: uuid.UUID | None,
    theme_code: str | None,
    errors: Errors,
    current: uuid.UUID | None = None,
) -> Theme | None:
    """The theme named by id or code, open to new findings (a finding that already has a
    retired theme may keep it: `current`). Problems go to ``errors``."""
    if theme_id is not None and theme_code is not None:
        errors.append(
            field_error("/theme_code", "give theme_id or theme_code, not both", "exclusive")
        )
        return None
    if theme_id is None and theme_code is None:
        errors.append(field_error("/theme_id", "required: theme_id or theme_code", "missing"))
        return None
    if theme_id is not None:
        pointer, theme = "/theme_id", await session.get(Theme, theme_id)
    else:
        pointer = "/theme_code"
        theme = await session.scalar(select(Theme).where(Theme.code == theme_code))
    if theme is None:
        errors.append(field_error(pointer, "no theme with that id or code", "unknown_theme"))
        return None
    if theme.retired_at is not None and theme.id != current:
        errors.append(
            field_error(pointer, "the theme is retired: it takes no new findings", "retired")
        )
        return None
    return theme


async def _review_of(
    session: AsyncSession, review_id: uuid.UUID, death_id: uuid.UUID, errors: Errors
) -> Review | None:
    review = await session.get(Review, review_id)
    if review is None:
        errors.append(field_error("/review_id", "no review with that id", "unknown_review"))
        return None
    if review.death_id != death_id:
        errors.append(field_error("/review_id", "the review is of another death", "wrong_death"))
        return None
    return review


async def record_finding(
    session: AsyncSession, principal: Principal, body: FindingCreate
) -> FindingOut:
    """Record a finding against a death (and the review it came from). A body that names
    something that does not exist, or does not fit, is a 422 at its field: the resource the
    request is for (the findings collection) does exist."""
    errors: Errors = []
    # FOR SHARE: a correction of the death (which rewrites its findings' copies of its date
    # and specialty under FOR UPDATE) waits for this finding, or this finding sees it.
    death = await session.scalar(
        select(Death).where(Death.id == body.death_id).with_for_update(read=True)
    )
    if death is None:
        errors.append(field_error("/death_id", "no death with that id", "unknown_death"))
    review = None
    if body.review_id is not None and death is not None:
        review = await _review_of(session, body.review_id, death.id, errors)
    theme = await _theme_for_new_finding(session, body.theme_id, body.theme_code, errors)
    if errors or death is None or theme is None:
        raise ValidationFailed(
            "The finding cannot be recorded as given; see errors.", errors=errors
        )
    moment = now()
    finding = Finding(
        id=uuid.uuid4(),
        death_id=death.id,
        organisation_id=death.organisation_id,
        review_id=review.id if review else None,
        kind=body.kind.value,
        theme_id=theme.id,
        phase=body.phase.value if body.phase else None,
        description=body.description,
        died_on=death.died_on,
        specialty=death_specialty(death),
        route=review.route if review else None,
        recorded_by=body.recorded_by or principal.on_behalf_of,
        created_by_client_id=principal.client_id,
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    session.add(finding)
    await session.flush()
    journal = Journal(principal)
    journal.event(Change("finding.recorded", "finding", finding.id, death.id))
    journal.audit("finding.create", "finding", finding.id, death.id)
    await journal.write(session)
    return finding_out(finding, theme)


async def _load_finding(
    session: AsyncSession, finding_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Finding, Theme]:
    finding = await load_one(session, Finding, finding_id, "finding", for_update=for_update)
    return finding, await session.get_one(Theme, finding.theme_id)


async def read_finding(
    session: AsyncSession, principal: Principal, finding_id: uuid.UUID
) -> FindingOut:
    finding, theme = await _load_finding(session, finding_id)
    await record_access(
        session, principal, "finding.read", "finding", [(finding.id, finding.death_id)]
    )
    return finding_out(finding, theme)


async def patch_finding(
    session: AsyncSession,
    principal: Principal,
    finding_id: uuid.UUID,
    patch: FindingPatch,
    if_match: Precondition,
) -> FindingOut:
    """Correct a finding: its kind, theme, phase, description, who recorded it, or the review
    it came from (a review of the same death)."""
    finding, theme = await _load_finding(session, finding_id, for_update=True)
    if_match.check(finding.id, finding.version, finding_etag(finding_out(finding, theme)))
    changes = patch.model_dump(exclude_unset=True)
    errors: Errors = [
        field_error(f"/{name}", "this field cannot be cleared", "null_not_allowed")
        for name in ("kind", "description", "theme_id", "theme_code")
        if name in changes and changes[name] is None
    ]
    if errors:
        raise ValidationFailed("Some fields cannot be cleared.", errors=errors)
    values: dict[str, Any] = {}
    if "theme_id" in changes or "theme_code" in changes:
        new_theme = await _theme_for_new_finding(
            session, changes.get("theme_id"), changes.get("theme_code"), errors, theme.id
        )
        if new_theme is not None:
            theme = new_theme
            values["theme_id"] = new_theme.id
    if "review_id" in changes:
        values["review_id"] = values["route"] = None
        if changes["review_id"] is not None:
            review = await _review_of(session, changes["review_id"], finding.death_id, errors)
            if review is not None:
                values["review_id"], values["route"] = review.id, review.route
    if errors:
        raise ValidationFailed("The finding cannot be changed as given; see errors.", errors=errors)
    for name in ("kind", "phase", "description", "recorded_by"):
        if name in changes:
            value = changes[name]
            values[name] = value.value if isinstance(value, Enum) else value
    changed = [name for name, value in values.items() if getattr(finding, name) != value]
    journal = Journal(principal)
    if changed:
        for name in changed:
            setattr(finding, name, values[name])
        finding.version += 1
        finding.updated_at = now()
        await session.flush()
        journal.event(Change("finding.updated", "finding", finding.id, finding.death_id, changed))
        journal.audit("finding.update", "finding", finding.id, finding.death_id)
    else:
        journal.audit("finding.read", "finding", finding.id, finding.death_id)
    await journal.write(session)
    return finding_out(finding, theme)


@dataclass(frozen=True)
class FindingFilters:
    theme: str | None = None
    kind: FindingKind | None = None
    died_from: date | None = None
    died_to: date | None = None
    specialty: str | None = None
    route: Route | None = None
    death_id: uuid.UUID | None = None
    review_id: uuid.UUID | None = None


async def _filtered(session: AsyncSession, filters: FindingFilters) -> Select[Finding, Theme]:
    query = select(Finding, Theme).join(Theme, Finding.theme_id == Theme.id)
    if filters.died_from and filters.died_to and filters.died_from > filters.died_to:
        raise ValidationFailed(
            "died_from is after died_to.",
            errors=[field_error("query:/died_from", "after died_to", "range")],
        )
    if filters.theme is not None:
        theme = await find_theme(session, filters.theme)
        if theme is None:
            raise ValidationFailed(
                "No theme has that id or code.",
                errors=[
                    field_error("query:/theme", "no theme with that id or code", "unknown_theme")
                ],
            )
        query = query.where(Finding.theme_id == theme.id)
    if filters.kind is not None:
        query = query.where(Finding.kind == filters.kind.value)
    if filters.died_from is not None:
        query = query.where(Finding.died_on >= filters.died_from)
    if filters.died_to is not None:
        query = query.where(Finding.died_on <= filters.died_to)
    if filters.specialty is not None:
        query = query.where(Finding.specialty == filters.specialty)
    if filters.route is not None:
        query = query.where(Finding.route == filters.route.value)
    if filters.death_id is not None:
        query = query.where(Finding.death_id == filters.death_id)
    if filters.review_id is not None:
        query = query.where(Finding.review_id == filters.review_id)
    return query


async def list_findings(
    session: AsyncSession,
    principal: Principal,
    filters: FindingFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[FindingOut], str | None]:
    """Most recent death first (keyset on died_on, id; for a pseudonymised client on month of
    death, id); every finding returned is audited."""
    query = await _filtered(session, filters)
    # A pseudonymised client's in month of death, then id: nothing finer than the month.
    order = (
        by_month(Finding.died_on, Finding.id)
        if principal.pseudonymised
        else (Finding.died_on, Finding.id)
    )
    if cursor is not None:
        key = await row_sort_key(session, cursor, Finding.id, order[0])
        query = query.where(tuple_(*order) < tuple_(*key))
    rows = (
        await session.execute(query.order_by(order[0].desc(), Finding.id.desc()).limit(limit + 1))
    ).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = await encode_row_cursor(session, last.id)
    await record_access(
        session, principal, "finding.list", "finding", [(f.id, f.death_id) for f, _ in page]
    )
    return [finding_out(finding, theme) for finding, theme in page], next_cursor


async def refresh_death_copies(session: AsyncSession, death: Death) -> None:
    """A corrected death's date and specialty, copied onto its findings (they are copied so
    that filters and reports need no join; a correction must not leave them stale)."""
    specialty = death_specialty(death)
    await session.execute(
        update(Finding)
        .where(Finding.death_id == death.id)
        .values(died_on=death.died_on, specialty=specialty)
        .execution_options(synchronize_session=False)
    )
