from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import ColumnClause, bindparam, func, insert, literal_column, select
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


def _source_of(change: Change) -> object:
    """Where the INSERT reads the organisation of a change that does not name it."""
    if change.death_id is not None:
        return _Source("org_death", change.death_id)
    kinds = {"action_plan": "org_plan", "history_import": "org_import", "action": "org_action"}
    name = kinds.get(change.resource_type)
    return _Source(name, change.resource_id) if name else None


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


def _postgres_parameters(row: dict[str, object]) -> dict[str, object]:
    organisation = row.pop("organisation_id")
    sources: dict[str, uuid.UUID | None] = dict.fromkeys(
        ("org_death", "org_plan", "org_import", "org_action")
    )
    if isinstance(organisation, _Source):
        sources[organisation.name] = organisation.key
        organisation = None
    return {**row, "organisation_id": organisation, **sources}


@cache
def _postgres_insert() -> Any:
    """The outbox INSERT on PostgreSQL, built once. An event's place in the feed
    (app/events/feed.py) is the writing transaction's id, raised if need be to that of the
    resource's previous event: a transaction that got its id early but changed the resource
    after an earlier-numbered one committed still comes after it, so the feed follows each
    resource's own history. Its organisation, when not given, is its death's, its plan's (an
    action's plan's), its history import's, read by the INSERT itself (no round trip)."""
    table: Any = OutboxEvent.__table__
    # The resource's previous event is looked for in the months not yet closed; no event of a
    # closed month is above the highest txid of them all (app.events.months), which the
    # greatest() takes instead. The closed months' range is bound, so the statement is built
    # once and PostgreSQL still prunes their partitions.
    occurred = table.c.occurred_at
    previous = (
        select(func.max(table.c.txid))
        .where(
            table.c.resource_type == bindparam("resource_type"),
            table.c.resource_id == bindparam("resource_id"),
            (occurred < bindparam("closed_from", type_=occurred.type))
            | (occurred >= bindparam("closed_until", type_=occurred.type)),
        )
        .scalar_subquery()
    )
    organisation = func.coalesce(
        bindparam("organisation_id", type_=table.c.organisation_id.type),
        select(_DEATHS.c.organisation_id)
        .where(_DEATHS.c.id == bindparam("org_death", type_=_DEATHS.c.id.type))
        .scalar_subquery(),
        select(_PLANS.c.organisation_id)
        .where(_PLANS.c.id == bindparam("org_plan", type_=_PLANS.c.id.type))
        .scalar_subquery(),
        select(_IMPORTS.c.organisation_id)
        .where(_IMPORTS.c.id == bindparam("org_import", type_=_IMPORTS.c.id.type))
        .scalar_subquery(),
        select(_PLANS.c.organisation_id)
        .join(_ACTIONS, _ACTIONS.c.plan_id == _PLANS.c.id)
        .where(_ACTIONS.c.id == bindparam("org_action", type_=_ACTIONS.c.id.type))
        .scalar_subquery(),
    )
    names = (
        "id",
        "type",
        "resource_type",
        "resource_id",
        "death_id",
        "changed",
        "occurred_at",
        "client_id",
        "request_id",
    )
    return insert(table).values(
        {
            **{name: bindparam(name, type_=table.c[name].type) for name in names},
            "organisation_id": organisation,
            "txid": func.greatest(
                CURRENT_TXID,
                func.coalesce(previous, 0),
                bindparam("closed_txid", type_=table.c.txid.type),
            ),
        }
    )


@dataclass(frozen=True)
class _Source:
    """Where an event's organisation is read from, when the change does not say."""

    name: str  # the bound parameter: org_death, org_plan, org_import, org_action
    key: uuid.UUID


async def emit(
    session: AsyncSession,
    principal: Actor,
    changes: Iterable[Change],
    at: datetime | None = None,
) -> list[uuid.UUID]:
    """Write the changes' events in the caller's transaction; their ids, in order."""
    now = at or utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    pending = list(changes)
    ids = [uuid.uuid4() for _ in pending]
    rows: list[dict[str, object]] = [
        {
            "id": event_id,
            "type": change.type,
            "resource_type": change.resource_type,
            "resource_id": change.resource_id,
            "death_id": change.death_id,
            "organisation_id": change.organisation_id
            or (_source_of(change) if postgres else _organisation_of(change)),
            "changed": sorted(change.changed),
            "occurred_at": now,
            "client_id": principal.client_id,
            "request_id": principal.request_id,
        }
        for event_id, change in zip(ids, pending, strict=True)
    ]
    if not rows:
        return []
    if postgres:
        # One statement, built once, for any number of events (executemany): the organisation
        # and the feed position are computed by the INSERT from bound ids (_postgres_insert).
        closed = await closed_months(session)
        closed_from, closed_until = closed.open_bounds()
        extra = {
            "closed_from": closed_from,
            "closed_until": closed_until,
            "closed_txid": closed.highest_txid,
        }
        await session.execute(
            _postgres_insert(), [{**_postgres_parameters(row), **extra} for row in rows]
        )
        return ids
    # SQLite: writers take turns (BEGIN IMMEDIATE), so the next numbers are ours alone and
    # commit in order. The feed's numbering is the deployment's, not the client's scope's: a
    # scoped max would hand a client of one organisation numbers another's events hold.
    last = await session.scalar(
        select(func.coalesce(func.max(OutboxEvent.seq), 0)),
        execution_options={UNSCOPED: True},
    )
    for number, row in enumerate(rows, start=int(last or 0) + 1):
        row["seq"] = number
        row["txid"] = 0
    await session.execute(insert(OutboxEvent).values(rows))
    return ids
