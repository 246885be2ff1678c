"""List filters a pseudonymised client may not use.

A filter is a question about a patient: "is there a death with NHS number X?" or "who died
on 7 November?" answered by a page that is empty or not gives away what the pseudonymised view
hides. So a commissioner's client cannot filter by an identifier (NHS number, the sender's
reference), and date-of-death ranges must be whole months (the month of death is what it may
see). Refused filters are a 400 naming the parameter, before any query runs.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date

from app.auth.principal import Principal
from app.errors import BadRequest


class IdentifyingFilter(BadRequest):
    slug, title = "identifying-filter", "Filter not available to pseudonymised clients"


def _month_start(day: date) -> bool:
    return day.day == 1


def _month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def refuse_identifying_filters(
    principal: Principal,
    identifiers: Mapping[str, object | None],
    died_from: date | None = None,
    died_to: date | None = None,
    *,
    names: tuple[str, str] = ("died_from", "died_to"),
) -> None:
    """400 when a pseudonymised client sends an identifying filter: any of ``identifiers``
    (query parameter name to value) that is set, or a date-of-death bound inside a month
    (``names`` are the bounds' query parameters: `died_from`/`died_to` on lists,
    `start`/`end` on reports)."""
    if not principal.pseudonymised:
        return
    errors = [
        {
            "pointer": f"query:/{name}",
            "code": "identifying_filter",
            "detail": "a pseudonymised client cannot filter by a patient identifier",
        }
        for name, value in identifiers.items()
        if value is not None
    ]
    first, last = names
    for name, bound, whole, which in (
        (first, died_from, _month_start, "the first day"),
        (last, died_to, _month_end, "the last day"),
    ):
        if bound is not None and not whole(bound):
            errors.append(
                {
                    "pointer": f"query:/{name}",
                    "code": "month_granularity",
                    "detail": "a pseudonymised client filters by whole months of death: "
                    f"{which} of a month",
                }
            )
    if errors:
        raise IdentifyingFilter(
            "This client sees pseudonymised data and cannot use filters that would identify "
            "a patient or date a death more finely than its month.",
            errors=errors,
        )
