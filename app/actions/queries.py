"""Reading action plans and actions: lists with their filters, one plan with its counts, one
action, its history. RAG and overdue are derived in SQL from ``status`` and ``falls_due_on``
with the same rule as ``app.actions.rag``, so that a filter never loads every row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import rag
from app.actions.organisation_refs import Configured, entries_of
from app.actions.rag import ActionStatus, Rag
from app.actions.schemas import (
    ActionLinks,
    ActionOut,
    HistoryEntry,
    PlanCounts,
    PlanDetail,
    PlanOut,
    SectionRef,
    SectionWithCount,
    StatusCount,
    status_label,
)
from app.errors import BadRequest, ValidationFailed
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.sql import load_one, table_of
from app.kit.time import local_date, now
from app.models import Action, ActionPlan, ActionPlanSection, ActionUpdate, Finding, Theme
from app.models.action import action_findings


def uk_today() -> date:
    """Today in the trust's terms (Europe/London): what "overdue" is measured against."""
    return local_date(now())


# --- RAG in SQL ------------------------------------------------------------------------------


def overdue_clause(today: date) -> ColumnElement[bool]:
    """rag.is_overdue in SQL: not complete, and past the last on-time day."""
    return and_(
        Action.status != int(ActionStatus.complete),
        Action.falls_due_on.is_not(None),
        Action.falls_due_on < today,
    )


def _on_time(today: date) -> ColumnElement[bool]:
    return or_(Action.falls_due_on.is_(None), Action.falls_due_on >= today)


def rag_clause(colour: Rag, today: date) -> ColumnElement[bool]:
    """The actions whose derived RAG (rag.rag) is ``colour`` on ``today``."""
    if colour is Rag.red:
        return or_(Action.status == int(ActionStatus.off_track), overdue_clause(today))
    if colour is Rag.blue:
        return Action.status == int(ActionStatus.complete)
    status = {
        Rag.grey: ActionStatus.not_yet_commenced,
        Rag.amber: ActionStatus.at_risk,
        Rag.green: ActionStatus.on_track,
    }[colour]
    return and_(Action.status == int(status), _on_time(today))


def _has_element(
    dialect: str, column: Any, value: str, *, casefold: bool = False
) -> ColumnElement[bool]:
    """``value`` is one of the JSON array's elements (EXISTS over the array's elements)."""
    elements_of = func.jsonb_array_elements_text if dialect == "postgresql" else func.json_each
    elements = elements_of(column).table_valued("value").alias("element")
    element: Any = elements.c.value
    wanted: Any = value
    if casefold:
        element, wanted = func.lower(element), func.lower(value)
    return exists(select(1).select_from(elements).where(element == wanted))


def belongs_to_organisation(dialect: str, organisation: str) -> ColumnElement[bool]:
    """The action lists the organisation, or lists none and its plan lists it: an action
    written for "all of us" belongs to the plan's organisations (the actions report counts it
    the same way)."""
    length = func.jsonb_array_length if dialect == "postgresql" else func.json_array_length
    plans = select(ActionPlan.id).where(
        _has_element(dialect, ActionPlan.organisations, organisation)
    )
    return or_(
        _has_element(dialect, Action.organisations, organisation),
        and_(length(Action.organisations) == 0, Action.plan_id.in_(plans)),
    )


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionFilters:
    plan_id: uuid.UUID | None = None
    section_id: uuid.UUID | None = None
    organisation: str | None = None
    lead: str | None = None
    status: int | None = None
    rag: Rag | None = None
    overdue: bool | None = None
    theme: str | None = None


async def resolve_theme(session: AsyncSession, theme: str) -> uuid.UUID:
    """A theme by id or code; an unknown one is a 422 on the filter (a typo finds nothing)."""
    try:
        by_id: ColumnElement[bool] = Theme.id == uuid.UUID(theme)
    except ValueError:
        by_id = Theme.code == theme
    found = await session.scalar(select(Theme.id).where(by_id))
    if found is None:
        raise ValidationFailed(
            "No theme has that id or code.",
            errors=[
                {"pointer": "query:/theme", "code": "unknown_theme", "detail": "no such theme"}
            ],
        )
    return found


_ACTION_ORDER = (Action.plan_id, Action.position, Action.id)


async def list_actions(
    session: AsyncSession,
    filters: ActionFilters,
    cursor: str | None,
    limit: int,
    *,
    aliases: Configured,
) -> tuple[list[ActionOut], str | None]:
    """Actions by plan, then their order in the plan, by keyset."""
    today = uk_today()
    dialect = session.get_bind().dialect.name
    query = select(Action)
    if filters.plan_id is not None:
        query = query.where(Action.plan_id == filters.plan_id)
    if filters.section_id is not None:
        query = query.where(Action.section_id == filters.section_id)
    if filters.status is not None:
        query = query.where(Action.status == filters.status)
    if filters.rag is not None:
        query = query.where(rag_clause(filters.rag, today))
    if filters.overdue is not None:
        late = overdue_clause(today)
        query = query.where(late if filters.overdue else ~late)
    if filters.organisation is not None:
        query = query.where(belongs_to_organisation(dialect, filters.organisation))
    if filters.lead is not None:
        query = query.where(_has_element(dialect, Action.leads, filters.lead, casefold=True))
    if filters.theme is not None:
        theme_id = await resolve_theme(session, filters.theme)
        linked = (
            select(action_findings.c.action_id)
            .join(Finding, Finding.id == action_findings.c.finding_id)
            .where(Finding.theme_id == theme_id)
        )
        query = query.where(Action.id.in_(linked))
    if cursor is not None:
        plan_raw, position_raw, id_raw = await open_cursor(session, cursor, 3)
        try:
            key = (uuid.UUID(plan_raw), int(position_raw), uuid.UUID(id_raw))
        except (TypeError, ValueError) as error:
            raise BadRequest("The cursor is not one this service issued.") from error
        query = query.where(tuple_(*_ACTION_ORDER) > key)
    rows = list((await session.scalars(query.order_by(*_ACTION_ORDER).limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = await sign_cursor(session, [str(last.plan_id), last.position, str(last.id)])
    return await actions_out(session, page, today, aliases=aliases), next_cursor


async def load_action(
    session: AsyncSession, action_id: uuid.UUID, *, for_update: bool = False
) -> Action:
    return await load_one(session, Action, action_id, "action", for_update=for_update)


async def finding_links(
    session: AsyncSession, action_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    links: dict[uuid.UUID, list[uuid.UUID]] = {action_id: [] for action_id in action_ids}
    if action_ids:
        rows = await session.execute(
            select(action_findings.c.action_id, action_findings.c.finding_id)
            .where(action_findings.c.action_id.in_(list(action_ids)))
            .order_by(action_findings.c.action_id, action_findings.c.finding_id)
        )
        for action_id, finding_id in rows:
            links[action_id].append(finding_id)
    return links


async def actions_out(
    session: AsyncSession,
    actions: Sequence[Action],
    today: date | None = None,
    *,
    aliases: Configured,
) -> list[ActionOut]:
    """Actions as returned: with their section, links, organisations resolved
    (app.actions.organisation_refs) and derived RAG (three queries a page). ``aliases``: the
    configured alias table (``LFD_ORGANISATION_ALIASES``)."""
    today = today or uk_today()
    section_ids = {action.section_id for action in actions}
    titles: dict[uuid.UUID, str] = {}
    if section_ids:
        rows = await session.execute(
            select(ActionPlanSection.id, ActionPlanSection.title).where(
                ActionPlanSection.id.in_(section_ids)
            )
        )
        titles = {section_id: title for section_id, title in rows}
    links = await finding_links(session, [action.id for action in actions])
    refs = await entries_of(
        session, aliases, [(action.organisations, action.organisation_names) for action in actions]
    )
    columns = [column.key for column in table_of(Action).columns]
    out = []
    for action, organisation_refs in zip(actions, refs, strict=True):
        values = {name: getattr(action, name) for name in columns}
        precision = action.due_precision or rag.DuePrecision.day
        recorded = action.status_recorded is not False
        derived = rag.derived_rag(action.status, recorded, action.due_date, precision, today)
        overdue = rag.is_overdue(action.status, action.due_date, precision, today)
        out.append(
            ActionOut.model_validate(
                {
                    **values,
                    "due_precision": precision,
                    "section": SectionRef(id=action.section_id, title=titles[action.section_id]),
                    "status_label": status_label(action.status)
                    if action.status_recorded is not False
                    else "Not recorded",
                    "rag": derived,
                    "overdue": overdue,
                    "rag_summary": rag.rag_summary(
                        derived,
                        overdue,
                        action.status_recorded is not False,
                        action.reported_rag,
                        action.reported_rag_on,
                        action.reported_rag_precision,
                    ),
                    "status_recorded": action.status_recorded is not False,
                    "organisation_names": action.organisation_names or list(action.organisations),
                    "organisation_refs": organisation_refs,
                    "lead_history": action.lead_history or [],
                    "links": action.links or [],
                    "finding_ids": links[action.id],
                }
            )
        )
    return out


async def read_action(
    session: AsyncSession, action_id: uuid.UUID, *, aliases: Configured
) -> ActionOut:
    action = await load_action(session, action_id)
    return (await actions_out(session, [action], aliases=aliases))[0]


async def read_links(session: AsyncSession, action_id: uuid.UUID) -> ActionLinks:
    action = await load_action(session, action_id)
    links = await finding_links(session, [action.id])
    return ActionLinks(action_id=action.id, finding_ids=links[action.id], version=action.version)


async def history(session: AsyncSession, action_id: uuid.UUID) -> list[HistoryEntry]:
    """The action's dated history, oldest first (by the date it is for, then when recorded)."""
    await load_action(session, action_id)
    rows = (
        await session.scalars(
            select(ActionUpdate)
            .where(ActionUpdate.action_id == action_id)
            .order_by(ActionUpdate.update_date, ActionUpdate.recorded_at, ActionUpdate.id)
        )
    ).all()
    return [history_entry(row) for row in rows]


def history_entry(row: ActionUpdate) -> HistoryEntry:
    return HistoryEntry(
        id=row.id,
        update_date=row.update_date,
        author=row.author,
        narrative=row.narrative,
        status_before=row.status_before,
        status=row.status,
        status_label=status_label(row.status),
        recorded_at=row.recorded_at,
    )


# --- plans -----------------------------------------------------------------------------------


async def load_plan(
    session: AsyncSession, plan_id: uuid.UUID, *, for_update: bool = False
) -> ActionPlan:
    return await load_one(session, ActionPlan, plan_id, "action plan", for_update=for_update)


async def sections_of(
    session: AsyncSession, plan_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ActionPlanSection]]:
    sections: dict[uuid.UUID, list[ActionPlanSection]] = {plan_id: [] for plan_id in plan_ids}
    if plan_ids:
        rows = await session.scalars(
            select(ActionPlanSection)
            .where(ActionPlanSection.plan_id.in_(list(plan_ids)))
            .order_by(ActionPlanSection.plan_id, ActionPlanSection.position)
        )
        for section in rows:
            sections[section.plan_id].append(section)
    return sections


def plan_values(plan: ActionPlan) -> dict[str, Any]:
    values = {column.key: getattr(plan, column.key) for column in table_of(ActionPlan).columns}
    values["organisation_names"] = plan.organisation_names or list(plan.organisations)
    return values


async def plan_detail(
    session: AsyncSession, plan: ActionPlan, *, aliases: Configured
) -> PlanDetail:
    """The plan with its sections and its actions counted by status and RAG (one grouped
    query: per section and status, how many actions and how many of them are overdue)."""
    today = uk_today()
    late = func.sum(case((overdue_clause(today), 1), else_=0))
    rows = (
        await session.execute(
            select(Action.section_id, Action.status, func.count(), late)
            .where(Action.plan_id == plan.id)
            .group_by(Action.section_id, Action.status)
        )
    ).all()
    per_section: dict[uuid.UUID, int] = {}
    per_status = dict.fromkeys(ActionStatus, 0)
    per_rag = dict.fromkeys(Rag, 0)
    overdue = 0
    for section_id, status, count, late_count in rows:
        late_count = int(late_count or 0)
        per_section[section_id] = per_section.get(section_id, 0) + count
        per_status[ActionStatus(status)] += count
        per_rag[rag.rag(status, None, None, today)] += count - late_count
        per_rag[Rag.red] += late_count
        overdue += late_count
    sections = (await sections_of(session, [plan.id]))[plan.id]
    refs = await entries_of(session, aliases, [(plan.organisations, plan.organisation_names)])
    return PlanDetail.model_validate(
        {
            **plan_values(plan),
            "organisation_refs": refs[0],
            "sections": [
                SectionWithCount(
                    id=section.id,
                    position=section.position,
                    title=section.title,
                    actions=per_section.get(section.id, 0),
                )
                for section in sections
            ],
            "counts": PlanCounts(
                total=sum(per_status.values()),
                overdue=overdue,
                by_status=[
                    StatusCount(status=status, status_label=status_label(status), count=count)
                    for status, count in per_status.items()
                ],
                by_rag=per_rag,
            ),
            "as_of": today,
        }
    )


async def read_plan(
    session: AsyncSession, plan_id: uuid.UUID, *, aliases: Configured
) -> PlanDetail:
    return await plan_detail(session, await load_plan(session, plan_id), aliases=aliases)


async def list_plans(
    session: AsyncSession,
    organisation: str | None,
    cursor: str | None,
    limit: int,
    *,
    aliases: Configured,
) -> tuple[list[PlanOut], str | None]:
    """Newest plan first, by keyset on (created_at, id)."""
    query = select(ActionPlan)
    if organisation is not None:
        dialect = session.get_bind().dialect.name
        query = query.where(_has_element(dialect, ActionPlan.organisations, organisation))
    if cursor is not None:
        created_raw, id_raw = await open_cursor(session, cursor, 2)
        try:
            key = (datetime.fromisoformat(created_raw), uuid.UUID(id_raw))
        except (TypeError, ValueError) as error:
            raise BadRequest("The cursor is not one this service issued.") from error
        query = query.where(tuple_(ActionPlan.created_at, ActionPlan.id) < key)
    order = (ActionPlan.created_at.desc(), ActionPlan.id.desc())
    rows = list((await session.scalars(query.order_by(*order).limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = await sign_cursor(
            session, [page[-1].created_at.isoformat(), str(page[-1].id)]
        )
    sections = await sections_of(session, [plan.id for plan in page])
    refs = await entries_of(
        session, aliases, [(plan.organisations, plan.organisation_names) for plan in page]
    )
    items = [
        PlanOut.model_validate(
            {**plan_values(plan), "sections": sections[plan.id], "organisation_refs": found}
        )
        for plan, found in zip(page, refs, strict=True)
    ]
    return items, next_cursor
