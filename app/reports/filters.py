"""The query parameters every report takes: the period, the filters, the output format.

Each report says which filters it applies; a filter that does not apply to a report is a 400,
never silently ignored (a board paper filtered by a route the report cannot split by would
otherwise print the unfiltered figures under a filtered heading).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy import ColumnElement, and_, false, or_

from app.auth.deps import ReportsReader
from app.config import Settings
from app.errors import BadRequest
from app.kit.enums import PlaceOfDeath, Route
from app.kit.time import local_date, now
from app.models import Death
from app.privacy.filters import refuse_identifying_filters
from app.reports.model import Period, parse_period


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    html = "html"


FILTER_NAMES = ("site", "specialty", "route", "age_band", "organisation")


@dataclass(frozen=True)
class AgeBand:
    """Ages `low` to `high`, both inclusive; None for an open end."""

    label: str
    low: int | None
    high: int | None


def age_bands(boundaries: list[int]) -> list[AgeBand]:
    """Bands from ascending boundaries: [65, 80] gives "under 65" (0-64), "65-80" (80
    included) and "over 80" (81 and older); [65, 80, 90] adds "81-90" and ends "over 90"."""
    bands = [AgeBand(f"under {boundaries[0]}", None, boundaries[0] - 1)]
    low = boundaries[0]
    for high in boundaries[1:]:
        bands.append(AgeBand(f"{low}-{high}", low, high))
        low = high + 1
    bands.append(AgeBand(f"over {boundaries[-1]}", boundaries[-1] + 1, None))
    return bands


def age_condition(band: AgeBand, age: Any) -> ColumnElement[bool]:
    parts = []
    if band.low is not None:
        parts.append(age >= band.low)
    if band.high is not None:
        parts.append(age <= band.high)
    return and_(*parts)


@dataclass(frozen=True)
class ReportFilters:
    """The filters as given (None when absent). `site`, `specialty` (the specialty at death)
    and `age_band` select deaths; `route` selects referrals; `organisation` (an ODS code)
    selects actions."""

    site: str | None = None
    specialty: str | None = None
    route: Route | None = None
    age_band: str | None = None
    organisation: str | None = None

    def given(self) -> list[str]:
        return [name for name in FILTER_NAMES if getattr(self, name) is not None]

    def require_only(self, report: str, *allowed: str) -> None:
        """400 naming every given filter that `report` cannot apply."""
        refused = [name for name in self.given() if name not in allowed]
        if refused:
            can = ", ".join(allowed) if allowed else "none"
            raise BadRequest(
                f"The {report} report cannot be filtered by {', '.join(refused)} "
                f"(its filters: {can}).",
                errors=[
                    {
                        "pointer": f"query:/{name}",
                        "code": "filter_not_applicable",
                        "detail": f"{report} is not filtered by {name}",
                    }
                    for name in refused
                ],
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            name: (value.value if isinstance(value, Route) else value)
            for name, value in asdict(self).items()
        }

    def band(self, settings: Settings) -> AgeBand | None:
        if self.age_band is None:
            return None
        bands = age_bands(settings.report_age_bands)
        for band in bands:
            if band.label == self.age_band:
                return band
        raise BadRequest(
            f"age_band must be one of: {', '.join(b.label for b in bands)}.",
            errors=[{"pointer": "query:/age_band", "code": "unknown_age_band"}],
        )

    def death_conditions(self, settings: Settings) -> list[ColumnElement[bool]]:
        """The WHERE terms these filters put on `deaths`."""
        conditions: list[ColumnElement[bool]] = []
        if self.site is not None:
            conditions.append(Death.site == self.site)
        if self.specialty is not None:
            conditions.append(Death.specialty_at_death == self.specialty)
        band = self.band(settings)
        if band is not None:
            conditions.append(age_condition(band, Death.age_at_death))
        return conditions


def in_scope(settings: Settings) -> ColumnElement[bool]:
    """Deaths the LfD figures count: at the configured places of death, plus deaths within 30
    days of discharge when the trust reports the SHMI cohort."""
    places = [PlaceOfDeath(place).value for place in settings.report_in_scope_places]
    terms: list[ColumnElement[bool]] = [Death.place_of_death.in_(places)] if places else []
    if settings.report_include_discharged_within_30_days:
        terms.append(Death.within_30_days_of_discharge.is_(True))
    return or_(*terms) if terms else false()


def _text_filter(description: str) -> Any:
    return Query(min_length=1, max_length=100, description=description)


def report_filters(
    site: Annotated[str | None, _text_filter("Only deaths at this site (exact name).")] = None,
    specialty: Annotated[
        str | None, _text_filter("Only deaths whose specialty at death is this (exact name).")
    ] = None,
    route: Annotated[Route | None, Query(description="Only referrals of this route.")] = None,
    age_band: Annotated[
        str | None,
        _text_filter(
            "Only deaths in this age band, as the report labels it (by default `under 65`, "
            "`65-80`, `over 80`)."
        ),
    ] = None,
    organisation: Annotated[
        str | None,
        Query(
            min_length=3,
            max_length=12,
            pattern=r"^[A-Za-z0-9]+$",
            description="Only actions owned by this organisation (ODS code).",
        ),
    ] = None,
) -> ReportFilters:
    return ReportFilters(
        site=site.strip() if site else None,
        specialty=specialty.strip() if specialty else None,
        route=route,
        age_band=age_band.strip() if age_band else None,
        organisation=organisation.upper() if organisation else None,
    )


def report_period(
    principal: ReportsReader,
    period: Annotated[
        str | None,
        Query(
            max_length=20,
            description=(
                "A financial year (`2025-26`), a quarter of one (`2025-26-Q1`, April to June) "
                "or a month (`2025-07`), in UK local time. Default: the current financial "
                "year. Or give `start` and `end`."
            ),
        ),
    ] = None,
    start: Annotated[
        date | None, Query(description="First day of a custom range (UK local date).")
    ] = None,
    end: Annotated[date | None, Query(description="Last day of a custom range, included.")] = None,
) -> Period:
    # A commissioner sees months of death: a range inside a month would date a death by the
    # day it first counts in (the same rule as died_from/died_to on the lists).
    refuse_identifying_filters(principal, {}, start, end, names=("start", "end"))
    return parse_period(period, start, end, today())


def today() -> date:
    """Today in the trust's time zone."""
    return local_date(now())


def report_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Filters = Annotated[ReportFilters, Depends(report_filters)]
PeriodParam = Annotated[Period, Depends(report_period)]
ReportSettings = Annotated[Settings, Depends(report_settings)]
FormatParam = Annotated[
    ReportFormat,
    Query(
        alias="format",
        description=(
            "`json` (default), `csv` (every table in turn, or the one named by `table`), "
            "`xlsx` (one sheet per table) or `html` (a printable page with charts)."
        ),
    ),
]
TableParam = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=r"^[a-z0-9_]+$",
        description="CSV only: just this table (its `key`), as a plain CSV of one header row.",
    ),
]
