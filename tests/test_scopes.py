"""Every operation in the OpenAPI document is guarded: it declares its scope, refuses a missing,
invalid or revoked key (401), refuses a key without its scope (403), and lets its scope in.

The walk reads the live OpenAPI document, so a new route is covered the day it is added, and a
route that forgets its guard fails here."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from app.auth.scopes import Scope
from app.auth.service import revoke_client
from app.kit.id_lists import names
from app.models import AuditEvent
from tests.conftest import Api, new_client
from tests.factories import idem, screening_body
from tests.kit.operations import (
    ANY_CLIENT,
    PROBLEM_JSON,
    PUBLIC_PATHS,
    Operation,
    call,
    guarded_operations,
    operations,
)

FHIR_JSON = "application/fhir+json"


def problem_failure(
    operation: Operation, response: httpx.Response, status: int, label: str
) -> str | None:
    """None when the response is the expected problem, else what went wrong."""
    where = f"{operation.name} ({label})"
    if response.status_code != status:
        return f"{where}: expected {status}, got {response.status_code}: {response.text[:200]}"
    if operation.path.startswith("/fhir/"):
        return outcome_failure(where, response, status)
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return f"{where}: content-type {response.headers.get('content-type')!r}"
    body = response.json()
    if body.get("status") != status or not body.get("type") or not body.get("title"):
        return f"{where}: not a problem body: {body}"
    if status == 401 and response.headers.get("www-authenticate", "").split(" ")[0] != "Bearer":
        return f"{where}: WWW-Authenticate is {response.headers.get('www-authenticate')!r}"
    return None


def outcome_failure(where: str, response: httpx.Response, status: int) -> str | None:
    """The FHIR view answers its errors as OperationOutcome resources (docs/fhir.md)."""
    if not response.headers.get("content-type", "").startswith(FHIR_JSON):
        return f"{where}: content-type {response.headers.get('content-type')!r}"
    body = response.json()
    if body.get("resourceType") != "OperationOutcome" or not body.get("issue"):
        return f"{where}: not an OperationOutcome: {body}"
    if status == 401 and response.headers.get("www-authenticate", "").split(" ")[0] != "Bearer":
        return f"{where}: WWW-Authenticate is {response.headers.get('www-authenticate')!r}"
    return None


def error_detail(response: httpx.Response) -> str:
    body = response.json()
    if body.get("resourceType") == "OperationOutcome":
        return " ".join(issue.get("diagnostics", "") for issue in body["issue"])
    return str(body.get("detail", ""))


async def test_every_operation_but_health_declares_one_scope(http) -> None:
    known = {scope.value for scope in Scope}
    wrong = []
    for operation in await operations(http):
        if operation.path in PUBLIC_PATHS:
            if operation.security:
                wrong.append(f"{operation.name} is public but declares {operation.security}")
            continue
        security = operation.security
        if operation.name in ANY_CLIENT:
            if security != [{"ApiKey": []}]:
                wrong.append(f"{operation.name} declares {security!r}, not [{{'ApiKey': []}}]")
            continue
        if (
            not isinstance(security, list)
            or len(security) != 1
            or list(security[0]) != ["ApiKey"]
            or len(security[0]["ApiKey"]) != 1
            or security[0]["ApiKey"][0] not in known
        ):
            wrong.append(f"{operation.name} declares {security!r}, not [{{'ApiKey': [scope]}}]")
    assert wrong == []


async def test_the_openapi_document_describes_the_api_key(http) -> None:
    document = (await http.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"


async def test_no_credential_is_a_401_with_a_bearer_challenge(http) -> None:
    failures = []
    for operation in await guarded_operations(http):
        response = await call(http, operation)
        failures.append(problem_failure(operation, response, 401, "no credential"))
    assert [failure for failure in failures if failure] == []


async def test_an_invalid_key_is_a_401(http, database) -> None:
    real_key, _ = await new_client(database, [Scope.admin])
    prefix = real_key.split("_")[1]
    invalid = {
        "garbage": "Bearer not-a-key",
        "right prefix, wrong secret": f"Bearer lfd_{prefix}_{'x' * 32}",
        "unknown prefix": f"Bearer lfd_{'0' * 12}_{'y' * 32}",
        "empty bearer": "Bearer ",
        "another scheme": f"Basic {real_key}",
    }
    failures = []
    for operation in await guarded_operations(http):
        for label, authorization in invalid.items():
            response = await call(http, operation, {"Authorization": authorization})
            failures.append(problem_failure(operation, response, 401, label))
    assert [failure for failure in failures if failure] == []


async def test_a_revoked_key_is_a_401(app_and_http, database) -> None:
    app, http = app_and_http
    key, client_id = await new_client(database, [Scope.admin], name="soon revoked")
    operations_ = await guarded_operations(http)
    # While the key is live, it passes every guard: the 401s below come from the revocation.
    for operation in operations_:
        response = await call(http, operation, {"Authorization": f"Bearer {key}"})
        assert response.status_code not in (401, 403), (operation.name, response.text)
    # Revoked by the serving process itself (as the API and a worker's CLI in the same
    # process do), so its credential cache drops the key at commit; another process's
    # revocation reaches it by NOTIFY within milliseconds (tests/test_credential_cache.py).
    async with app.state.database.transaction() as session:
        revoked = await revoke_client(session, client_id)
    assert revoked is not None and revoked.revoked_at is not None
    failures = []
    for operation in operations_:
        response = await call(http, operation, {"Authorization": f"Bearer {key}"})
        failures.append(problem_failure(operation, response, 401, "revoked key"))
    assert [failure for failure in failures if failure] == []


async def test_every_scope_but_the_one_needed_is_a_403_naming_it(http, database) -> None:
    failures = []
    keys: dict[str, str] = {}
    for operation in await guarded_operations(http):
        scope = operation.scope
        if scope is None:
            continue  # any client: test_any_client_operations_take_any_scope
        if scope not in keys:
            others = [s for s in Scope if s.value != scope and s is not Scope.admin]
            keys[scope], _ = await new_client(database, others, name=f"all but {scope}")
        response = await call(http, operation, {"Authorization": f"Bearer {keys[scope]}"})
        failure = problem_failure(operation, response, 403, f"without {scope}")
        if failure is None and scope not in error_detail(response):
            failure = f"{operation.name}: the 403 does not name {scope}: {response.json()}"
        failures.append(failure)
    assert [failure for failure in failures if failure] == []


async def test_the_one_scope_needed_passes_the_guard(http, database) -> None:
    refused = []
    keys: dict[str, str] = {}
    for operation in await guarded_operations(http):
        scope = operation.scope
        if scope is None:
            continue  # any client: test_any_client_operations_take_any_scope
        if scope not in keys:
            keys[scope], _ = await new_client(database, [Scope(scope)], name=f"only {scope}")
        response = await call(http, operation, {"Authorization": f"Bearer {keys[scope]}"})
        if response.status_code in (401, 403):
            refused.append(f"{operation.name} with {scope}: {response.status_code}")
    assert refused == []


async def test_any_client_operations_take_any_scope(http, database) -> None:
    """The registry's reads pass the guard with any one scope, a pseudonymised client's too;
    without a credential they are 401s like every other route."""
    found = [op for op in await guarded_operations(http) if op.scope is None]
    assert {op.name for op in found} == ANY_CLIENT
    refused = []
    for scope in (Scope.metrics_read, Scope.events_read):
        key, _ = await new_client(database, [scope], name=f"only {scope.value}")
        for operation in found:
            response = await call(http, operation, {"Authorization": f"Bearer {key}"})
            if response.status_code in (401, 403):
                refused.append(f"{operation.name} with {scope.value}: {response.status_code}")
    key, _ = await new_client(
        database, [Scope.deaths_read], name="pseudonymised", pseudonymised=True
    )
    for operation in found:
        response = await call(http, operation, {"Authorization": f"Bearer {key}"})
        if response.status_code in (401, 403):
            refused.append(f"{operation.name} pseudonymised: {response.status_code}")
    assert refused == []


async def test_admin_passes_every_guard(http, database) -> None:
    key, _ = await new_client(database, [Scope.admin], name="admin only")
    refused = []
    for operation in await guarded_operations(http):
        response = await call(http, operation, {"Authorization": f"Bearer {key}"})
        if response.status_code in (401, 403):
            refused.append(f"{operation.name}: {response.status_code}")
    assert refused == []


async def test_a_scope_held_does_not_open_other_routes(make_api) -> None:
    """A screenings:write client posts a screening but cannot read the death it created."""
    writer: Api = await make_api(Scope.screenings_write)
    created = await writer.post("/v1/screenings", json=screening_body(), headers=idem())
    assert created.status_code == 201, created.text
    read = await writer.get(f"/v1/deaths/{created.json()['death_id']}")
    assert read.status_code == 403
    assert "deaths:read" in read.json()["detail"]


async def test_health_needs_no_key(http) -> None:
    healthz = await http.get("/healthz")
    assert healthz.status_code == 200
    assert healthz.json() == {"status": "ok"}
    readyz = await http.get("/readyz")
    assert readyz.status_code == 200
    assert readyz.json()["status"] == "ready"


async def test_on_behalf_of_is_kept_in_the_audit_log(make_api, database) -> None:
    api: Api = await make_api(Scope.screenings_write, Scope.deaths_read)
    person = f"Dr Reviewer {uuid.uuid4().hex[:6]}"
    created = await api.post(
        "/v1/screenings", json=screening_body(), headers={**idem(), "X-On-Behalf-Of": person}
    )
    assert created.status_code == 201, created.text
    death_id = uuid.UUID(created.json()["death_id"])
    reader = f"Ms Governance {uuid.uuid4().hex[:6]}"
    read = await api.get(f"/v1/deaths/{death_id}", headers={"X-On-Behalf-Of": reader})
    assert read.status_code == 200

    async with database.transaction() as session:
        rows = (
            await session.scalars(
                select(AuditEvent)
                .where(names(AuditEvent.death_ids, death_id))
                .order_by(AuditEvent.occurred_at)
            )
        ).all()
    writes = [row for row in rows if row.action != "death.read"]
    reads = [row for row in rows if row.action == "death.read"]
    assert {row.action for row in writes} == {"screening.create", "death.create"}
    assert all(row.on_behalf_of == person for row in writes)
    assert [row.on_behalf_of for row in reads] == [reader]
    assert all(row.client_id == api.client_id for row in rows)
    assert all(row.request_id for row in rows)


async def test_on_behalf_of_must_be_a_printable_name(make_api) -> None:
    api: Api = await make_api(Scope.deaths_read)
    response = await api.get("/v1/deaths", headers={"X-On-Behalf-Of": "   "})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
