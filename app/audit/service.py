from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.integrity import audit_keys, row_hash
from app.auth.principal import Principal
from app.models import AuditEvent
from app.models.base import utcnow

_INSERT = insert(AuditEvent)  # built once: every audited request writes with it


class Outcome(StrEnum):
    """What came of the access a row records (docs/audit.md)."""

    success = "success"  # read or changed
    refused = "refused"  # 403: the client lacks the scope
    not_found = "not_found"  # 404: no such record (or an id that is not one)
    no_match = "no_match"  # a search by NHS number that showed no death with that number


SUCCESS, REFUSED = Outcome.success.value, Outcome.refused.value
NOT_FOUND, NO_MATCH = Outcome.not_found.value, Outcome.no_match.value


class AuditEntry(NamedTuple):
    action: str
    resource_type: str
    resource_id: uuid.UUID | None
    death_id: uuid.UUID | None
    outcome: str = SUCCESS
    query_hash: str | None = None
    # The organisation the row is filed under, when not the acting client's (a deployment-level
    # administrator's change to an organisation's client: that organisation's audit log shows it).
    organisation_id: uuid.UUID | None = None
    # Every patient on a page (one row names them all); when given, ``death_id`` is unused.
    death_ids: tuple[uuid.UUID, ...] = ()

    def patients(self) -> list[uuid.UUID]:
        if self.death_ids:
            return list(self.death_ids)
        return [self.death_id] if self.death_id is not None else []


async def write_audit(
    session: AsyncSession, principal: Principal, entries: Iterable[AuditEntry]
) -> None:
    """Write audit rows in the caller's transaction, so that a read or write and its audit
    rows land together (or not at all). Each row gets its keyed content hash here; its place
    in the chain comes later, from the sealer (app.audit.chain), so writers never wait on one
    another for it."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "occurred_at": now,
            "client_id": principal.client_id,
            "client_name": principal.client_name,
            "on_behalf_of": principal.on_behalf_of,
            "on_behalf_of_verified": principal.on_behalf_of_verified,
            "on_behalf_of_role": principal.on_behalf_of_role,
            "action": entry.action,
            "resource_type": entry.resource_type,
            "resource_id": entry.resource_id,
            "death_ids": entry.patients(),
            "request_id": principal.request_id,
            "organisation_id": entry.organisation_id or principal.organisation_id,
            "outcome": entry.outcome,
            "query_hash": entry.query_hash,
        }
        for entry in entries
    ]
    if rows:
        keys = await audit_keys(session)
        for row in rows:
            row["row_hash"] = row_hash(keys, row)
        await session.execute(_INSERT, rows)


def page_entry(
    action: str,
    resource_type: str,
    entries: Iterable[tuple[uuid.UUID | None, uuid.UUID | None]],
) -> AuditEntry | None:
    """One audit row for a read of these (resource id, death id) pairs: a single record keeps
    its resource id; a page of several names every patient on it, each once, in the order
    shown (issue 19: one row per page, not one per patient). None when nothing was read."""
    pairs = list(entries)
    if not pairs:
        return None
    if len(pairs) == 1:
        resource_id, death_id = pairs[0]
        return AuditEntry(action, resource_type, resource_id, death_id)
    patients = tuple(dict.fromkeys(death for _, death in pairs if death is not None))
    return AuditEntry(action, resource_type, None, None, death_ids=patients)


async def record_access(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource_type: str,
    entries: Iterable[tuple[uuid.UUID | None, uuid.UUID | None]],
) -> None:
    """Audit ``action`` on the (resource id, patient/death id) pairs read: one row, naming
    every patient (page_entry)."""
    entry = page_entry(action, resource_type, entries)
    if entry is not None:
        await write_audit(session, principal, [entry])
