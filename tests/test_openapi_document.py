"""The OpenAPI document says what the service really does (issue 18): error bodies as sent
(problem+json; OperationOutcome under /fhir; RFC 6749 at the token endpoint), no FastAPI
`HTTPValidationError` the service never sends, required headers marked required, and the
webhook events in the `webhooks` section."""

from __future__ import annotations

import json

from app.events.types import EVENT_TYPES
from tests.factories import screening_body

HL7_ACK_STATUSES = {
    "/v1/hl7v2/adt": {
        "400": {"application/hl7-v2", "application/problem+json"},
        "422": {"application/hl7-v2"},
    }
}


async def document(http) -> dict:
    answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()


async def test_error_bodies_are_the_ones_sent(http) -> None:
    doc = await document(http)
    assert "HTTPValidationError" not in json.dumps(doc)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                media = set(response.get("content", {}))
                if path == "/oauth2/token":
                    expected = {"application/json"}
                elif path.startswith("/fhir/"):
                    expected = {"application/fhir+json"}
                elif path in HL7_ACK_STATUSES and status in HL7_ACK_STATUSES[path]:
                    # The HL7 v2 route answers a message it cannot read (AR, 400) or refuses
                    # (AE, 422) with an HL7 ACK, as an interface engine expects; its 400 can
                    # also be the problem every authenticated operation sends for a query
                    # parameter it does not take.
                    expected = HL7_ACK_STATUSES[path][status]
                else:
                    expected = {"application/problem+json"}
                assert media == expected, (method, path, status, media)
    token = doc["paths"]["/oauth2/token"]["post"]["responses"]
    assert "422" not in token and {"400", "401"} <= set(token)


async def test_a_422_is_a_problem_as_declared(api) -> None:
    answer = await api.get("/v1/deaths/not-a-uuid")
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    doc = await document(api.http)
    declared = doc["paths"]["/v1/deaths/{death_id}"]["get"]["responses"]["422"]
    assert declared["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")


async def test_required_headers_are_marked(http) -> None:
    doc = await document(http)
    for path in ("/v1/screenings", "/v1/screenings/batch"):
        [key] = [
            p for p in doc["paths"][path]["post"]["parameters"] if p["name"] == "Idempotency-Key"
        ]
        assert key["required"] is True, path
    [optional] = [
        p
        for p in doc["paths"]["/v1/findings"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    assert not optional.get("required")


async def test_missing_required_idempotency_key_is_a_400(api) -> None:
    answer = await api.post("/v1/screenings", json=screening_body())
    assert answer.status_code == 400
    assert "Idempotency-Key" in answer.json()["detail"]


async def test_webhook_events_are_documented(http) -> None:
    doc = await document(http)
    hooks = doc["webhooks"]
    assert set(EVENT_TYPES) <= set(hooks)
    for name, hook in hooks.items():
        body = hook["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": "#/components/schemas/WebhookEvent"}
        assert body["example"]["type"] == name
        assert {p["name"] for p in hook["post"]["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
    event = doc["components"]["schemas"]["WebhookEvent"]
    assert all("description" in prop for prop in event["properties"].values())


async def test_every_request_body_has_a_valid_example(http) -> None:
    """Each example validates against the model of its schema (found by name among the app's
    models; an XLSX upload is binary and has none)."""
    import sys

    from pydantic import BaseModel

    doc = await document(http)
    schemas = doc["components"]["schemas"]
    models = {
        value.__name__: value
        for name, module in list(sys.modules.items())
        if name.startswith("app.")
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseModel)
    }
    checked = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for media, body in operation.get("requestBody", {}).get("content", {}).items():
                if media.endswith("spreadsheetml.sheet"):
                    continue
                name = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                example = body.get("example")
                if example is None and name:
                    examples = schemas[name].get("examples") or []
                    example = examples[0] if examples else None
                assert example is not None, (method, path, media)
                if media == "application/json" and name:
                    models[name].model_validate(example)
                    checked += 1
    assert checked >= 30


async def test_every_schema_property_is_described(http) -> None:
    doc = await document(http)
    missing = sorted(
        f"{schema}.{name}"
        for schema, body in doc["components"]["schemas"].items()
        for name, prop in (body.get("properties") or {}).items()
        if "description" not in prop
    )
    assert missing == []
