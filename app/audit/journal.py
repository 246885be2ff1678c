"""A unit of work's journal: the outbox events and audit rows a change produces, gathered as
the service works and written together (two INSERTs) before the transaction commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditEntry, write_audit
from app.auth.principal import Principal
from app.events.service import Change, emit


@dataclass
class Journal:
    principal: Principal
    changes: list[Change] = field(default_factory=list)
    accesses: list[AuditEntry] = field(default_factory=list)

    def event(self, change: Change) -> None:
        self.changes.append(change)

    def audit(
        self, action: str, resource_type: str, resource_id: uuid.UUID, death_id: uuid.UUID | None
    ) -> None:
        self.accesses.append(AuditEntry(action, resource_type, resource_id, death_id))

    async def write(self, session: AsyncSession) -> None:
        await emit(session, self.principal, self.changes)
        await write_audit(session, self.principal, self.accesses)
        self.changes, self.accesses = [], []
