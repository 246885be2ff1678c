"""The made-up words of the demo's reviews, findings and action plan: reviewers, what an SJR
says of each phase of care, what the findings under each theme say and how the themes' mix
shifts from year to year, and what the actions for each theme set out to do. Nothing here is a
real person or a real case."""

from __future__ import annotations

# fmt: off
REVIEWERS = (
    ("Dr A Reviewwell", "Consultant physician"), ("Dr B Casenote", "Consultant geriatrician"),
    ("Dr C Mortalis", "Consultant in acute medicine"), ("Dr D Learnmore", "Consultant surgeon"),
    ("Dr E Scrutton", "Consultant anaesthetist"), ("Dr F Auditore", "Consultant cardiologist"),
    ("Dr G Hindsight", "Consultant respiratory physician"),
    ("Dr H Reflectson", "Consultant in palliative medicine"),
    ("Sr I Oversight", "Senior nurse, patient safety"), ("Dr J Qualityman", "Specialty doctor"),
)
PRESENTERS = ("Mr K Incision", "Ms L Suture", "Mr M Scalpelton", "Dr N Theatreford",
              "Ms O Ligature")
MORTALITY_GROUP = "Mortality surveillance group"

# What a reviewer writes of a phase, by its rating band: poor (1-2), adequate (3), good (4-5).
PHASE_WORDS = {
    "admission_initial": (
        "Initial assessment missed the significance of an abnormal lactate.",
        "A reasonable clerking, though the frailty score was not recorded.",
        "Prompt, thorough assessment with a clear plan within the hour.",
    ),
    "ongoing": (
        "Observations deteriorated over the night without escalation.",
        "Care was appropriate; the daily review was brief on two days.",
        "Daily senior review, and changes in condition acted on promptly.",
    ),
    "procedure": (
        "The procedure was delayed by a day waiting for a theatre slot.",
        "The procedure was appropriate; the consent discussion was recorded briefly.",
        "The procedure was well planned, with the risks discussed and recorded.",
    ),
    "perioperative": (
        "Post-operative fluid balance was not monitored.",
        "Perioperative care was adequate; the handover to the ward was verbal only.",
        "Good perioperative care with early critical care input.",
    ),
    "end_of_life": (
        "The dying phase was recognised late; symptom control was delayed.",
        "End-of-life care was appropriate once it was recognised.",
        "Dying was recognised early; the family were involved and the patient was comfortable.",
    ),
    "overall": (
        "Overall, there were missed opportunities that may have changed the outcome.",
        "Overall, care was adequate, with some learning for the team.",
        "Overall, care was good, and the death was anticipated and well managed.",
    ),
}
SUMMARIES = (
    "Problems in care that probably contributed to the death; referred for a second review.",
    "Adequate care with learning for the ward team.",
    "Good care throughout; no problems in care identified.",
)

# Findings under each theme (the seeded themes, migrations 0003).
THEME_WORDS = {
    "deteriorating_patient": (
        "NEWS2 of 7 was not escalated to the medical registrar for several hours.",
        "Deterioration overnight was not recognised until the morning ward round.",
    ),
    "early_warning_scores": (
        "Observations were recorded late and the early warning score was miscalculated.",
        "The early warning score was not repeated at the frequency the escalation plan set.",
    ),
    "sepsis": (
        "Antibiotics were given more than an hour after red flag sepsis was identified.",
        "The sepsis screening tool was not completed at admission.",
    ),
    "medication": (
        "Anticoagulation was not restarted after the procedure.",
        "Insulin was omitted for a day while the patient was nil by mouth.",
    ),
    "fluid_balance_and_hydration": (
        "The fluid balance chart was incomplete for three days.",
        "Intravenous fluids were not reviewed despite a rising creatinine.",
    ),
    "end_of_life_care": (
        "Anticipatory medicines were not prescribed when dying was recognised.",
        "The family were not told the patient was dying until the last hours.",
    ),
    "recognition_of_end_of_life": (
        "Active treatment continued after the patient was recognised to be dying.",
        "Signs that the patient was dying were not discussed at the board round.",
    ),
    "dnacpr_decisions": (
        "The DNACPR decision was not discussed with the family.",
        "The DNACPR form was not completed at a previous admission, as it should have been.",
    ),
    "advance_care_planning": (
        "No treatment escalation plan despite three admissions in six months.",
        "The patient's advance care plan was not found by the admitting team.",
    ),
    "communication_with_patients_and_families": (
        "The family were given conflicting accounts of the prognosis by different teams.",
        "Communication with the family was delayed after the deterioration.",
    ),
    "discharge": (
        "The discharge summary omitted a change to the anticoagulant dose.",
        "Discharged without the follow-up the team had planned.",
    ),
    "handover_and_transfer": (
        "The handover on transfer to the ward omitted the pending blood cultures.",
        "The patient moved ward three times in 48 hours.",
    ),
    "delays_in_access": (
        "A CT scan was delayed by a day for want of a porter and a scanner slot.",
        "Twelve hours in the emergency department waiting for a bed.",
    ),
    "frailty": (
        "No comprehensive geriatric assessment during a three-week stay.",
        "A fall on the ward: the falls risk assessment had not been updated.",
    ),
    "clinical_reasoning": (
        "An alternative diagnosis was not considered when the patient did not improve.",
        "Investigations were repeated without a plan for acting on them.",
    ),
    "quality_of_records": (
        "Ward round entries were not signed or timed.",
        "The escalation plan was not recorded where the night team could find it.",
    ),
    "nutrition_and_weight": (
        "Weight was not recorded during the admission; nutrition was not assessed.",
        "The speech and language therapy referral waited four days.",
    ),
    "palliative_care": (
        "The specialist palliative care team was involved early and symptoms were controlled.",
        "The palliative care team supported the family well over the final days.",
    ),
}
# The problems reviews keep finding, year by year (first, second and third financial year of
# the demo): deterioration and sepsis first, then end-of-life care, then flow and discharge,
# as a trust's improvement work moves the problems on.
THEME_MIX = (
    (("deteriorating_patient", 30), ("sepsis", 22), ("early_warning_scores", 14),
     ("medication", 8), ("fluid_balance_and_hydration", 8), ("end_of_life_care", 5),
     ("communication_with_patients_and_families", 5), ("discharge", 3),
     ("clinical_reasoning", 5)),
    (("end_of_life_care", 22), ("recognition_of_end_of_life", 16), ("dnacpr_decisions", 12),
     ("advance_care_planning", 10), ("communication_with_patients_and_families", 12),
     ("deteriorating_patient", 10), ("sepsis", 6), ("medication", 6), ("quality_of_records", 6)),
    (("discharge", 20), ("handover_and_transfer", 16), ("delays_in_access", 16),
     ("frailty", 12), ("medication", 10), ("nutrition_and_weight", 8),
     ("communication_with_patients_and_families", 8), ("end_of_life_care", 5),
     ("deteriorating_patient", 5)),
)
GOOD_PRACTICE = (("palliative_care", 50), ("end_of_life_care", 30),
                 ("communication_with_patients_and_families", 20))

MM_LEARNING = (
    "Consultant review before a return to theatre, out of hours as in hours.",
    "The frailty score to be part of the pre-operative assessment.",
    "Earlier critical care outreach after emergency laparotomy.",
    "Venous thromboembolism prophylaxis to be prescribed at admission, not on the ward.",
)
LEDER_OUTCOMES = (
    "Good care overall; reasonable adjustments made at each admission.",
    "Learning about the use of the hospital passport and involving the family in decisions.",
    "Delays in recognising pain in a person who could not say they were in pain.",
)
PSII_OUTCOMES = (
    "Safety actions agreed: an escalation protocol for NEWS2 of 5 or more on every ward.",
    "Safety actions agreed: a second checker for high-risk medicines at night.",
    "Safety actions agreed: sepsis screening built into the emergency department record.",
)
PSII_DECLINED = (
    "The incident response panel chose an after-action review with the ward team instead."
)
ON_HOLD = "Awaiting the records from another provider before the review can finish."
EXTERNAL = {
    # route: (organisation, reference prefix, outcome when completed)
    "coroner": ("HM Coroner", "COR", "Inquest concluded: natural causes."),
    "cdr": ("Child Death Overview Panel", "CDOP", "Reviewed by the panel; learning shared."),
    "pmrt": ("MBRRACE-UK perinatal mortality review", "PMRT", "Review completed and graded."),
    "mnsi": ("Maternity and Newborn Safety Investigations", "MNSI", "Investigation reported."),
    "complaint": ("Complaints and PALS team", "CMP", "Complaint answered; the family met the "
                  "consultant."),
    "psii": ("Patient safety incident response team", "PSII", ""),
}

# The action plan: what each theme's actions set out to do.
ACTION_WORDS = {
    "deteriorating_patient": "Roll out the NEWS2 escalation protocol with a named responder.",
    "sepsis": "Sepsis screening and the one-hour antibiotic standard audited monthly on every "
              "acute ward.",
    "early_warning_scores": "Electronic observations with automatic escalation alerts.",
    "end_of_life_care": "Anticipatory medicines prescribed when dying is recognised, audited "
                        "quarterly.",
    "recognition_of_end_of_life": "Board rounds to ask daily whether the patient may be dying.",
    "dnacpr_decisions": "DNACPR discussions with families recorded in the shared record.",
    "advance_care_planning": "Treatment escalation plans for every patient over 80 at admission.",
    "discharge": "Discharge summaries to list every change to medicines.",
    "handover_and_transfer": "A written handover template for every ward transfer.",
    "delays_in_access": "A weekend CT service and a porter for urgent imaging.",
    "frailty": "Comprehensive geriatric assessment within 72 hours for frail patients.",
    "medication": "Pharmacist review of anticoagulation after every procedure.",
    "communication_with_patients_and_families": "A named contact for families of patients who "
                                                "are seriously ill.",
}
LEADS = ("Dr P Lead", "Ms Q Matron", "Mr R Director", "Dr S Guardian", "Ms T Improvement")
PROGRESS = (
    "Pilot on two wards agreed; the audit tool is ready.",
    "Pilot running; the first month's audit shows improvement.",
    "Rolled out to the medical wards; the surgical wards are next.",
    "Progress slowed by staff shortages on the wards.",
    "Audit repeated: the standard is met on every ward.",
)
# fmt: on
