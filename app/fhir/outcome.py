"""Errors under /fhir/ as OperationOutcome resources: the same problem the rest of the API
renders as problem+json (app.errors), with the same HTTP status and headers, in FHIR's shape."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from app.errors import ProblemError
from app.fhir.mapping import FHIR_JSON

# FHIR issue-type for each HTTP status the service answers with.
ISSUE_TYPE: dict[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    428: "required",
    429: "throttled",
    503: "transient",
}


def operation_outcome(body: dict[str, Any]) -> dict[str, Any]:
    """An OperationOutcome from a problem body: one issue for the problem, one per field
    error. Problem bodies never hold submitted values, so neither does the outcome."""
    status = int(body.get("status", 500))
    code = ISSUE_TYPE.get(status, "exception" if status >= 500 else "processing")
    severity = "fatal" if status >= 500 else "error"
    main: dict[str, Any] = {
        "severity": severity,
        "code": code,
        "details": {"text": str(body.get("title", "Error"))},
    }
    if body.get("detail"):
        main["diagnostics"] = str(body["detail"])
    issues = [main]
    for error in body.get("errors") or []:
        where = error.get("pointer")
        detail = str(error.get("detail", "invalid value"))
        issues.append(
            {
                "severity": "error",
                "code": code,
                "diagnostics": f"{where}: {detail}" if where else detail,
            }
        )
    # An ambiguous match's candidates (shown only to a client that may read deaths), each as
    # the Patient the read view names it: the caller chooses, the service never guesses.
    for candidate in body.get("candidates") or []:
        if isinstance(candidate, dict) and candidate.get("death_id"):
            issues.append(
                {
                    "severity": "error",
                    "code": "multiple-matches",
                    "diagnostics": f"Patient/{candidate['death_id']}",
                }
            )
    return {"resourceType": "OperationOutcome", "issue": issues}


def operation_outcome_response(
    body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        operation_outcome(body),
        status_code=int(body.get("status", 500)),
        media_type=FHIR_JSON,
        headers=headers,
    )


OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome.",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "details": {"type": "object"},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}


class NotAcceptable(ProblemError):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


def outcome_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the errors a FHIR route can return, as OperationOutcome."""
    out: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = out.setdefault(
            error.status,
            {
                "description": f"OperationOutcome: {error.title}",
                "content": {FHIR_JSON: {"schema": OUTCOME_SCHEMA}},
            },
        )
        if error.title not in entry["description"]:
            entry["description"] += f"; {error.title}"
    return out
