from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.deps import ReferralsReader
from app.db import DatabaseDep
from app.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed, problem_responses
from app.kit.enums import ReferralStatus, Route
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.referrals import service
from app.referrals.schemas import ReferralOut
from app.referrals.service import ReferralFilters

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])
Name = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get(
    "",
    response_model=Page[ReferralOut],
    responses=problem_responses(Unauthorized, Forbidden, BadRequest, ValidationFailed),
)
async def list_referrals(
    principal: ReferralsReader,
    database: DatabaseDep,
    route: Route | None = None,
    status: ReferralStatus | None = None,
    specialty: Name = None,
    site: Name = None,
    death_id: uuid.UUID | None = None,
    overdue: Annotated[
        bool | None, Query(description="true: open and past due; false: the rest.")
    ] = None,
    due_before: Annotated[date | None, Query(description="Due before this UK local date.")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[ReferralOut]:
    """The referral queues, in queue order: priority (1 first), then due date, then creation.

    Scope: `referrals:read`.
    """
    filters = ReferralFilters(route, status, specialty, site, death_id, overdue, due_before)
    async with database.transaction() as session:
        referrals, next_cursor = await service.list_referrals(
            session, principal, filters, cursor, limit
        )
        items = [ReferralOut.model_validate(referral) for referral in referrals]
    return Page[ReferralOut](items=items, next_cursor=next_cursor)
