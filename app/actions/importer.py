"""Importing an action plan spreadsheet (DESIGN.md section 6; docs/spreadsheets.md): the
whole file (its header row, the plan's title, sponsor, organisations and description above
it), the plan it makes, and every assumption made on the way, row by row.

- Rows above the header row give the plan's title (the first line) and ``Sponsor:``,
  ``Organisations:`` and ``Description:`` lines; anything else there is not imported (warned).
- The rows after it are read by ``app.actions.rows.RowReader``: sections, actions, merged
  blanks meaning "same as above", references repeated, dates, statuses and leads.

``interpret`` reads the file (no database); ``write_plan`` creates the plan, its sections and
actions in the caller's transaction, with the events an API-made plan has; ``import_file``
does both for the route.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import date, datetime
from typing import Any

import anyio
import pydantic
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.limits import SpreadsheetLimits
from app.actions.organisations import alias_table
from app.actions.plan_reader import PlannedPlan, SpreadsheetRowsInvalid, interpret
from app.actions.row_fields import ImportWarning, PlannedAction, ReadOptions
from app.actions.schemas import PlanCreate
from app.actions.service import PlanSource, create_plan
from app.actions.spreadsheets import Field, Layout
from app.audit.journal import Journal
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database
from app.errors import Conflict
from app.events.service import Change
from app.kit.sql import table_of
from app.kit.time import local_date, now
from app.models import Action, ActionPlan, ActionUpdate
from app.models.base import utcnow
from app.organisations.aliases import registry_aliases

__all__ = ["PlannedPlan", "SpreadsheetRowsInvalid", "import_file", "interpret", "write_plan"]


def read_options(
    settings: Settings,
    *,
    as_of: date | None = None,
    plan_year: int | None = None,
    columns: dict[str, Field] | None = None,
    registry: dict[str, tuple[str, str]] | None = None,
) -> ReadOptions:
    """``registry``: the organisation registry's names, aliases and codes
    (app.organisations.aliases), which win over the configured alias table."""
    return ReadOptions(
        limits=SpreadsheetLimits.from_settings(settings),
        aliases=alias_table(settings.organisation_aliases, registry or {}),
        as_of=as_of,
        plan_year=plan_year,
        columns=columns,
    )


class AlreadyImported(Conflict):
    slug, title = "already-imported", "This file has already been imported"


# --- writing ---------------------------------------------------------------------------------


async def find_imported(session: AsyncSession, sha256: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        select(ActionPlan.id).where(ActionPlan.source_sha256 == sha256)
    )
    return found


def already_imported(plan_id: uuid.UUID) -> AlreadyImported:
    return AlreadyImported(
        f"This file was imported before, as plan {plan_id}; it is not imported twice. Change "
        "the plan there, or export it, edit the export and import that as a new plan.",
        extra={"existing": {"plan_id": str(plan_id), "plan": f"/v1/action-plans/{plan_id}"}},
    )


async def import_file(
    database: Database,
    principal: Principal,
    data: bytes,
    *,
    dry_run: bool,
    layout: Layout | None,
    title: str | None,
    filename: str | None,
    options: ReadOptions | None = None,
) -> PlannedPlan:
    """Read the file (in a worker thread: it is CPU work) and, unless a dry run, create the
    plan in one transaction. The same file is refused before it is read again."""
    if not dry_run:
        async with database.transaction() as session:
            existing = await find_imported(session, hashlib.sha256(data).hexdigest())
        if existing is not None:
            raise already_imported(existing)
    today = local_date(now())
    plan = await anyio.to_thread.run_sync(
        functools.partial(
            interpret,
            data,
            layout=layout,
            title=title,
            filename=filename,
            today=today,
            options=options
            or read_options(database.settings, registry=await registry_aliases(database)),
        )
    )
    async with database.transaction() as session:
        if dry_run:
            plan.already_imported_as = await find_imported(session, plan.source_sha256)
            if plan.already_imported_as is not None:
                plan.warnings.insert(
                    0,
                    ImportWarning(
                        None,
                        None,
                        "already_imported",
                        f"this file was imported before, as plan {plan.already_imported_as}: "
                        "a real import of it is refused (409)",
                    ),
                )
        else:
            await write_plan(session, principal, plan)
    return plan


async def write_plan(session: AsyncSession, principal: Principal, plan: PlannedPlan) -> None:
    """Create the plan (through the plan service, event ``action_plan.created``), its sections
    and its actions (multi-row INSERTs, each action with the event ``action.created``), as the
    API would have made them, in the caller's transaction. Sets the ids on ``plan``."""
    existing = await find_imported(session, plan.source_sha256)
    if existing is not None:
        raise already_imported(existing)
    journal = Journal(principal)
    try:
        body = PlanCreate(
            title=plan.title,
            sponsor=plan.sponsor,
            organisations=plan.organisations,
            description=plan.description,
            sections=[section.title for section in plan.sections],
        )
    except pydantic.ValidationError as error:
        raise SpreadsheetRowsInvalid(
            "The plan's title, sponsor, organisations or sections cannot be imported.",
            errors=[
                {"row": None, "column": None, "code": item["type"], "detail": item["msg"]}
                for item in error.errors()
            ],
        ) from None
    source = PlanSource(plan.source_sha256, plan.source_filename, plan.layout.value)
    created, sections = await create_plan(session, journal, body, source=source)
    created.organisation_names = plan.organisation_names
    plan.id = created.id
    created_at = utcnow()
    placed: list[tuple[uuid.UUID, PlannedAction]] = []
    for section, made in zip(plan.sections, sections, strict=True):
        section.id = made.id
        placed += [(made.id, planned) for planned in section.actions]
    by_row = {planned.row: planned for _, planned in placed}
    for _, planned in placed:
        planned.id = uuid.uuid4()
    for _, planned in placed:
        for link in planned.links:
            link["id"] = str(by_row[link["row"]].id)
    # A thousand actions at a time, each batch with its events: a Core INSERT over the table
    # is one executemany (the ORM's bulk insert would split the rows by which of their values
    # are None), and the parameters of only one batch are held at once.
    for start in range(0, len(placed), 1000):
        rows = []
        updates = []
        for position, (section_id, planned) in enumerate(placed[start : start + 1000], start + 1):
            rows.append(
                _action_row(planned, created.id, section_id, position, principal, created_at)
            )
            if planned.progress is not None and planned.progress_on is not None:
                updates.append(_progress_row(planned, principal, created_at))
            assert planned.id is not None
            journal.event(Change("action.created", "action", planned.id, None))
        await session.execute(insert(table_of(Action)), rows)
        if updates:
            await session.execute(insert(table_of(ActionUpdate)), updates)
        await journal.write(session)
    await journal.write(session)


def _action_row(
    planned: PlannedAction,
    plan_id: uuid.UUID,
    section_id: uuid.UUID,
    position: int,
    principal: Principal,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "id": planned.id,
        "plan_id": plan_id,
        "section_id": section_id,
        "position": position,
        "reference": planned.reference,
        "improvement_requirement": planned.improvement_requirement,
        "action": planned.action,
        "source": planned.source,
        "leads": planned.leads,
        "organisations": planned.organisations,
        "workstream": planned.workstream,
        "recommendation": planned.recommendation,
        # None when there is nothing to add: the names are the codes, no earlier lead, no link.
        "organisation_names": None
        if planned.organisation_names == planned.organisations
        else planned.organisation_names,
        "lead_history": planned.lead_history or None,
        "links": [
            {"action_id": link["id"], "reference": link["reference"], "kind": link["kind"]}
            for link in planned.links
        ]
        or None,
        "due_text": planned.due_text,
        "start_date": planned.start_date,
        "due_date": planned.due_date,
        "due_precision": planned.due_precision.value,
        "due_note": planned.due_note,
        "falls_due_on": planned.falls_due_on,
        "status": planned.status or 1,
        "status_recorded": planned.status is not None,
        "reported_rag": planned.reported_rag,
        "reported_rag_on": planned.reported_rag_on,
        "reported_rag_precision": planned.reported_rag_precision,
        "comments": planned.comments,
        "completed_at": planned.completed_at,
        "completed_precision": planned.completed_precision,
        "evidence": None,
        "assured_at": None,
        "assured_by": None,
        "overdue_notified_at": None,
        "created_by_client_id": principal.client_id,
        "version": 1,
        "created_at": created_at,
        "updated_at": created_at,
    }


def _progress_row(
    planned: PlannedAction, principal: Principal, created_at: datetime
) -> dict[str, Any]:
    """A dated progress update ("Progress made Sept 2019"), as the action's history holds it."""
    return {
        "id": uuid.uuid4(),
        "action_id": planned.id,
        "update_date": planned.progress_on,
        "author": None,
        "narrative": planned.progress,
        "status_before": None,
        "status": planned.status or 1,
        "recorded_at": created_at,
        "client_id": principal.client_id,
    }
