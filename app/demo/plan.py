"""The demo's action plan: one section a financial year, for the themes that year's reviews
found most, each action with its lead, its due date, the findings it answers and its dated
progress updates; most complete (some late), and a tail of stalled actions past their due
dates. Written through the action plan service (app.actions.service), so its events and
history rows are the real ones; found again by its title on a second run, never made twice."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.rag import ActionStatus, DuePrecision
from app.actions.schemas import ActionCreate, PlanCreate, ProgressUpdateCreate
from app.actions.service import create_action, create_plan, record_update
from app.audit.journal import Journal
from app.auth.principal import Principal
from app.db import Database
from app.demo.vocabulary import SOURCE_SYSTEM
from app.demo.wording import ACTION_WORDS, LEADS, PROGRESS, THEME_MIX
from app.models import Action, ActionPlan, Death, Finding, Theme

ACTIONS_A_YEAR = 4


@dataclass(frozen=True)
class PlanSummary:
    created: bool
    actions: int
    complete: int
    overdue: int


def plan_title(seed: int) -> str:
    return f"Learning from deaths improvement plan (synthetic demo, seed {seed})"


def _months_after(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def _themes(year: int) -> list[str]:
    ranked = sorted(THEME_MIX[year], key=lambda item: -item[1])
    return [code for code, _ in ranked if code in ACTION_WORDS][:ACTIONS_A_YEAR]


async def _findings(
    session: AsyncSession, theme_id: uuid.UUID, first: date, end: date
) -> list[uuid.UUID]:
    """A few of the demo's findings under the theme, for deaths in the year: what the action
    answers."""
    rows = await session.scalars(
        select(Finding.id)
        .join(Death, Death.id == Finding.death_id)
        .where(
            Death.source_system == SOURCE_SYSTEM,
            Finding.theme_id == theme_id,
            Finding.died_on >= first,
            Finding.died_on < end,
        )
        .order_by(Finding.created_at, Finding.id)
        .limit(5)
    )
    return list(rows.all())


def _updates(
    rng: random.Random, start: date, due: date, stalls: bool, today: date
) -> list[tuple[date, int, str]]:
    """Dated progress: on track every six to nine weeks; then complete (on time, or late
    after a spell at risk), or, for a stalled action, at risk and then off track, and no more
    updates once it is off track: past its due date it stays overdue."""
    finish: date | None = None
    if not stalls:
        late = rng.random() < 0.3
        finish = due + timedelta(days=rng.randint(20, 120) if late else -rng.randint(0, 30))
    updates: list[tuple[date, int, str]] = []
    day = start + timedelta(days=rng.randint(10, 20))
    step = 0
    while day <= today:
        if finish is not None and day >= finish:
            updates.append((min(finish, today), ActionStatus.complete, PROGRESS[-1]))
            break
        if day > due:
            status = ActionStatus.at_risk if finish is not None else ActionStatus.off_track
        elif stalls and day > due - timedelta(days=45):
            status = ActionStatus.at_risk
        else:
            status = ActionStatus.on_track
        updates.append((day, status, PROGRESS[3] if status < 4 else PROGRESS[min(step, 2)]))
        if stalls and status == ActionStatus.off_track:
            break
        step += 1
        day += timedelta(days=rng.randint(42, 63))
    return updates


async def load_plan(
    database: Database, principal: Principal, seed: int, first_year: int, today: date
) -> PlanSummary:
    title = plan_title(seed)
    async with database.transaction() as session:
        plan_id = await session.scalar(
            select(ActionPlan.id).where(
                ActionPlan.title == title,
                ActionPlan.created_by_client_id == principal.client_id,
            )
        )
        created = plan_id is None
        if plan_id is None:
            plan_id = await _write_plan(session, principal, seed, first_year, today)
        actions = (await session.scalars(select(Action).where(Action.plan_id == plan_id))).all()
    complete = sum(a.status == ActionStatus.complete for a in actions)
    overdue = sum(
        a.status != ActionStatus.complete and a.falls_due_on is not None and a.falls_due_on < today
        for a in actions
    )
    return PlanSummary(created, len(actions), complete, overdue)


async def _write_plan(
    session: AsyncSession, principal: Principal, seed: int, first_year: int, today: date
) -> uuid.UUID:
    journal = Journal(principal)
    themes = {t.code: t for t in (await session.scalars(select(Theme))).all()}
    years = [year for year in range(3) if date(first_year + year, 4, 1) <= today]
    sections = []
    for year in years:
        names = [themes[code].name if code in themes else code for code in _themes(year)]
        label = f"{first_year + year}/{(first_year + year + 1) % 100:02d}"
        sections.append(f"{label}: {'; '.join(names)}")
    plan, made = await create_plan(
        session,
        journal,
        PlanCreate(
            title=plan_title(seed),
            sponsor="Medical Director",
            description="Synthetic data made by `lfd demo`: the actions the mortality "
            "surveillance group agreed each year for the themes its reviews found most.",
            sections=sections,
        ),
    )
    for year, section in zip(years, made, strict=True):
        first = date(first_year + year, 4, 1)
        for k, code in enumerate(_themes(year)):
            # Reproducible synthetic data, not secrets.
            rng = random.Random(f"lfd-demo-plan:{seed}:{year}:{k}")  # noqa: S311
            start = _months_after(first, 3 + 2 * k)
            if start > today:
                continue
            due = _months_after(start, rng.choice((3, 4, 6)))
            theme = themes.get(code)
            found = (
                await _findings(session, theme.id, first, _months_after(first, 12))
                if theme is not None
                else []
            )
            action = await create_action(
                session,
                journal,
                ActionCreate(
                    plan_id=plan.id,
                    section_id=section.id,
                    reference=f"{year + 1}.{k + 1}",
                    action=ACTION_WORDS[code],
                    source="Themes from structured judgement reviews and M&M meetings.",
                    leads=[rng.choice(LEADS)],
                    start_date=start,
                    due_date=due,
                    due_precision=DuePrecision.month,
                    finding_ids=found,
                ),
                today=today,
            )
            stalls = k == ACTIONS_A_YEAR - 1 or rng.random() < 0.15
            for day, status, narrative in _updates(rng, start, due, stalls, today):
                await record_update(
                    session,
                    journal,
                    action,
                    ProgressUpdateCreate(
                        update_date=day,
                        author=action.leads[0],
                        narrative=narrative,
                        status=status,
                    ),
                    today=today,
                )
    await journal.write(session)
    return plan.id
