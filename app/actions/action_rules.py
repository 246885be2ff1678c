"""The rules between an action's fields, checked the same way on create and update (and by
the spreadsheet import): which fields an action has and which it needs, the cross-field rules
(status 5 needs a completion date, assurance needs evidence, ...), and the checks against other
rows (the section is the plan's, the reference is free in its section, the findings exist)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import rag
from app.actions.rag import ActionStatus, DuePrecision
from app.errors import Conflict, ValidationFailed
from app.models import Action, ActionPlanSection, Finding
from app.models.action import action_findings

Error = dict[str, str]


class DuplicateReference(Conflict):
    slug, title = "duplicate-reference", "The section already has an action with that reference"


def problem(field: str, code: str, detail: str) -> Error:
    return {"pointer": f"/{field}", "code": code, "detail": detail}


def refuse(errors: list[Error]) -> None:
    if errors:
        raise ValidationFailed("The action is not possible as given; see errors.", errors=errors)


# The columns an action's body sets directly (the rest are derived or bookkeeping).
FIELDS = (
    "section_id",
    "reference",
    "improvement_requirement",
    "action",
    "source",
    "leads",
    "organisations",
    "workstream",
    "start_date",
    "due_date",
    "due_precision",
    "due_note",
    "status",
    "comments",
    "completed_at",
    "evidence",
    "assured_at",
    "assured_by",
)
REQUIRED = frozenset(
    {"section_id", "reference", "action", "leads", "organisations", "due_precision", "status"}
)


def normalise(values: dict[str, Any]) -> dict[str, Any]:
    """Enums as stored, and a month-precision due date as its month's 1st."""
    values = {k: (v.value if isinstance(v, DuePrecision) else v) for k, v in values.items()}
    due: date | None = values.get("due_date")
    if due is not None and values.get("due_precision") == DuePrecision.month:
        values["due_date"] = due.replace(day=1)
    return values


def rule_errors(values: dict[str, Any], today: date) -> list[Error]:
    """What no action can say, whatever its fields say on their own."""
    errors = []
    complete = values["status"] == ActionStatus.complete
    completed_at: date | None = values.get("completed_at")
    if completed_at is not None and not complete:
        errors.append(
            problem("completed_at", "not_complete", "only a complete action (status 5) has one")
        )
    if complete and completed_at is None:
        errors.append(problem("completed_at", "missing", "a complete action has a completion date"))
    if completed_at is not None and completed_at > today:
        errors.append(problem("completed_at", "future", "the completion date is in the future"))
    assured_at: date | None = values.get("assured_at")
    if assured_at is not None and not values.get("evidence"):
        errors.append(problem("assured_at", "no_evidence", "assurance needs the evidence"))
    if assured_at is not None and assured_at > today:
        errors.append(problem("assured_at", "future", "the assurance date is in the future"))
    deadline = rag.falls_due(values.get("due_date"), values.get("due_precision"))
    start: date | None = values.get("start_date")
    if start is not None and deadline is not None and deadline < start:
        errors.append(problem("due_date", "before_start", "the due date is before the start date"))
    return errors


async def section_in_plan(
    session: AsyncSession, plan_id: uuid.UUID, section_id: uuid.UUID
) -> ActionPlanSection:
    section = await session.scalar(
        select(ActionPlanSection).where(ActionPlanSection.id == section_id)
    )
    if section is None or section.plan_id != plan_id:
        refuse([problem("section_id", "unknown_section", "not a section of the action's plan")])
    assert section is not None
    return section


async def check_reference_free(
    session: AsyncSession, section_id: uuid.UUID, reference: str, action_id: uuid.UUID | None
) -> None:
    existing = await session.scalar(
        select(Action.id).where(Action.section_id == section_id, Action.reference == reference)
    )
    if existing is not None and existing != action_id:
        raise DuplicateReference(
            f"The section already has an action {reference!r}; references are unique within a "
            "section (other sections may reuse them).",
            extra={"existing": {"action_id": str(existing), "action": f"/v1/actions/{existing}"}},
        )


async def check_findings(
    session: AsyncSession, finding_ids: Sequence[uuid.UUID], field: str = "finding_ids"
) -> None:
    if not finding_ids:
        return
    found = set(
        (await session.scalars(select(Finding.id).where(Finding.id.in_(finding_ids)))).all()
    )
    refuse(
        [
            problem(f"{field}/{index}", "unknown_finding", "no finding with that id")
            for index, finding_id in enumerate(finding_ids)
            if finding_id not in found
        ]
    )


async def link_findings(
    session: AsyncSession, action_id: uuid.UUID, wanted: Sequence[uuid.UUID]
) -> bool:
    """Make the action's links exactly ``wanted``; True when they changed."""
    current = set(
        (
            await session.scalars(
                select(action_findings.c.finding_id).where(action_findings.c.action_id == action_id)
            )
        ).all()
    )
    gone, new = current - set(wanted), [f for f in wanted if f not in current]
    if gone:
        await session.execute(
            delete(action_findings).where(
                action_findings.c.action_id == action_id,
                action_findings.c.finding_id.in_(gone),
            )
        )
    if new:
        await session.execute(
            insert(action_findings), [{"action_id": action_id, "finding_id": f} for f in new]
        )
    return bool(gone or new)
