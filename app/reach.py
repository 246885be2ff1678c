"""The reach of an organisation (issue 16): the data scope (app.scoping) of a client of it,
and the deployment's default organisation. Read with the whole deployment in scope
(``UNSCOPED``): they decide what a request may see, before it has a scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import CaseShare, Organisation
from app.models.base import utcnow
from app.scoping import NOTHING, SYSTEM, UNSCOPED, DataScope


async def default_organisation_id(session: AsyncSession) -> uuid.UUID:
    """The deployment's default organisation (migration 0019 makes it; `lfd organisations
    adopt` names it): it owns what was recorded before organisations, and the clients made
    without one."""
    found = await session.scalar(
        select(Organisation.id).where(Organisation.is_default.is_(True)),
        execution_options={UNSCOPED: True},
    )
    if found is None:
        raise RuntimeError("no default organisation: run `lfd migrate` (migration 0019)")
    return found


async def reach_of(
    session: AsyncSession,
    organisation_id: uuid.UUID | None,
    members: bool,
    at: datetime | None = None,
) -> DataScope:
    """The scope of a client of ``organisation_id``: the organisation, its sites, and with
    ``members`` (a pseudonymised client) every organisation below it; the deaths shared with it
    and open at ``at``, with what each share names and is for (``shares``). What the client
    changes is its organisation and its sites (``own``, set when a pseudonymised client reads
    more). A client of no organisation (deployment level) sees nothing."""
    if organisation_id is None:
        return NOTHING
    unscoped = {UNSCOPED: True}
    tree = (
        await session.execute(
            select(Organisation.id, Organisation.parent_id, Organisation.kind),
            execution_options=unscoped,
        )
    ).all()
    children: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
    for row_id, parent_id, kind in tree:
        if parent_id is not None:
            children.setdefault(parent_id, []).append((row_id, kind))

    def below(all_kinds: bool) -> set[uuid.UUID]:
        reach = {organisation_id}
        pending: Sequence[uuid.UUID] = [organisation_id]
        while pending:
            found = [
                child
                for parent in pending
                for child, kind in children.get(parent, [])
                if child not in reach and (all_kinds or kind == "site")
            ]
            reach.update(found)
            pending = found
        return reach

    def covers_all(reach: set[uuid.UUID]) -> bool:
        return len(reach) >= len(tree) and all(row_id in reach for row_id, _, _ in tree)

    reach = below(members)
    # What the client changes: its organisation and its sites (a commissioner reads its
    # members' records, pseudonymised, but changes only its own: app.organisations.ownership).
    own = below(False) if members else reach
    if covers_all(reach):
        return SYSTEM if covers_all(own) else DataScope(True, own=frozenset(own))
    now = at or utcnow()
    shares = (
        await session.execute(
            select(CaseShare.death_id, CaseShare.referral_id, CaseShare.purpose).where(
                CaseShare.organisation_id == organisation_id,
                CaseShare.revoked_at.is_(None),
                CaseShare.starts_at <= now,
                or_(CaseShare.ends_at.is_(None), CaseShare.ends_at > now),
            ),
            execution_options=unscoped,
        )
    ).all()
    return DataScope(
        False,
        frozenset(reach),
        frozenset(death_id for death_id, _, _ in shares),
        own=None if own == reach else frozenset(own),
        shares=frozenset((death, referral, purpose) for death, referral, purpose in shares),
    )


__all__ = ["default_organisation_id", "reach_of"]
