"""action.overdue: raised once per due date for an open action past it, by any number of
workers at once; the background loop in `lfd serve` and `lfd worker`; `lfd overdue`.

Other tests share the database, so every assertion counts events for this test's own actions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from app.actions.overdue import EVENT_TYPE, raise_overdue
from app.actions.rag import ActionStatus, DuePrecision, falls_due
from app.cli import main
from app.config import Settings, get_settings
from app.db import Database
from app.kit.time import local_date, now
from app.logging import JsonFormatter
from app.migrate import upgrade
from app.models import Action, ActionPlan, ActionPlanSection, OutboxEvent
from app.reach import default_organisation_id
from app.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


def london(moment: str) -> datetime:
    """A wall-clock time in the UK (BST or GMT as the date says), as the aware UTC instant."""
    return datetime.fromisoformat(moment).replace(tzinfo=ZoneInfo("Europe/London")).astimezone(UTC)


def due(
    on: date | None,
    status: ActionStatus = ActionStatus.on_track,
    precision: DuePrecision = DuePrecision.day,
    note: str | None = None,
) -> dict[str, Any]:
    return {"on": on, "status": status, "precision": precision, "note": note}


async def plan_with(database: Database, *specs: dict[str, Any]) -> list[uuid.UUID]:
    """A plan with one section holding one action per spec; returns the actions' ids in order."""
    async with database.transaction() as session:
        plan = ActionPlan(
            title=f"Overdue test {uuid.uuid4()}",
            organisations=["RR8"],
            organisation_id=await default_organisation_id(session),
        )
        session.add(plan)
        await session.flush()
        section = ActionPlanSection(plan_id=plan.id, position=1, title="Deteriorating patient")
        session.add(section)
        await session.flush()
        actions = []
        for position, spec in enumerate(specs, start=1):
            on: date | None = spec["on"]
            if on is not None and spec["precision"] == DuePrecision.month:
                on = on.replace(day=1)  # a month's due date is stored as its 1st
            action = Action(
                plan_id=plan.id,
                section_id=section.id,
                position=position,
                reference=f"1.{position}",
                action="Audit NEWS2 escalation on every ward",
                leads=["J Bloggs"],
                organisations=["RR8"],
                due_date=on,
                due_precision=spec["precision"].value,
                due_note=spec["note"],
                falls_due_on=falls_due(on, spec["precision"]),
                status=int(spec["status"]),
                completed_at=on if spec["status"] == ActionStatus.complete else None,
            )
            session.add(action)
            actions.append(action)
        await session.flush()
        return [action.id for action in actions]


async def overdue_events(database: Database, action_ids: list[uuid.UUID]) -> list[OutboxEvent]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.type == EVENT_TYPE, OutboxEvent.resource_id.in_(action_ids)
            )
        )
        return list(rows)


async def raised_counts(database: Database, action_ids: list[uuid.UUID]) -> Counter[uuid.UUID]:
    return Counter(event.resource_id for event in await overdue_events(database, action_ids))


async def new_due_date(database: Database, action_id: uuid.UUID, on: date, status: int) -> None:
    """What the actions service does when a due date changes: a new deadline, raised afresh."""
    async with database.transaction() as session:
        await session.execute(
            update(Action)
            .where(Action.id == action_id)
            .values(due_date=on, falls_due_on=on, status=status, overdue_notified_at=None)
        )


async def test_one_pass_raises_each_overdue_open_action_once(database: Database) -> None:
    at = now()
    today = local_date(at)
    this_month = today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    ids = await plan_with(
        database,
        due(today - timedelta(days=1)),  # 0: due yesterday, open → overdue
        due(today - timedelta(days=400), ActionStatus.not_yet_commenced),  # 1: long overdue
        due(last_month, ActionStatus.at_risk, DuePrecision.month),  # 2: "last month" → overdue
        due(today, ActionStatus.off_track),  # 3: due today: still on time
        due(today + timedelta(days=30)),  # 4: future
        due(today - timedelta(days=10), ActionStatus.complete),  # 5: complete: never
        due(this_month, ActionStatus.at_risk, DuePrecision.month),  # 6: due by end of this month
        due(None, note="TBC"),  # 7: no due date
    )

    raised = await raise_overdue(database, at=at)

    events = await overdue_events(database, ids)
    assert Counter(e.resource_id for e in events) == {ids[0]: 1, ids[1]: 1, ids[2]: 1}
    assert raised >= 3
    for event in events:
        # Thin, as every event: which action, what changed; raised by the service itself.
        assert event.resource_type == "action"
        assert event.changed == ["overdue"]
        assert event.client_id is None
        assert event.death_id is None
        assert event.occurred_at == at
    async with database.transaction() as session:
        rows = await session.execute(
            select(Action.id, Action.overdue_notified_at).where(Action.id.in_(ids))
        )
        marked = {action_id: notified_at for action_id, notified_at in rows}
    assert {i for i, notified_at in marked.items() if notified_at == at} == {ids[0], ids[1], ids[2]}
    assert sum(notified_at is not None for notified_at in marked.values()) == 3

    # The next pass raises nothing new: once means once.
    assert await raise_overdue(database, at=at) == 0
    assert await raised_counts(database, ids) == {ids[0]: 1, ids[1]: 1, ids[2]: 1}


async def test_the_due_day_is_on_time_in_uk_local_time(database: Database) -> None:
    # Due on 14 July 2025 (BST): on time until midnight in London, which is 23:00 UTC.
    [action_id] = await plan_with(database, due(date(2025, 7, 14)))

    await raise_overdue(database, at=london("2025-07-14T23:59:59"))
    assert await raised_counts(database, [action_id]) == {}

    # 00:30 on the 15th in London is still the 14th in UTC: overdue all the same.
    assert london("2025-07-15T00:30:00").date() == date(2025, 7, 14)
    await raise_overdue(database, at=london("2025-07-15T00:30:00"))
    assert await raised_counts(database, [action_id]) == {action_id: 1}


async def test_a_month_due_date_is_on_time_to_the_end_of_the_month(database: Database) -> None:
    # "Feb-24": due by 29 February 2024 (a leap year).
    [action_id] = await plan_with(database, due(date(2024, 2, 1), precision=DuePrecision.month))
    await raise_overdue(database, at=london("2024-02-29T23:00:00"))
    assert await raised_counts(database, [action_id]) == {}
    await raise_overdue(database, at=london("2024-03-01T09:00:00"))
    assert await raised_counts(database, [action_id]) == {action_id: 1}


async def test_a_new_due_date_raises_again_once_and_completion_never(database: Database) -> None:
    # All in the past, so that no other test's action is raised before its time.
    moved, completed = await plan_with(database, due(date(2025, 3, 1)), due(date(2025, 3, 1)))
    at = london("2025-03-10T12:00:00")
    await raise_overdue(database, at=at)
    assert await raised_counts(database, [moved, completed]) == {moved: 1, completed: 1}

    # Moved to a new date that has also passed: raised for the new date, once.
    await new_due_date(database, moved, date(2025, 3, 8), ActionStatus.off_track)
    # Completed (the service resets the mark with the date change it makes): never again.
    await new_due_date(database, completed, date(2025, 3, 8), ActionStatus.complete)
    await raise_overdue(database, at=at)
    await raise_overdue(database, at=at)
    assert await raised_counts(database, [moved, completed]) == {moved: 2, completed: 1}

    # Moved to a date still ahead: nothing until it passes.
    await new_due_date(database, moved, date(2025, 3, 20), ActionStatus.on_track)
    await raise_overdue(database, at=at)
    assert await raised_counts(database, [moved]) == {moved: 2}
    await raise_overdue(database, at=london("2025-03-21T00:00:01"))
    assert await raised_counts(database, [moved]) == {moved: 3}


async def test_a_backlog_is_raised_in_batches_each_action_once(database: Database) -> None:
    at = now()
    today = local_date(at)
    ids = await plan_with(database, *(due(today - timedelta(days=d)) for d in range(1, 13)))
    raised = await raise_overdue(database, at=at, batch_size=5)
    assert raised >= 12
    assert await raised_counts(database, ids) == dict.fromkeys(ids, 1)
    assert await raise_overdue(database, at=at, batch_size=5) == 0


@pytest.mark.postgres_only
async def test_concurrent_passes_raise_each_event_exactly_once(base_settings: Settings) -> None:
    today = local_date(now())
    workers = [Database(base_settings) for _ in range(8)]
    try:
        ids = await plan_with(
            workers[0], *(due(today - timedelta(days=1 + i % 30)) for i in range(120))
        )
        # Eight workers (as from eight replicas) at once, in small batches so that they overlap.
        raised = await asyncio.gather(
            *(raise_overdue(database, batch_size=7) for database in workers)
        )
        assert await raised_counts(workers[0], ids) == dict.fromkeys(ids, 1)
        assert sum(raised) >= len(ids)
        # And again, all at once: nothing more.
        await asyncio.gather(*(raise_overdue(database, batch_size=7) for database in workers))
        assert await raised_counts(workers[0], ids) == dict.fromkeys(ids, 1)
    finally:
        for database in workers:
            await database.dispose()


@pytest.mark.postgres_only
async def test_a_pass_does_not_wait_for_an_action_being_edited(database: Database) -> None:
    """An action a user's transaction holds is skipped, not waited for; the next pass takes it."""
    today = local_date(now())
    edited, other = await plan_with(
        database, due(today - timedelta(days=3)), due(today - timedelta(days=3))
    )
    async with database.transaction() as session:
        await session.execute(select(Action.id).where(Action.id == edited).with_for_update())
        # Fails by timing out, rather than hanging, if the pass waited on the lock.
        await asyncio.wait_for(raise_overdue(database), timeout=30)
        assert await raised_counts(database, [edited, other]) == {other: 1}
    await raise_overdue(database)
    assert await raised_counts(database, [edited, other]) == {edited: 1, other: 1}


async def test_the_loop_logs_a_failing_job_and_carries_on(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    calls: Counter[str] = Counter()

    async def broken(_: Database) -> int:
        calls["broken"] += 1
        raise RuntimeError("patient 943 476 5919 had no record")

    async def counting(_: Database) -> int:
        calls["counting"] += 1
        if calls["counting"] == 3:
            worker.stop()
        return 1

    worker = Worker(database, 0, jobs=[("broken", broken), ("counting", counting)])
    with caplog.at_level(logging.INFO, logger="app.worker"):
        await asyncio.wait_for(worker.run(), timeout=30)

    assert calls == {"broken": 3, "counting": 3}
    assert worker.passes == 3
    failures = [r for r in caplog.records if r.getMessage() == "worker job failed"]
    assert [getattr(r, "job", None) for r in failures] == ["broken"] * 3
    # The log line names the job and the error's type, never its message.
    line = JsonFormatter().format(failures[0])
    assert '"error_type": "RuntimeError"' in line
    assert "943 476 5919" not in line


async def test_serve_runs_the_loop_in_its_lifespan_and_stops_it(
    app_factory: Any, database: Database
) -> None:
    [action_id] = await plan_with(database, due(local_date(now()) - timedelta(days=1)))
    app, _ = await app_factory(run_worker_in_serve=True, worker_interval_seconds=3600)
    async with app.router.lifespan_context(app):
        worker: Worker = app.state.worker
        assert worker.running
        # The first pass runs at startup.
        await asyncio.wait_for(worker.passed.wait(), timeout=30)
        assert await raised_counts(database, [action_id]) == {action_id: 1}
    assert not worker.running

    quiet, _ = await app_factory()  # the tests' settings: run_worker_in_serve=False
    async with quiet.router.lifespan_context(quiet):
        assert quiet.state.worker is None


async def scratch_database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'overdue.db'}"
    await asyncio.to_thread(upgrade, url)  # Alembic's env runs its own event loop
    return url


async def test_lfd_overdue_runs_one_pass_and_prints_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await scratch_database(tmp_path)
    scratch = Database(Settings(database_url=url))
    today = local_date(now())
    try:
        ids = await plan_with(
            scratch,
            due(today - timedelta(days=1)),
            due(today - timedelta(days=90), ActionStatus.off_track),
            due(today),
            due(today - timedelta(days=5), ActionStatus.complete),
        )
        monkeypatch.setenv("LFD_DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            # In a thread, as from a shell: the command runs its own event loop.
            assert await asyncio.to_thread(main, ["overdue"]) == 0
            assert capsys.readouterr().out == "action.overdue raised for 2 actions\n"
            assert await asyncio.to_thread(main, ["overdue"]) == 0
            assert capsys.readouterr().out == "action.overdue raised for 0 actions\n"
        finally:
            get_settings.cache_clear()
        assert await raised_counts(scratch, ids) == {ids[0]: 1, ids[1]: 1}
    finally:
        await scratch.dispose()


async def test_lfd_worker_runs_until_sigterm(tmp_path: Path) -> None:
    url = await scratch_database(tmp_path)
    scratch = Database(Settings(database_url=url))
    try:
        [action_id] = await plan_with(scratch, due(local_date(now()) - timedelta(days=2)))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "worker",
            cwd=ROOT,
            env={**os.environ, "LFD_DATABASE_URL": url, "LFD_LOG_JSON": "true"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(60):
                while '"job": "action_overdue"' not in (
                    line := (await process.stdout.readline()).decode()
                ):
                    assert line, f"worker exited early: {seen}"
                    seen.append(line)
            assert '"count": 1' in line
            assert await raised_counts(scratch, [action_id]) == {action_id: 1}

            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                rest = (await process.stdout.read()).decode()
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert '"message": "worker stopped"' in rest
    finally:
        await scratch.dispose()
