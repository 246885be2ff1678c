"""The overdue check: an open action past its due date raises ``action.overdue`` once.

"Once" is held by the database, not by a process: a pass marks the actions it raises for
(``overdue_notified_at``) and writes their events in the same transaction, with one atomic
``UPDATE ... RETURNING`` whose ``WHERE`` only matches actions not yet marked. Any number of
workers and app replicas may run passes at the same time; an action is raised by exactly one of
them. On PostgreSQL a pass skips rows another transaction holds (``FOR UPDATE SKIP LOCKED``), so
concurrent passes split the backlog instead of queueing behind each other, and a pass never
waits on a user's edit (the skipped action is taken by the next pass).

The actions service sets ``overdue_notified_at`` back to NULL when an action's due date changes,
so a new due date that passes raises again. A complete action (status 5) never raises; an action
due on a day is overdue from the next day, UK local time (app.actions.rag.is_overdue).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.rag import ActionStatus
from app.db import Database
from app.events.service import Change, emit
from app.kit.time import local_date, now
from app.models.action import Action

EVENT_TYPE = "action.overdue"
# One transaction marks at most this many actions, so a backlog (a first run over an imported
# history, a worker that was down for a month) commits in steps instead of one huge transaction.
BATCH_SIZE = 500


@dataclass(frozen=True)
class SystemActor:
    """Who raises an event that no API client asked for. Its events carry no client id and no
    request id; the name says which part of the service wrote them (for logs)."""

    client_name: str
    client_id: uuid.UUID | None = None
    request_id: str | None = None


WORKER = SystemActor(client_name="lfd worker")


async def raise_overdue_batch(session: AsyncSession, at: datetime, limit: int) -> int:
    """Mark up to ``limit`` actions that became overdue by ``at`` and write one event for each.
    Flushes, never commits. Returns how many were raised."""
    today = local_date(at)
    overdue_unraised = (
        Action.status != ActionStatus.complete,
        Action.falls_due_on < today,
        Action.overdue_notified_at.is_(None),
    )
    batch = (
        select(Action.id)
        .where(*overdue_unraised)
        .order_by(Action.falls_due_on, Action.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        batch = batch.with_for_update(skip_locked=True)
    # A second, concurrent pass matches nothing: on PostgreSQL the row lock (the sub-select's
    # FOR UPDATE, then the UPDATE's own) re-checks these conditions against the row the first
    # pass committed, and they are repeated here so that the UPDATE re-checks them too; SQLite
    # runs write transactions one at a time (BEGIN IMMEDIATE, app.db).
    marked = (
        update(Action)
        .where(Action.id.in_(batch.scalar_subquery()), *overdue_unraised)
        .values(overdue_notified_at=at)
        .returning(Action.id)
        .execution_options(synchronize_session=False)
    )
    action_ids = sorted((await session.execute(marked)).scalars().all())
    await emit(
        session,
        WORKER,
        [
            Change(EVENT_TYPE, "action", action_id, death_id=None, changed=["overdue"])
            for action_id in action_ids
        ],
        at,
    )
    return len(action_ids)


async def raise_overdue(
    database: Database, *, at: datetime | None = None, batch_size: int = BATCH_SIZE
) -> int:
    """One pass: raise ``action.overdue`` for every open action past its due date that has not
    raised it yet, a batch per transaction. Returns how many were raised."""
    at = at or now()
    raised = 0
    while True:
        async with database.transaction() as session:
            count = await raise_overdue_batch(session, at, batch_size)
        raised += count
        if count < batch_size:
            return raised
