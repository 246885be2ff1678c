"""FHIR search parameters, parsed from the raw query string (repeats AND, commas OR, as FHIR
says), checked strictly: a parameter the view does not support is a 400, never silently
ignored, so a client never mistakes an unfiltered result for a filtered one.

Errors name parameters, never what was sent in them (docs/fhir.md): a value is repeated only
when it is one of FHIR's own closed list (a date prefix such as `ne`), and an unknown
parameter's name only when it looks like a parameter name (app.kit.query.NAME_SHAPE)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app.errors import BadRequest
from app.fhir.mapping import (
    FHIR_TASK_STATUSES,
    NHS_NUMBER_SYSTEM,
    REFERRAL_STATUS_OF_TASK_STATUS,
    ROUTE_SYSTEM,
)
from app.kit.enums import ReferralStatus, Route
from app.kit.nhs_number import InvalidNhsNumber, normalise_nhs_number
from app.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from app.kit.query import NAME_SHAPE
from app.kit.time import FIRST_QUERY_YEAR, LAST_QUERY_YEAR, LONDON

Params = list[tuple[str, str]]

TASK_PARAMS = frozenset(
    {"status", "code", "owner", "period", "patient", "subject", "_count", "_cursor", "_format"}
)
PATIENT_PARAMS = frozenset({"identifier", "_count", "_cursor", "_format"})
# What would single out a person: refused outright for pseudonymised clients.
IDENTIFYING_PATIENT_PARAMS = frozenset(
    {"identifier", "name", "family", "given", "birthdate", "address", "address-postalcode"}
)
SUPPORTED_DATE_PREFIXES = frozenset({"eq", "gt", "lt", "ge", "le"})
# FHIR's other date prefixes: named in the refusal, since they are FHIR's words, not the client's.
UNSUPPORTED_DATE_PREFIXES = frozenset({"ne", "sa", "eb", "ap"})
PERIOD_FORMS = (
    "period takes a FHIR date (2026, 2026-03, 2026-03-31) or a dateTime with its offset "
    "(2026-03-31T09:00:00Z), after an optional prefix eq, gt, lt, ge or le"
)
ROUTE_CODES = frozenset(route.value for route in Route)


@dataclass(frozen=True)
class Interval:
    """[start, end) of a FHIR date value at its own precision."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class PeriodBound:
    prefix: str
    interval: Interval


@dataclass
class TaskSearch:
    # Each inner list is one occurrence of the parameter (its comma-separated values, ORed);
    # occurrences are ANDed.
    statuses: list[set[ReferralStatus]] = field(default_factory=list)
    routes: list[set[Route]] = field(default_factory=list)
    owners: list[list[str]] = field(default_factory=list)
    patients: list[set[uuid.UUID]] = field(default_factory=list)
    periods: list[PeriodBound] = field(default_factory=list)
    count: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None


@dataclass
class PatientSearch:
    nhs_numbers: list[set[str]] = field(default_factory=list)
    count: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None


# The field error's words, short: the outcome's first issue carries the full explanation.
FIELD_DETAIL = {
    "invalid": "not a value this parameter takes",
    "empty": "an empty value",
    "out_of_range": f"outside the years {FIRST_QUERY_YEAR} to {LAST_QUERY_YEAR}",
    "unsupported_prefix": "a date prefix this server does not support",
}


def _invalid(detail: str, name: str, code: str = "invalid") -> BadRequest:
    """A 400 whose field error points at the search parameter (`query:/period`)."""
    field = {"pointer": f"query:/{name}", "code": code, "detail": FIELD_DETAIL[code]}
    return BadRequest(detail, errors=[field])


def _values(raw: str, name: str) -> list[str]:
    values = [value.strip() for value in raw.split(",")]
    if not raw.strip() or any(not value for value in values):
        raise _invalid(f"{name} has an empty value.", name, "empty")
    return values


def _check_names(params: Params, allowed: Iterable[str], resource: str) -> None:
    allowed = frozenset(allowed)
    unknown = sorted({name for name, _ in params if name not in allowed})
    if unknown:
        named = [name for name in unknown if NAME_SHAPE.fullmatch(name)]
        unnamed = len(unknown) - len(named)
        listed = named + ([f"{unnamed} more not repeated"] if unnamed else [])
        raise BadRequest(
            f"{resource} does not support the search parameter(s) {', '.join(listed)}; "
            f"supported: {', '.join(sorted(allowed))}.",
            errors=[
                {
                    "pointer": f"query:/{name}",
                    "code": "unknown_parameter",
                    "detail": "not a supported search parameter",
                }
                for name in named
            ],
        )
    for name in ("_count", "_cursor", "_format"):
        if sum(1 for key, _ in params if key == name) > 1:
            raise BadRequest(f"{name} may be given once.")


def _count(params: Params) -> int:
    """A page size between 1 and the bound; a larger request is cut to the bound (FHIR lets
    a server return fewer than asked, and the self link shows the size used)."""
    for name, value in params:
        if name == "_count":
            if not re.fullmatch(r"[0-9]{1,6}", value) or int(value) < 1:
                raise BadRequest("_count must be a whole number of at least 1.")
            return min(int(value), MAX_PAGE_SIZE)
    return DEFAULT_PAGE_SIZE


def _cursor(params: Params) -> str | None:
    for name, value in params:
        if name == "_cursor":
            if not value or len(value) > 512:
                raise BadRequest("The cursor is not one this service issued.")
            return value
    return None


def _token(value: str, system: str) -> str | None:
    """The code of a token `[system|]code`: None when the system is another one's (a token
    in another system matches nothing)."""
    if "|" not in value:
        return value
    given, code = value.split("|", 1)
    if given and given != system:
        return None
    return code


def _patient_id(value: str) -> uuid.UUID:
    reference = value.removeprefix("Patient/")
    try:
        return uuid.UUID(reference)
    except ValueError as error:
        raise BadRequest(
            "patient and subject take a Patient id of this service, as Patient/<id> or <id>."
        ) from error


def date_interval(value: str) -> Interval:
    """A FHIR date or dateTime as the interval it covers. A date without a time (a year, a
    month or a day) is a UK local date, as every date in the service is.

    Years FIRST_QUERY_YEAR to LAST_QUERY_YEAR only, as report periods: no death before 2000
    is accepted, so no Task is due before it, and a year such as 0202 or 9999 is a typing
    slip (near 9999 the interval's end would not exist: a 400 here, not a 500 later)."""
    if re.fullmatch(r"[0-9]{4}(-.*)?", value, re.DOTALL) and not (
        FIRST_QUERY_YEAR <= int(value[:4]) <= LAST_QUERY_YEAR
    ):
        raise _invalid(
            f"period takes dates in the years {FIRST_QUERY_YEAR} to {LAST_QUERY_YEAR}.",
            "period",
            "out_of_range",
        )
    try:
        if re.fullmatch(r"[0-9]{4}", value):
            start = date(int(value), 1, 1)
            end = date(start.year + 1, 1, 1)
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}", value):
            year, month = int(value[:4]), int(value[5:])
            start = date(year, month, 1)
            end = date(year + month // 12, month % 12 + 1, 1)
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            start = date.fromisoformat(value)
            end = start + timedelta(days=1)
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})", value):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            # A dateTime to the second: the second it names.
            precision = timedelta(seconds=1) if "." not in value else timedelta(microseconds=1)
            return Interval(moment, moment + precision)
        else:
            raise ValueError("not a FHIR date")
    except (ValueError, OverflowError) as error:
        raise _invalid(f"{PERIOD_FORMS}.", "period") from error
    return Interval(
        datetime.combine(start, datetime.min.time(), LONDON),
        datetime.combine(end, datetime.min.time(), LONDON),
    )


def _period(value: str) -> PeriodBound:
    prefix = "eq"
    if re.fullmatch(r"[a-z]{2}", value[:2]):
        prefix, value = value[:2], value[2:]
        if prefix not in SUPPORTED_DATE_PREFIXES:
            which = f" {prefix}" if prefix in UNSUPPORTED_DATE_PREFIXES else ""
            raise _invalid(
                f"The date prefix{which} is not supported: period takes eq, gt, lt, ge or le.",
                "period",
                "unsupported_prefix",
            )
    # An unencoded '+' of an offset arrives as a space.
    return PeriodBound(prefix, date_interval(value.replace(" ", "+")))


def task_search(params: Params) -> TaskSearch:
    _check_names(params, TASK_PARAMS, "Task")
    search = TaskSearch(count=_count(params), cursor=_cursor(params))
    for name, raw in params:
        if name in {"_count", "_cursor", "_format"}:
            continue
        values = _values(raw, name)
        if name == "status":
            statuses: set[ReferralStatus] = set()
            for value in values:
                if value not in FHIR_TASK_STATUSES:
                    raise _invalid(
                        "status takes FHIR task statuses: "
                        f"{', '.join(sorted(FHIR_TASK_STATUSES))}.",
                        "status",
                    )
                if value in REFERRAL_STATUS_OF_TASK_STATUS:
                    statuses.add(REFERRAL_STATUS_OF_TASK_STATUS[value])
            search.statuses.append(statuses)
        elif name == "code":
            routes: set[Route] = set()
            for value in values:
                code = _token(value, ROUTE_SYSTEM)
                if code is None:
                    continue
                if code not in ROUTE_CODES:
                    raise BadRequest(
                        f"code takes a review route: {', '.join(route.value for route in Route)}."
                    )
                routes.add(Route(code))
            search.routes.append(routes)
        elif name == "owner":
            if any(len(value) > 200 for value in values):
                raise BadRequest("owner takes a reviewer's name of at most 200 characters.")
            search.owners.append(values)
        elif name in {"patient", "subject"}:
            search.patients.append({_patient_id(value) for value in values})
        elif name == "period":
            if len(values) > 1:
                raise BadRequest("period takes one date per parameter; repeat it for a range.")
            search.periods.append(_period(values[0]))
    return search


def patient_search(params: Params, pseudonymised: bool) -> PatientSearch:
    if pseudonymised:
        refused = sorted({name for name, _ in params if name in IDENTIFYING_PATIENT_PARAMS})
        if refused:
            raise BadRequest(
                "This client sees pseudonymised data only and may not search patients by "
                f"{', '.join(refused)}."
            )
    _check_names(params, PATIENT_PARAMS, "Patient")
    search = PatientSearch(count=_count(params), cursor=_cursor(params))
    for name, raw in params:
        if name != "identifier":
            continue
        numbers: set[str] = set()
        for value in _values(raw, name):
            if "|" not in value:
                raise BadRequest(f"identifier takes {NHS_NUMBER_SYSTEM}|<NHS number>.")
            system, number = value.split("|", 1)
            if system != NHS_NUMBER_SYSTEM:
                raise BadRequest(f"Patients are searched by NHS number only ({NHS_NUMBER_SYSTEM}).")
            try:
                numbers.add(normalise_nhs_number(number))
            except InvalidNhsNumber as error:
                raise BadRequest("The identifier is not a valid NHS number.") from error
        search.nhs_numbers.append(numbers)
    if not search.nhs_numbers:
        raise BadRequest(
            f"Search patients by identifier={NHS_NUMBER_SYSTEM}|<NHS number>; "
            "lists of deaths are at /v1/deaths."
        )
    return search
