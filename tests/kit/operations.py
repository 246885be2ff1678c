"""The operations of the live OpenAPI document, and calling one with made-up path parameters
(the scope walk and the unknown-parameter walk both go through every operation)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.factories import idem

# The OAuth token endpoint authenticates with the client assertion in its body, and the
# service's public keys are public (issue 18, docs/authentication.md).
PUBLIC_PATHS = {"/healthz", "/readyz", "/oauth2/token", "/.well-known/jwks.json"}
# Operations any authenticated client may call, whatever its scopes: the organisation registry
# holds no patient data (docs/organisations.md). They declare the ApiKey scheme with no scope.
ANY_CLIENT = {"GET /v1/organisations", "GET /v1/organisations/{organisation_id}"}


BODY_METHODS = {"post", "put", "patch"}


HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    security: Any

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def scope(self) -> str | None:
        """The one scope the operation needs; None for those any client may call."""
        scopes = self.security[0]["ApiKey"]
        return str(scopes[0]) if scopes else None


async def operations(http: httpx.AsyncClient) -> list[Operation]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    found = [
        Operation(method, path, spec.get("security"))
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
        if method in HTTP_METHODS
    ]
    # The walk must see the API, not an empty document.
    names = {operation.name for operation in found}
    assert {"POST /v1/screenings", "GET /v1/deaths", "GET /v1/referrals"} <= names
    return found


async def guarded_operations(http: httpx.AsyncClient) -> list[Operation]:
    return [op for op in await operations(http) if op.path not in PUBLIC_PATHS]


async def call(
    http: httpx.AsyncClient, operation: Operation, headers: dict[str, str] | None = None
) -> httpx.Response:
    """Call the operation with random UUIDs for its path parameters and, where it takes a body,
    an empty JSON object and an Idempotency-Key: the guard must answer before the body is
    looked at."""
    url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), operation.path)
    all_headers = dict(headers or {})
    kwargs: dict[str, Any] = {}
    if operation.method in BODY_METHODS:
        kwargs["json"] = {}
        all_headers.update(idem())
    return await http.request(operation.method.upper(), url, headers=all_headers, **kwargs)
