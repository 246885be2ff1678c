"""Report periods at the edges of the calendar. Every day of a period must fall in the years
2000 to 2100 (docs/reports.md): a period or range outside is a 400 pointing at the parameter
at fault, for a full and for a pseudonymised client alike, never a 500 from a date past 9999;
the error names the parameter, never the value sent. Period values are matched whole and in
ASCII digits. (FHIR date searches: tests/test_fhir.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Api, MakeApi

PROBLEM_JSON = "application/problem+json"
REPORTS = ("lfd-dashboard", "care-quality", "themes", "timeliness")

# (query, the parameter at fault). Ranges are whole months, which a pseudonymised client may
# ask for, so that both clients reach the year check.
OUT_OF_RANGE: list[tuple[dict[str, str], str]] = [
    ({"period": "9999-12"}, "period"),  # the month's end overflowed
    ({"period": "0000-01"}, "period"),  # the financial year 0/01: no year 0
    ({"period": "9999-00"}, "period"),  # the financial year 9999/00 ends in 10000
    ({"period": "9999-00-Q4"}, "period"),  # January 10000
    ({"period": "9998-99-Q4"}, "period"),  # January 9999: representable, out of range
    ({"period": "1999-12"}, "period"),
    ({"period": "1999-00"}, "period"),  # starts in April 1999
    ({"period": "2100-01-Q4"}, "period"),  # January 2101
    ({"period": "2101-02"}, "period"),
    ({"start": "9999-12-01", "end": "9999-12-31"}, "start"),  # the day after end overflowed
    ({"start": "2025-04-01", "end": "9999-12-31"}, "end"),
    ({"start": "0001-01-01", "end": "0001-01-31"}, "start"),
    ({"start": "1999-12-01", "end": "2000-01-31"}, "start"),
]

# The first and last days the service reports on.
AT_THE_EDGES: list[dict[str, str]] = [
    {"period": "2000-01"},  # the financial year 2000/01
    {"period": "2099-00-Q4"},  # January to March 2100
    {"period": "2100-01-Q1"},  # April to June 2100
    {"period": "2100-12"},
    {"start": "2000-01-01", "end": "2000-01-31"},
    {"start": "2100-12-01", "end": "2100-12-31"},
]

# Not a period as docs/reports.md writes one: whitespace around it, a newline after it,
# digits that are not ASCII (fullwidth, Arabic-Indic), a quarter of a year that is not one.
MALFORMED = [
    " 2025-26",
    "2025-26 ",
    "2025-26\n",
    "2025-26-Q1\n",
    "\u00a02025-26",
    "\uff12\uff10\uff12\uff15-26",  # fullwidth 2025
    "2025-\u0662\u0666",  # Arabic-Indic 26
    "2025-07\t",
    "2025-30-Q1",
]


@pytest.fixture
async def clients(api: Api, make_api: MakeApi) -> dict[str, Api]:
    return {"full": api, "pseudonymised": await make_api(pseudonymised=True)}


def refused(response: httpx.Response, name: str, code: str | None = None) -> dict[str, Any]:
    """A 400 problem pointing at query:/<name> (with `code` when given)."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    at = [error for error in problem.get("errors", []) if error["pointer"] == f"query:/{name}"]
    assert at, problem
    if code is not None:
        assert code in {error["code"] for error in at}, problem
    return problem


@pytest.mark.parametrize("client", ["full", "pseudonymised"])
@pytest.mark.parametrize(("query", "name"), OUT_OF_RANGE, ids=lambda v: str(v))
async def test_a_period_outside_the_years_2000_to_2100_is_a_400_on_every_report(
    clients: dict[str, Api], client: str, query: dict[str, str], name: str
) -> None:
    for report in REPORTS:
        response = await clients[client].get(f"/v1/reports/{report}", params=query)
        problem = refused(response, name, "out_of_range")
        assert "2000 to 2100" in problem["detail"]
        for value in query.values():
            assert value not in response.text, (report, response.text)


@pytest.mark.parametrize("client", ["full", "pseudonymised"])
@pytest.mark.parametrize("query", AT_THE_EDGES, ids=lambda v: str(v))
async def test_the_first_and_last_days_of_the_range_are_reported(
    clients: dict[str, Api], client: str, query: dict[str, str]
) -> None:
    # The dashboard takes periods only (a range is its own 400, range_not_supported).
    reports = [r for r in REPORTS if "start" not in query or r != "lfd-dashboard"]
    for report in reports:
        response = await clients[client].get(f"/v1/reports/{report}", params=query)
        assert response.status_code == 200, (report, response.text)
        period = response.json()["period"]
        assert "2000-01-01" <= period["start"] <= period["end"] <= "2100-12-31"


@pytest.mark.parametrize("client", ["full", "pseudonymised"])
@pytest.mark.parametrize("value", MALFORMED, ids=ascii)
async def test_a_period_is_matched_whole_in_ascii_digits(
    clients: dict[str, Api], client: str, value: str
) -> None:
    response = await clients[client].get("/v1/reports/lfd-dashboard", params={"period": value})
    refused(response, "period")
    assert value not in response.text


@pytest.mark.parametrize("client", ["full", "pseudonymised"])
@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"compare": "9999-12"}, "compare"),
        ({"compare": "0000-01"}, "compare"),
        ({"compare": "9999-00-Q4"}, "compare"),
        ({"compare_start": "9999-12-01", "compare_end": "9999-12-31"}, "compare_start"),
        ({"compare_start": "2024-04-01", "compare_end": "9999-12-31"}, "compare_end"),
    ],
    ids=lambda v: str(v),
)
async def test_a_second_themes_period_outside_the_range_points_at_compare(
    clients: dict[str, Api], client: str, query: dict[str, str], name: str
) -> None:
    response = await clients[client].get(
        "/v1/reports/themes", params={"period": "2025-26", **query}
    )
    refused(response, name, "out_of_range")
    for value in query.values():
        assert value not in response.text


@pytest.mark.parametrize("client", ["full", "pseudonymised"])
async def test_a_malformed_second_period_points_at_compare(
    clients: dict[str, Api], client: str
) -> None:
    for value in ("\uff12\uff10\uff12\uff14-25", "2024-25\n", "2024-13"):
        response = await clients[client].get(
            "/v1/reports/themes", params={"period": "2025-26", "compare": value}
        )
        problem = refused(response, "compare")
        assert "compare" in problem["detail"]
    # The first period's name stays `period`.
    response = await clients[client].get(
        "/v1/reports/themes", params={"period": "9999-12", "compare": "2024-25"}
    )
    refused(response, "period", "out_of_range")
