"""A batch's action plan records into the database, in the caller's transaction, after its
deaths (so that an action may answer a finding of the same batch). A plan is found again by
its key (``source_system`` + ``source_reference``), its sections and actions by theirs:

- new: the plan, its sections, actions, progress updates and finding links, with the
  record's own times; it belongs to the import's organisation, as its deaths do;
- unchanged (the same fingerprint): nothing written;
- corrected: the plan's fields, section titles and actions' fields where they differ (each
  changed row's version raised), new sections and actions appended, new updates after the
  ones imported before, the finding links as the record says. A correction that drops a
  section, an action or an update imported before, or changes an update, is refused.

A record naming a plan made through the API (the export's key for one, ``lfd`` and its id)
is refused: change that plan through the API. No per-plan event: the batch's
``history.imported`` names ``action_plans`` and ``actions``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import rag
from app.actions.action_rules import link_findings
from app.auth.principal import Principal
from app.errors import field_error
from app.history.plans import LIVE_SYSTEM, HistoricAction, HistoricPlan, action_values
from app.history.validation import Checked
from app.kit.ids import uuid4
from app.kit.sql import insert_for, table_of
from app.kit.time import LONDON
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
from app.organisations.service import recording_organisation

Errors = list[dict[str, Any]]
UPDATE_FIELDS = ("update_date", "author", "narrative", "status_before", "status")


async def write_plans(
    session: AsyncSession, principal: Principal, items: list[Checked], moment: datetime
) -> tuple[int, int, int, set[str]]:
    """Write the batch's valid plan records: (created, updated, unchanged, kinds written);
    a refused one gets its problems."""
    created = updated = unchanged = 0
    kinds: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for checked in items:
        if checked.plan is None or checked.errors:
            continue
        plan = checked.plan.action_plan
        if checked.key in seen:
            checked.errors.append(
                field_error("/action_plan/source_reference", "this plan is in the bundle twice")
            )
            continue
        seen.add(checked.key)
        found = await session.scalar(
            select(ActionPlan).where(
                ActionPlan.source_system == plan.source_system,
                ActionPlan.source_reference == plan.source_reference,
            )
        )
        if found is None and await _live_plan(session, plan):
            checked.errors.append(
                field_error(
                    "/action_plan/source_reference",
                    "this plan was made through the API here; change it through the API",
                    "conflict",
                )
            )
            continue
        findings = await _finding_ids(session, plan, checked.errors)
        if checked.errors:
            continue
        if found is None:
            if await _create(session, principal, plan, checked.sha256, findings, moment):
                created += 1
                kinds |= {"action_plans", "actions"} if plan.actions else {"action_plans"}
            else:
                checked.errors.append(
                    field_error(
                        "/action_plan/source_reference",
                        "another organisation's plan has this source_system + source_reference:"
                        " keys are unique across the deployment",
                        "source_key_taken",
                    )
                )
        elif found.history_sha256 == checked.sha256:
            unchanged += 1
        else:
            try:
                # A refused correction leaves the plan as it was; the rest of the batch goes in.
                async with session.begin_nested():
                    changed = await _correct(
                        session, principal, found, plan, findings, checked, moment
                    )
                    if checked.errors:
                        raise _Refused
            except _Refused:
                continue
            if changed is not None:
                found.history_sha256 = checked.sha256
                updated += 1
                kinds |= changed
    return created, updated, unchanged, kinds


class _Refused(Exception):
    pass


async def _live_plan(session: AsyncSession, plan: HistoricPlan) -> bool:
    if plan.source_system != LIVE_SYSTEM:
        return False
    try:
        plan_id = uuid.UUID(plan.source_reference)
    except ValueError:
        return False
    return await session.get(ActionPlan, plan_id) is not None


async def _finding_ids(
    session: AsyncSession, plan: HistoricPlan, errors: Errors
) -> dict[tuple[int, int], uuid.UUID]:
    """Each action's findings by (action, index) -> id: a death's finding by the reference its
    record gave it (or, for a death live intake recorded, the finding's id, as the export
    writes it). One the import cannot find refuses the record, with its pointer."""
    wanted = {(ref.source_system, ref.source_reference) for a in plan.actions for ref in a.findings}
    if not wanted:
        return {}
    rows = await session.execute(
        select(Death.source_system, Death.source_reference, Death.id, HistoryRecord.links)
        .outerjoin(HistoryRecord, HistoryRecord.death_id == Death.id)
        .where(
            Death.source_system.in_({system for system, _ in wanted}),
            Death.source_reference.in_({reference for _, reference in wanted}),
        )
    )
    deaths = {(r[0], r[1]): (r[2], r[3]) for r in rows.all()}
    candidates: dict[tuple[int, int], tuple[uuid.UUID, uuid.UUID]] = {}
    for a, action in enumerate(plan.actions):
        for f, ref in enumerate(action.findings):
            death = deaths.get((ref.source_system, ref.source_reference))
            finding_id: uuid.UUID | None = None
            if death is not None:
                known = (death[1] or {}).get("findings", {}).get(ref.finding)
                try:
                    finding_id = uuid.UUID(known or ref.finding)
                except ValueError:
                    finding_id = None
            if death is None or finding_id is None:
                errors.append(_unknown_finding(a, f))
                continue
            candidates[(a, f)] = (death[0], finding_id)
    present = await session.execute(
        select(Finding.death_id, Finding.id).where(
            Finding.id.in_({finding for _, finding in candidates.values()})
        )
    )
    existing = {(death_id, finding_id) for death_id, finding_id in present.all()}
    found: dict[tuple[int, int], uuid.UUID] = {}
    for (a, f), (death_id, finding_id) in candidates.items():
        if (death_id, finding_id) in existing:
            found[(a, f)] = finding_id
        else:
            errors.append(_unknown_finding(a, f))
    return found


def _unknown_finding(action: int, index: int) -> dict[str, Any]:
    return field_error(
        f"/action_plan/actions/{action}/findings/{index}",
        "no finding of the service is this death's finding with this reference",
        "unknown_finding",
    )


def _plan_values(plan: HistoricPlan) -> dict[str, Any]:
    source = plan.source_file
    return {
        "title": plan.title,
        "sponsor": plan.sponsor,
        "organisations": list(plan.organisations),
        "organisation_names": plan.organisation_names,
        "description": plan.description,
        "source_sha256": source.sha256 if source else None,
        "source_filename": source.filename if source else None,
        "layout": source.layout if source else None,
    }


def _action_row(
    action: HistoricAction,
    keys: dict[str, uuid.UUID],
    moment: datetime,
) -> dict[str, Any]:
    values = action_values(action)
    values.pop("finding_ids", None)
    falls_due_on = rag.falls_due(values.get("due_date"), values.get("due_precision"))
    today = moment.astimezone(LONDON).date()
    overdue = rag.is_overdue(
        values["status"], values.get("due_date"), values.get("due_precision"), today
    )
    return {
        **values,
        "links": [
            {
                "action_id": str(keys[link.action]),
                **({"reference": link.reference} if link.reference is not None else {}),
                **({"kind": link.kind} if link.kind is not None else {}),
            }
            for link in action.links
        ]
        or None,
        "falls_due_on": falls_due_on,
        # An action already past its due date came in overdue: its alarm is history too (no
        # action.overdue for it now; a later due date that passes raises one).
        "overdue_notified_at": moment if overdue else None,
        "updated_at": action.updated_at or action.created_at,
    }


async def _create(
    session: AsyncSession,
    principal: Principal,
    plan: HistoricPlan,
    sha256: str,
    findings: dict[tuple[int, int], uuid.UUID],
    moment: datetime,
) -> bool:
    """The plan and all it holds; False when another organisation's plan holds its key."""
    plan_id = uuid4()
    statement = insert_for(session, table_of(ActionPlan)).on_conflict_do_nothing(
        index_elements=["source_system", "source_reference"]
    )
    went_in = await session.scalar(
        statement.returning(table_of(ActionPlan).c.id),
        {
            **_plan_values(plan),
            "id": plan_id,
            "organisation_id": await recording_organisation(session, principal, system=True),
            "source_system": plan.source_system,
            "source_reference": plan.source_reference,
            "history_sha256": sha256,
            "created_by_client_id": principal.client_id,
            "version": 1,
            "created_at": plan.created_at,
            "updated_at": plan.updated_at or plan.created_at,
        },
    )
    if went_in is None:
        return False
    sections = {section.key: uuid4() for section in plan.sections}
    if sections:
        await session.execute(
            insert(ActionPlanSection),
            [
                {"id": sections[s.key], "plan_id": plan_id, "position": n, "title": s.title}
                | {"source_key": s.key}
                for n, s in enumerate(plan.sections, start=1)
            ],
        )
    await _add_actions(session, principal, plan, plan_id, sections, findings, moment, 1)
    return True


async def _add_actions(
    session: AsyncSession,
    principal: Principal,
    plan: HistoricPlan,
    plan_id: uuid.UUID,
    sections: dict[str, uuid.UUID],
    findings: dict[tuple[int, int], uuid.UUID],
    moment: datetime,
    first_position: int,
    only: set[str] | None = None,
    keys: dict[str, uuid.UUID] | None = None,
) -> None:
    """Insert the plan's actions (those whose keys are in ``only``, when given), in order."""
    keys = dict(keys or {})
    chosen = [(a, x) for a, x in enumerate(plan.actions) if only is None or x.key in only]
    keys |= {action.key: uuid4() for _, action in chosen}
    rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for position, (index, action) in enumerate(chosen, start=first_position):
        action_id = keys[action.key]
        rows.append(
            {
                **_action_row(action, keys, moment),
                "id": action_id,
                "plan_id": plan_id,
                "section_id": sections[action.section],
                "position": position,
                "source_key": action.key,
                "created_by_client_id": principal.client_id,
                "version": 1,
                "created_at": action.created_at,
            }
        )
        updates.extend(_update_rows(action, action_id, 0, principal))
        links.extend(
            {"action_id": action_id, "finding_id": findings[(index, f)]}
            for f in range(len(action.findings))
        )
    for table, values in ((Action, rows), (ActionUpdate, updates), (action_findings, links)):
        if values:
            await session.execute(insert(table), values)


def _update_rows(
    action: HistoricAction, action_id: uuid.UUID, skip: int, principal: Principal
) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid4(),
            "action_id": action_id,
            **{name: getattr(u, name) for name in UPDATE_FIELDS},
            "recorded_at": u.recorded_at,
            "client_id": principal.client_id,
        }
        for u in action.updates[skip:]
    ]


async def _correct(
    session: AsyncSession,
    principal: Principal,
    found: ActionPlan,
    plan: HistoricPlan,
    findings: dict[tuple[int, int], uuid.UUID],
    checked: Checked,
    moment: datetime,
) -> set[str] | None:
    """Bring an imported plan to the corrected record; the kinds changed, or None (refused)."""
    kinds: set[str] = set()
    values = _plan_values(plan)
    changed = {k: v for k, v in values.items() if getattr(found, k) != v}
    sections = {
        s.source_key or str(s.id): s
        for s in (
            await session.scalars(
                select(ActionPlanSection).where(ActionPlanSection.plan_id == found.id)
            )
        ).all()
    }
    actions = {
        a.source_key or str(a.id): a
        for a in (await session.scalars(select(Action).where(Action.plan_id == found.id))).all()
    }
    for kind, before, after in (
        ("section", sections, {s.key for s in plan.sections}),
        ("action", actions, {a.key for a in plan.actions}),
    ):
        for key in sorted(set(before) - after):
            checked.errors.append(
                field_error(
                    f"/action_plan/{kind}s",
                    f"{kind} {key!r} was imported before and is missing from the correction; "
                    "a correction cannot remove one",
                    "removed",
                )
            )
    if checked.errors:
        return None
    if changed:
        for name, value in changed.items():
            setattr(found, name, value)
        found.version += 1
        found.updated_at = plan.updated_at or found.updated_at
        kinds.add("action_plans")
    last = max((s.position for s in sections.values()), default=0)
    ids = {key: s.id for key, s in sections.items()}
    for section in plan.sections:
        if section.key in sections:
            if sections[section.key].title != section.title:
                sections[section.key].title = section.title
                kinds.add("action_plans")
            continue
        last += 1
        ids[section.key] = uuid4()
        session.add(
            ActionPlanSection(
                id=ids[section.key],
                plan_id=found.id,
                position=last,
                title=section.title,
                source_key=section.key,
            )
        )
        kinds.add("action_plans")
    await session.flush()
    keys = {key: a.id for key, a in actions.items()}
    for index, action in enumerate(plan.actions):
        row = actions.get(action.key)
        if row is None:
            continue
        if await _correct_action(session, principal, row, action, ids, keys, checked, index):
            kinds.add("actions")
        wanted = [findings[(index, f)] for f in range(len(action.findings))]
        if await link_findings(session, row.id, wanted):
            kinds.add("actions")
    if checked.errors:
        return None
    new = {a.key for a in plan.actions if a.key not in actions}
    if new:
        position = await session.scalar(
            select(func.max(Action.position)).where(Action.plan_id == found.id)
        )
        await _add_actions(
            session,
            principal,
            plan,
            found.id,
            ids,
            findings,
            moment,
            (position or 0) + 1,
            only=new,
            keys=keys,
        )
        kinds.add("actions")
    return kinds


async def _correct_action(
    session: AsyncSession,
    principal: Principal,
    row: Action,
    action: HistoricAction,
    sections: dict[str, uuid.UUID],
    keys: dict[str, uuid.UUID],
    checked: Checked,
    index: int,
) -> bool:
    current = (
        await session.execute(
            select(*(getattr(ActionUpdate, name) for name in UPDATE_FIELDS))
            .where(ActionUpdate.action_id == row.id)
            .order_by(ActionUpdate.recorded_at, ActionUpdate.id)
        )
    ).all()
    given = [tuple(getattr(u, name) for name in UPDATE_FIELDS) for u in action.updates]
    if [tuple(r) for r in current] != given[: len(current)]:
        checked.errors.append(
            field_error(
                f"/action_plan/actions/{index}/updates",
                "a correction keeps the progress updates imported before as they were, and may "
                "add later ones",
                "removed",
            )
        )
        return False
    values = _action_row(action, keys, row.updated_at)
    values.pop("overdue_notified_at")
    values["section_id"] = sections[action.section]
    changed = {k: v for k, v in values.items() if k != "updated_at" and getattr(row, k) != v}
    if changed:
        await session.execute(
            update(Action)
            .where(Action.id == row.id)
            .values(**changed, version=Action.version + 1, updated_at=values["updated_at"])
        )
    extra = _update_rows(action, row.id, len(current), principal)
    if extra:
        await session.execute(insert(ActionUpdate), extra)
    return bool(changed or extra)
