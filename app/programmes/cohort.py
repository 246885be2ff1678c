"""Building a programme's cohort, and keeping it in step (docs/programmes.md, "The cohort").

One pass, the same for the first build, a later rebuild and the background runner's visit to
an open programme, each step one statement over the period's deaths (so its cost follows the
period, not the deployment's million deaths):

1. the deaths of the period that pass every rule and are not yet cases join the cohort, each
   with its sample key (app.programmes.sampling);
2. the sample is topped up to its target from the cases not yet chosen, lowest key first;
3. a linked case whose routine SJR referral was since declined or cancelled is unlinked;
4. a chosen case with no review of its own yet counts the death's routine SJR when it has a
   standing one (referred, in progress or done) and the programme links routine reviews;
5. every other chosen case gets a programme referral in the programme's queue.

A dry run is the same pass in a savepoint rolled back: its counts are exactly what the build
would do."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database, Work
from app.deaths.status import referrals_opened
from app.events.service import Change
from app.kit.enums import ReasonCode, ReferralStatus, Route
from app.kit.sql import insert_rows
from app.kit.time import LONDON, now
from app.models import Death, Programme, ProgrammeCase, Referral
from app.organisations.settings import settings_for
from app.programmes.rules import Rules, in_period, passes, rule_terms, waterfall
from app.programmes.sampling import sample_key_sql, target
from app.programmes.schemas import CohortBuild, ProgrammeStatus, RuleCount
from app.referrals.service import new_referral_row

WITHDRAWN = (ReferralStatus.declined.value, ReferralStatus.cancelled.value)


def standing_routine_sjr(death_id: Any) -> ColumnElement[bool]:
    """The death has a routine SJR referral that stands (open or completed: not declined or
    cancelled), whose final SJR a linked case counts."""
    return exists(
        select(literal(1)).where(
            Referral.death_id == death_id,
            Referral.route == Route.sjr.value,
            Referral.status.not_in(WITHDRAWN),
        )
    )


def _new_id(dialect: str) -> ColumnElement[uuid.UUID]:
    """A random id made by the database, for rows inserted from a SELECT."""
    if dialect == "postgresql":
        return func.gen_random_uuid()
    return func.lower(func.hex(func.randomblob(16)))


def _live_cases(programme_id: uuid.UUID) -> list[ColumnElement[bool]]:
    return [ProgrammeCase.programme_id == programme_id, ProgrammeCase.excluded_at.is_(None)]


@dataclass
class RuleCounts:
    deaths: int = 0
    meeting: int = 0
    already: int = 0
    no_longer: int = 0


async def count_by_rule(
    session: AsyncSession, programme: Programme, rules: Rules, dialect: str
) -> tuple[RuleCounts, list[RuleCount]]:
    """The period's deaths by rule, in one statement; and the cases no longer meeting them."""
    terms = rule_terms(rules, dialect)
    steps = waterfall(terms)
    everything = passes(rules, dialect)
    held = ProgrammeCase.__table__.alias("held")
    query = (
        select(
            func.count(),
            func.count().filter(everything),
            func.count().filter(and_(everything, held.c.id.is_not(None))),
            *(func.count().filter(left_out) for _, left_out, _ in steps),
            *(func.count().filter(failing) for _, _, failing in steps),
        )
        .select_from(Death)
        .outerjoin(held, and_(held.c.programme_id == programme.id, held.c.death_id == Death.id))
        .where(*in_period(programme, rules))
    )
    row = (await session.execute(query)).one()
    counts = RuleCounts(int(row[0]), int(row[1]), int(row[2]))
    values = [int(value) for value in row[3:]]
    rules_out = [
        RuleCount(rule=name, excluded=values[index], failing=values[len(steps) + index])
        for index, (name, _, _) in enumerate(steps)
    ]
    still = and_(*in_period(programme, rules), everything)
    counts.no_longer = int(
        await session.scalar(
            select(func.count())
            .select_from(ProgrammeCase)
            .join(Death, Death.id == ProgrammeCase.death_id)
            .where(*_live_cases(programme.id), ~still)
        )
        or 0
    )
    return counts, rules_out


async def _add_deaths(
    session: AsyncSession,
    journal: Journal,
    programme: Programme,
    rules: Rules,
    dialect: str,
    moment: datetime,
    joined: str,
) -> int:
    """Step 1: the qualifying deaths not yet in the cohort join it."""
    held = ProgrammeCase.__table__.alias("held")
    typed = ProgrammeCase.__table__.c

    def value(column: str, given: object) -> ColumnElement[object]:
        # Typed as the column is, so that each dialect binds it as it binds that column.
        return literal(given, typed[column].type)

    source = (
        select(
            _new_id(dialect),
            value("programme_id", programme.id),
            Death.id,
            Death.died_on,
            sample_key_sql(Death.case_number, programme.seed),
            value("selected", False),
            value("joined", joined),
            value("added_at", moment),
            value("linked", False),
            value("version", 1),
        )
        .outerjoin(held, and_(held.c.programme_id == programme.id, held.c.death_id == Death.id))
        .where(*in_period(programme, rules), passes(rules, dialect), held.c.id.is_(None))
    )
    columns = [
        "id",
        "programme_id",
        "death_id",
        "died_on",
        "sample_key",
        "selected",
        "joined",
        "added_at",
        "linked",
        "version",
    ]
    await session.execute(insert(ProgrammeCase).from_select(columns, source))
    added = (
        await session.execute(
            select(ProgrammeCase.id, ProgrammeCase.death_id).where(
                ProgrammeCase.programme_id == programme.id, ProgrammeCase.added_at == moment
            )
        )
    ).all()
    for case_id, death_id in added:
        journal.audit("programme_case.create", "programme_case", case_id, death_id)
    return len(added)


async def _top_up(
    session: AsyncSession, programme: Programme, moment: datetime
) -> tuple[int, int, int]:
    """Step 2: (target, chosen before, newly chosen)."""
    live = _live_cases(programme.id)
    size, chosen = (
        await session.execute(
            select(func.count(), func.count().filter(ProgrammeCase.selected.is_(True))).where(*live)
        )
    ).one()
    wanted = target(programme.sampling, int(size), programme.sample_size, programme.sample_percent)
    missing = max(wanted - int(chosen), 0)
    if missing:
        next_ones = (
            select(ProgrammeCase.id)
            .where(*live, ProgrammeCase.selected.is_(False))
            .order_by(ProgrammeCase.sample_key, ProgrammeCase.death_id)
            .limit(missing)
        )
        await session.execute(
            update(ProgrammeCase)
            .where(ProgrammeCase.id.in_(next_ones.scalar_subquery()))
            .values(selected=True, selected_at=moment, version=ProgrammeCase.version + 1)
            .execution_options(synchronize_session=False)
        )
    return wanted, int(chosen), missing


async def _relink(session: AsyncSession, programme: Programme) -> tuple[int, int]:
    """Steps 3 and 4: (unlinked, linked)."""
    live = _live_cases(programme.id)
    unlinked = (
        await session.execute(
            update(ProgrammeCase)
            .where(
                *live, ProgrammeCase.linked.is_(True), ~standing_routine_sjr(ProgrammeCase.death_id)
            )
            .values(linked=False, version=ProgrammeCase.version + 1)
            .returning(ProgrammeCase.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    linked: Sequence[Any] = []
    if programme.link_routine_reviews:
        linked = (
            await session.execute(
                update(ProgrammeCase)
                .where(
                    *live,
                    ProgrammeCase.selected.is_(True),
                    ProgrammeCase.linked.is_(False),
                    ProgrammeCase.referral_id.is_(None),
                    standing_routine_sjr(ProgrammeCase.death_id),
                )
                .values(linked=True, version=ProgrammeCase.version + 1)
                .returning(ProgrammeCase.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    return len(unlinked), len(linked)


def due_at(programme: Programme, settings: Settings, moment: datetime) -> datetime:
    """A programme referral's due time: the end of the programme's `reviews_due_on` (UK local
    date), else the `programme` route's due days from now."""
    if programme.reviews_due_on is not None:
        end = datetime.combine(programme.reviews_due_on + timedelta(days=1), time(), LONDON)
        return end.astimezone(UTC)
    return moment + timedelta(days=settings.due_days[Route.programme])


async def _refer(
    session: AsyncSession,
    journal: Journal,
    settings: Settings,
    programme: Programme,
    moment: datetime,
) -> int:
    """Step 5: a programme referral for each chosen case with no review of its own."""
    waiting = and_(
        *_live_cases(programme.id),
        ProgrammeCase.selected.is_(True),
        ProgrammeCase.linked.is_(False),
        ProgrammeCase.referral_id.is_(None),
    )
    deaths = (
        await session.scalars(
            select(Death).join(ProgrammeCase, ProgrammeCase.death_id == Death.id).where(waiting)
        )
    ).all()
    if not deaths:
        return 0
    rows = []
    by_organisation: dict[uuid.UUID, Settings] = {}
    for death in deaths:
        if death.organisation_id not in by_organisation:
            by_organisation[death.organisation_id] = await settings_for(
                session, settings, death.organisation_id
            )
        row = new_referral_row(
            by_organisation[death.organisation_id],
            death,
            Route.programme,
            None,
            [ReasonCode.programme],
            moment,
        )
        row.update(
            programme_id=programme.id,
            due_at=due_at(programme, by_organisation[death.organisation_id], moment),
        )
        rows.append(row)
    await insert_rows(session, Referral, rows)
    # Each case's new referral, joined by its death (UPDATE ... FROM: one join, which the
    # database may hash; a subquery per case chose, on fresh statistics, an index range of
    # every new referral and read it once per case).
    made = (
        select(Referral.id, Referral.death_id)
        .where(Referral.programme_id == programme.id, Referral.created_at == moment)
        .subquery("made")
    )
    await session.execute(
        update(ProgrammeCase)
        .where(waiting, ProgrammeCase.death_id == made.c.death_id)
        .values(referral_id=made.c.id, version=ProgrammeCase.version + 1)
        .execution_options(synchronize_session=False)
    )
    # Audited one by one (each death's trail shows its programme referral); announced, with
    # the cases the pass added and the deaths now under review, by the pass's one
    # `programme.cohort_built` event (as a history import announces a batch): an event per
    # referral would cost the outbox thousands of rows, and seconds, for a build.
    for row in rows:
        journal.audit("referral.create", "referral", row["id"], row["death_id"])
    opened: Select[Any] = select(Referral.death_id).where(
        Referral.programme_id == programme.id, Referral.created_at == moment
    )
    await referrals_opened(session, journal, opened, announce=False)
    return len(rows)


async def run_pass(
    session: AsyncSession,
    journal: Journal,
    settings: Settings,
    programme: Programme,
    *,
    joined: str,
    dry_run: bool = False,
) -> CohortBuild:
    """The pass over one programme (locked by the caller), or, ``dry_run``, what it would do."""
    dialect = session.get_bind().dialect.name
    rules = Rules.of(programme)
    counts, rule_counts = await count_by_rule(session, programme, rules, dialect)
    moment = now()
    savepoint = await session.begin_nested() if dry_run else None
    try:
        added = await _add_deaths(session, journal, programme, rules, dialect, moment, joined)
        wanted, before, chosen = await _top_up(session, programme, moment)
        unlinked, linked = await _relink(session, programme)
        referred = await _refer(session, journal, settings, programme, moment)
    finally:
        if savepoint is not None:
            await savepoint.rollback()
            journal.changes.clear()
            journal.accesses.clear()
    if not dry_run:
        await write_in_chunks(session, journal)
    if not dry_run and (added or chosen or unlinked or linked or referred):
        if programme.status == ProgrammeStatus.draft:
            programme.status = ProgrammeStatus.open.value
            programme.version += 1
        programme.cohort_built_at = programme.cohort_built_at or moment
        journal.event(
            Change(
                "programme.cohort_built",
                "programme",
                programme.id,
                None,
                ["cohort"],
                organisation_id=programme.organisation_id,
            )
        )
    elif not dry_run and programme.status == ProgrammeStatus.draft:
        # An empty cohort still opens the programme: deaths recorded later join it.
        programme.status = ProgrammeStatus.open.value
        programme.cohort_built_at = moment
        programme.version += 1
        journal.event(
            Change(
                "programme.cohort_built",
                "programme",
                programme.id,
                None,
                ["cohort"],
                organisation_id=programme.organisation_id,
            )
        )
    return CohortBuild(
        programme_id=programme.id,
        dry_run=dry_run,
        deaths_in_period=counts.deaths,
        rules=rule_counts,
        meeting_rules=counts.meeting,
        already_in_cohort=counts.already,
        added=added,
        no_longer_meeting_rules=counts.no_longer,
        sample_target=wanted,
        selected_before=before,
        selected=chosen,
        linked=linked,
        unlinked=unlinked,
        referred=referred,
    )


JOURNAL_CHUNK = 1000


async def write_in_chunks(session: AsyncSession, journal: Journal) -> None:
    """Write a large journal (a cohort of thousands: an event and audit rows per referral and
    case) in chunks, each a statement of its own of at most JOURNAL_CHUNK rows, within the
    bound of a statement's parameters."""
    changes, accesses = journal.changes, journal.accesses
    journal.changes, journal.accesses = [], []
    for start in range(0, max(len(changes), len(accesses)), JOURNAL_CHUNK):
        chunk = Journal(
            journal.principal,
            changes[start : start + JOURNAL_CHUNK],
            accesses[start : start + JOURNAL_CHUNK],
        )
        await chunk.write(session)


def worker_principal(programme: Programme) -> Principal:
    """Who the background runner's additions are recorded as: the service, for the client
    that set the programme up, in the programme's organisation."""
    return Principal(
        client_id=programme.created_by_client_id or uuid.UUID(int=0),
        client_name="lfd worker (programme cohort)",
        scopes=frozenset(),
        pseudonymised=False,
        on_behalf_of=None,
        request_id=None,
        organisation_id=programme.organisation_id,
    )


async def refresh_open_programmes(database: Database) -> int:
    """The background runner's job: every open programme's pass (step 1 adds the deaths
    recorded since its last pass that qualify), each in a transaction of its own, the
    programme's row locked (a pass running elsewhere is skipped on PostgreSQL, waited for on
    SQLite). How many deaths joined and referrals were made."""
    async with database.transaction(Work.worker) as session:
        ids = (
            await session.scalars(
                select(Programme.id).where(Programme.status == ProgrammeStatus.open.value)
            )
        ).all()
    done = 0
    for programme_id in ids:
        async with database.transaction(Work.worker) as session:
            query = select(Programme).where(
                Programme.id == programme_id, Programme.status == ProgrammeStatus.open.value
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            programme = await session.scalar(query)
            if programme is None:
                continue
            journal = Journal(worker_principal(programme))
            built = await run_pass(session, journal, database.settings, programme, joined="late")
            await journal.write(session)
            done += built.added + built.referred
    return done
