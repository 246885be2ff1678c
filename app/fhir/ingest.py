"""A FHIR R4 transaction Bundle as a death notification: a `Patient` with `deceasedDateTime`
(UK Core: the NHS number identifier `https://fhir.nhs.uk/Id/nhs-number`; the registered GP
practice as a `generalPractitioner` reference by ODS code) and, where the death ended an
admission, an `Encounter` (the site of death as an ODS code on its `location` or
`serviceProvider` reference). An adapter onto app.notifications: the Bundle's
`identifier` (system and value) is the sender's key, and everything else goes through the
same validation, matching, events and audit as POST /v1/death-notifications.

The Bundle is validated against FHIR R4 before it is read (app.fhir.validation). Refusals
are 422 OperationOutcomes whose issues name the element (`Patient.deceasedDateTime`,
`Bundle.identifier`, `Encounter.period.start`), never a value sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from app.errors import Conflict, ValidationFailed, validation_errors
from app.fhir.mapping import GENDER, NHS_NUMBER_SYSTEM
from app.fhir.validation import check_structure, check_times
from app.notifications.schemas import NotificationCreate

SEX_OF_GENDER = {code: sex.value for sex, code in GENDER.items()}
ETHNIC_CATEGORY_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
)
PLACE_OF_ENCOUNTER_CLASS = {
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "EMER": "emergency_department",
}
EMERGENCY_PRIORITY = {"EM", "UR", "emergency", "urgent"}
ODS_ORGANISATION_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ODS_SITE_SYSTEM = "https://fhir.nhs.uk/Id/ods-site-code"
ODS_SYSTEMS = (ODS_SITE_SYSTEM, ODS_ORGANISATION_SYSTEM)
LOCATION_IDENTIFIER = "Encounter.location.location.identifier"
PROVIDER_IDENTIFIER = "Encounter.serviceProvider.identifier"

# Where each notification field comes from, to name it in an OperationOutcome.
ELEMENTS = {
    "source_system": "Bundle.identifier.system",
    "source_reference": "Bundle.identifier.value",
    "nhs_number": "Patient.identifier",
    "nhs_number_status": "Patient.identifier",
    "local_patient_id": "Patient.identifier",
    "family_name": "Patient.name",
    "given_name": "Patient.name",
    "date_of_birth": "Patient.birthDate",
    "sex": "Patient.gender",
    "postcode": "Patient.address.postalCode",
    "ethnicity": "Patient.extension",
    "died_at": "Patient.deceasedDateTime",
    "place_of_death": "Encounter.class",
    "site": "Encounter.serviceProvider",
    "ward": "Encounter.location",
    "admitting_specialty": "Encounter.serviceType",
    "specialty_at_death": "Encounter.serviceType",
    "admission_method": "Encounter.priority",
    "admitted_at": "Encounter.period.start",
    "discharged_at": "Encounter.period.end",
    "sent_at": "Bundle.timestamp",
    "site_ods_code": PROVIDER_IDENTIFIER,
    "registered_gp_practice_ods_code": "Patient.generalPractitioner.identifier",
}


def refused(element: str, detail: str) -> ValidationFailed:
    return ValidationFailed(
        "The Bundle is not a death notification this server accepts; see errors.",
        errors=[{"pointer": element, "code": "invalid", "detail": detail}],
    )


def element_of(pointer: str, bundle: Any = None) -> str:
    name = pointer.strip("/").split("/", 1)[0]
    if name == "site_ods_code" and bundle is not None:
        return site_element(bundle)
    return ELEMENTS.get(name, "Bundle")


def _ods_code(reference: Any, systems: tuple[str, ...] = ODS_SYSTEMS) -> str | None:
    """The ODS code a Reference carries as its logical identifier, if it does."""
    identifier = reference.get("identifier") if isinstance(reference, dict) else None
    if not isinstance(identifier, dict) or identifier.get("system") not in systems:
        return None
    value = identifier.get("value")
    return value if isinstance(value, str) and value.strip() else None


def _site_code(encounter: dict[str, Any]) -> tuple[str | None, str]:
    """The site of death's ODS code and the element it came from: the Encounter's location
    (a Location by its ODS site code) before its serviceProvider (the site or the trust)."""
    for item in encounter.get("location") or []:
        code = _ods_code(item.get("location")) if isinstance(item, dict) else None
        if code is not None:
            return code, LOCATION_IDENTIFIER
    return _ods_code(encounter.get("serviceProvider")), PROVIDER_IDENTIFIER


def site_element(bundle: Any) -> str:
    """The element a Bundle's site code came from, to name it in an OperationOutcome."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Encounter":
            return _site_code(resource)[1]
    return PROVIDER_IDENTIFIER


def _practice_code(patient: dict[str, Any]) -> str | None:
    """The registered GP practice: a generalPractitioner reference by ODS organisation code
    (UK Core's Organization; a reference to a Practitioner by GMP number is not a practice)."""
    references = patient.get("generalPractitioner")
    for reference in references if isinstance(references, list) else []:
        code = _ods_code(reference, (ODS_ORGANISATION_SYSTEM,))
        if code is not None:
            return code
    return None


def _first(items: Any) -> dict[str, Any]:
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return {}


def _list(items: Any, element: str) -> list[Any]:
    """A repeating element's items (absent: none); anything but an array is refused."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise refused(element, "must be an array")
    return items


def _code(concept: Any) -> str | None:
    coding = _first(concept.get("coding")) if isinstance(concept, dict) else {}
    code = coding.get("code")
    return code if isinstance(code, str) and code else None


def _resources(bundle: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if bundle.get("resourceType") != "Bundle":
        raise refused("Bundle.resourceType", "post a Bundle")
    if bundle.get("type") != "transaction":
        raise refused("Bundle.type", "the Bundle must be a transaction")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise refused("Bundle.entry", "the Bundle has no entries")
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise refused("Bundle.entry.resource", "every entry needs a resource")
        kind = resource.get("resourceType")
        if kind not in ("Patient", "Encounter"):
            raise refused("Bundle.entry.resource", "only Patient and Encounter are accepted")
        found.setdefault(str(kind), []).append(resource)
    patients, encounters = found.get("Patient", []), found.get("Encounter", [])
    if len(patients) != 1:
        raise refused("Bundle.entry", "exactly one Patient is needed")
    if len(encounters) > 1:
        raise refused("Bundle.entry", "at most one Encounter")
    return patients[0], encounters[0] if encounters else None


def _identifiers(patient: dict[str, Any]) -> tuple[str | None, str | None]:
    nhs_number = local = None
    for identifier in _list(patient.get("identifier"), "Patient.identifier"):
        if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
            raise refused("Patient.identifier", "each identifier needs a value")
        if identifier.get("system") == NHS_NUMBER_SYSTEM:
            nhs_number = nhs_number or identifier["value"]
        else:
            local = local or identifier["value"]
    return nhs_number, local


def notification_body(bundle: dict[str, Any]) -> NotificationCreate:
    """The notification a transaction Bundle carries; a 422 naming the element otherwise
    (the Bundle is checked against FHIR R4 first: app.fhir.validation)."""
    patient, encounter = _resources(bundle)
    check_structure(bundle)
    check_times(bundle, patient, encounter)
    key = bundle.get("identifier")
    if not isinstance(key, dict) or not key.get("system") or not key.get("value"):
        raise refused("Bundle.identifier", "the sender's identifier (system and value) is needed")
    if "deceasedDateTime" not in patient:
        raise refused("Patient.deceasedDateTime", "the date and time of death is needed")
    nhs_number, local = _identifiers(patient)
    name = _first(patient.get("name"))
    given = name.get("given")
    ethnicity = None
    for extension in _list(patient.get("extension"), "Patient.extension"):
        if isinstance(extension, dict) and extension.get("url") == ETHNIC_CATEGORY_EXTENSION:
            ethnicity = _code(extension.get("valueCodeableConcept"))
    gender = patient.get("gender")
    body: dict[str, Any] = {
        "source_system": key["system"],
        "source_reference": key["value"],
        "sent_at": bundle.get("timestamp"),
        "nhs_number": nhs_number,
        "local_patient_id": local,
        "family_name": name.get("family"),
        "given_name": given[0] if isinstance(given, list) and given else None,
        "date_of_birth": patient.get("birthDate"),
        "sex": SEX_OF_GENDER.get(gender, gender) if isinstance(gender, str) else None,
        "postcode": _first(patient.get("address")).get("postalCode"),
        "ethnicity": ethnicity,
        "died_at": patient["deceasedDateTime"],
        "place_of_death": "other",
        "admission_method": "not_admitted",
        "registered_gp_practice_ods_code": _practice_code(patient),
    }
    if encounter is not None:
        body.update(_encounter(encounter, patient["deceasedDateTime"]))
    try:
        return NotificationCreate.model_validate({k: v for k, v in body.items() if v is not None})
    except PydanticValidationError as error:
        raise ValidationFailed(
            "The Bundle is not a death notification this server accepts; see errors.",
            errors=[
                {**item, "pointer": element_of(item["pointer"], bundle)}
                for item in validation_errors(list(error.errors()))
            ],
        ) from None


def _encounter(encounter: dict[str, Any], died: Any) -> dict[str, Any]:
    klass = encounter.get("class")
    klass_code = klass.get("code") if isinstance(klass, dict) else None
    sent_period = encounter.get("period")
    period: dict[str, Any] = sent_period if isinstance(sent_period, dict) else {}
    start, end = period.get("start"), period.get("end")
    # An encounter that ended before the death was a discharge: the death was elsewhere.
    ended_before = isinstance(end, str) and isinstance(died, str) and _before(end, died)
    location = _first(encounter.get("location")).get("location")
    provider = encounter.get("serviceProvider")
    values: dict[str, Any] = {
        "place_of_death": "other"
        if ended_before
        else PLACE_OF_ENCOUNTER_CLASS.get(str(klass_code), "other"),
        "admitted_at": start,
        "discharged_at": end if ended_before else None,
        "admission_method": (
            "emergency"
            if _code(encounter.get("priority")) in EMERGENCY_PRIORITY or klass_code == "EMER"
            else "elective"
        )
        if start
        else "not_admitted",
        "ward": location.get("display") if isinstance(location, dict) else None,
        "site": provider.get("display") if isinstance(provider, dict) else None,
        "site_ods_code": _site_code(encounter)[0],
        "specialty_at_death": _code(_first(encounter.get("serviceType")) or None)
        if isinstance(encounter.get("serviceType"), list)
        else _code(encounter.get("serviceType")),
    }
    values["admitting_specialty"] = values["specialty_at_death"]
    return values


def _before(one: str, other: str) -> bool:
    try:
        return datetime.fromisoformat(one) < datetime.fromisoformat(other)
    except (TypeError, ValueError):
        return False


CORRECTION_OUTCOMES = {
    "applied": "The Bundle corrected the notification first sent under its identifier: "
    "applied to the death awaiting screening.",
    "not_applied": "The Bundle corrected the notification first sent under its identifier: "
    "recorded, not applied (the death is already screened; the ME office corrects it).",
}


def transaction_response(
    bundle: dict[str, Any], death_id: str, created: bool, correction: str | None = None
) -> dict[str, Any]:
    """The transaction-response Bundle: an entry per request entry, in order. The Patient is
    the death (`Patient/<death id>`, as the read view names it); the Encounter has no resource
    of its own here (its fields are the death's admission). A correction says so in the
    Patient entry's `outcome`."""
    status = "201 Created" if created else "200 OK"
    entries: list[dict[str, Any]] = []
    for entry in bundle["entry"]:
        response: dict[str, Any] = {"status": status}
        if entry["resource"]["resourceType"] == "Patient":
            response["location"] = f"Patient/{death_id}"
            if correction in CORRECTION_OUTCOMES:
                response["outcome"] = {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "information" if correction == "applied" else "warning",
                            "code": "informational",
                            "diagnostics": CORRECTION_OUTCOMES[correction],
                        }
                    ],
                }
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def mapped(error: ValidationFailed, bundle: Any = None) -> ValidationFailed:
    """The notification service's refusal, its pointers named as the Bundle's elements."""
    return ValidationFailed(
        error.detail or "The death is not possible as given; see errors.",
        errors=[
            {**item, "pointer": element_of(str(item.get("pointer", "")), bundle)}
            for item in error.errors or []
        ],
    )


def mapped_conflict(conflict: Conflict) -> Conflict:
    """A conflict about a field (the Bundle's identifier reused for another patient), its
    pointers named as the Bundle's elements; any other conflict as it is."""
    if conflict.errors:
        conflict.errors = [
            {**item, "pointer": element_of(str(item.get("pointer", "")))}
            for item in conflict.errors
        ]
    return conflict
