from __future__ import annotations

import re

from fastapi import APIRouter

from app.auth.deps import DeathsReader
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.deaths import pseudonymised, service
from app.deaths.filters import DeathListQueryDep
from app.deaths.pseudonymised import DeathPseudonymised
from app.deaths.schemas import DeathOut
from app.deaths.views import deaths_out
from app.errors import (
    BadRequest,
    Forbidden,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from app.kit.schemas import Page
from app.privacy import views

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/deaths", tags=["deaths"])
CASE_REFERENCE = re.compile(r"^D-([0-9]{4})-([0-9]{1,12})$")
AUTH = (Unauthorized, Forbidden)


@router.get(
    "",
    response_model=Page[DeathOut | DeathPseudonymised],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_deaths(
    principal: DeathsReader,
    database: DatabaseDep,
    query: DeathListQueryDep,
) -> Page[DeathOut | DeathPseudonymised]:
    """Deaths, newest first, with filters. Every death returned is recorded in the audit log.

    A pseudonymised client gets each death pseudonymised, and may not filter by
    `nhs_number`, `source_reference` or `possible_duplicate`, nor by `died_from`/`died_to`
    inside a month (400).

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        deaths, next_cursor = await service.list_deaths(
            session, principal, query.filters, query.cursor, query.limit
        )
        items = await deaths_out(session, deaths)
    view = await views.view_for(database, principal)
    return Page[DeathOut | DeathPseudonymised](
        items=view.show_all(items, pseudonymised.death), next_cursor=next_cursor
    )
