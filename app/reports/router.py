"""GET /v1/reports/...: each report as JSON, CSV, XLSX or a printable HTML page.

Reports carry aggregates only, never a patient identifier, so a pseudonymised client gets the
same figures as any other, and reading one leaves no patient audit row.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record_access
from app.auth.deps import ReportsReader
from app.auth.routing import AuthFirstRoute
from app.auth.scopes import Scope
from app.config import Settings
from app.db import Database, DatabaseDep, Work
from app.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from app.privacy.filters import refuse_identifying_filters
from app.replica.reads import ReplicaReads, ReplicaReadsDep
from app.reports.actions_report import as_of_period, build_actions
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
from app.reports.filters import today as report_today
from app.reports.me_office import build_me_office
from app.reports.model import Period, Report, parse_period
from app.reports.render import CSV_TYPE, XLSX_TYPE, render
from app.reports.schemas import ReportOut
from app.reports.themes import build_themes
from app.reports.timeliness import build_timeliness

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/reports", tags=["reports"])

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


async def plan_for_report(session: AsyncSession) -> None:
    """Plan every report query for its own period: a generic plan (what a prepared statement
    falls back to after five runs) cannot see how many deaths a period holds, joins the cohort
    by nested loops and runs for minutes instead of a fraction of a second. And no JIT: the
    planner overestimates the joins on the cohort CTE and would compile for longer than the
    query runs."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        await session.execute(text("SET LOCAL jit = off"))


@asynccontextmanager
async def report_session(database: Database) -> AsyncIterator[AsyncSession]:
    """A read-only transaction on the primary; on PostgreSQL a REPEATABLE READ snapshot, so
    that every table of a report counts the same committed data however many queries build
    it, without JIT, with the report timeouts (Work.report). The routes read through
    respond(), which may take the same transaction on the read replica instead."""
    # snapshot(): the isolation level is the connection's, set before the transaction begins;
    # a SET TRANSACTION inside transaction() came after the data scope's settings and failed
    # ("must be called before any query") once the scope was set per transaction.
    async with database.snapshot(Work.report) as session:
        await plan_for_report(session)
        yield session


async def respond(
    reads: ReplicaReads,
    build: Builder,
    period: Period,
    filters: ReportFilters,
    settings: Settings,
    output: ReportFormat,
    table: str | None,
    before: Callable[[], None] | None = None,
) -> Response:
    """Build one report in one snapshot and render it; shared by every report route. The
    snapshot is on the read replica when it may be (app.replica), else on the primary; a
    build that failed on the replica runs again on the primary, after ``before`` (which
    forgets what the first attempt gathered)."""

    async def build_report(session: AsyncSession) -> Report:
        if before is not None:
            before()
        await plan_for_report(session)
        return await build(session, period, filters, settings)

    report = await reads.run(build_report, Work.report)
    return render(report, output, table)


@router.get("/lfd-dashboard", response_model=None, responses=RESPONSES)
async def lfd_dashboard(
    principal: ReportsReader,
    reads: ReplicaReadsDep,
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
    return await respond(reads, build_lfd_dashboard, period, filters, settings, output, table)


@router.get("/care-quality", response_model=None, responses=RESPONSES)
async def care_quality(
    principal: ReportsReader,
    reads: ReplicaReadsDep,
    settings: ReportSettings,
    period: PeriodParam,
    filters: Filters,
    by: Annotated[
        Grouping,
        Query(
            description="Group the ratings by `month` of death, `specialty`, `site` or "
            "`age_band`; or by `care_organisation`: the phase ratings and the problems in care "
            "by the organisation each names as having given the care (cross-system SJR)."
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

    `by=care_organisation` (cross-system reviews) gives instead two tables by the organisation
    each phase rating and problem in care names as having given the care: the phase ratings
    (`overall` aside) and the problems with their harm, each organisation a row and those
    naming none a `(not recorded)` row.

    Any period (`period=` or `start`/`end`). Filters: `site`, `specialty`, `age_band`.

    Scope: `reports:read`.
    """
    build = partial(build_care_quality, by=by)
    return await respond(reads, build, period, filters, settings, output, table)


@router.get("/themes", response_model=None, responses=RESPONSES)
async def themes(
    principal: ReportsReader,
    reads: ReplicaReadsDep,
    settings: ReportSettings,
    period: PeriodParam,
    filters: Filters,
    compare: Annotated[
        str | None,
        Query(
            max_length=20,
            description="A second period to set beside the first, written as `period` is "
            "(`2024-25`, `2024-25-Q1`, `2024-07`); or give `compare_start` and `compare_end`.",
        ),
    ] = None,
    compare_start: Annotated[
        date | None, Query(description="First day of a custom second period (UK local date).")
    ] = None,
    compare_end: Annotated[
        date | None, Query(description="Last day of a custom second period, included.")
    ] = None,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """Findings by theme for the deaths in the period (counted by the UK local date of death,
    whenever the review was written): per theme, the findings and the distinct deaths, by kind
    (problem in care, good practice, learning point, concern); retired themes included. With
    `compare` (or `compare_start`/`compare_end`), a `comparison` table sets the two periods
    side by side, each theme `new` (none before), `persisting` (in both) or `fell away` (none
    now).

    Filters: `site`, `specialty`, `age_band` (of the death) and `route` (of the review that
    recorded the finding). Definitions: docs/reports.md.

    Scope: `reports:read`.
    """
    other: Period | None = None
    if compare is not None or compare_start is not None or compare_end is not None:
        refuse_identifying_filters(
            principal, {}, compare_start, compare_end, names=("compare_start", "compare_end")
        )
        other = parse_period(
            compare,
            compare_start,
            compare_end,
            report_today(),
            names=("compare", "compare_start", "compare_end"),
        )
    build = partial(build_themes, compare=other)
    return await respond(reads, build, period, filters, settings, output, table)


@router.get("/timeliness", response_model=None, responses=RESPONSES)
async def timeliness(
    principal: ReportsReader,
    database: DatabaseDep,
    reads: ReplicaReadsDep,
    settings: ReportSettings,
    period: PeriodParam,
    filters: Filters,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """Timeliness and compliance for the deaths in the period (UK local date of death),
    following them through the pipeline whenever the later steps happened: death to medical
    examiner screening, screening to referral, referral to completed review (count, median and
    90th percentile in days, overall and by route); open and overdue referrals by route as of
    now; the medical examiner referral rate (screened deaths with at least one referral); the
    routes the rules required that the examiner overrode, by the criteria met, and each with
    the examiner's reason.

    Filters: `site`, `specialty`, `age_band`, `route`. Definitions: docs/reports.md.

    Scope: `reports:read`. The examiner's written override reasons (free text about one death)
    are included only for a client that also holds `deaths:read` and is not pseudonymised, and
    each one shown is audited as a read of that death; otherwise the column is null.
    """
    shown: list[tuple[uuid.UUID, uuid.UUID]] | None = None
    if principal.has(Scope.deaths_read) and not principal.pseudonymised:
        shown = []
    build = partial(build_timeliness, reasons_shown=shown)

    def forget_shown() -> None:  # a build retried on the primary gathers them afresh
        if shown is not None:
            shown.clear()

    response = await respond(
        reads, build, period, filters, settings, output, table, before=forget_shown
    )
    if shown:
        # The report's own transaction is read-only: the audit rows commit on their own, before
        # the reasons leave the service.
        async with database.transaction() as session:
            await record_access(session, principal, "route_override.read", "route_override", shown)
    return response


@router.get("/me-office", response_model=None, responses=RESPONSES)
async def me_office(
    principal: ReportsReader,
    reads: ReplicaReadsDep,
    settings: ReportSettings,
    period: PeriodParam,
    filters: Filters,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """The medical examiner office's report for the deaths in the period (UK local date of
    death): notification to scrutiny (median hours), scrutiny within 24 hours of the notes,
    death to MCCD within `LFD_ME_MCCD_TARGET_DAYS` (3) days, coroner referrals by reason,
    registrar rejections and reissues, contacts with the bereaved (concerns, compliments, by
    method), and the governance judgements of the ME's referral decisions by examiner and
    criterion. Definitions: docs/notifications.md.

    Filters: `site`, `specialty`, `age_band`.

    Scope: `reports:read`.
    """
    return await respond(reads, build_me_office, period, filters, settings, output, table)


NOT_A_PERIOD = "The actions report is a snapshot as of today; it takes no period, start or end."


@router.get(
    "/actions",
    response_model=None,
    responses={**RESPONSES, **problem_responses(NotFound)},
)
async def actions(
    principal: ReportsReader,
    reads: ReplicaReadsDep,
    settings: ReportSettings,
    filters: Filters,
    plan_id: Annotated[uuid.UUID | None, Query(description="Only this action plan.")] = None,
    period: Annotated[str | None, Query(include_in_schema=False)] = None,
    start: Annotated[str | None, Query(include_in_schema=False)] = None,
    end: Annotated[str | None, Query(include_in_schema=False)] = None,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """Action plans as they stand today (UK local date): the actions counted by status (1 not
    yet commenced to 5 complete) and derived RAG (red: off track, or past due and not
    complete), with the overdue count and the share complete; for all the actions, by plan and
    by organisation (ODS code; an action listing none belongs to its plan's organisations); and
    the overdue actions with their leads, most overdue first. A snapshot, so no period.

    Filters: `organisation`, `plan_id` (an unknown plan is a 404). Definitions:
    docs/reports.md.

    Scope: `reports:read`.
    """
    given = [name for name, value in (("period", period), ("start", start), ("end", end)) if value]
    if given:
        raise BadRequest(
            NOT_A_PERIOD,
            errors=[
                {"pointer": f"query:/{name}", "code": "not_applicable", "detail": NOT_A_PERIOD}
                for name in given
            ],
        )
    build = partial(build_actions, plan_id=plan_id)
    snapshot = as_of_period(report_today())
    return await respond(reads, build, snapshot, filters, settings, output, table)
