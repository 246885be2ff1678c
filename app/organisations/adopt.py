"""`lfd organisations adopt`: an existing single-trust deployment says which organisation it
is (docs/organisations.md "Adopting an existing deployment").

Migration 0019 gave every death, plan and client that existed to one default organisation,
with no code and the name "Default organisation". Adopting names it:

- **No other organisation has the code** (the usual case: adopt before loading ODS files): the
  default organisation takes the code, name and kind. Nothing else changes; every id stays.
- **Another organisation already has it** (the ODS files were loaded first): everything the
  default organisation owns moves to that one (deaths, plans, clients, history imports, the
  feed's events, shares with it, review programmes (and the organisation their cohort rules
  name) and theme mappings, the organisation of care of review ratings and problems, the
  organisations under it), and that one becomes the default. The old default stays in the
  registry, closed, so that what names it still resolves; the audit log is never rewritten,
  so its rows keep the organisation they were written under.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.kit.time import now
from app.models import (
    ActionPlan,
    ApiClient,
    CaseShare,
    Death,
    HistoryImport,
    Organisation,
    OutboxEvent,
    Programme,
    ReviewPhaseRating,
    ReviewProblem,
    ThemeMapping,
)
from app.organisations.registry import apply_entry, entry_of, load_index, record
from app.organisations.rules import Kind, Problem, check_draft, code_problem, normalise_code

# Every column that names an organisation as an owner, a place or a giver of care, but the
# audit log's (never rewritten).
OWNED: tuple[tuple[str, Any, Any], ...] = (
    ("deaths", Death, Death.organisation_id),
    ("deaths (as site)", Death, Death.site_organisation_id),
    ("deaths (as GP practice)", Death, Death.gp_practice_organisation_id),
    ("action plans", ActionPlan, ActionPlan.organisation_id),
    ("clients", ApiClient, ApiClient.organisation_id),
    ("history imports", HistoryImport, HistoryImport.organisation_id),
    ("case shares", CaseShare, CaseShare.organisation_id),
    ("review programmes", Programme, Programme.organisation_id),
    ("theme mappings", ThemeMapping, ThemeMapping.organisation_id),
    ("review phase ratings", ReviewPhaseRating, ReviewPhaseRating.care_organisation_id),
    ("review problems", ReviewProblem, ReviewProblem.care_organisation_id),
    ("events", OutboxEvent, OutboxEvent.organisation_id),
    ("organisations under it", Organisation, Organisation.parent_id),
)


class AdoptionRefused(ValueError):
    """The adoption would break the registry's rules; nothing was changed."""


@dataclass
class Adoption:
    organisation: Organisation
    moved_from: Organisation | None = None  # the old default, when records moved
    moved: dict[str, int] = field(default_factory=dict)


def _refuse(problems: list[Problem]) -> None:
    if problems:
        raise AdoptionRefused("; ".join(f"{p.pointer.lstrip('/')}: {p.detail}" for p in problems))


async def _move(session: AsyncSession, source: uuid.UUID, target: uuid.UUID) -> dict[str, int]:
    moved: dict[str, int] = {}
    for label, model, column in OWNED:
        result = await session.execute(
            update(model)
            .where(column == source)
            .values({column.key: target})
            .execution_options(synchronize_session=False)
        )
        moved[label] = int(getattr(result, "rowcount", 0) or 0)
    # A programme's cohort rules name the organisations whose deaths it audits, by id.
    old, new = str(source), str(target)
    for programme in (await session.scalars(select(Programme))).all():
        named = programme.rules.get("organisations")
        if named and old in named:
            programme.rules = {
                **programme.rules,
                "organisations": sorted({new if value == old else value for value in named}),
            }
    return moved


async def adopt(
    session: AsyncSession, principal: Principal, ods_code: str, name: str, kind: Kind | None
) -> Adoption:
    """Name the default organisation, or move what it owns to the organisation that has the
    code (see the module's text). Run with the whole deployment in scope (the command line)."""
    code = normalise_code(ods_code)
    name = " ".join(name.split())
    if not code or not name:
        raise AdoptionRefused("give the organisation's ODS code and name")
    index = await load_index(session)
    default = await session.scalar(select(Organisation).where(Organisation.is_default.is_(True)))
    if default is None:
        raise AdoptionRefused("no default organisation: run `lfd migrate` first")
    holder_id = index.by_code.get(code)
    journal = Journal(principal)
    if holder_id is None or holder_id == default.id:
        draft = entry_of(default)
        draft.ods_code, draft.name, draft.kind = code, name, kind or draft.kind
        _refuse(check_draft(index, draft))
        changed = apply_entry(default, draft, dict(default.settings), default.closed_at)
        if changed:
            record(journal, default, created=False, changed=changed)
            journal.audit("organisation.adopt", "organisation", default.id, None)
        await session.flush()
        await journal.write(session)
        return Adoption(default)

    holder = await session.get_one(Organisation, holder_id)
    draft = entry_of(holder)
    draft.name, draft.kind = name, kind or draft.kind
    if draft.parent_id == default.id:
        draft.parent_id = None
    if problem := code_problem(draft.kind, code):
        raise AdoptionRefused(f"ods_code: {problem}")
    # The organisations under the default move under the adopted one: check them there.
    for child in index.children(default.id):
        if child.id != holder.id:
            child.parent_id = holder.id
            index.put(child)
    _refuse(check_draft(index, draft))
    moved = await _move(session, default.id, holder.id)
    changed = apply_entry(holder, draft, dict(holder.settings), None)
    _mark(holder, changed, is_default=True)
    closed = apply_entry(
        default, entry_of(default), dict(default.settings), default.closed_at or now()
    )
    _mark(default, closed, is_default=False)
    await session.flush()
    record(journal, holder, created=False, changed=changed)
    record(journal, default, created=False, changed=closed)
    journal.audit("organisation.adopt", "organisation", holder.id, None)
    await journal.write(session)
    return Adoption(holder, default, moved)


def _mark(organisation: Organisation, changed: list[str], *, is_default: bool) -> None:
    """Make the organisation the default (or not), its version raised once for the change."""
    if organisation.is_default == is_default:
        return
    organisation.is_default = is_default
    if not changed:
        organisation.version += 1
        organisation.updated_at = now()
    changed.append("is_default")
