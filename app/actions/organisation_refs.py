"""The organisations a plan or an action names, through the API: what is sent resolved as the
importer resolves a file's (one resolver: ``alias_table`` over the registry and the configured
aliases, app.actions.organisations), and what is stored shown resolved again, each name as
written beside its code and the registry's name (docs/organisations.md).

Stored: ``organisations``, the ODS codes (what the ``?organisation=`` filters and the reports
read), and ``organisation_names``, every organisation as written (None when they are just the
codes). Which name gave which code is not stored: a response finds it again by resolving each
name with the same table, kept to the codes the record holds (so a name the registry learns
later does not gain a code the filters would not find).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.organisations import Aliases, Resolved, alias_table
from app.actions.schemas import OrganisationEntry
from app.kit.ods import alias_key
from app.models import Organisation
from app.organisations.aliases import registry_aliases_in
from app.scoping import UNSCOPED

Configured = Mapping[str, Sequence[str]]  # LFD_ORGANISATION_ALIASES: alias -> [code, name]


def _written(resolved: Resolved) -> str:
    """A code sent as a code ("rr8", "ODS RGD") is written as its code."""
    code = resolved.code
    if code is not None and (resolved.how == "code" or alias_key(resolved.written) == code.lower()):
        return code
    return resolved.written


def _resolve(aliases: Aliases, written: str) -> Resolved:
    # An entry of an ODS code's format is a code, as the API always took it (RWE, RGD); a
    # name the table knows (the registry's name or alias, "UHL") is its code.
    return aliases.resolve(written, codes=True)


async def resolve_written(
    session: AsyncSession, configured: Configured, entries: Sequence[str]
) -> tuple[list[str], list[str] | None]:
    """(ODS codes, names as written) for the entries sent, each an ODS code, a name or an
    alias; the names are None when they are just the codes (as the importer stores them)."""
    if not entries:
        return [], None
    aliases = alias_table(configured, await registry_aliases_in(session, entries))
    codes: list[str] = []
    names: list[str] = []
    for entry in entries:
        resolved = _resolve(aliases, entry)
        written = _written(resolved)
        if written.casefold() not in {name.casefold() for name in names}:
            names.append(written)
        if resolved.code is not None and resolved.code not in codes:
            codes.append(resolved.code)
    return codes, None if names == codes else names


async def entries_of(
    session: AsyncSession,
    configured: Configured,
    records: Sequence[tuple[Sequence[str], Sequence[str] | None]],
) -> list[list[OrganisationEntry]]:
    """Each record's (codes, names as written) as entries: one per name, its code when the
    name resolves to one the record holds, then any code no name accounts for (written as
    itself). The registry's rows for the codes of every record in one query; the names are
    resolved by the table the API resolves them by (a name two organisations share is neither,
    though the record holds one of them)."""
    wanted = {code.upper() for codes, _ in records for code in codes}
    rows = []
    if wanted:
        rows = list(
            (
                await session.execute(
                    select(
                        Organisation.id,
                        Organisation.ods_code,
                        Organisation.name,
                        Organisation.aliases,
                    )
                    .where(Organisation.ods_code.in_(wanted))
                    .order_by(Organisation.ods_code),
                    execution_options={UNSCOPED: True},
                )
            ).all()
        )
    by_code = {row.ods_code.upper(): row for row in rows if row.ods_code}
    sent = {name for _, names in records for name in names or []}
    table = await registry_aliases_in(session, sent) if sent else {}
    aliases = alias_table(configured, table)

    def entry(code: str | None, written: str) -> OrganisationEntry:
        row = by_code.get(code) if code is not None else None
        return OrganisationEntry(
            code=code,
            name=row.name if row is not None else None,
            written=written,
            organisation_id=row.id if row is not None else None,
        )

    out = []
    for codes, names in records:
        held = [code.upper() for code in codes]
        if names is None:  # just the codes (old rows, lists of codes): each one as itself
            out.append([entry(code, code) for code in held])
            continue
        found: list[OrganisationEntry] = []
        for written in names:
            code = _resolve(aliases, written).code
            found.append(entry(code if code in held else None, written))
        accounted = {item.code for item in found}
        found += [entry(code, code) for code in held if code not in accounted]
        out.append(found)
    return out
