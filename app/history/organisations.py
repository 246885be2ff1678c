"""The organisations a batch's records name, resolved in the registry in one query: each
death's site of death and registered GP practice (``site_ods_code``,
``registered_gp_practice_ods_code``), each SJR phase rating's and problem's organisation of
care (``care_organisation``). The planned rows carry the references as the bundle gave them
(app.history.plan); here they become the organisation columns, and a reference the registry
lacks, or of the wrong kind, refuses its record with the pointer to it, as live intake does."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.deaths.organisations import NOT_A_SITE
from app.errors import field_error
from app.history.plan import Planned
from app.history.validation import Checked
from app.models import Organisation
from app.organisations.lookup import LOAD_HINT, resolve_organisations

DEATH_CODES = {
    "site_ods_code": "site_organisation_id",
    "registered_gp_practice_ods_code": "gp_practice_organisation_id",
}
UNKNOWN = f"no organisation in the registry has this ODS code or id: {LOAD_HINT}"


def _references(planned: Planned) -> set[str]:
    found = {planned.death.get(code) for code in DEATH_CODES}
    found |= {row.get("care_organisation") for row in planned.phases + planned.problems}
    return {reference for reference in found if isinstance(reference, str)}


def _kind_error(code: str, organisation: Organisation) -> str | None:
    kind = f"this code names an organisation of kind `{organisation.kind}`"
    if code == "site_ods_code" and organisation.kind in NOT_A_SITE:
        return f"{kind}, not a site or a trust"
    if code == "registered_gp_practice_ods_code" and organisation.kind != "gp_practice":
        return f"{kind}, not a GP practice"
    return None


def _resolve(planned: Planned, found: dict[str, Organisation]) -> list[dict[str, Any]]:
    """Set the planned rows' organisation columns from ``found``; the record's problems."""
    errors: list[dict[str, Any]] = []
    for code, column in DEATH_CODES.items():
        reference = planned.death.pop(code, None)
        planned.death[column] = None
        if reference is None:
            continue
        organisation = found.get(reference)
        if organisation is None:
            errors.append(field_error(f"/death/{code}", UNKNOWN, "unknown"))
        elif (wrong := _kind_error(code, organisation)) is not None:
            errors.append(field_error(f"/death/{code}", wrong, "wrong_kind"))
        else:
            planned.death[column] = organisation.id
    for row in planned.phases + planned.problems:
        reference, pointer = row.pop("care_organisation", None), row.pop("care_pointer", "")
        row["care_organisation_id"] = None
        if reference is None:
            continue
        if reference not in found:
            errors.append(field_error(pointer, UNKNOWN, "unknown"))
        else:
            row["care_organisation_id"] = found[reference].id
    return errors


async def resolve_batch(session: AsyncSession, items: list[tuple[Checked, Planned]]) -> None:
    """Resolve every planned record's references at once; a record naming what the registry
    lacks gets its errors (and is then refused by the writer)."""
    wanted: set[str] = set()
    for _, planned in items:
        wanted |= _references(planned)
    found = await resolve_organisations(session, wanted) if wanted else {}
    for checked, planned in items:
        checked.errors.extend(_resolve(planned, found))
