from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, Field

from app.kit.schemas import RequestModel, ResponseModel
from app.organisations.lookup import OrganisationRef
from app.organisations.shares import SharePurpose


class ShareCreate(RequestModel):
    organisation: str = Field(
        min_length=1,
        max_length=100,
        description="The organisation to share the death with: its ODS code or its id in the "
        "registry. Not the death's own organisation.",
    )
    purpose: SharePurpose = Field(
        description="What the share is for: `system_review` (a cross-system review), `review` "
        "(the organisation reviews the care it gave), `second_opinion`, `leder`, `learning`."
    )
    ends_at: AwareDatetime | None = Field(
        default=None,
        description="When the share ends (in the future, at most 730 days ahead); 90 days "
        "from now when not given.",
    )
    note: str | None = Field(
        default=None,
        max_length=2000,
        description="Why the death is shared, for the recipient (kept; never sent in events).",
    )
    referral_id: uuid.UUID | None = Field(
        default=None,
        description="The death's referral the share serves (e.g. its `system_review`), if any.",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "organisation": "B86001",
                    "purpose": "review",
                    "ends_at": "2027-03-31T23:00:00Z",
                    "note": "Pre-admission care by the practice",
                }
            ]
        }
    }


class ShareOut(ResponseModel):
    id: uuid.UUID = Field(description="The share's id.")
    death_id: uuid.UUID = Field(description="The death shared.")
    organisation: OrganisationRef = Field(description="The organisation it is shared with.")
    purpose: SharePurpose = Field(description="What the share is for.")
    note: str | None = Field(description="Why the death is shared.")
    referral_id: uuid.UUID | None = Field(description="The referral the share serves, if any.")
    starts_at: datetime = Field(description="When the share began.")
    ends_at: datetime | None = Field(description="When it ends (or ended).")
    revoked_at: datetime | None = Field(description="When it was ended early, if it was.")
    active: bool = Field(description="Whether the recipient can see the death now.")
    created_at: datetime = Field(description="When the share was made.")
    created_by_client_id: uuid.UUID | None = Field(description="The client that made it.")


class ShareList(ResponseModel):
    items: list[ShareOut] = Field(description="The death's shares, newest first.")
