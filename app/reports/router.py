"""GET /v1/reports/...: each report as JSON, CSV, XLSX or a printable HTML page.

Reports carry aggregates only, never a patient identifier, so a pseudonymised client gets the
same figures as any other, and reading one leaves no patient audit row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import ReportsReader
from app.config import Settings
from app.db import Database, DatabaseDep
from app.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed, problem_responses
from app.reports.care_quality import Grouping, build_care_quality
from app.reports.dashboard import build_lfd_dashboard
from app.reports.filters import (
    Filters,
    FormatParam,
    PeriodParam,
    ReportFilters,
    ReportFormat,
    ReportSettings,
    TableParam,
)
from app.reports.model import Period, Report
from app.reports.render import CSV_TYPE, XLSX_TYPE, render
from app.reports.schemas import ReportOut

router = APIRouter(prefix="/v1/reports", tags=["reports"])

ERRORS = problem_responses(Unauthorized, Forbidden, BadRequest, ValidationFailed)
FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ReportOut,
        "description": "The report, in the format asked for.",
        "content": {
            CSV_TYPE.split(";")[0]: {"schema": {"type": "string"}},
            XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}
RESPONSES = {**FORMATS, **ERRORS}

Builder = Callable[[AsyncSession, Period, ReportFilters, Settings], Awaitable[Report]]


@asynccontextmanager
async def report_session(database: Database) -> AsyncIterator[AsyncSession]:
    """A read-only transaction; on PostgreSQL a REPEATABLE READ snapshot, so that every table
    of a report counts the same committed data however many queries build it."""
    async with database.transaction() as session:
        if database.dialect == "postgresql":
            await session.execute(
                text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            )
        yield session


async def respond(
    database: Database,
    build: Builder,
    period: Period,
    filters: ReportFilters,
    settings: Settings,
    output: ReportFormat,
    table: str | None,
) -> Response:
    """Build one report in one snapshot and render it; shared by every report route."""
    async with report_session(database) as session:
        report = await build(session, period, filters, settings)
    return render(report, output, table)


@router.get("/lfd-dashboard", response_model=None, responses=RESPONSES)
async def lfd_dashboard(
    principal: ReportsReader,
    database: DatabaseDep,
    settings: ReportSettings,
    period: PeriodParam,
    filters: Filters,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """NHS England's quarterly Learning from Deaths dashboard for the board: for each month of
    the financial year so far, the quarter to date and the year to date, deaths in scope,
    deaths reviewed (case record review) and the share reviewed, deaths investigated (PSII),
    deaths judged more likely than not due to problems in care, deaths by avoidability score,
    and the learning disability and autism (LeDeR) figures. Deaths count by their month of
    death (UK local date).

    `period` is a financial year (`2025-26`), a quarter (`2025-26-Q2`: April to September with
    Q2 to date) or a month (`2025-07`); the figures run to the period's end or today,
    whichever is earlier. Filters: `site`, `specialty`, `age_band` (others are a 400).
    Definitions of every figure: docs/reports.md.

    Scope: `reports:read`.
    """
    return await respond(database, build_lfd_dashboard, period, filters, settings, output, table)


@router.get("/care-quality", response_model=None, responses=RESPONSES)
async def care_quality(
    principal: ReportsReader,
    database: DatabaseDep,
    settings: ReportSettings,
    period: PeriodParam,
    filters: Filters,
    by: Annotated[
        Grouping,
        Query(
            description="Group the ratings by `month` of death, `specialty`, `site` or `age_band`."
        ),
    ] = Grouping.month,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """Quality of care from structured judgement reviews of the deaths in the period: the
    final SJR of each death (stage 2 if any), its overall care rating and each phase's, with
    the shares rated adequate or better (3-5), good or excellent (4-5) and poor or very poor
    (1-2), and the same grouped `by` month, specialty, site or age band. Also the deaths
    referred for SJR, reviewed and rated ("319 referred, 181 reviewed, 177 rated").

    Any period (`period=` or `start`/`end`). Filters: `site`, `specialty`, `age_band`.

    Scope: `reports:read`.
    """

    async def build(
        session: AsyncSession, period: Period, filters: ReportFilters, settings: Settings
    ) -> Report:
        return await build_care_quality(session, period, filters, settings, by)

    return await respond(database, build, period, filters, settings, output, table)
