"""Everything the service holds of a period's deaths, as the history bundle it imports: one
record per death, in order of date of death, read a page of deaths at a time (one query per
table per page), so that memory stays flat whatever the number of deaths. Imported deaths
keep the bundle's references; those live intake recorded use their rows' ids."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.history.bundle import FORMAT
from app.history.csvset import DEATH_COLUMNS, DEATH_FLAGS
from app.kit.enums import ReferralStatus, Route
from app.models import (
    Death,
    Finding,
    HistoryRecord,
    Organisation,
    Referral,
    Review,
    RouteOverride,
    Screening,
    Theme,
)

PAGE = 2000
# The death as a bundle holds it: its source and the columns and flags a CSV set has too.
DEATH_FIELDS = ("source_system", "source_reference", *DEATH_COLUMNS, *DEATH_FLAGS)


def _by_death(rows: Any) -> dict[uuid.UUID, list[Any]]:
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.death_id].append(row)
    return grouped


def _screening(screening: Screening, overrides: list[RouteOverride]) -> dict[str, Any]:
    return {
        "examiner": {"name": screening.examiner_name, "gmc_number": screening.examiner_gmc_number},
        "screened_at": screening.screened_at,
        "records_reviewed": screening.records_reviewed,
        "qap_discussed": screening.qap_discussed,
        "bereaved_contacted": screening.bereaved_contacted,
        "bereaved_concerns": screening.bereaved_concerns,
        "staff_concerns": screening.staff_concerns,
        "cause_of_death": {
            "part_1a": screening.cause_part_1a,
            "part_1b": screening.cause_part_1b,
            "part_1c": screening.cause_part_1c,
            "part_2": screening.cause_part_2,
        },
        "mccd_issued_at": screening.mccd_issued_at,
        "coroner_notified": screening.coroner_notified,
        "coroner_reason": screening.coroner_reason,
        "clinical_governance_concern": screening.clinical_governance_concern,
        "death_expected": screening.death_expected,
        "patient_safety_concern": screening.patient_safety_concern,
        "routes_requested": screening.routes_requested,
        "overrides": [
            {"route": o.route, "reason": o.override_reason, "recorded_at": o.recorded_at}
            for o in sorted(overrides, key=lambda o: o.route)
        ],
    }


def _closed_at(referral: Referral) -> Any:
    if referral.status == ReferralStatus.completed:
        return referral.completed_at
    if referral.status in {ReferralStatus.declined, ReferralStatus.cancelled}:
        return referral.updated_at
    return None


def _referral(referral: Referral, reference: str, review: Review | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reference": reference,
        "route": referral.route,
        "stage": referral.stage,
        "reasons": referral.reasons,
        "status": referral.status,
        "status_reason": referral.status_reason,
        "created_at": referral.created_at,
        "claimed_at": referral.claimed_at,
        "closed_at": _closed_at(referral),
        "due_at": referral.due_at,
        "reviewer": referral.assigned_to,
        "external_reference": referral.external_reference,
        "review": None,
    }
    if review is not None:
        out["review"] = {
            "status": review.status,
            "started_at": review.created_at,
            "submitted_at": review.submitted_at,
            "form": review.detail,
        }
    return out


async def _ods_codes(session: AsyncSession, deaths: list[Death]) -> dict[uuid.UUID, str]:
    """The ODS codes of the sites and practices a page of deaths names."""
    ids = {
        value
        for death in deaths
        for value in (death.site_organisation_id, death.gp_practice_organisation_id)
        if value is not None
    }
    if not ids:
        return {}
    rows = await session.execute(
        select(Organisation.id, Organisation.ods_code).where(Organisation.id.in_(ids))
    )
    return {row_id: code for row_id, code in rows.all() if code}


def _organisation_codes(death: Death, codes: dict[uuid.UUID, str]) -> dict[str, Any]:
    """The death's site and practice as the bundle names them (by ODS code), where it has them."""
    named: dict[str, Any] = {}
    for name, value in (
        ("site_ods_code", death.site_organisation_id),
        ("registered_gp_practice_ods_code", death.gp_practice_organisation_id),
    ):
        if value is not None and value in codes:
            named[name] = codes[value]
    return named


@dataclass(frozen=True)
class Page:
    ids: list[uuid.UUID]
    records: list[dict[str, Any]]


async def export_records(
    session: AsyncSession,
    died_from: date | None = None,
    died_to: date | None = None,
    organisation_id: uuid.UUID | None = None,
) -> AsyncIterator[Page]:
    """The bundle's records of the deaths that died in the period (local dates, inclusive), of
    one organisation when given (the deaths it records: a trust leaving a regional deployment
    takes its own), a page at a time (the caller audits each page's reads)."""
    last: tuple[date, uuid.UUID] | None = None
    themes = {t.id: t for t in (await session.scalars(select(Theme))).all()}
    while True:
        query = select(Death).order_by(Death.died_on, Death.id).limit(PAGE)
        if died_from is not None:
            query = query.where(Death.died_on >= died_from)
        if died_to is not None:
            query = query.where(Death.died_on <= died_to)
        if organisation_id is not None:
            query = query.where(Death.organisation_id == organisation_id)
        if last is not None:
            query = query.where(
                or_(Death.died_on > last[0], and_(Death.died_on == last[0], Death.id > last[1]))
            )
        deaths = list((await session.scalars(query)).all())
        if not deaths:
            return
        last = (deaths[-1].died_on, deaths[-1].id)
        yield Page([death.id for death in deaths], await _page(session, deaths, themes))
        session.expunge_all()


async def _page(
    session: AsyncSession, deaths: list[Death], themes: dict[uuid.UUID, Theme]
) -> list[dict[str, Any]]:
    ids = [death.id for death in deaths]

    async def rows(model: Any) -> dict[uuid.UUID, list[Any]]:
        return _by_death(
            (await session.scalars(select(model).where(model.death_id.in_(ids)))).all()
        )

    screenings = await rows(Screening)
    overrides = await rows(RouteOverride)
    referrals = await rows(Referral)
    reviews = await rows(Review)
    findings = await rows(Finding)
    codes = await _ods_codes(session, deaths)
    links = {
        r.death_id: r.links
        for r in (
            await session.scalars(select(HistoryRecord).where(HistoryRecord.death_id.in_(ids)))
        ).all()
    }
    records = []
    for death in deaths:
        named = {
            kind: {row_id: ref for ref, row_id in refs.items()}
            for kind, refs in links.get(death.id, {}).items()
        }
        referral_refs = named.get("referrals", {})
        review_of = {r.referral_id: r for r in reviews.get(death.id, [])}
        reference_of_review: dict[uuid.UUID, str] = {}
        out_referrals = []
        for referral in sorted(referrals.get(death.id, []), key=lambda r: (r.created_at, r.id)):
            if referral.route == Route.programme.value:
                # A review programme's work is the programme's, not the death's history (the
                # bundle refuses the route); its findings go out as the death's own.
                continue
            reference = referral_refs.get(str(referral.id), str(referral.id))
            review = review_of.get(referral.id)
            if review is not None:
                reference_of_review[review.id] = reference
            out_referrals.append(_referral(referral, reference, review))
        finding_refs = named.get("findings", {})
        out_findings = []
        for finding in sorted(findings.get(death.id, []), key=lambda f: (f.created_at, f.id)):
            theme = themes[finding.theme_id]
            out_findings.append(
                {
                    "reference": finding_refs.get(str(finding.id), str(finding.id)),
                    "referral": reference_of_review.get(finding.review_id)
                    if finding.review_id
                    else None,
                    "kind": finding.kind,
                    "theme": {"code": theme.code, "name": theme.name},
                    "phase": finding.phase,
                    "description": finding.description,
                    "recorded_by": finding.recorded_by,
                    "recorded_at": finding.created_at,
                }
            )
        screening = screenings[death.id][0]
        death_fields: dict[str, Any] = {name: getattr(death, name) for name in DEATH_FIELDS}
        death_fields.update(_organisation_codes(death, codes))
        records.append(
            {
                "format": FORMAT,
                "death": death_fields,
                "screening": _screening(screening, overrides.get(death.id, [])),
                "referrals": out_referrals,
                "findings": out_findings,
            }
        )
    return records
