"""``lfd demo``: fill a database with a realistic, wholly synthetic set of deaths.

Every death goes through the same service code as ``POST /v1/screenings`` (as an API client of
its own), so the screenings, the referrals the configured rules raise, the overrides, the
events and the audit rows are all real. Nothing here is a real person: NHS numbers come from the
reserved 999 test range (with valid Modulus 11 check digits) and the names are made up.

Each death is drawn from its own generator seeded by (seed, index), so a death is the same
whatever the number asked for (its dates follow today, or the ``at`` given), and its
``source_reference`` names the seed and index: a second run with the same seed finds the deaths
already there and creates nothing new.
"""

from app.demo.draw import demo_window, financial_year, nhs_number, synthetic_screening
from app.demo.load import Summary, run_demo
from app.demo.vocabulary import CLIENT_NAME, FAMILY, SOURCE_SYSTEM

__all__ = [
    "CLIENT_NAME",
    "FAMILY",
    "SOURCE_SYSTEM",
    "Summary",
    "demo_window",
    "financial_year",
    "nhs_number",
    "run_demo",
    "synthetic_screening",
]
