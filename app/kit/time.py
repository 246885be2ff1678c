"""Time in the trust's terms: UTC stored, Europe/London for dates and reporting periods."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

# The years a query may name (report periods and ranges, FHIR date searches). Intake refuses
# deaths before 2000 as typing slips, and nothing is due centuries ahead: a year outside is a
# slip (0202, 9999) to refuse with a 400, not a question to answer with nothing, or with a 500
# where Python's dates end at 9999.
FIRST_QUERY_YEAR = 2000
LAST_QUERY_YEAR = 2100


def now() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def age_in_years(born: date, on: date) -> int:
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years
