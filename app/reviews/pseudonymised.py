"""What a pseudonymised client is shown of a review: the instrument's structured parts only."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field

from app.kit.enums import ReviewStatus, Route
from app.privacy.schemas import PseudonymisedModel
from app.reviews.schemas import ReviewOut, ReviewVersionOut


class ReviewPseudonymised(PseudonymisedModel):
    id: uuid.UUID
    referral_id: uuid.UUID
    death_id: uuid.UUID
    route: Route
    stage: int | None
    status: ReviewStatus
    version: int
    reviewer: str | None
    submitted_at: datetime | None
    review: dict[str, Any] = Field(
        description="The instrument's structured parts only: scores with their labels, phases, "
        "problem types and harm, organisations of care (but a GP practice), outcomes and "
        "statuses; narratives, summaries, learning points and other organisations' references "
        "are left out."
    )
    external_due_at: datetime | None
    created_at: datetime
    updated_at: datetime


# The structured parts of each review instrument. An allow-list: a key not named here (free
# text, another organisation's reference, or a field added later) is left out. A `<key>_label`
# beside a kept score is kept with it.
Spec = Mapping[str, "Spec | None"]
_REVIEWER: Spec = {"name": None, "role": None}
# An organisation of care as a review read shows it (app.reviews.care). A GP practice is left
# out whole (_kept): its list is small enough to narrow a month's deaths to a person.
_ORGANISATION: Spec = {"id": None, "ods_code": None, "name": None, "kind": None}
HIDDEN = frozenset({"gp_practice"})
_INSTRUMENTS: dict[str, Spec] = {
    "sjr": {
        "instrument": None,
        "reviewer": _REVIEWER,
        "phases": {"phase": None, "rating": None, "care_organisation": _ORGANISATION},
        "quality_of_records": None,
        "avoidability": None,
        "problems_in_care": {
            "type": None,
            "phase": None,
            "harm": None,
            "care_organisation": _ORGANISATION,
        },
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
        if inner is _ORGANISATION and (not isinstance(item, dict) or item.get("kind") in HIDDEN):
            continue
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
