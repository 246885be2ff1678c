"""A corrected record over what an earlier import wrote: each row compared with its planned
values and changed only where they differ, keeping versions as live amendments do (a
screening's and a review's previous version as a snapshot; every row's version number raised).
A correction may add referrals, reviews and findings but never drops one: that is refused, with
a pointer, before anything is written."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import field_error
from app.history.plan import Links, Planned
from app.kit.sql import insert_rows
from app.models import (
    Death,
    Finding,
    Referral,
    Review,
    ReviewPhaseRating,
    ReviewProblem,
    ReviewVersion,
    RouteOverride,
    Screening,
    ScreeningVersion,
)
from app.reviews.views import review_out
from app.screenings.views import screening_snapshot

# Columns a correction never rewrites: keys, who created the row, when it was first written.
FIXED = {"id", "case_number", "created_by_client_id", "recorded_by_client_id", "version"}


def removed_references(before: Links, after: Links) -> list[dict[str, Any]]:
    errors = []
    for kind in ("referrals", "reviews", "findings"):
        for reference in sorted(set(before.get(kind, {})) - set(after.get(kind, {}))):
            errors.append(
                field_error(
                    f"/{'referrals' if kind == 'reviews' else kind}",
                    f"{kind[:-1]} {reference!r} was imported before and is missing from the "
                    "correction; a correction cannot remove one (close it with a status instead)",
                    "removed",
                )
            )
    return errors


def _differs(row: Any, values: dict[str, Any]) -> list[str]:
    return [
        name for name, value in values.items() if name not in FIXED and getattr(row, name) != value
    ]


def _assign(row: Any, values: dict[str, Any], changed: list[str]) -> None:
    for name in changed:
        setattr(row, name, values[name])
    row.version += 1


async def apply_correction(
    session: AsyncSession, principal: Principal, planned: Planned
) -> set[str]:
    """Bring one imported death's rows to the corrected record; the kinds of row changed."""
    kinds: set[str] = set()
    death_id = planned.death_id
    death = await session.get_one(Death, death_id, with_for_update=True)
    planned.belong_to(death.organisation_id)
    changed = _differs(death, planned.death)
    if changed:
        _assign(death, planned.death, changed)
        kinds.add("deaths")
    screening = await session.get_one(Screening, planned.screening["id"])
    overrides = list(
        (
            await session.scalars(select(RouteOverride).where(RouteOverride.death_id == death_id))
        ).all()
    )
    old_overrides = sorted((o.route, o.override_reason, o.recorded_at) for o in overrides)
    new_overrides = sorted(
        (o["route"], o["override_reason"], o["recorded_at"]) for o in planned.overrides
    )
    changed = _differs(screening, planned.screening)
    if changed or old_overrides != new_overrides:
        session.add(
            ScreeningVersion(
                screening_id=screening.id,
                version=screening.version,
                snapshot=screening_snapshot(screening, overrides),
                superseded_by_client_id=principal.client_id,
            )
        )
        _assign(screening, planned.screening, changed)
        await session.execute(delete(RouteOverride).where(RouteOverride.death_id == death_id))
        await insert_rows(session, RouteOverride, planned.overrides)
        kinds.add("screenings")
    if await _rows(session, Referral, Referral.death_id == death_id, planned.referrals):
        kinds.add("referrals")
    reviews = {
        r.id: r
        for r in (await session.scalars(select(Review).where(Review.death_id == death_id))).all()
    }
    for values in planned.reviews:
        review = reviews.get(values["id"])
        if review is None:
            await insert_rows(session, Review, [values])
        else:
            changed = _differs(review, values)
            if not changed:
                continue
            session.add(
                ReviewVersion(
                    review_id=review.id,
                    version=review.version,
                    superseded_by_client_id=principal.client_id,
                    snapshot=(await review_out(session, review)).model_dump(mode="json"),
                )
            )
            _assign(review, values, changed)
        await _review_parts(session, values["id"], planned)
        kinds.add("reviews")
    if await _rows(session, Finding, Finding.death_id == death_id, planned.findings):
        kinds.add("findings")
    await session.flush()
    return kinds


async def _rows(
    session: AsyncSession, model: type[Any], where: Any, planned: list[dict[str, Any]]
) -> bool:
    current = {row.id: row for row in (await session.scalars(select(model).where(where))).all()}
    touched = False
    new = []
    for values in planned:
        row = current.get(values["id"])
        if row is None:
            new.append(values)
            continue
        changed = _differs(row, values)
        if changed:
            _assign(row, values, changed)
            touched = True
    await session.flush()
    await insert_rows(session, model, new)
    return touched or bool(new)


async def _review_parts(session: AsyncSession, review_id: uuid.UUID, planned: Planned) -> None:
    await session.flush()
    await session.execute(delete(ReviewPhaseRating).where(ReviewPhaseRating.review_id == review_id))
    await session.execute(delete(ReviewProblem).where(ReviewProblem.review_id == review_id))
    await insert_rows(
        session, ReviewPhaseRating, [r for r in planned.phases if r["review_id"] == review_id]
    )
    await insert_rows(
        session, ReviewProblem, [r for r in planned.problems if r["review_id"] == review_id]
    )
