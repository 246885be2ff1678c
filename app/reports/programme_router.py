"""GET /v1/reports/programmes...: the review programmes' reports, in every report format.
Aggregates only, so a pseudonymised client gets the same figures and no identifier."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from app.auth.deps import ReportsReader
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import NotFound, problem_responses
from app.kit.time import now
from app.models import Programme
from app.programmes.case_reviews import counts_of
from app.reports.actions_report import as_of_period
from app.reports.filters import FormatParam, ReportFormat, TableParam
from app.reports.filters import today as report_today
from app.reports.model import Column, Report, Table, percent
from app.reports.programme import build_programme_report, programme_period
from app.reports.programme_comparison import build_comparison
from app.reports.render import render
from app.reports.router import RESPONSES, report_session

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/reports", tags=["reports"])
WITH_404 = {**RESPONSES, **problem_responses(NotFound)}


@router.get("/programmes", response_model=None, responses=RESPONSES)
async def programmes_index(
    principal: ReportsReader,
    database: DatabaseDep,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """The review programmes the client's organisation runs, latest period first, with where
    each cohort stands (in cohort, chosen, reviewed): the index of the programme reports, and
    their ids. A snapshot as of today.

    Scope: `reports:read`.
    """
    async with report_session(database) as session:
        programmes = (
            await session.scalars(
                select(Programme).order_by(Programme.period_start.desc(), Programme.id)
            )
        ).all()
        rows = []
        for programme in programmes:
            counts = await counts_of(session, programme.id)
            rows.append(
                {
                    "id": str(programme.id),
                    "code": programme.code,
                    "programme": programme.name,
                    "period": programme_period(programme).label,
                    "status": programme.status,
                    "in_cohort": counts.in_cohort,
                    "selected": counts.selected,
                    "reviewed": counts.reviewed,
                    "reviewed_pct": percent(counts.reviewed, counts.selected),
                }
            )
    report = Report(
        key="programmes",
        title="Review programmes",
        period=as_of_period(report_today()),
        filters={},
        tables=[
            Table(
                "programmes",
                "Review programmes",
                [
                    Column(
                        "id",
                        "Id",
                        "text",
                        "The programme's id (its report: /v1/reports/programmes/{id}).",
                    ),
                    Column("code", "Code", "text"),
                    Column("programme", "Programme", "text"),
                    Column("period", "Period of death", "text"),
                    Column("status", "Status", "text", "draft, open (late deaths join) or closed."),
                    Column("in_cohort", "In cohort", "int"),
                    Column("selected", "Chosen for review", "int"),
                    Column(
                        "reviewed",
                        "Reviewed",
                        "int",
                        "Chosen deaths whose first review is submitted.",
                    ),
                    Column("reviewed_pct", "% reviewed", "percent", "Reviewed / chosen."),
                ],
                rows,
            )
        ],
        generated_at=now(),
    )
    return render(report, output, table)


@router.get("/programmes/{programme_id}", response_model=None, responses=WITH_404)
async def programme_report(
    programme_id: uuid.UUID,
    principal: ReportsReader,
    database: DatabaseDep,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """A review programme's report for its committee (its period is the programme's): the
    programme and how its cohort was selected (the deaths each rule left out); the cohort
    (in cohort, chosen, reviewed, rated, with percentages); overall care ratings and the three
    shares (adequate or better, good or excellent, poor or very poor) as numbers; care by phase,
    by age band and by organisation of care; quality of records against quality of care;
    avoidability; the programme's questions' answers; problems in care by type and harm; the
    themes of its findings; the ME's referral decisions for the cohort's deaths as judged;
    second opinions against the first reviews; the relatives' view; and the recommendations by
    key area with their actions, under the action plan's approval. Each case counts by its
    first review. Definitions: docs/programmes.md.

    Scope: `reports:read`.
    """
    async with report_session(database) as session:
        report = await build_programme_report(session, programme_id, database.settings)
    return render(report, output, table)


@router.get("/programmes/{programme_id}/comparison", response_model=None, responses=WITH_404)
async def programme_comparison(
    programme_id: uuid.UUID,
    other: Annotated[uuid.UUID, Query(description="The other programme's id.")],
    principal: ReportsReader,
    database: DatabaseDep,
    output: FormatParam = ReportFormat.json,
    table: TableParam = None,
) -> Response:
    """Two programmes' themes side by side, even when their methods and theme lists differ:
    themes match when they are the same theme in both programmes' vocabularies or when the
    organisation's theme mappings (`/v1/theme-mappings`) pair them; each row is found in
    both, only in the earlier, only in the later, or unmapped (no matching theme in the other
    programme's vocabulary), with the findings and deaths of each. The earlier programme is the
    one whose period starts first. Definitions: docs/programmes.md.

    Scope: `reports:read`.
    """
    async with report_session(database) as session:
        report = await build_comparison(session, programme_id, other)
    return render(report, output, table)
