"""What the OpenAPI document says beyond what FastAPI derives (issue 18):

- the error bodies each operation really sends: FastAPI declares its own `HTTPValidationError`
  for a 422, but the service answers with a problem (app.errors), an OperationOutcome under
  /fhir; every authenticated operation can answer 400 (a query parameter it does not take,
  app.kit.query) and an operation with a JSON body 400 for a body that is not JSON; the token
  endpoint and the JWKS answer no 422 (they validate nothing FastAPI would);
- a route that answers in a message standard of its own (the HL7 v2 route's ACK, AE as a
  422) keeps the error bodies it declares: they are what it sends;
- a header whose description starts "Required." is marked required (the Idempotency-Key of
  the screening endpoints: app.idempotency.check_key answers its absence with a 400, which a
  FastAPI-required header would have turned into a 422);
- the events delivered by webhooks, in the OpenAPI 3.1 `webhooks` section.
"""

from __future__ import annotations

import copy
from typing import Any

from app.events.types import EVENT_TYPES
from app.openapi_descriptions import describe_properties
from app.openapi_examples import add_examples
from app.webhooks.schemas import TEST_EVENT_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_JSON = "application/problem+json"
NO_VALIDATION = {"/oauth2/token", "/.well-known/jwks.json", "/healthz", "/readyz"}
METHODS = {"get", "put", "post", "patch", "delete"}

WEBHOOK_EVENT: dict[str, Any] = {
    "type": "object",
    "title": "WebhookEvent",
    "description": "A thin event (Standard Webhooks): ids, the type and the names of the "
    "changed fields, never a value; the receiver reads the resource with its own scopes.",
    "required": ["id", "type", "timestamp", "data"],
    "properties": {
        "id": {
            "type": "string",
            "format": "uuid",
            "description": "The event's id (also the `webhook-id` header): deduplicate on it.",
        },
        "type": {"type": "string", "description": "The event type, e.g. `referral.created`."},
        "timestamp": {
            "type": "string",
            "format": "date-time",
            "description": "When the change was committed.",
        },
        "data": {
            "type": "object",
            "description": "What changed.",
            "properties": {
                "resource_type": {
                    "type": "string",
                    "description": "The kind of resource (`referral`, `death`, ...).",
                },
                "resource_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "The resource's id: GET it for its state.",
                },
                "death_id": {
                    "type": ["string", "null"],
                    "format": "uuid",
                    "description": "The death (patient) the resource belongs to, if any.",
                },
                "changed": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The names of the fields that changed (none on creation).",
                },
                "endpoint_id": {
                    "type": "string",
                    "format": "uuid",
                    "description": "`webhook.test` only: the endpoint tested.",
                },
            },
        },
    },
}

SIGNATURE_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The message id, the same on every retry of it.",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Seconds since the epoch when this attempt was signed.",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "`v1,<base64 HMAC-SHA256>` with the endpoint's secret (several, "
        "space-separated, during a secret rotation).",
    },
]


def _webhook(event_type: str, description: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resource_type": event_type.split(".", 1)[0],
        "resource_id": "6f1c3e0a-4a1b-4f7e-9a55-0c1d2e3f4a5b",
        "death_id": "0b7e9c1e-2f7d-4c59-8a0e-3d4c5b6a7f80",
        "changed": ["status"] if event_type.endswith(("updated", "amended")) else [],
    }
    if event_type == TEST_EVENT_TYPE:
        data = {"endpoint_id": "3c9d1f4e-8b2a-4e6f-9c1d-7a5b3e2f1d0c"}
    return {
        "post": {
            "summary": event_type,
            "description": f"{description} Signed per Standard Webhooks; retried with backoff "
            "until a 2xx; a 410 disables the endpoint (docs/webhooks.md).",
            "operationId": f"webhook_{event_type.replace('.', '_')}",
            "parameters": copy.deepcopy(SIGNATURE_HEADERS),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/WebhookEvent"},
                        "example": {
                            "id": "9a7b5c3d-1e2f-4a6b-8c0d-2e4f6a8b0c1d",
                            "type": event_type,
                            "timestamp": "2026-11-21T09:00:00.123456+00:00",
                            "data": data,
                        },
                    }
                },
            },
            "responses": {
                "200": {"description": "Received (any 2xx)."},
                "410": {"description": "Gone: the endpoint is disabled, nothing more is sent."},
            },
        }
    }


def _error_content(path: str, document: dict[str, Any], operation: dict[str, Any]) -> Any:
    """The content an error of this operation has: the 401's (problem+json, or the FHIR
    view's OperationOutcome), or problem+json."""
    unauthorized = operation.get("responses", {}).get("401", {}).get("content")
    if unauthorized:
        return copy.deepcopy(unauthorized)
    return {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}


def _own_error_media(response: dict[str, Any]) -> bool:
    """Whether the route declared an error body of its own that is not JSON (the HL7 v2 route's
    ACK): that is what it sends, not a problem, so it is kept as declared."""
    return any("json" not in media for media in response.get("content", {}))


def enrich(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if path in NO_VALIDATION:
                responses.pop("422", None)
                continue
            content = _error_content(path, document, operation)
            if "422" in responses and not _own_error_media(responses["422"]):
                responses["422"] = {
                    "description": responses["422"]
                    .get("description", "Validation error")
                    .replace("Validation Error", "The request is not valid"),
                    "content": copy.deepcopy(content),
                }
            if "401" in responses and "400" not in responses:
                responses["400"] = {
                    "description": "Bad request: a query parameter the operation does not "
                    "take, or a body that is not JSON",
                    "content": copy.deepcopy(content),
                }
            for parameter in operation.get("parameters", []):
                described = str(parameter.get("description", ""))
                if parameter.get("in") == "header" and described.startswith("Required."):
                    parameter["required"] = True
    add_examples(document)
    describe_properties(document)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["WebhookEvent"] = WEBHOOK_EVENT
    hooks = {**EVENT_TYPES, TEST_EVENT_TYPE: "Sent by POST /v1/webhook-endpoints/{id}/test."}
    document["webhooks"] = {name: _webhook(name, text) for name, text in sorted(hooks.items())}
    return document
