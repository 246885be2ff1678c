"""Cross-system SJR (issue 16): the organisation that gave the care each phase rating and each
problem in care judges. The instrument keeps the reference as sent (an ODS code, upper case, or
a registry id); the rating and problem rows carry the organisation's id for the reports; a
review read shows the organisation itself (docs/organisations.md, "Cross-system reviews")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ValidationFailed, field_error
from app.organisations.lookup import LOAD_HINT, ref_of, resolve_organisations
from app.reviews.schemas import SjrReview

PARTS = ("phases", "problems_in_care")
UNKNOWN = f"no organisation in the registry has this ODS code or id: {LOAD_HINT}"


def named_in(review: Any) -> Iterator[tuple[str, str]]:
    """Each care organisation an SJR names: (its pointer under the instrument, reference)."""
    if not isinstance(review, SjrReview):
        return
    for part in PARTS:
        for index, item in enumerate(getattr(review, part)):
            if item.care_organisation is not None:
                yield f"/{part}/{index}/care_organisation", item.care_organisation


async def care_organisations(
    session: AsyncSession, review: Any, prefix: str = "/review"
) -> dict[str, uuid.UUID]:
    """The registry id of each care organisation the SJR names, by its reference; a 422 with
    the pointer of each reference the registry lacks."""
    named = list(named_in(review))
    if not named:
        return {}
    found = await resolve_organisations(session, {reference for _, reference in named})
    errors = [
        field_error(f"{prefix}{pointer}", UNKNOWN, "unknown")
        for pointer, reference in named
        if reference not in found
    ]
    if errors:
        raise ValidationFailed(
            "The review names an organisation of care the registry does not hold; see errors.",
            errors=errors,
        )
    return {reference: organisation.id for reference, organisation in found.items()}


async def shown(session: AsyncSession, detail: dict[str, Any]) -> dict[str, Any]:
    """The stored instrument with each care organisation shown as the registry has it."""
    references = {
        item["care_organisation"]
        for part in PARTS
        for item in detail.get(part) or []
        if isinstance(item, dict) and isinstance(item.get("care_organisation"), str)
    }
    if not references:
        return detail
    found = await resolve_organisations(session, references)
    views = {ref: ref_of(row).model_dump(mode="json") for ref, row in found.items()}
    out = dict(detail)
    for part in PARTS:
        if isinstance(out.get(part), list):
            out[part] = [_with_view(item, views) for item in out[part]]
    return out


def _with_view(item: Any, views: dict[str, dict[str, Any]]) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("care_organisation"), str):
        return item
    reference = item["care_organisation"]
    return {**item, "care_organisation": views.get(reference, {"reference": reference})}
