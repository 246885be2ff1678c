from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnClause, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.months import closed_months
from app.models import Action, ActionPlan, Death, HistoryImport, OutboxEvent
from app.models.base import utcnow
from app.scoping import UNSCOPED

CURRENT_TXID: ColumnClause[int] = literal_column("pg_current_xact_id()::text::bigint")


@dataclass(frozen=True)
class Change:
    """One state change to publish: its event type, the resource, and the names (never the
    values) of the fields that changed."""

    type: str
    resource_type: str
    resource_id: uuid.UUID
    death_id: uuid.UUID | None
    changed: list[str] = field(default_factory=list)
    # Whose record changed (issue 16). None: derived from the death, the plan or the action;
    # an event with neither (a theme, a history import) is the deployment's own.
    organisation_id: uuid.UUID | None = None


class Actor(Protocol):
    """Who caused the changes: an API client (a Principal) or a part of the service itself
    (the worker), which has no client id and no request id."""

    @property
    def client_id(self) -> uuid.UUID | None: ...

    @property
    def request_id(self) -> str | None: ...


_DEATHS, _PLANS, _ACTIONS = Death.__table__, ActionPlan.__table__, Action.__table__
_IMPORTS = HistoryImport.__table__


def _organisation_of(change: Change) -> object:
    """The organisation whose record changed, read in the INSERT itself (no extra round trip):
    the death's; else the plan's (of an action, its plan's), the history import's; else
    None (the deployment's own: a theme)."""
    if change.death_id is not None:
        return (
            select(_DEATHS.c.organisation_id)
            .where(_DEATHS.c.id == change.death_id)
            .scalar_subquery()
        )
    if change.resource_type == "action_plan":
        return (
            select(_PLANS.c.organisation_id)
            .where(_PLANS.c.id == change.resource_id)
            .scalar_subquery()
        )
    if change.resource_type == "history_import":
        return (
            select(_IMPORTS.c.organisation_id)
            .where(_IMPORTS.c.id == change.resource_id)
            .scalar_subquery()
        )
    if change.resource_type == "action":
        return (
            select(_PLANS.c.organisation_id)
            .join(_ACTIONS, _ACTIONS.c.plan_id == _PLANS.c.id)
            .where(_ACTIONS.c.id == change.resource_id)
            .scalar_subquery()
        )
    return None


async def emit(
    session: AsyncSession,
    principal: Actor,
    changes: Iterable[Change],
    at: datetime | None = None,
) -> list[uuid.UUID]:
    """Write the changes' events in the caller's transaction; their ids, in order."""
    now = at or utcnow()
    pending = list(changes)
    ids = [uuid.uuid4() for _ in pending]
    rows: list[dict[str, object]] = [
        {
            "id": event_id,
            "type": change.type,
            "resource_type": change.resource_type,
            "resource_id": change.resource_id,
            "death_id": change.death_id,
            "organisation_id": change.organisation_id or _organisation_of(change),
            "changed": sorted(change.changed),
            "occurred_at": now,
            "client_id": principal.client_id,
            "request_id": principal.request_id,
        }
        for event_id, change in zip(ids, pending, strict=True)
    ]
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # An event's place in the feed (app/events/feed.py) is the writing transaction's id,
        # raised if need be to that of the resource's previous event: a transaction that got
        # its id early but changed the resource after an earlier-numbered one committed still
        # comes after it, so the feed follows each resource's own history. The previous event
        # is looked for in the months not yet closed; no event of a closed month is above the
        # highest txid of them all (app.events.months), which the greatest() takes instead.
        closed = await closed_months(session)
        skip = closed.open_months()
        for row in rows:
            conditions = [
                OutboxEvent.resource_type == row["resource_type"],
                OutboxEvent.resource_id == row["resource_id"],
            ]
            if skip is not None:
                conditions.append(skip)
            previous = select(func.max(OutboxEvent.txid)).where(*conditions).scalar_subquery()
            row["txid"] = func.greatest(
                CURRENT_TXID, func.coalesce(previous, 0), closed.highest_txid
            )
    else:
        # SQLite: writers take turns (BEGIN IMMEDIATE), so the next numbers are ours alone and
        # commit in order. The feed's numbering is the deployment's, not the client's scope's:
        # a scoped max would hand a client of one organisation numbers another's events hold.
        last = await session.scalar(
            select(func.coalesce(func.max(OutboxEvent.seq), 0)),
            execution_options={UNSCOPED: True},
        )
        for number, row in enumerate(rows, start=int(last or 0) + 1):
            row["seq"] = number
            row["txid"] = 0
    await session.execute(insert(OutboxEvent).values(rows))
    return ids
