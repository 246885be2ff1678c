"""The CapabilityStatement: what the FHIR view supports, in FHIR's own terms."""

from __future__ import annotations

from typing import Any

from app import __version__
from app.fhir.mapping import FHIR_BASE, FHIR_JSON, FHIR_VERSION

RELEASED = "2026-01-01"


def _param(name: str, kind: str, documentation: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "documentation": documentation}


def capability_statement(base_url: str) -> dict[str, Any]:
    read_search = [{"code": "read"}, {"code": "search-type"}]
    return {
        "resourceType": "CapabilityStatement",
        "url": f"{FHIR_BASE}/CapabilityStatement/lfd",
        "name": "LearningFromDeathsFhirView",
        "title": "Learning from Deaths: FHIR R4 view",
        "status": "active",
        "date": RELEASED,
        "publisher": "Learning from Deaths service",
        "description": (
            "Read-only: referrals for review as Task, deceased patients as Patient. "
            "Pseudonymised clients get no names, NHS numbers or birth dates."
        ),
        "kind": "instance",
        "software": {"name": "lfd-service", "version": __version__},
        "implementation": {"description": "Learning from Deaths FHIR view", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": (
                        "An API key as 'Authorization: Bearer <key>'. Task needs the scope "
                        "referrals:read, Patient deaths:read, a transaction notifications:write."
                    )
                },
                "resource": [
                    {
                        "type": "Task",
                        "interaction": read_search,
                        "versioning": "versioned",
                        "conditionalRead": "not-match",
                        "searchParam": [
                            _param("status", "token", "FHIR task status."),
                            _param("code", "token", "The review route, e.g. sjr."),
                            _param(
                                "owner",
                                "string",
                                "The assignee or the live lease's reviewer, by name.",
                            ),
                            _param("period", "date", "The due date (UK local dates)."),
                            _param("patient", "reference", "Patient/<death id>."),
                            _param("subject", "reference", "Patient/<death id>."),
                            _param("_count", "number", "Page size, 1 to 200."),
                        ],
                    },
                    {
                        "type": "Patient",
                        "interaction": read_search,
                        "versioning": "versioned",
                        "conditionalRead": "not-match",
                        "searchParam": [
                            _param(
                                "identifier",
                                "token",
                                "https://fhir.nhs.uk/Id/nhs-number|<NHS number>; not for "
                                "pseudonymised clients.",
                            ),
                            _param("_count", "number", "Page size, 1 to 200."),
                        ],
                    },
                ],
                # A death notification: a transaction of a Patient (deceasedDateTime) and an
                # optional Encounter (docs/notifications.md); notifications:write.
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": "A death notification: one Patient with "
                        "deceasedDateTime and an optional Encounter; scope notifications:write.",
                    }
                ],
            }
        ],
    }
