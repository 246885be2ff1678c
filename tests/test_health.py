"""Operators' endpoints: /healthz, /readyz (503 when the database is unreachable, never 500),
and the OpenAPI document."""

from __future__ import annotations

from tests.factories import idem, screening_body

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"


async def test_readyz_is_503_problem_when_the_database_is_unreachable(app_factory) -> None:
    _, http = await app_factory(database_url=UNREACHABLE)
    assert (await http.get("/healthz")).status_code == 200
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"]
    assert "Traceback" not in response.text


async def test_an_api_call_with_the_database_down_is_503_not_500(app_factory) -> None:
    _, http = await app_factory(database_url=UNREACHABLE)
    response = await http.post(
        "/v1/screenings",
        json=screening_body(),
        headers={"Authorization": "Bearer lfd_000000000000_x", **idem()},
    )
    assert response.status_code == 503
    assert response.json()["status"] == 503


async def test_readyz_reports_the_database_when_ready(http, base_settings) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == (
        "postgresql" if "postgresql" in base_settings.database_url else "sqlite"
    )


async def test_openapi_documents_every_operation_with_its_errors(http) -> None:
    document = (await http.get("/openapi.json")).json()
    assert document["components"]["schemas"]["Problem"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method} {path} has no description"
            if path in {"/healthz", "/readyz", "/.well-known/jwks.json"}:
                continue
            if path == "/oauth2/token":
                # RFC 6749 errors, not problem+json (tests/test_oauth.py).
                assert (
                    "error"
                    in operation["responses"]["401"]["content"]["application/json"]["schema"][
                        "properties"
                    ]
                )
                continue
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
            content = operation["responses"]["401"]["content"]
            if path.startswith("/fhir/"):
                # The FHIR view answers errors as OperationOutcome (docs/fhir.md).
                assert "application/fhir+json" in content, f"{method} {path}"
                continue
            problem = content["application/problem+json"]
            assert problem["schema"]["$ref"] == "#/components/schemas/Problem"
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
