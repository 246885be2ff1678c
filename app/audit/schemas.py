from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.kit.schemas import ResponseModel


class AuditEventOut(ResponseModel):
    """One audit row: who (the client and the person it acted for) did what to which record,
    when, in which request. Ids only: the row names no patient."""

    id: uuid.UUID
    occurred_at: datetime
    client_id: uuid.UUID | None
    client_name: str | None
    on_behalf_of: str | None = Field(description="The person the client said it acted for.")
    on_behalf_of_verified: bool | None = Field(
        default=None,
        description="True: on_behalf_of is the user of a verified X-User-Assertion; false: "
        "free text from X-On-Behalf-Of; null: no one named.",
    )
    on_behalf_of_role: str | None = Field(
        default=None, description="The verified user's role, from their assertion."
    )
    action: str = Field(description="`<resource>.<verb>`, e.g. `death.read`, `referral.claim`.")
    resource_type: str
    resource_id: uuid.UUID | None
    death_id: uuid.UUID | None = Field(
        description="The death (patient) the record belongs to, when the row names exactly "
        "one; null for a page of several (see `death_ids`) or for none."
    )
    death_ids: list[uuid.UUID] = Field(
        default_factory=list,
        description="Every patient (death) the access was about, in the order shown: one for "
        "a record, each death on the page for a list page (one row per page). A client "
        "confined to some organisations sees, on another organisation's row, only the "
        "patients it may see itself.",
    )
    request_id: str | None = Field(description="The request's X-Request-ID, as in the logs.")
    outcome: str = Field(
        description="`success`; `refused` (403: the client lacked the scope); `not_found` "
        "(404: no such record); `no_match` (a search by NHS number that showed no death with it)."
    )
    query_hash: str | None = Field(
        description="For a search by NHS number (`death.search`, or `audit.read` with "
        "`nhs_number`): the number's keyed hash, never the number. Search with `nhs_number=` "
        "to find every row for one number."
    )
