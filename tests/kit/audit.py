"""Requests traced for the audit tests: a request id, a reader on whose behalf, and a patient
whose identifiers are known (to look for them where they must not be)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.factories import screening_body

ON_BEHALF_OF = "Dr Audit Reader"


def request_id() -> str:
    return f"req-{uuid.uuid4().hex}"


def traced(rid: str, **extra: str) -> dict[str, str]:
    return {"X-Request-ID": rid, "X-On-Behalf-Of": ON_BEHALF_OF, **extra}


def patient_values(body: dict[str, Any]) -> list[str]:
    death = body["death"]
    number = death["nhs_number"]
    return [
        number,
        f"{number[:3]} {number[3:6]} {number[6:]}",
        death["given_name"],
        death["family_name"],
        death["date_of_birth"],
        death["local_patient_id"],
        death["postcode"],
    ]


def patient_body(**death: Any) -> dict[str, Any]:
    marker = uuid.uuid4().hex[:10]
    return screening_body(
        death={"given_name": f"Given{marker}", "family_name": f"Family{marker}", **death},
        screening={"death_expected": False},
    )
