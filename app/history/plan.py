"""A valid record as the rows it becomes, each with the record's own times in the columns the
reports read (screened_at; a referral's created_at, completed_at and due_at; a review's
submitted_at; a finding's created_at). Nothing is re-derived: no referral from today's rules,
no second stage, no lease. What today's rules would have required is computed beside what
happened, and a required route never referred nor overridden is a missed referral."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from app.config import Settings
from app.deaths.service import death_values, derived_fields
from app.deaths.status import death_status
from app.history.bundle import HistoricReferral, HistoricStatus, HistoryRecordIn
from app.kit.enums import (
    FINAL_EXTERNAL_STATUSES,
    AdmissionMethod,
    ReviewStatus,
    Route,
)
from app.models import Referral
from app.referrals.rules import RuleConfig, RuleFacts, required_routes
from app.reviews.schemas import ExternalReview, LederReview, SjrReview
from app.reviews.service import _columns
from app.screenings.service import _screening_values

Row = dict[str, Any]
Links = dict[str, dict[str, str]]


@dataclass(frozen=True)
class _Status:
    status: str


@dataclass
class Planned:
    """The rows of one record, by table, and what the history row keeps about it."""

    death: Row
    screening: Row
    overrides: list[Row] = field(default_factory=list)
    referrals: list[Row] = field(default_factory=list)
    reviews: list[Row] = field(default_factory=list)
    phases: list[Row] = field(default_factory=list)
    problems: list[Row] = field(default_factory=list)
    findings: list[Row] = field(default_factory=list)  # theme_code until the theme is known
    links: Links = field(default_factory=dict)
    required: dict[str, list[str]] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)

    @property
    def death_id(self) -> uuid.UUID:
        value: uuid.UUID = self.death["id"]
        return value

    def belong_to(self, organisation_id: uuid.UUID) -> None:
        """The death and every row of it in that organisation (the rows copy their death's:
        app.models.base.owned_with)."""
        self.death["organisation_id"] = organisation_id
        children = (self.overrides, self.referrals, self.reviews, self.phases, self.problems)
        for row in (self.screening, *(row for rows in children for row in rows), *self.findings):
            row["organisation_id"] = organisation_id


def todays_rules(record: HistoryRecordIn, death: Row, config: RuleConfig) -> dict[Route, Any]:
    """The routes today's rules require for this death (the learning sample aside: it is a
    draw, not a criterion), from the same facts as live intake (app.referrals.service)."""
    screening = record.screening
    facts = RuleFacts(
        age_years=death["age_at_death"],
        age_days=death["age_in_days_at_death"],
        learning_disability=death["learning_disability"],
        autism=death["autism"],
        serious_mental_illness=death["serious_mental_illness"],
        pregnant_or_recently_pregnant=death["pregnant_or_recently_pregnant"],
        admission_method=AdmissionMethod(death["admission_method"]),
        specialties=tuple(
            s for s in (death["admitting_specialty"], death["specialty_at_death"]) if s
        ),
        diagnosis_group=death["diagnosis_group"],
        bereaved_concern=screening.bereaved_concerns is not None,
        staff_concern=screening.staff_concerns is not None,
        me_concern=screening.clinical_governance_concern is not None,
        death_expected=screening.death_expected,
        coroner_notified=screening.coroner_notified,
        patient_safety_concern=screening.patient_safety_concern is not None,
        sample_key=f"{death['source_system']}\x1f{death['source_reference']}",
    )
    return dict(required_routes(facts, config))


def _id(links: Links, kind: str, reference: str) -> uuid.UUID:
    known = links.get(kind, {}).get(reference)
    return uuid.UUID(known) if known else uuid.uuid4()


def _external_pending(referrals: list[Row], reviews: list[Row]) -> bool:
    return any(
        review["status"] == ReviewStatus.submitted.value
        and review["instrument"] in {"leder", "external"}
        and (
            review["external_status"] is None
            or review["external_status"] not in FINAL_EXTERNAL_STATUSES
        )
        for review in reviews
    )


def plan_record(
    record: HistoryRecordIn,
    settings: Settings,
    config: RuleConfig,
    client_id: uuid.UUID | None,
    death_id: uuid.UUID | None = None,
    links: Links | None = None,
) -> Planned:
    """The record's rows. A corrected record keeps the ids of what it had (``death_id`` and
    ``links``, the bundle's references to row ids), so that an update is found by them."""
    links = links or {}
    values = death_values(record.death)
    values.update(derived_fields(values))
    screened_at = record.screening.screened_at
    death: Row = {
        **values,
        # The registry's codes as the record gives them; the writer resolves them into the
        # organisation columns (app.history.organisations), which a correction may clear.
        "site_ods_code": record.death.site_ods_code,
        "registered_gp_practice_ods_code": record.death.registered_gp_practice_ods_code,
        "id": death_id or uuid.uuid4(),
        "version": 1,
        "created_by_client_id": client_id,
        # The death entered the learning-from-deaths process when it was screened.
        "created_at": screened_at,
        "updated_at": screened_at,
    }
    screening: Row = {
        **_screening_values(record.screening),
        "id": _id(links, "screening", "screening"),
        "death_id": death["id"],
        "died_on": death["died_on"],
        "version": 1,
        "recorded_by_client_id": client_id,
        "created_at": screened_at,
        "updated_at": screened_at,
    }
    planned = Planned(death=death, screening=screening)
    planned.links = {"screening": {"screening": str(screening["id"])}}
    required = todays_rules(record, death, config)
    planned.required = {
        route.value: [code.value for code in codes] for route, codes in required.items()
    }
    for override in record.screening.overrides:
        planned.overrides.append(
            {
                "id": uuid.uuid4(),
                "screening_id": screening["id"],
                "death_id": death["id"],
                "died_on": death["died_on"],
                "route": override.route.value,
                "reason_codes": [code.value for code in required.get(override.route, [])],
                "override_reason": override.reason,
                "recorded_at": override.recorded_at,
            }
        )
    reviews_by_reference: dict[str, Row] = {}
    for index, referral in enumerate(record.referrals):
        row = _referral_row(referral, death, settings, _id(links, "referrals", referral.reference))
        planned.referrals.append(row)
        planned.links.setdefault("referrals", {})[referral.reference] = str(row["id"])
        if referral.review is not None:
            reviews_by_reference[referral.reference] = _review_rows(
                referral, row, planned, settings, client_id, links, f"/referrals/{index}"
            )
    specialty = death["specialty_at_death"] or death["admitting_specialty"]
    for finding in record.findings:
        source: Row | None = None
        if finding.referral is not None:
            source = reviews_by_reference.get(finding.referral)
        finding_id = _id(links, "findings", finding.reference)
        planned.links.setdefault("findings", {})[finding.reference] = str(finding_id)
        planned.findings.append(
            {
                "id": finding_id,
                "death_id": death["id"],
                "review_id": source["id"] if source else None,
                "kind": finding.kind.value,
                "theme_code": finding.theme.code,
                "theme_name": finding.theme.name,
                "phase": finding.phase.value if finding.phase else None,
                "description": finding.description,
                "died_on": death["died_on"],
                "specialty": specialty,
                "route": source["route"] if source else None,
                "recorded_by": finding.recorded_by,
                "created_by_client_id": client_id,
                "version": 1,
                "created_at": finding.recorded_at,
                "updated_at": finding.recorded_at,
            }
        )
    referred = {row["route"] for row in planned.referrals}
    overridden = {row["route"] for row in planned.overrides}
    planned.missed = [r for r in planned.required if r not in referred and r not in overridden]
    # death_status reads only each referral's status: a light stand-in for the ORM object (an
    # ORM instance costs more to make than the rest of the record's plan).
    statuses = cast(list[Referral], [_Status(row["status"]) for row in planned.referrals])
    pending = _external_pending(planned.referrals, planned.reviews)
    death["status"] = death_status(True, statuses, pending).value
    return planned


def _referral_row(
    referral: HistoricReferral, death: Row, settings: Settings, referral_id: uuid.UUID
) -> Row:
    closed = referral.closed_at
    return {
        "id": referral_id,
        "death_id": death["id"],
        "died_on": death["died_on"],
        "route": referral.route.value,
        "stage": referral.stage,
        "reasons": [code.value for code in referral.reasons],
        "status": referral.status.value,
        "status_reason": referral.status_reason,
        "specialty": death["specialty_at_death"] or death["admitting_specialty"],
        "site": death["site"],
        "priority": settings.priorities[referral.route],
        # The source's due date; a closed referral without one is stored as due when it closed
        # (no report reads the due date of a closed referral, and none is invented for an open
        # one: validation requires it there).
        "due_at": referral.due_at or closed,
        "assigned_to": referral.reviewer,
        "lease_id": None,
        "leased_by": None,
        "leased_to": None,
        "claimed_at": referral.claimed_at,
        "lease_expires_at": None,
        "excluded_reviewer": None,
        "external_reference": referral.external_reference,
        "completed_at": closed if referral.status is HistoricStatus.completed else None,
        "version": 1,
        "created_at": referral.created_at,
        "updated_at": closed or referral.created_at,
    }


def _review_rows(
    referral: HistoricReferral,
    row: Row,
    planned: Planned,
    settings: Settings,
    client_id: uuid.UUID | None,
    links: Links,
    pointer: str,
) -> Row:
    review = referral.review
    assert review is not None
    form = review.form
    review_id = _id(links, "reviews", referral.reference)
    planned.links.setdefault("reviews", {})[referral.reference] = str(review_id)
    started = review.started_at or referral.created_at
    columns = _columns(form, settings)
    if isinstance(form, LederReview | ExternalReview) and row["external_reference"] is None:
        row["external_reference"] = columns["external_reference"]
    review_row: Row = {
        "id": review_id,
        "referral_id": row["id"],
        "death_id": row["death_id"],
        "died_on": row["died_on"],
        "route": row["route"],
        "stage": row["stage"],
        "instrument": form.instrument,
        "status": review.status.value,
        "submitted_at": review.submitted_at,
        "detail": form.model_dump(mode="json"),
        "version": 1,
        "created_by_client_id": client_id,
        "created_at": started,
        "updated_at": review.submitted_at or started,
        **columns,
    }
    planned.reviews.append(review_row)
    if isinstance(form, SjrReview):
        # Each with its organisation of care as the form names it, and where the form names it,
        # for the writer to resolve (app.history.organisations).
        planned.phases.extend(
            {
                "id": uuid.uuid4(),
                "review_id": review_id,
                "phase": r.phase.value,
                "rating": r.rating,
                "care_organisation": r.care_organisation,
                "care_pointer": f"{pointer}/review/form/phases/{i}/care_organisation",
            }
            for i, r in enumerate(form.phases)
        )
        planned.problems.extend(
            {
                "id": uuid.uuid4(),
                "review_id": review_id,
                "problem_type": p.type.value,
                "phase": p.phase.value,
                "harm": p.harm.value,
                "care_organisation": p.care_organisation,
                "care_pointer": f"{pointer}/review/form/problems_in_care/{i}/care_organisation",
            }
            for i, p in enumerate(form.problems_in_care)
        )
    return review_row
