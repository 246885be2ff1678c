"""The one place that decides what a client is shown of a patient.

A route builds its full response as before, then passes it through the caller's ``View``:

    view = await view_for(database, principal)
    return conditional.reply(tag, view.death_detail(death), pseudonymised=view.pseudonymised)

For a full client every method returns its argument unchanged. For a pseudonymised client it
returns the model from ``app.privacy.schemas`` made from it: identifiers replaced by the keyed
pseudonym, dates coarsened to months, free text about a patient left out. The audit row of the
read is written by the service as for any client (it names the client, whose flag says which
view it got).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from app.auth.principal import Principal
from app.db import Database
from app.deaths.schemas import DeathDetail, DeathOut
from app.findings.schemas import FindingOut
from app.kit.time import LONDON
from app.privacy.pseudonym import (
    age_band,
    month_of_death,
    postcode_district,
    pseudonym,
    pseudonym_key,
)
from app.privacy.schemas import (
    DeathDetailPseudonymised,
    DeathPseudonymised,
    FindingPseudonymised,
    ReferralPseudonymised,
    ReviewPseudonymised,
    RouteOverridePseudonymised,
    ScreeningPseudonymised,
    TransitionPseudonymised,
)
from app.referrals.schemas import ReferralOut, TransitionOut
from app.reviews.schemas import ReviewOut, ReviewVersionOut
from app.screenings.schemas import ScreeningOut, ScreeningVersionOut

Full = TypeVar("Full")
Shown = TypeVar("Shown")


def _month(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%Y-%m")


def _raised(text: str | None) -> bool:
    return text is not None


def death(key: bytes, full: DeathOut) -> DeathPseudonymised:
    return DeathPseudonymised(**_death_fields(key, full))


def _death_fields(key: bytes, full: DeathOut) -> dict[str, Any]:
    return {
        "id": full.id,
        "case_reference": full.case_reference,
        "source_system": full.source_system,
        "pseudonym": pseudonym(key, full.nhs_number, full.id),
        "age_band": age_band(full.age_at_death),
        "sex": full.sex,
        "ethnicity": full.ethnicity,
        "postcode_district": postcode_district(full.postcode),
        "month_of_death": _month(full.died_at),
        "place_of_death": full.place_of_death,
        "site": full.site,
        "admitting_specialty": full.admitting_specialty,
        "specialty_at_death": full.specialty_at_death,
        "diagnosis_group": full.diagnosis_group,
        "admission_method": full.admission_method,
        "admitted_month": month_of_death(full.admitted_at),
        "discharged_month": month_of_death(full.discharged_at),
        "learning_disability": full.learning_disability,
        "autism": full.autism,
        "serious_mental_illness": full.serious_mental_illness,
        "pregnant_or_recently_pregnant": full.pregnant_or_recently_pregnant,
        "within_30_days_of_discharge": full.within_30_days_of_discharge,
        "status": full.status,
        "version": full.version,
        "created_at": full.created_at,
        "updated_at": full.updated_at,
    }


def death_detail(key: bytes, full: DeathDetail) -> DeathDetailPseudonymised:
    return DeathDetailPseudonymised(
        **_death_fields(key, full),
        screening=None if full.screening is None else screening(key, full.screening),
        referrals=[referral(key, item) for item in full.referrals],
        reviews=[review(key, item) for item in full.reviews],
    )


def screening(key: bytes, full: ScreeningOut) -> ScreeningPseudonymised:
    return ScreeningPseudonymised(
        id=full.id,
        death_id=full.death_id,
        examiner=full.examiner,
        screened_month=_month(full.screened_at),
        records_reviewed=full.records_reviewed,
        qap_discussed=full.qap_discussed,
        bereaved_contacted=full.bereaved_contacted,
        bereaved_concern_raised=_raised(full.bereaved_concerns),
        staff_concern_raised=_raised(full.staff_concerns),
        mccd_issued_month=month_of_death(full.mccd_issued_at),
        coroner_notified=full.coroner_notified,
        coroner_reason=full.coroner_reason,
        clinical_governance_concern_raised=_raised(full.clinical_governance_concern),
        death_expected=full.death_expected,
        patient_safety_concern_raised=_raised(full.patient_safety_concern),
        routes_requested=full.routes_requested,
        overrides=[
            RouteOverridePseudonymised(
                route=item.route, reason_codes=item.reason_codes, recorded_at=item.recorded_at
            )
            for item in full.overrides
        ],
        version=full.version,
        created_at=full.created_at,
        updated_at=full.updated_at,
    )


def screening_version(key: bytes, full: ScreeningVersionOut) -> ScreeningVersionOut:
    """An earlier version, its snapshot shown as the screening itself would be."""
    snapshot = screening(key, ScreeningOut.model_validate(full.snapshot))
    return ScreeningVersionOut(
        version=full.version,
        superseded_at=full.superseded_at,
        snapshot=snapshot.model_dump(mode="json"),
    )


_REFERRAL_FIELDS = frozenset(ReferralPseudonymised.model_fields)


def referral(key: bytes, full: ReferralOut) -> ReferralPseudonymised:
    return ReferralPseudonymised.model_validate(
        {name: getattr(full, name) for name in _REFERRAL_FIELDS}
    )


def transition(key: bytes, full: TransitionOut) -> TransitionPseudonymised:
    return TransitionPseudonymised.model_validate(
        {name: getattr(full, name) for name in TransitionPseudonymised.model_fields}
    )


# The structured parts of each review instrument. An allow-list: a key not named here (free
# text, another organisation's reference, or a field added later) is left out. A `<key>_label`
# beside a kept score is kept with it.
Spec = Mapping[str, "Spec | None"]
_REVIEWER: Spec = {"name": None, "role": None}
_INSTRUMENTS: dict[str, Spec] = {
    "sjr": {
        "instrument": None,
        "reviewer": _REVIEWER,
        "phases": {"phase": None, "rating": None},
        "quality_of_records": None,
        "avoidability": None,
        "problems_in_care": {"type": None, "phase": None, "harm": None},
        "patient_safety_incident_suspected": None,
    },
    "mm": {
        "instrument": None,
        "meeting_date": None,
        "specialty": None,
        "presenter": None,
        "outcome": None,
        "avoidability": None,
    },
    "leder": {"instrument": None, "notified_at": None, "status": None},
    "external": {
        "instrument": None,
        "organisation": None,
        "referred_at": None,
        "status": None,
        "completed_at": None,
    },
}


def _kept(value: Any, spec: Spec) -> Any:
    if isinstance(value, list):
        return [_kept(item, spec) for item in value]
    if not isinstance(value, dict):
        return None
    out: dict[str, Any] = {}
    for name, item in value.items():
        base = name.removesuffix("_label") if name.endswith("_label") else name
        if base not in spec:
            continue
        inner = spec[base]
        out[name] = item if inner is None or base != name else _kept(item, inner)
    return out


def instrument(detail: Mapping[str, Any]) -> dict[str, Any]:
    spec = _INSTRUMENTS.get(str(detail.get("instrument")), {})
    kept: dict[str, Any] = _kept(dict(detail), spec)
    return kept


def review(key: bytes, full: ReviewOut) -> ReviewPseudonymised:
    fields = {name: getattr(full, name) for name in ReviewPseudonymised.model_fields}
    return ReviewPseudonymised.model_validate({**fields, "review": instrument(full.review)})


def review_version(key: bytes, full: ReviewVersionOut) -> ReviewVersionOut:
    snapshot = review(key, ReviewOut.model_validate(full.snapshot))
    return ReviewVersionOut(
        version=full.version,
        superseded_at=full.superseded_at,
        snapshot=snapshot.model_dump(mode="json"),
    )


def finding(key: bytes, full: FindingOut) -> FindingPseudonymised:
    return FindingPseudonymised(
        id=full.id,
        death_id=full.death_id,
        review_id=full.review_id,
        kind=full.kind,
        theme=full.theme,
        phase=full.phase,
        month_of_death=full.died_on.strftime("%Y-%m"),
        specialty=full.specialty,
        route=full.route,
        recorded_by=full.recorded_by,
        version=full.version,
        created_at=full.created_at,
        updated_at=full.updated_at,
    )


@dataclass(frozen=True)
class View:
    """How one caller is shown patient data: in full (``key`` None) or pseudonymised."""

    key: bytes | None

    @property
    def pseudonymised(self) -> bool:
        return self.key is not None

    def show(self, full: Full, pseudonymise: Callable[[bytes, Full], Shown]) -> Full | Shown:
        return full if self.key is None else pseudonymise(self.key, full)

    def show_all(
        self, items: Sequence[Full], pseudonymise: Callable[[bytes, Full], Shown]
    ) -> list[Full | Shown]:
        key = self.key
        if key is None:
            return list(items)
        return [pseudonymise(key, item) for item in items]


FULL = View(None)


async def view_for(database: Database, principal: Principal) -> View:
    """The caller's view. The pseudonym key is read once per process (and per database)."""
    if not principal.pseudonymised:
        return FULL
    async with database.autocommit() as session:
        key = await pseudonym_key(session, database.settings.pseudonym_key)
    return View(key)
