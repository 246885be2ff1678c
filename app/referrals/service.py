"""Referrals: created and kept in step with the rules, and listed as queues."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.config import Settings
from app.errors import ValidationFailed
from app.events.service import Change
from app.kit.enums import (
    OPEN_REFERRAL_STATUSES,
    AdmissionMethod,
    ReasonCode,
    ReferralStatus,
    Route,
)
from app.kit.sql import insert_rows, row_of
from app.kit.time import now
from app.models import Death, Referral, RouteOverride, Screening
from app.organisations.settings import settings_for
from app.referrals.rules import (
    SCREENING_REASONS,
    RuleConfig,
    RuleFacts,
    required_routes,
    with_learning_sample,
)

SUPERSEDED = "no longer required: the screening or the death's details were amended"


def rule_config(settings: Settings) -> RuleConfig:
    return RuleConfig.build(
        settings.mortality_alert_specialties,
        settings.mortality_alert_diagnosis_groups,
        settings.mm_specialties,
        settings.learning_sample_percent,
    )


def rule_facts(death: Death, screening: Screening) -> RuleFacts:
    return RuleFacts(
        age_years=death.age_at_death,
        age_days=death.age_in_days_at_death,
        learning_disability=death.learning_disability,
        autism=death.autism,
        serious_mental_illness=death.serious_mental_illness,
        pregnant_or_recently_pregnant=death.pregnant_or_recently_pregnant,
        admission_method=AdmissionMethod(death.admission_method),
        specialties=tuple(s for s in (death.admitting_specialty, death.specialty_at_death) if s),
        diagnosis_group=death.diagnosis_group,
        # A concern raised in any logged contact with the bereaved counts as one raised.
        bereaved_concern=screening.bereaved_concerns is not None
        or any(c.get("concerns") for c in (screening.scrutiny or {}).get("bereaved_contacts", [])),
        staff_concern=screening.staff_concerns is not None,
        me_concern=screening.clinical_governance_concern is not None,
        death_expected=screening.death_expected,
        coroner_notified=screening.coroner_notified,
        patient_safety_concern=screening.patient_safety_concern is not None,
        sample_key=f"{death.source_system}\x1f{death.source_reference}",
    )


@dataclass(frozen=True)
class ReferralPlan:
    """What the rules, the ME's requests and the ME's overrides call for."""

    required: dict[Route, list[ReasonCode]]
    desired: dict[Route, list[ReasonCode]]
    overrides: dict[Route, str]


@dataclass
class Reconciled:
    plan: ReferralPlan
    referrals: list[Referral] = field(default_factory=list)
    created: list[Referral] = field(default_factory=list)
    overrides: list[RouteOverride] = field(default_factory=list)


def new_referral_row(
    settings: Settings,
    death: Death,
    route: Route,
    stage: int | None,
    reasons: list[ReasonCode],
    moment: datetime,
    excluded_reviewer: str | None = None,
) -> dict[str, Any]:
    """A ready referral's row, with its priority and due date from the configuration."""
    return {
        "id": uuid.uuid4(),
        "death_id": death.id,
        "organisation_id": death.organisation_id,
        "died_on": death.died_on,
        "route": route.value,
        "stage": stage,
        "reasons": [code.value for code in reasons],
        "status": ReferralStatus.ready.value,
        "specialty": death.specialty_at_death or death.admitting_specialty,
        "site": death.site,
        "priority": settings.priorities[route],
        "due_at": moment + timedelta(days=settings.due_days[route]),
        "created_at": moment,
        "updated_at": moment,
        "version": 1,
        "excluded_reviewer": excluded_reviewer,
    }


@dataclass(frozen=True)
class FollowOn:
    """A referral a review calls for: route, stage, why, and who may not take it."""

    route: Route
    stage: int | None
    reason: ReasonCode
    excluded_reviewer: str | None = None


async def raise_follow_ons(
    session: AsyncSession,
    journal: Journal,
    settings: Settings,
    death: Death,
    follow_ons: list[FollowOn],
) -> list[Referral]:
    """Create the referrals a review calls for, unless the death already has one for that
    route and stage that is open or done (a retried or amended review raises nothing twice).
    Their due days are those of the death's organisation."""
    if not follow_ons:
        return []
    settings = await settings_for(session, settings, death.organisation_id)
    existing = (await session.scalars(select(Referral).where(Referral.death_id == death.id))).all()
    live = {
        (r.route, r.stage)
        for r in existing
        if r.status not in {ReferralStatus.cancelled, ReferralStatus.declined}
    }
    moment = now()
    rows = []
    for follow_on in follow_ons:
        key = (follow_on.route.value, follow_on.stage)
        if key in live:
            continue
        live.add(key)
        rows.append(
            new_referral_row(
                settings,
                death,
                follow_on.route,
                follow_on.stage,
                [follow_on.reason],
                moment,
                follow_on.excluded_reviewer,
            )
        )
    await insert_rows(session, Referral, rows)
    created = [Referral(**row) for row in rows]
    for referral in created:
        journal.event(Change("referral.created", "referral", referral.id, death.id))
        journal.audit("referral.create", "referral", referral.id, death.id)
    return created


def _stage(route: Route) -> int | None:
    return 1 if route is Route.sjr else None


def plan_referrals(
    settings: Settings,
    death: Death,
    screening: Screening,
    overrides: dict[Route, str],
    *,
    pointer_prefix: str = "",
) -> ReferralPlan:
    """Pure: which routes are required (with reasons) and which should be referred. An
    override of a route the rules do not require is refused (422), pointing at it.
    ``settings``: those of the death's organisation (app.organisations.settings.settings_for)."""
    facts = rule_facts(death, screening)
    config = rule_config(settings)
    requested = [Route(route) for route in screening.routes_requested]
    required = with_learning_sample(required_routes(facts, config), requested, facts, config)
    errors = [
        {
            "pointer": f"{pointer_prefix}/overrides/{index}/route",
            "code": "override_not_required",
            "detail": f"the rules do not require {route.value} for this death, so it cannot be "
            "overridden",
        }
        for index, route in enumerate(overrides)
        if route not in required
    ]
    if errors:
        raise ValidationFailed("An override names a route the rules do not require.", errors=errors)
    desired: dict[Route, list[ReasonCode]] = {
        route: list(reasons) for route, reasons in required.items() if route not in overrides
    }
    for route in requested:
        desired.setdefault(route, []).append(ReasonCode.me_requested)
    return ReferralPlan(required=required, desired=desired, overrides=dict(overrides))


async def apply_plan(
    session: AsyncSession,
    journal: Journal,
    settings: Settings,
    death: Death,
    screening: Screening,
    plan: ReferralPlan,
    *,
    new_death: bool = False,
) -> Reconciled:
    """Bring a death's screening-driven referrals in line with the plan. Creates what is newly
    called for, updates reasons, cancels referrals still waiting in the queue that nothing
    calls for any more; never touches work that a reviewer holds or finished, nor referrals
    raised by reviews (second stage, PSII). For a death created in this transaction there is
    nothing to read first (``new_death``). ``settings``: the death's organisation's, as the
    plan was made with."""
    existing: list[Referral] = []
    if not new_death:
        existing = list(
            (await session.scalars(select(Referral).where(Referral.death_id == death.id))).all()
        )
    moment = now()
    rows: list[dict[str, Any]] = []
    for route, reasons in plan.desired.items():
        stage = _stage(route)
        same = [r for r in existing if r.route == route and r.stage == stage]
        current = next((r for r in same if r.status in OPEN_REFERRAL_STATUSES), None)
        if current is not None:
            kept = [code for code in current.reasons if code not in SCREENING_REASONS]
            wanted = [code.value for code in reasons] + kept
            if wanted != current.reasons:
                current.reasons = wanted
                current.version += 1
                journal.event(
                    Change("referral.updated", "referral", current.id, death.id, ["reasons"])
                )
            continue
        if any(r.status in {ReferralStatus.completed, ReferralStatus.declined} for r in same):
            continue
        rows.append(new_referral_row(settings, death, route, stage, reasons, moment))

    for referral in existing:
        if (
            referral.status == ReferralStatus.ready
            and Route(referral.route) not in plan.desired
            and set(referral.reasons) <= SCREENING_REASONS
        ):
            referral.status = ReferralStatus.cancelled.value
            referral.status_reason = SUPERSEDED
            referral.version += 1
            journal.event(
                Change("referral.cancelled", "referral", referral.id, death.id, ["status"])
            )

    await insert_rows(session, Referral, rows)
    created = [Referral(**row) for row in rows]
    for referral in created:
        journal.event(Change("referral.created", "referral", referral.id, death.id))
        journal.audit("referral.create", "referral", referral.id, death.id)
    overrides = await _replace_overrides(session, death, screening, plan, new_death=new_death)
    return Reconciled(plan=plan, referrals=existing + created, created=created, overrides=overrides)


async def _replace_overrides(
    session: AsyncSession,
    death: Death,
    screening: Screening,
    plan: ReferralPlan,
    *,
    new_death: bool,
) -> list[RouteOverride]:
    stored: dict[Route, RouteOverride] = {}
    if not new_death:
        stored = {
            Route(row.route): row
            for row in (
                await session.scalars(
                    select(RouteOverride).where(RouteOverride.screening_id == screening.id)
                )
            ).all()
        }
    for route, row in stored.items():
        if route not in plan.overrides:
            await session.delete(row)
    current: list[RouteOverride] = []
    new_rows: list[dict[str, Any]] = []
    for route, reason in plan.overrides.items():
        codes = [code.value for code in plan.required[route]]
        found = stored.get(route)
        if found is None:
            row = RouteOverride(
                id=uuid.uuid4(),
                screening_id=screening.id,
                death_id=death.id,
                organisation_id=death.organisation_id,
                died_on=death.died_on,
                route=route.value,
                reason_codes=codes,
                override_reason=reason,
                recorded_at=now(),
            )
            new_rows.append(row_of(row))
        else:
            row = found
            if row.override_reason != reason or row.reason_codes != codes:
                row.override_reason = reason
                row.reason_codes = codes
        current.append(row)
    await insert_rows(session, RouteOverride, new_rows)
    return sorted(current, key=lambda row: row.route)


async def reconcile_referrals(
    session: AsyncSession,
    journal: Journal,
    settings: Settings,
    death: Death,
    screening: Screening,
    overrides: dict[Route, str],
    *,
    pointer_prefix: str = "",
) -> Reconciled:
    """Plan and apply, for a death that already exists, by the rules of its organisation."""
    settings = await settings_for(session, settings, death.organisation_id)
    plan = plan_referrals(settings, death, screening, overrides, pointer_prefix=pointer_prefix)
    return await apply_plan(session, journal, settings, death, screening, plan)
