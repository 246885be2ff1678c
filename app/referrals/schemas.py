from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.kit.enums import ReasonCode, ReferralStatus, Route
from app.kit.schemas import ResponseModel


class ReferralOut(ResponseModel):
    id: uuid.UUID
    death_id: uuid.UUID
    route: Route
    stage: int | None = Field(description="SJR stage (1 or 2); null for other routes.")
    reasons: list[ReasonCode]
    status: ReferralStatus
    status_reason: str | None
    specialty: str | None
    site: str | None
    priority: int = Field(description="1 is the most urgent.")
    due_at: datetime
    overdue: bool
    assigned_to: str | None
    lease_id: uuid.UUID | None
    lease_expires_at: datetime | None
    external_reference: str | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
