"""Issue 11, defect 9: a body FastAPI cannot parse was a 400 before the credentials were
looked at (27 of the routes with a body). Every operation with a request body in the OpenAPI
document is walked with malformed JSON: no key is a 401, a key without the route's scope a
403, and only an authorised caller learns that the body was bad (a 400)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.auth.scopes import Scope
from tests.kit.operations import PUBLIC_PATHS

SOME_ID = "00000000-0000-4000-8000-000000000001"
PROBLEM = "application/problem+json"
HL7_ROUTE = "POST /v1/hl7v2/adt"
BROKEN = {
    "truncated JSON": b'{"route": "sjr", ',
    "not JSON at all": b"not json",
    "invalid UTF-8": b'{"reason": "\xff\xfe"}',
}


def operations_with_a_body(app: Any) -> list[tuple[str, str]]:
    found = [
        (method.upper(), re.sub(r"\{[^}]+\}", SOME_ID, path))
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        # The token endpoint authenticates with the assertion in its body (issue 18). A route
        # that takes no JSON at all (a history bundle, an HL7 v2 message) is walked too: it
        # must still look at the credentials first, and answers the JSON 415 once authorised.
        if "requestBody" in operation and path not in PUBLIC_PATHS
    ]
    assert len(found) >= 28, found  # every body route the service has (a walk of nothing passes)
    return found


async def walk(app: Any, http: Any, body: bytes, headers: dict[str, str]) -> dict[str, int]:
    statuses = {}
    for method, path in operations_with_a_body(app):
        response = await http.request(
            method,
            path,
            content=body,
            headers={"Content-Type": "application/json", **headers},
        )
        # Under /fhir/ every error is an OperationOutcome (application/fhir+json) instead.
        expected = "application/fhir+json" if path.startswith("/fhir/") else PROBLEM
        assert response.headers["content-type"].startswith(expected), path
        statuses[f"{method} {path}"] = response.status_code
    return statuses


@pytest.mark.parametrize("broken", BROKEN)
async def test_a_broken_body_without_a_key_is_a_401_on_every_route(app_and_http, broken) -> None:
    app, http = app_and_http
    statuses = await walk(app, http, BROKEN[broken], {})
    assert {route: status for route, status in statuses.items() if status != 401} == {}
    bad_key = await walk(app, http, BROKEN[broken], {"Authorization": "Bearer lfd_not_a_key"})
    assert {route: status for route, status in bad_key.items() if status != 401} == {}


async def test_a_broken_body_without_the_scope_is_a_403(app_and_http, make_api) -> None:
    app, http = app_and_http
    # No route with a body takes events:read: this client lacks every one's scope.
    reader = await make_api(Scope.events_read)
    statuses = await walk(app, http, BROKEN["truncated JSON"], reader.headers)
    assert {route: status for route, status in statuses.items() if status != 403} == {}


async def test_an_authorised_caller_still_learns_the_body_is_broken(app_and_http, api) -> None:
    app, http = app_and_http
    statuses = await walk(app, http, BROKEN["truncated JSON"], api.headers)
    wrong = {route: status for route, status in statuses.items() if status in (401, 403)}
    assert wrong == {}
    # The JSON routes answer 400; the spreadsheet import refuses a JSON body on its own terms,
    # and the routes that take no JSON (HL7 v2, the history bundle) refuse it as a 415.
    no_json = {
        f"{method.upper()} {re.sub(r'[{][^}]+[}]', SOME_ID, path)}"
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
        and path not in PUBLIC_PATHS
        and "application/json" not in operation["requestBody"].get("content", {})
        and not path.endswith("/import")
    }
    assert HL7_ROUTE in no_json
    assert {route: statuses.pop(route) for route in no_json} == dict.fromkeys(no_json, 415)
    json_routes = {route: s for route, s in statuses.items() if not route.endswith("/import")}
    assert set(json_routes.values()) == {400}, json_routes
