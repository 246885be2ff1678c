"""The coded values of the domain (DESIGN.md sections 2-4), in one place."""

from __future__ import annotations

from enum import StrEnum


class Route(StrEnum):
    sjr = "sjr"
    mm = "mm"
    leder = "leder"
    cdr = "cdr"
    pmrt = "pmrt"
    mnsi = "mnsi"
    psii = "psii"
    coroner = "coroner"
    complaint = "complaint"
    system_review = "system_review"
    # A review programme's queue (issue 17, app/programmes): a clinical audit's SJRs and
    # their second opinions, each referral naming its programme. Never required by the
    # rules, never requested by the examiner.
    programme = "programme"


class ReasonCode(StrEnum):
    bereaved_concern = "bereaved_concern"
    staff_concern = "staff_concern"
    me_concern = "me_concern"
    learning_disability = "learning_disability"
    autism = "autism"
    serious_mental_illness = "serious_mental_illness"
    elective_admission = "elective_admission"
    unexpected_death = "unexpected_death"
    mortality_alert = "mortality_alert"
    specialty_mm = "specialty_mm"
    learning_sample = "learning_sample"
    child_death = "child_death"
    perinatal_death = "perinatal_death"
    maternal_death = "maternal_death"
    coroner_referral = "coroner_referral"
    patient_safety_incident = "patient_safety_incident"
    second_stage = "second_stage"
    more_likely_than_not_avoidable = "more_likely_than_not_avoidable"
    me_requested = "me_requested"
    mm_escalation = "mm_escalation"
    # A review programme's (issue 17): a death of the programme's cohort chosen for review,
    # and a second opinion a programme reviewer asked for.
    programme = "programme"
    second_opinion = "second_opinion"


class DeathStatus(StrEnum):
    awaiting_screening = "awaiting_screening"
    screened = "screened"
    under_review = "under_review"
    reviewed = "reviewed"
    closed = "closed"


class ReferralStatus(StrEnum):
    ready = "ready"
    claimed = "claimed"
    in_progress = "in_progress"
    on_hold = "on_hold"
    completed = "completed"
    declined = "declined"
    cancelled = "cancelled"


OPEN_REFERRAL_STATUSES = frozenset(
    {
        ReferralStatus.ready,
        ReferralStatus.claimed,
        ReferralStatus.in_progress,
        ReferralStatus.on_hold,
    }
)


class PlaceOfDeath(StrEnum):
    inpatient = "inpatient"
    emergency_department = "emergency_department"
    community_hospital = "community_hospital"
    hospice = "hospice"
    care_home = "care_home"
    home = "home"
    other = "other"


class AdmissionMethod(StrEnum):
    elective = "elective"
    emergency = "emergency"
    maternity = "maternity"
    transfer = "transfer"
    not_admitted = "not_admitted"


class Sex(StrEnum):
    """NHS Data Dictionary 'person stated gender code' values, spelt out."""

    male = "male"
    female = "female"
    indeterminate = "indeterminate"
    not_known = "not_known"


class NhsNumberStatus(StrEnum):
    """NHS Data Dictionary NHS NUMBER STATUS INDICATOR CODE."""

    verified = "01"
    present_not_traced = "02"
    trace_required = "03"
    trace_no_match = "04"
    trace_needs_resolution = "05"
    trace_in_progress = "06"
    not_present_trace_not_required = "07"
    trace_postponed = "08"


NHS_NUMBER_REQUIRED_STATUSES = frozenset(
    {NhsNumberStatus.verified, NhsNumberStatus.present_not_traced}
)


class CoronerReason(StrEnum):
    """The Notification of Deaths Regulations 2019, regulation 3(1)."""

    poisoning = "poisoning"
    toxic_substance = "toxic_substance"
    medicinal_product_or_drug = "medicinal_product_or_drug"
    violence_trauma_or_injury = "violence_trauma_or_injury"
    self_harm = "self_harm"
    neglect_or_self_neglect = "neglect_or_self_neglect"
    medical_treatment_or_procedure = "medical_treatment_or_procedure"
    employment_related = "employment_related"
    otherwise_unnatural = "otherwise_unnatural"
    cause_unknown = "cause_unknown"
    custody_or_state_detention = "custody_or_state_detention"
    no_attending_practitioner = "no_attending_practitioner"
    identity_unknown = "identity_unknown"


class ReviewStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"


class Instrument(StrEnum):
    sjr = "sjr"
    mm = "mm"
    leder = "leder"
    external = "external"


def instrument_for(route: Route) -> Instrument:
    if route in (Route.sjr, Route.programme):
        return Instrument.sjr
    if route is Route.mm:
        return Instrument.mm
    if route is Route.leder:
        return Instrument.leder
    return Instrument.external


class SjrPhase(StrEnum):
    """The RCP phases of care, with the system-wide phases a trust audit added."""

    pre_admission = "pre_admission"
    admission_initial = "admission_initial"
    ongoing = "ongoing"
    procedure = "procedure"
    perioperative = "perioperative"
    readmission = "readmission"
    discharge = "discharge"
    end_of_life = "end_of_life"
    overall = "overall"


class ProblemType(StrEnum):
    assessment = "assessment"  # assessment, investigation or diagnosis
    medication = "medication"  # medication, IV fluids, electrolytes or oxygen
    treatment = "treatment"  # treatment and management plan
    infection = "infection"  # infection management
    procedure = "procedure"  # operation or invasive procedure
    monitoring = "monitoring"  # clinical monitoring
    resuscitation = "resuscitation"
    other = "other"  # including communication and organisational


class Harm(StrEnum):
    no = "no"
    probably = "probably"
    yes = "yes"


class MmOutcome(StrEnum):
    no_further_action = "no_further_action"
    learning_identified = "learning_identified"
    escalate_sjr = "escalate_sjr"
    escalate_psii = "escalate_psii"


class LederStatus(StrEnum):
    notified = "notified"
    initial_review = "initial_review"
    focused_review = "focused_review"
    completed = "completed"


class ExternalStatus(StrEnum):
    referred = "referred"
    accepted = "accepted"
    in_progress = "in_progress"
    completed = "completed"
    declined = "declined"


FINAL_EXTERNAL_STATUSES = frozenset({"completed", "declined"})
