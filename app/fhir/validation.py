"""An incoming transaction Bundle checked against FHIR R4 before anything is read from it.

Two passes, each refusing with a 422 OperationOutcome whose issues name the element by a
FHIRPath-like expression (``Encounter.class``, ``Patient.name[0].given``), never the value:

1. **The FHIR R4 structure**, with the fhir.resources models (their R4B package: Patient,
   Encounter and Bundle are the same in R4 and R4B): an element the resource does not define,
   an array where one is not allowed or a single value where an array is, an object where a
   primitive is expected (``class: "IMP"``), a missing required element (``Encounter.status``),
   a date or dateTime that does not match FHIR's format.
2. **JSON types of the primitives the service reads** where the models are lenient: a date,
   dateTime or instant must be a JSON string (the models turn the number ``5`` into 1970).
"""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError as PydanticValidationError

from app.errors import ValidationFailed

# FHIR R4 primitive formats (https://hl7.org/fhir/R4/datatypes.html).
DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
DATE_TIME = re.compile(
    r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$"
)
# The date and time elements the notification reads, and the format each must have.
TIMES: dict[str, tuple[tuple[str, ...], re.Pattern[str]]] = {
    "Bundle.timestamp": (("timestamp",), DATE_TIME),
    "Patient.birthDate": (("birthDate",), DATE),
    "Patient.deceasedDateTime": (("deceasedDateTime",), DATE_TIME),
    "Encounter.period.start": (("period", "start"), DATE_TIME),
    "Encounter.period.end": (("period", "end"), DATE_TIME),
}
REASONS = {
    "extra_forbidden": "is not an element of this resource in FHIR R4",
    "missing": "is required",
    "model_field_validation.missing": "is required",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "decimal_type": "must be a number",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "json_invalid": "must be an object",
    "json_type": "must be an object",
    "date_from_datetime_inexact": "must be a date (YYYY, YYYY-MM or YYYY-MM-DD)",
    "date_type": "must be a date (YYYY, YYYY-MM or YYYY-MM-DD)",
    "datetime_type": "must be a FHIR dateTime",
}


def _refused(errors: list[dict[str, str]]) -> ValidationFailed:
    return ValidationFailed(
        "The Bundle is not valid FHIR R4; see errors.",
        errors=errors,
    )


def _expression(bundle: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a FHIRPath-like expression, an entry's resource named by its
    type (``('entry', 1, 'resource', 'period', 'start')`` is ``Encounter.period.start``)."""
    path = list(loc)
    base = "Bundle"
    if len(path) >= 3 and path[0] == "entry" and isinstance(path[1], int) and path[2] == "resource":
        entries = bundle.get("entry") or []
        entry = entries[path[1]] if path[1] < len(entries) else {}
        base = str(entry.get("resource", {}).get("resourceType", "Resource"))
        path = path[3:]
    text = base
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _reason(error: Any) -> str:
    kind = str(error.get("type", ""))
    if kind in REASONS:
        return REASONS[kind]
    message = str(error.get("msg", ""))
    if "regex" in message:
        return "does not match the FHIR format of its type (date, dateTime, code, id ...)"
    if "Any of one field value" in message or "choice" in message.lower():
        return "gives more than one choice of a value[x] element"
    return "is not valid FHIR R4 here"


def check_structure(bundle: dict[str, Any]) -> None:
    """The Bundle and its resources against the FHIR R4 models; 422 naming each element."""
    try:
        Bundle.model_validate(bundle)
    except KeyError:
        # The models look a resource up by its resourceType: one FHIR R4 does not define,
        # contained in a resource (the entries' own types are checked before).
        raise _refused(
            [
                {
                    "pointer": "Bundle.entry.resource",
                    "code": "invalid",
                    "detail": "holds a resource of a type FHIR R4 does not define",
                }
            ]
        ) from None
    except PydanticValidationError as error:
        issues = [
            {"pointer": _expression(bundle, tuple(item["loc"])), "detail": _reason(item)}
            for item in error.errors()
        ]
        raise _refused(
            [{**issue, "code": "invalid"} for issue in issues[:20]]  # enough to act on
        ) from None


def _at(resource: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    value: Any = resource
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


def check_times(
    bundle: dict[str, Any], patient: dict[str, Any], encounter: dict[str, Any] | None
) -> None:
    """Each date and time the notification reads is a JSON string in its FHIR format."""
    errors: list[dict[str, str]] = []
    for expression, (path, pattern) in TIMES.items():
        kind = expression.split(".", 1)[0]
        resource = {"Bundle": bundle, "Patient": patient, "Encounter": encounter}[kind]
        if resource is None:
            continue
        present, value = _at(resource, path)
        if not present or value is None:
            continue
        if not isinstance(value, str):
            errors.append(
                {"pointer": expression, "code": "invalid", "detail": "must be a JSON string"}
            )
        elif pattern.match(value) is None:
            errors.append(
                {
                    "pointer": expression,
                    "code": "invalid",
                    "detail": "is not a FHIR "
                    + ("date" if pattern is DATE else "dateTime (with its time zone)"),
                }
            )
    if errors:
        raise _refused(errors)
