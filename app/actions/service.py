"""Action plans and actions: creating and changing them, with the dated history.

The building blocks (``create_plan``, ``add_section``, ``create_action``, ``update_action``,
``record_update``, ``set_finding_links``) take a ``Journal`` for their events and flush, never
commit and never write the journal: a caller that makes many changes in one transaction (the
spreadsheet importer) shares one journal and writes it once. The ``post_*``/``patch_*``/``put_*``
functions are what the routes call: one journal per request, written before the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import queries, rag
from app.actions.action_rules import (
    FIELDS,
    REQUIRED,
    check_findings,
    check_reference_free,
    link_findings,
    normalise,
    problem,
    refuse,
    rule_errors,
    section_in_plan,
)
from app.actions.organisation_refs import Configured, resolve_written
from app.actions.queries import load_action, load_plan, uk_today
from app.actions.rag import ActionStatus
from app.actions.schemas import (
    ActionCreate,
    ActionLinks,
    ActionOut,
    ActionPatch,
    FindingLinks,
    PlanCreate,
    PlanDetail,
    PlanPatch,
    ProgressRecorded,
    ProgressUpdateCreate,
    SectionCreate,
    SectionOut,
)
from app.audit.journal import Journal
from app.auth.principal import Principal
from app.events.service import Change
from app.kit.etag import Precondition
from app.models import Action, ActionPlan, ActionPlanSection, ActionUpdate
from app.models.action import action_findings
from app.organisations.ownership import check_owner
from app.organisations.service import recording_organisation

Error = dict[str, str]


@dataclass(frozen=True)
class PlanSource:
    """Where an imported plan came from (the importer's business; the API never sets it)."""

    sha256: str
    filename: str | None
    layout: str


# --- plans -----------------------------------------------------------------------------------


def own_plan(plan: ActionPlan) -> None:
    """Refuse (403) a change to a plan of another organisation than the client's own (or its
    sites'): a commissioner's pseudonymised client reads its members' plans, never changes
    them (app.organisations.ownership)."""
    check_owner(plan.organisation_id, None, "action plan")


async def own_action(session: AsyncSession, action: Action) -> None:
    """As ``own_plan``, for an action: its plan's organisation decides."""
    organisation_id = await session.scalar(
        select(ActionPlan.organisation_id).where(ActionPlan.id == action.plan_id)
    )
    check_owner(organisation_id, None, "action plan")


async def create_plan(
    session: AsyncSession,
    journal: Journal,
    body: PlanCreate,
    *,
    source: PlanSource | None = None,
    names: list[str] | None = None,
) -> tuple[ActionPlan, list[ActionPlanSection]]:
    """``body.organisations``: ODS codes; ``names``: every organisation as written, None when
    they are the codes (``resolve_written``)."""
    plan = ActionPlan(
        id=uuid.uuid4(),
        title=body.title,
        organisation_id=await recording_organisation(session, journal.principal),
        sponsor=body.sponsor,
        organisations=list(body.organisations),
        organisation_names=names,
        description=body.description,
        source_sha256=source.sha256 if source else None,
        source_filename=source.filename if source else None,
        layout=source.layout if source else None,
        created_by_client_id=journal.principal.client_id,
        version=1,
    )
    session.add(plan)
    await session.flush()
    sections = [
        ActionPlanSection(id=uuid.uuid4(), plan_id=plan.id, position=position, title=title)
        for position, title in enumerate(body.sections, start=1)
    ]
    session.add_all(sections)
    await session.flush()
    journal.event(Change("action_plan.created", "action_plan", plan.id, None))
    return plan, sections


async def add_section(
    session: AsyncSession, journal: Journal, plan_id: uuid.UUID, title: str
) -> ActionPlanSection:
    """A new last section (under the plan's row lock, so two at once get their own places)."""
    own_plan(await load_plan(session, plan_id, for_update=True))
    last = await session.scalar(
        select(func.max(ActionPlanSection.position)).where(ActionPlanSection.plan_id == plan_id)
    )
    section = ActionPlanSection(
        id=uuid.uuid4(), plan_id=plan_id, position=(last or 0) + 1, title=title
    )
    session.add(section)
    await session.flush()
    journal.event(Change("action_plan.updated", "action_plan", plan_id, None, ["sections"]))
    return section


async def update_plan(
    session: AsyncSession,
    journal: Journal,
    plan_id: uuid.UUID,
    patch: PlanPatch,
    if_match: Precondition,
    *,
    names: list[str] | None = None,
) -> ActionPlan:
    """``patch.organisations``: ODS codes, with ``names`` as written (``create_plan``)."""
    plan = await load_plan(session, plan_id, for_update=True)
    own_plan(plan)
    if_match.check(plan.id, plan.version)
    changes = patch.model_dump(exclude_unset=True)
    for name in ("title", "organisations"):
        if name in changes and changes[name] is None:
            refuse([problem(name, "null_not_allowed", "this field cannot be cleared")])
    if "organisations" in changes:
        changes["organisation_names"] = names
    changed = [name for name, value in changes.items() if getattr(plan, name) != value]
    if changed:
        for name in changed:
            setattr(plan, name, changes[name])
        plan.version += 1
        await session.flush()
        journal.event(Change("action_plan.updated", "action_plan", plan.id, None, changed))
    return plan


# --- actions ---------------------------------------------------------------------------------


async def create_action(
    session: AsyncSession,
    journal: Journal,
    body: ActionCreate,
    *,
    today: date | None = None,
    names: list[str] | None = None,
) -> Action:
    """A new action, last in its plan. Status 5 without a completion date completes today.
    ``body.organisations``: ODS codes, with ``names`` as written (``create_plan``)."""
    today = today or uk_today()
    plan = await session.scalar(
        select(ActionPlan).where(ActionPlan.id == body.plan_id).with_for_update()
    )
    if plan is None:
        refuse([problem("plan_id", "unknown_plan", "no action plan with that id")])
    else:
        own_plan(plan)
    await section_in_plan(session, body.plan_id, body.section_id)
    values = normalise(body.model_dump(include=set(FIELDS)))
    if values["status"] == ActionStatus.complete and values["completed_at"] is None:
        values["completed_at"] = today
    refuse(rule_errors(values, today))
    await check_findings(session, body.finding_ids)
    await check_reference_free(session, body.section_id, body.reference, None)
    last = await session.scalar(
        select(func.max(Action.position)).where(Action.plan_id == body.plan_id)
    )
    action = Action(
        id=uuid.uuid4(),
        plan_id=body.plan_id,
        position=(last or 0) + 1,
        falls_due_on=rag.falls_due(values["due_date"], values["due_precision"]),
        overdue_notified_at=None,
        created_by_client_id=journal.principal.client_id,
        version=1,
        organisation_names=names,
        **values,
    )
    session.add(action)
    await session.flush()
    if body.finding_ids:
        await session.execute(
            insert(action_findings),
            [{"action_id": action.id, "finding_id": f} for f in body.finding_ids],
        )
    journal.event(Change("action.created", "action", action.id, None))
    return action


def _history_row(
    action: Action,
    update_date: date,
    author: str | None,
    narrative: str | None,
    status_before: int | None,
    client_id: uuid.UUID,
) -> ActionUpdate:
    return ActionUpdate(
        id=uuid.uuid4(),
        action_id=action.id,
        update_date=update_date,
        author=author,
        narrative=narrative,
        status_before=status_before,
        status=action.status,
        client_id=client_id,
    )


async def update_action(
    session: AsyncSession,
    journal: Journal,
    action_id: uuid.UUID,
    patch: ActionPatch,
    if_match: Precondition,
    *,
    today: date | None = None,
    names: list[str] | None = None,
) -> Action:
    """Change any of an action's fields. A status change is kept in the history (dated today,
    by the X-On-Behalf-Of person); completing without a date completes today, reopening
    clears the completion date; a new due date may raise action.overdue again.
    ``patch.organisations``: ODS codes, with ``names`` as written (``create_plan``)."""
    today = today or uk_today()
    action = await load_action(session, action_id, for_update=True)
    await own_action(session, action)
    if_match.check(action.id, action.version)
    changes = patch.model_dump(exclude_unset=True)
    refuse(
        [
            problem(name, "null_not_allowed", "this field cannot be cleared")
            for name, value in changes.items()
            if value is None and (name in REQUIRED or name == "finding_ids")
        ]
    )
    finding_ids: list[uuid.UUID] | None = changes.pop("finding_ids", None)
    merged = normalise({**{name: getattr(action, name) for name in FIELDS}, **changes})
    if "completed_at" not in changes:
        if merged["status"] == ActionStatus.complete and merged["completed_at"] is None:
            merged["completed_at"] = today
        elif merged["status"] != ActionStatus.complete:
            merged["completed_at"] = None
    if merged["section_id"] != action.section_id:
        await section_in_plan(session, action.plan_id, merged["section_id"])
    refuse(rule_errors(merged, today))
    if finding_ids is not None:
        await check_findings(session, finding_ids)
    if (merged["section_id"], merged["reference"]) != (action.section_id, action.reference):
        await check_reference_free(session, merged["section_id"], merged["reference"], action.id)
    changed = [name for name in FIELDS if getattr(action, name) != merged[name]]
    if "organisations" in changes and action.organisation_names != names:
        action.organisation_names = names
        changed += [] if "organisations" in changed else ["organisations"]
    if "status" in changes and not action.status_recorded:
        action.status_recorded = True  # an imported blank status, now set
        changed += [] if "status" in changed else ["status"]
    status_before = action.status
    falls_due_on = rag.falls_due(merged["due_date"], merged["due_precision"])
    for name in changed:
        setattr(action, name, merged[name])
    if falls_due_on != action.falls_due_on:
        action.falls_due_on = falls_due_on
        action.overdue_notified_at = None
    if finding_ids is not None and await link_findings(session, action.id, finding_ids):
        changed.append("finding_ids")
    if changed:
        action.version += 1
        if action.status != status_before:
            session.add(
                _history_row(
                    action,
                    today,
                    journal.principal.on_behalf_of,
                    None,
                    status_before,
                    journal.principal.client_id,
                )
            )
        await session.flush()
        journal.event(Change("action.updated", "action", action.id, None, changed))
    return action


async def record_update(
    session: AsyncSession,
    journal: Journal,
    action: Action,
    body: ProgressUpdateCreate,
    *,
    today: date | None = None,
) -> ActionUpdate:
    """A progress note (and status change) in the action's dated history, for an action the
    caller has loaded (and, from the API, checked against If-Match)."""
    today = today or uk_today()
    update_date = body.update_date or today
    if update_date > today:
        refuse([problem("update_date", "future", "the update is dated in the future")])
    changed = ["updates"]
    status_before = None
    if body.status is not None and not action.status_recorded:
        action.status_recorded = True  # an imported blank status, now set
    if body.status is not None and body.status != action.status:
        status_before = action.status
        action.status = body.status
        changed.append("status")
        if body.status == ActionStatus.complete and action.completed_at is None:
            action.completed_at = update_date
            changed.append("completed_at")
        elif body.status != ActionStatus.complete and action.completed_at is not None:
            action.completed_at = None
            changed.append("completed_at")
    row = _history_row(
        action,
        update_date,
        body.author or journal.principal.on_behalf_of,
        body.narrative,
        status_before,
        journal.principal.client_id,
    )
    session.add(row)
    action.version += 1
    await session.flush()
    journal.event(Change("action.updated", "action", action.id, None, changed))
    return row


async def set_finding_links(
    session: AsyncSession,
    journal: Journal,
    action_id: uuid.UUID,
    finding_ids: Sequence[uuid.UUID],
    if_match: Precondition,
) -> Action:
    action = await load_action(session, action_id, for_update=True)
    await own_action(session, action)
    if_match.check(action.id, action.version)
    await check_findings(session, finding_ids)
    if await link_findings(session, action.id, finding_ids):
        action.version += 1
        await session.flush()
        journal.event(Change("action.updated", "action", action.id, None, ["finding_ids"]))
    return action


# --- what the routes call --------------------------------------------------------------------


async def new_plan(
    session: AsyncSession, principal: Principal, body: PlanCreate, aliases: Configured
) -> PlanDetail:
    """``aliases``: the configured alias table (``LFD_ORGANISATION_ALIASES``), under the
    registry's, by which the organisations sent are resolved (app.actions.organisation_refs)."""
    codes, names = await resolve_written(session, aliases, body.organisations)
    journal = Journal(principal)
    plan, _ = await create_plan(
        session, journal, body.model_copy(update={"organisations": codes}), names=names
    )
    await journal.write(session)
    return await queries.plan_detail(session, plan, aliases=aliases)


async def new_section(
    session: AsyncSession, principal: Principal, plan_id: uuid.UUID, body: SectionCreate
) -> SectionOut:
    journal = Journal(principal)
    section = await add_section(session, journal, plan_id, body.title)
    await journal.write(session)
    return SectionOut.model_validate(section)


async def new_action(
    session: AsyncSession, principal: Principal, body: ActionCreate, aliases: Configured
) -> ActionOut:
    codes, names = await resolve_written(session, aliases, body.organisations)
    journal = Journal(principal)
    action = await create_action(
        session, journal, body.model_copy(update={"organisations": codes}), names=names
    )
    await journal.write(session)
    return (await queries.actions_out(session, [action], aliases=aliases))[0]


async def patch_plan(
    session: AsyncSession,
    principal: Principal,
    plan_id: uuid.UUID,
    patch: PlanPatch,
    if_match: Precondition,
    aliases: Configured,
) -> PlanDetail:
    codes, names = await resolve_written(session, aliases, patch.organisations or [])
    if patch.organisations is not None:
        patch = patch.model_copy(update={"organisations": codes})
    journal = Journal(principal)
    plan = await update_plan(session, journal, plan_id, patch, if_match, names=names)
    await journal.write(session)
    return await queries.plan_detail(session, plan, aliases=aliases)


async def patch_action(
    session: AsyncSession,
    principal: Principal,
    action_id: uuid.UUID,
    patch: ActionPatch,
    if_match: Precondition,
    aliases: Configured,
) -> ActionOut:
    codes, names = await resolve_written(session, aliases, patch.organisations or [])
    if patch.organisations is not None:
        patch = patch.model_copy(update={"organisations": codes})
    journal = Journal(principal)
    action = await update_action(session, journal, action_id, patch, if_match, names=names)
    await journal.write(session)
    return (await queries.actions_out(session, [action], aliases=aliases))[0]


async def post_progress(
    session: AsyncSession,
    principal: Principal,
    action_id: uuid.UUID,
    body: ProgressUpdateCreate,
    if_match: Precondition,
    aliases: Configured,
) -> ProgressRecorded:
    journal = Journal(principal)
    action = await load_action(session, action_id, for_update=True)
    await own_action(session, action)
    if_match.check(action.id, action.version)
    row = await record_update(session, journal, action, body)
    await journal.write(session)
    out = (await queries.actions_out(session, [action], aliases=aliases))[0]
    return ProgressRecorded(update=queries.history_entry(row), action=out)


async def put_findings(
    session: AsyncSession,
    principal: Principal,
    action_id: uuid.UUID,
    body: FindingLinks,
    if_match: Precondition,
) -> ActionLinks:
    journal = Journal(principal)
    action = await set_finding_links(session, journal, action_id, body.finding_ids, if_match)
    await journal.write(session)
    links = await queries.finding_links(session, [action.id])
    return ActionLinks(action_id=action.id, finding_ids=links[action.id], version=action.version)
