"""Auditing searches by NHS number, found or not.

A search that finds nobody discloses something too: that the person is not on the register
(or not under that number). So every search by NHS number (GET /v1/deaths?nhs_number=, FHIR
Patient?identifier=) writes one `death.search` row per number searched, besides the
`death.list` rows of the deaths it returned. The row holds the number's keyed hash
(``query_hash``, app.audit.integrity), never the number, and its outcome: `success` when the
page answered showed at least one death with that number, `no_match` when it showed none (on
a later page of the same search, the number's deaths may still come: each page is its own
disclosure and its own row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.integrity import audit_keys, search_hash
from app.audit.service import NO_MATCH, SUCCESS, AuditEntry, write_audit
from app.auth.principal import Principal
from app.models import Death


async def audit_searches(
    session: AsyncSession, principal: Principal, numbers: Iterable[str], page: Sequence[Death]
) -> None:
    keys = await audit_keys(session)
    shown = {death.nhs_number for death in page}
    await write_audit(
        session,
        principal,
        [
            AuditEntry(
                "death.search",
                "death",
                None,
                None,
                SUCCESS if number in shown else NO_MATCH,
                search_hash(keys, number),
            )
            for number in sorted(set(numbers))
        ],
    )
