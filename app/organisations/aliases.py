"""The registry as an alias table for files that write organisations as names (action plans:
app.actions.organisations): each organisation with an ODS code is found by its code, its name
and each of its aliases ("UHL" -> RWE, University Hospitals of Leicester NHS Trust)."""

from __future__ import annotations

from sqlalchemy import select

from app.db import Database
from app.models import Organisation
from app.scoping import UNSCOPED


async def registry_aliases(database: Database) -> dict[str, tuple[str, str]]:
    """Name, alias or code -> (ODS code, name), for every organisation of the registry that
    has an ODS code and is not closed."""
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(Organisation.ods_code, Organisation.name, Organisation.aliases).where(
                    Organisation.ods_code.is_not(None), Organisation.closed_at.is_(None)
                ),
                execution_options={UNSCOPED: True},
            )
        ).all()
    table: dict[str, tuple[str, str]] = {}
    for code, name, aliases in rows:
        assert code is not None
        for written in (code, name, *(aliases or [])):
            table[written] = (code, name)
    return table
