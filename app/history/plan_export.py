"""Action plans as bundle lines (app.history.plans): each plan in scope (of one organisation,
when given) with its sections, actions, their progress updates and the findings they answer,
named by their deaths' keys and the findings' references in those deaths' records. A plan
that came in as history keeps the keys its bundle gave it and its sections and actions; one
made through the API or from a spreadsheet is keyed ``lfd`` and its id, its parts by their
ids. Plans are few: one plan's rows at a time."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.history.plans import LIVE_SYSTEM, plan_line
from app.models import (
    Action,
    ActionPlan,
    ActionPlanSection,
    ActionUpdate,
    Death,
    Finding,
    HistoryRecord,
)
from app.models.action import action_findings

ACTION_FIELDS = (
    "reference",
    "improvement_requirement",
    "action",
    "source",
    "leads",
    "organisations",
    "workstream",
    "recommendation",
    "organisation_names",
    "lead_history",
    "due_text",
    "start_date",
    "due_date",
    "due_precision",
    "due_note",
    "status",
    "status_recorded",
    "reported_rag",
    "reported_rag_on",
    "reported_rag_precision",
    "comments",
    "completed_at",
    "completed_precision",
    "evidence",
    "assured_at",
    "assured_by",
    "created_at",
    "updated_at",
)


async def export_plans(
    session: AsyncSession, organisation_id: uuid.UUID | None = None
) -> AsyncIterator[dict[str, Any]]:
    query = select(ActionPlan).order_by(ActionPlan.created_at, ActionPlan.id)
    if organisation_id is not None:
        query = query.where(ActionPlan.organisation_id == organisation_id)
    for plan_id in [p.id for p in (await session.scalars(query)).all()]:
        plan = await session.get_one(ActionPlan, plan_id)
        yield plan_line(await _plan(session, plan))
        session.expunge_all()


async def _plan(session: AsyncSession, plan: ActionPlan) -> dict[str, Any]:
    sections = (
        await session.scalars(
            select(ActionPlanSection)
            .where(ActionPlanSection.plan_id == plan.id)
            .order_by(ActionPlanSection.position)
        )
    ).all()
    actions = (
        await session.scalars(
            select(Action).where(Action.plan_id == plan.id).order_by(Action.position, Action.id)
        )
    ).all()
    ids = [a.id for a in actions]
    updates: dict[uuid.UUID, list[ActionUpdate]] = defaultdict(list)
    for entry in (
        await session.scalars(
            select(ActionUpdate)
            .where(ActionUpdate.action_id.in_(ids))
            .order_by(ActionUpdate.recorded_at, ActionUpdate.id)
        )
    ).all():
        updates[entry.action_id].append(entry)
    findings = await _finding_refs(session, ids)
    section_keys = {s.id: s.source_key or str(s.id) for s in sections}
    action_keys = {a.id: a.source_key or str(a.id) for a in actions}
    historic = plan.source_system is not None and plan.source_reference is not None
    return {
        "source_system": plan.source_system if historic else LIVE_SYSTEM,
        "source_reference": plan.source_reference if historic else str(plan.id),
        "title": plan.title,
        "sponsor": plan.sponsor,
        "organisations": plan.organisations,
        "organisation_names": plan.organisation_names,
        "description": plan.description,
        "source_file": {
            "sha256": plan.source_sha256,
            "filename": plan.source_filename,
            "layout": plan.layout,
        }
        if plan.source_sha256 and plan.layout
        else None,
        "created_at": plan.created_at,
        "updated_at": plan.updated_at,
        "sections": [{"key": section_keys[s.id], "title": s.title} for s in sections],
        "actions": [
            {
                "key": action_keys[a.id],
                "section": section_keys[a.section_id],
                **{name: getattr(a, name) for name in ACTION_FIELDS},
                "links": [_link(link, action_keys) for link in a.links or []],
                "findings": findings.get(a.id, []),
                "updates": [
                    {
                        "update_date": u.update_date,
                        "author": u.author,
                        "narrative": u.narrative,
                        "status_before": u.status_before,
                        "status": u.status,
                        "recorded_at": u.recorded_at,
                    }
                    for u in updates[a.id]
                ],
            }
            for a in actions
        ],
    }


def _link(link: dict[str, str], keys: dict[uuid.UUID, str]) -> dict[str, Any]:
    target = link.get("action_id")
    key = keys.get(uuid.UUID(target)) if target else None
    return {"action": key or target, "reference": link.get("reference"), "kind": link.get("kind")}


async def _finding_refs(
    session: AsyncSession, action_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, str]]]:
    """Each action's findings as the bundle names them: the death's key and the finding's
    reference in its record (its id for a finding live intake recorded)."""
    if not action_ids:
        return {}
    rows = (
        await session.execute(
            select(
                action_findings.c.action_id,
                Finding.id,
                Death.source_system,
                Death.source_reference,
                HistoryRecord.links,
            )
            .join(Finding, Finding.id == action_findings.c.finding_id)
            .join(Death, Death.id == Finding.death_id)
            .outerjoin(HistoryRecord, HistoryRecord.death_id == Death.id)
            .where(action_findings.c.action_id.in_(action_ids))
            .order_by(action_findings.c.action_id, Finding.created_at, Finding.id)
        )
    ).all()
    found: dict[uuid.UUID, list[dict[str, str]]] = defaultdict(list)
    for action_id, finding_id, system, reference, links in rows:
        named = {row_id: ref for ref, row_id in (links or {}).get("findings", {}).items()}
        found[action_id].append(
            {
                "source_system": system,
                "source_reference": reference,
                "finding": named.get(str(finding_id), str(finding_id)),
            }
        )
    return found
