"""A query parameter a route does not take is a 400 naming it, never silently ignored (a
misspelled filter would otherwise return every row). The walk covers every operation in the
OpenAPI document but health and the FHIR view (which checks its own search parameters)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Api
from tests.factories import idem, screening_body
from tests.kit.operations import PROBLEM_JSON, call, guarded_operations


def assert_unknown(response: httpx.Response, *names: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/bad-request")
    pointers = [error["pointer"] for error in body["errors"]]
    assert pointers == [f"query:/{name}" for name in names]
    assert {error["code"] for error in body["errors"]} == {"unknown_parameter"}
    return body


async def test_every_operation_refuses_an_unknown_query_parameter(
    http: httpx.AsyncClient, api: Api
) -> None:
    walked = 0
    for operation in await guarded_operations(http):
        if operation.path.startswith("/fhir/"):
            continue
        operation_url = operation.path + "?no_such_parameter=1"
        response = await call(
            http,
            type(operation)(operation.method, operation_url, operation.security),
            headers=api.headers,
        )
        body = assert_unknown(response, "no_such_parameter")
        assert "no_such_parameter" in body["detail"], operation.name
        walked += 1
    assert walked >= 40


async def test_a_misspelled_filter_names_the_ones_the_route_takes(api: Api) -> None:
    response = await api.get("/v1/referrals", params={"stauts": "ready", "route": "sjr"})
    body = assert_unknown(response, "stauts")
    assert "status" in body["accepted_parameters"]
    assert "route" in body["accepted_parameters"]
    assert "GET /v1/referrals takes" in body["detail"]

    several = await api.get("/v1/deaths", params={"zeta": "1", "alpha": "2", "limit": "5"})
    assert_unknown(several, "alpha", "zeta")

    # The same parameters, spelled right (and repeated where a list is taken), are answered.
    assert (await api.get("/v1/referrals", params={"status": "ready"})).status_code == 200
    both = await api.get("/v1/events", params=[("types", "referral.*"), ("types", "death.*")])
    assert both.status_code == 200, both.text


async def test_a_write_with_an_unknown_parameter_changes_nothing(api: Api) -> None:
    body = screening_body()
    refused = await api.post("/v1/screenings?dry_run=true", json=body, headers=idem())
    assert_unknown(refused, "dry_run")
    source = body["death"]
    listed = await api.get(
        "/v1/deaths",
        params={
            "source_system": source["source_system"],
            "source_reference": source["source_reference"],
        },
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []

    accepted = await api.post("/v1/screenings", json=body, headers=idem())
    assert accepted.status_code == 201, accepted.text


async def test_the_credential_is_checked_first(http: httpx.AsyncClient) -> None:
    anonymous = await http.get("/v1/referrals?stauts=ready")
    assert anonymous.status_code == 401
    assert "stauts" not in anonymous.text


@pytest.mark.parametrize("name", ["9434765919", "Jane Smith", "a/b~c"])
async def test_odd_names_are_refused_without_being_repeated(api: Api, name: str) -> None:
    response = await api.get("/v1/deaths", params={name: "x"})
    assert response.status_code == 400, response.text
    assert name not in response.text
    errors = response.json()["errors"]
    assert errors == [
        {
            "pointer": "query:",
            "code": "unknown_parameter",
            "detail": "a parameter this endpoint does not take (its name is not repeated)",
        }
    ]


async def test_health_and_fhir_keep_their_own_rules(http: httpx.AsyncClient, api: Api) -> None:
    assert (await http.get("/healthz?probe=1")).status_code == 200
    fhir = await api.get("/fhir/r4/Task", params={"no_such_parameter": "1"})
    assert fhir.status_code == 400
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert fhir.json()["resourceType"] == "OperationOutcome"


async def test_report_filters_point_at_the_query_like_every_other_error(api: Api) -> None:
    """A filter the report takes but cannot apply is a 400 too, with the same pointer form."""
    response = await api.get("/v1/reports/actions", params={"site": "Main"})
    assert response.status_code == 400, response.text
    assert [error["pointer"] for error in response.json()["errors"]] == ["query:/site"]
