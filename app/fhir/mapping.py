"""The FHIR codes and URLs of the view, and how the service's own values map onto them.

Every system URL the service defines hangs off one base, ``FHIR_BASE``; the national ones (the
NHS number, UK Core's verification status) are NHS England's and HL7 UK's own.
"""

from __future__ import annotations

from app.config import get_settings
from app.kit.enums import NhsNumberStatus, ReasonCode, ReferralStatus, Route, Sex

# LFD_FHIR_SYSTEM_BASE, read once when the service starts: the code systems and identifiers
# are part of the data exchanged, so a deployment sets it once, to a URL the trust owns.
FHIR_BASE = get_settings().fhir_system_base.rstrip("/")
FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"

ROUTE_SYSTEM = f"{FHIR_BASE}/CodeSystem/review-route"
REFERRAL_STATUS_SYSTEM = f"{FHIR_BASE}/CodeSystem/referral-status"
REFERRAL_REASON_SYSTEM = f"{FHIR_BASE}/CodeSystem/referral-reason"
REFERRAL_ID_SYSTEM = f"{FHIR_BASE}/Id/referral"
EXTERNAL_REFERENCE_SYSTEM = f"{FHIR_BASE}/Id/external-reference"
CASE_REFERENCE_SYSTEM = f"{FHIR_BASE}/Id/case-reference"
PSEUDONYM_SYSTEM = f"{FHIR_BASE}/Id/patient-pseudonym"
AGE_BAND_EXTENSION = f"{FHIR_BASE}/StructureDefinition/age-band"

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
NHS_NUMBER_VERIFICATION_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
NHS_NUMBER_VERIFICATION_SYSTEM = (
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
)

# FHIR task-status for each referral status (every member of ReferralStatus: a test
# parametrised over the enum fails when a status is added without a mapping).
TASK_STATUS: dict[ReferralStatus, str] = {
    ReferralStatus.ready: "ready",
    ReferralStatus.claimed: "accepted",
    ReferralStatus.in_progress: "in-progress",
    ReferralStatus.on_hold: "on-hold",
    ReferralStatus.completed: "completed",
    ReferralStatus.declined: "rejected",
    ReferralStatus.cancelled: "cancelled",
}
REFERRAL_STATUS_OF_TASK_STATUS = {code: status for status, code in TASK_STATUS.items()}
# The whole FHIR R4 task-status value set: a search for a code the view never produces
# (e.g. `draft`) matches nothing; anything else is not a task status at all (400).
FHIR_TASK_STATUSES = frozenset(
    {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    }
)

REFERRAL_STATUS_DISPLAY: dict[ReferralStatus, str] = {
    ReferralStatus.ready: "Ready to claim",
    ReferralStatus.claimed: "Claimed (under a live lease)",
    ReferralStatus.in_progress: "In progress",
    ReferralStatus.on_hold: "On hold",
    ReferralStatus.completed: "Completed",
    ReferralStatus.declined: "Declined",
    ReferralStatus.cancelled: "Cancelled",
}

ROUTE_DISPLAY: dict[Route, str] = {
    Route.sjr: "Structured Judgement Review",
    Route.mm: "Morbidity and Mortality review",
    Route.leder: "LeDeR notification",
    Route.cdr: "Child death review",
    Route.pmrt: "Perinatal mortality review",
    Route.mnsi: "Maternity and newborn safety investigation",
    Route.psii: "Patient safety incident investigation",
    Route.coroner: "Coroner referral",
    Route.complaint: "Complaint",
    Route.system_review: "Cross-system review",
    Route.programme: "Review programme (clinical audit of deaths)",
}

REASON_DISPLAY: dict[ReasonCode, str] = {
    ReasonCode.bereaved_concern: "Bereaved raised a significant concern",
    ReasonCode.staff_concern: "Staff raised a significant concern",
    ReasonCode.me_concern: "Medical examiner clinical-governance concern",
    ReasonCode.learning_disability: "Learning disability",
    ReasonCode.autism: "Autism",
    ReasonCode.serious_mental_illness: "Serious mental illness",
    ReasonCode.elective_admission: "Elective admission",
    ReasonCode.unexpected_death: "Death not expected",
    ReasonCode.mortality_alert: "Mortality alert",
    ReasonCode.specialty_mm: "Specialty reviews all deaths at M&M",
    ReasonCode.learning_sample: "Random learning sample",
    ReasonCode.child_death: "Child death",
    ReasonCode.perinatal_death: "Perinatal death",
    ReasonCode.maternal_death: "Maternal death",
    ReasonCode.coroner_referral: "Coroner notified",
    ReasonCode.patient_safety_incident: "Suspected patient-safety incident",
    ReasonCode.second_stage: "Second-stage SJR",
    ReasonCode.more_likely_than_not_avoidable: "More likely than not avoidable",
    ReasonCode.me_requested: "Requested by the medical examiner",
    ReasonCode.mm_escalation: "Escalated from M&M",
    ReasonCode.programme: "Chosen for review by a review programme",
    ReasonCode.second_opinion: "Second opinion asked for by a programme reviewer",
}

# FHIR request-priority from the service's priority (lower is more urgent; the defaults are
# 1 coroner and PSII, 2 national notifications, 3 SJR and complaints, 4 M&M and system
# reviews). 0 is free for a deployment that configures something more urgent than the law.
PRIORITY_CODES: tuple[str, ...] = ("stat", "asap", "urgent")


def task_priority(priority: int) -> str:
    """0 stat, 1 asap, 2 urgent, 3 and above routine."""
    if 0 <= priority < len(PRIORITY_CODES):
        return PRIORITY_CODES[priority]
    return "routine"


GENDER: dict[Sex, str] = {
    Sex.male: "male",
    Sex.female: "female",
    Sex.indeterminate: "other",
    Sex.not_known: "unknown",
}

NHS_NUMBER_STATUS_DISPLAY: dict[NhsNumberStatus, str] = {
    NhsNumberStatus.verified: "Number present and verified",
    NhsNumberStatus.present_not_traced: "Number present but not traced",
    NhsNumberStatus.trace_required: "Trace required",
    NhsNumberStatus.trace_no_match: "Trace attempted - No match or multiple match found",
    NhsNumberStatus.trace_needs_resolution: (
        "Trace needs to be resolved - (NHS number or patient detail conflict)"
    ),
    NhsNumberStatus.trace_in_progress: "Trace in progress",
    NhsNumberStatus.not_present_trace_not_required: "Number not present and trace not required",
    NhsNumberStatus.trace_postponed: "Trace postponed (baby under six weeks old)",
}
