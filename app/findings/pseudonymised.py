"""What a pseudonymised client is shown of a finding: no description."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.findings.schemas import FindingKind, FindingOut, ThemeRef
from app.kit.enums import Route, SjrPhase
from app.privacy.schemas import MONTH, PseudonymisedModel


class FindingPseudonymised(PseudonymisedModel):
    """A finding without its description (free text about one patient's care)."""

    id: uuid.UUID
    death_id: uuid.UUID
    review_id: uuid.UUID | None
    kind: FindingKind
    theme: ThemeRef
    phase: SjrPhase | None
    month_of_death: str = Field(description=MONTH)
    specialty: str | None
    route: Route | None
    recorded_by: str | None
    version: int
    created_at: datetime
    updated_at: datetime


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
