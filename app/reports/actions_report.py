"""Actions (DESIGN.md section 9, docs/reports.md "Actions"): action plans' progress as status and
RAG counts, by plan and by organisation, and the overdue actions with their leads.

A snapshot as of today (UK local date), not a period: an action's status and RAG are what they
are now, and the service keeps no RAG history to rebuild last quarter's. The RAG and "overdue"
are the SQL forms of the rule in app.actions.rag (app.actions.queries.rag_clause and
overdue_clause), so the report and the actions API never disagree.

An action belongs to the organisations it lists; an action that lists none belongs to its
plan's organisations (what a plan's owners would expect of an action written for "all of us").
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.queries import belongs_to_organisation, overdue_clause, rag_clause, uk_today
from app.actions.rag import STATUS_LABELS, ActionStatus, Rag, rag_summary
from app.config import Settings
from app.errors import NotFound
from app.kit.time import now
from app.models import Action, ActionPlan, ActionPlanSection
from app.reports.aggregates import LIST_LIMIT, dialect_of, json_elements
from app.reports.filters import ReportFilters
from app.reports.model import Column, Period, Report, Table, percent

APPLICABLE_FILTERS = ("organisation",)

STATUS_KEYS = {
    ActionStatus.not_yet_commenced: "not_yet_commenced",
    ActionStatus.off_track: "off_track",
    ActionStatus.at_risk: "at_risk",
    ActionStatus.on_track: "on_track",
    ActionStatus.complete: "complete",
}
RAG_ORDER = (Rag.red, Rag.amber, Rag.green, Rag.blue, Rag.grey)
RAG_DEFINITIONS = {
    Rag.red: "Off track, or past its due date and not complete.",
    Rag.amber: "At risk and not past its due date.",
    Rag.green: "On track and not past its due date.",
    Rag.blue: "Complete.",
    Rag.grey: "Not yet commenced and not past its due date.",
}


def as_of_period(today: date) -> Period:
    return Period(today, today, f"As of {today.day} {today:%B %Y}", "range")


def effective_organisations(dialect: str) -> Any:
    """The action's ODS codes, or its plan's when it lists none (needs action_plans joined)."""
    length = func.jsonb_array_length if dialect == "postgresql" else func.json_array_length
    return case(
        (length(Action.organisations) > 0, Action.organisations),
        else_=ActionPlan.organisations,
    )


def _count_columns(today: date) -> list[Any]:
    """Per status, per RAG colour, overdue, and the total: conditional sums in one pass."""
    columns: list[Any] = [func.count(Action.id).label("actions")]
    for status, key in STATUS_KEYS.items():
        columns.append(func.sum(case((Action.status == int(status), 1), else_=0)).label(key))
    for colour in RAG_ORDER:
        columns.append(
            func.sum(case((rag_clause(colour, today), 1), else_=0)).label(f"rag_{colour.value}")
        )
    columns.append(func.sum(case((overdue_clause(today), 1), else_=0)).label("overdue"))
    return columns


def _count_values(row: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"actions": int(row.actions or 0)}
    for key in STATUS_KEYS.values():
        values[key] = int(getattr(row, key) or 0)
    for colour in RAG_ORDER:
        values[f"rag_{colour.value}"] = int(getattr(row, f"rag_{colour.value}") or 0)
    values["overdue"] = int(row.overdue or 0)
    values["complete_percent"] = percent(values["complete"], values["actions"])
    return values


def _count_table_columns() -> list[Column]:
    return [
        Column("actions", "Actions", "int"),
        *(
            Column(key, STATUS_LABELS[status], "int", f"Actions at status {int(status)}.")
            for status, key in STATUS_KEYS.items()
        ),
        *(
            Column(f"rag_{colour.value}", colour.value.capitalize(), "int", RAG_DEFINITIONS[colour])
            for colour in RAG_ORDER
        ),
        Column(
            "overdue",
            "Overdue",
            "int",
            "Not complete and past the last on-time day (the due date, or the end of a due "
            "month); a due note alone (TBC, Ongoing) is never overdue.",
        ),
        Column("complete_percent", "Complete %", "percent", "Complete of all actions."),
    ]


class _Scope:
    """The actions the report covers: a plan, an organisation, or all."""

    def __init__(self, dialect: str, filters: ReportFilters, plan_id: uuid.UUID | None) -> None:
        self.dialect = dialect
        self.organisation = filters.organisation
        self.plan_id = plan_id

    def terms(self) -> list[ColumnElement[bool]]:
        terms: list[ColumnElement[bool]] = []
        if self.plan_id is not None:
            terms.append(Action.plan_id == self.plan_id)
        if self.organisation is not None:
            # The same rule as GET /v1/actions?organisation=.
            terms.append(belongs_to_organisation(self.dialect, self.organisation))
        return terms


async def _summary(session: AsyncSession, scope: _Scope, today: date) -> Table:
    query = (
        select(*_count_columns(today))
        .select_from(Action)
        .join(ActionPlan, ActionPlan.id == Action.plan_id)
        .where(*scope.terms())
    )
    row = (await session.execute(query)).one()
    return Table(
        key="summary",
        title="All actions by status and RAG",
        columns=_count_table_columns(),
        rows=[_count_values(row)],
    )


async def _by_plan(session: AsyncSession, scope: _Scope, today: date) -> Table:
    query = (
        select(ActionPlan.id, ActionPlan.title, *_count_columns(today))
        .select_from(Action)
        .join(ActionPlan, ActionPlan.id == Action.plan_id)
        .where(*scope.terms())
        .group_by(ActionPlan.id, ActionPlan.title)
        .order_by(ActionPlan.title, ActionPlan.id)
    )
    rows = [
        {"plan": row.title, "plan_id": str(row.id), **_count_values(row)}
        for row in (await session.execute(query)).all()
    ]
    return Table(
        key="by_plan",
        title="Actions by plan",
        columns=[
            Column("plan", "Plan", "text"),
            Column("plan_id", "Plan id", "text"),
            *_count_table_columns(),
        ],
        rows=rows,
        note="Plans with at least one action.",
    )


async def _by_organisation(session: AsyncSession, scope: _Scope, today: date) -> Table:
    codes = json_elements(scope.dialect, effective_organisations(scope.dialect), "ods")
    query = (
        select(codes.c.value.label("organisation"), *_count_columns(today))
        .select_from(Action)
        .join(ActionPlan, ActionPlan.id == Action.plan_id)
        .join(codes, codes.c.value.is_not(None))
        .group_by(codes.c.value)
        .order_by(codes.c.value)
    )
    if scope.plan_id is not None:
        query = query.where(Action.plan_id == scope.plan_id)
    if scope.organisation is not None:
        query = query.where(codes.c.value == scope.organisation)
    rows = [
        {"organisation": row.organisation, **_count_values(row)}
        for row in (await session.execute(query)).all()
    ]
    return Table(
        key="by_organisation",
        title="Actions by organisation",
        columns=[
            Column("organisation", "Organisation (ODS code)", "text"),
            *_count_table_columns(),
        ],
        rows=rows,
        note="An action shared by several organisations counts under each, so the rows can add "
        "up to more than the actions; an action listing no organisation counts under its "
        "plan's.",
    )


async def _overdue_list(session: AsyncSession, scope: _Scope, today: date) -> Table:
    query = (
        select(
            ActionPlan.title,
            ActionPlanSection.title.label("section"),
            Action.reference,
            Action.action,
            Action.leads,
            effective_organisations(scope.dialect).label("organisations"),
            Action.status,
            Action.status_recorded,
            Action.reported_rag,
            Action.reported_rag_on,
            Action.reported_rag_precision,
            Action.falls_due_on,
        )
        .select_from(Action)
        .join(ActionPlan, ActionPlan.id == Action.plan_id)
        .join(ActionPlanSection, ActionPlanSection.id == Action.section_id)
        .where(overdue_clause(today), *scope.terms())
        .order_by(
            Action.falls_due_on,
            ActionPlan.title,
            ActionPlanSection.position,
            Action.position,
            Action.id,
        )
        .limit(LIST_LIMIT + 1)
    )
    found = (await session.execute(query)).all()
    note = "Most overdue first. Leads are staff named on the plan, not patients."
    if len(found) > LIST_LIMIT:
        found = found[:LIST_LIMIT]
        note += f" The {LIST_LIMIT} most overdue; the counts above cover all."
    return Table(
        key="overdue",
        title="Overdue actions",
        columns=[
            Column("plan", "Plan", "text"),
            Column("section", "Section", "text"),
            Column("reference", "Reference", "text"),
            Column("action", "Action", "text"),
            Column("leads", "Leads", "text"),
            Column("organisations", "Organisations", "text"),
            Column("status", "Status", "text"),
            Column(
                "due",
                "Due by",
                "date",
                "The last on-time day: the due date, or the last day of a due month.",
            ),
            Column("days_overdue", "Days overdue", "int", "Days since the last on-time day."),
            Column(
                "rag",
                "RAG",
                "text",
                "The RAG a person reported in an imported plan, with its date, beside the RAG "
                "the service derives today (red: overdue).",
            ),
        ],
        rows=[
            {
                "plan": row.title,
                "section": row.section,
                "reference": row.reference,
                "action": row.action,
                "leads": ", ".join(row.leads),
                "organisations": ", ".join(row.organisations or []),
                "status": STATUS_LABELS[ActionStatus(row.status)]
                if row.status_recorded is not False
                else "Not recorded",
                "due": row.falls_due_on,
                "days_overdue": (today - row.falls_due_on).days,
                "rag": rag_summary(
                    Rag.red,
                    True,
                    row.status_recorded is not False,
                    row.reported_rag,
                    row.reported_rag_on,
                    row.reported_rag_precision,
                ),
            }
            for row in found
        ],
        note=note,
    )


async def build_actions(
    session: AsyncSession,
    period: Period | None,
    filters: ReportFilters,
    settings: Settings,
    plan_id: uuid.UUID | None = None,
) -> Report:
    """Status and RAG counts (all actions, by plan, by organisation) and the overdue actions,
    as of today. `period` is not used (a snapshot has none) and may be None."""
    filters.require_only("actions", *APPLICABLE_FILTERS)
    if plan_id is not None:
        found = await session.scalar(select(ActionPlan.id).where(ActionPlan.id == plan_id))
        if found is None:
            raise NotFound("No action plan with that id.")
    today = uk_today()
    scope = _Scope(dialect_of(session), filters, plan_id)
    return Report(
        key="actions",
        title="Action plans: status, RAG and overdue actions",
        period=as_of_period(today),
        filters={**filters.as_dict(), "plan_id": str(plan_id) if plan_id else None},
        tables=[
            await _summary(session, scope, today),
            await _by_plan(session, scope, today),
            await _by_organisation(session, scope, today),
            await _overdue_list(session, scope, today),
        ],
        generated_at=now(),
        notes=[
            f"As of {today.isoformat()} (UK local date): status and RAG as they stand today.",
        ],
    )
