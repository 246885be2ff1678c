"""``lfd demo``: fill a database with a realistic, wholly synthetic history.

Three financial years of deaths up to today, each with its screening, the referrals made for
it at their own times, their reviews (SJRs, some late, some second stages; M&M outcomes; LeDeR
notifications and what LeDeR made of them; a few PSIIs), the findings under themes that shift
from year to year, and an action plan with dated progress and an overdue tail. The deaths come
in as a history bundle through the history importer (the code of ``lfd history import``, app/
history), the plan through the action plan service: the rows, the events and the audit are
those of the real thing. Nothing here is a real person: NHS numbers come from the reserved 999
test range (with valid Modulus 11 check digits) and the names are made up.

Each death is drawn from its own generators seeded by (seed, index), after the deaths before
it, so that a death is the same whatever the number asked for (its dates follow the demo's
today), and its ``source_reference`` names the seed and index: the importer recognises a death
it already has by it (docs/history.md), and a second run creates nothing new.
"""

from app.demo.draw import demo_window, financial_year, nhs_number
from app.demo.load import run_demo
from app.demo.records import synthetic_records
from app.demo.vocabulary import CLIENT_NAME, FAMILY, SOURCE_SYSTEM

__all__ = [
    "CLIENT_NAME",
    "FAMILY",
    "SOURCE_SYSTEM",
    "demo_window",
    "financial_year",
    "nhs_number",
    "run_demo",
    "synthetic_records",
]
