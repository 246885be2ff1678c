"""Every event type the service publishes, for the change feed's `types` filter and for webhook
subscriptions. tests/test_change_feed.py proves that every type the code emits is listed."""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "death.created": "A death was recorded (by its first notification or screening).",
    "death.notified": "A trust system notified a death (JSON, HL7 v2 ADT or FHIR); the "
    "resource is the notification. A first notification also raises death.created.",
    "death.notification_corrected": "A sending system corrected a notification (the same key, "
    "the same patient, other details) and the correction was applied to the death awaiting "
    "screening; the resource is the notification, `changed` the death's fields it changed.",
    "death.correction_not_applied": "A sending system corrected a notification of a death "
    "already screened: recorded, not applied (the ME office corrects the death); the "
    "resource is the notification.",
    "death.claimed": "A death awaiting screening was claimed (leased) on the ME worklist.",
    "death.released": "A claim on the ME worklist was released.",
    "death.updated": "A death's details were corrected.",
    "death.duplicate_reviewed": "A death flagged as a possible duplicate person was reviewed "
    "(same person: linked; different people: the flag cleared). On both deaths.",
    "death.shared": "A death was shared with another organisation for a purpose and period "
    "(the resource is the share); its clients see the death until the share ends.",
    "death.share_revoked": "A share of a death with another organisation was ended early.",
    "screening.recorded": "A medical examiner screening was recorded.",
    "screening.amended": "A screening was amended (a new version).",
    "screening.mccd_rejected": "The registrar rejected a screening's MCCD (a rejection was "
    "added to the scrutiny).",
    "screening.bereaved_contact_logged": "A contact with the bereaved was added to a "
    "screening's contact log.",
    "screening.bereaved_concern_raised": "The bereaved raised a concern in a logged contact "
    "(the bereaved-concern referral rule applies).",
    "screening.referral_judged": "A governance reviewer judged the medical examiner's referral "
    "decision on a screening (appropriate, possibly missed, should have been referred): the "
    "feedback for the ME office.",
    "referral.created": "A death was referred for review by a route.",
    "referral.updated": "A referral's reasons changed (after an amended screening).",
    "referral.claimed": "A referral was claimed (leased) by a reviewer's system.",
    "referral.lease_renewed": "A claim's lease was renewed.",
    "referral.released": "A claim was released; the referral is back in the queue.",
    "referral.assigned": "A referral was assigned to a named reviewer.",
    "referral.started": "Work on a referral started (a draft review was saved).",
    "referral.held": "A referral was put on hold.",
    "referral.resumed": "A referral on hold was resumed.",
    "referral.declined": "A referral was declined.",
    "referral.cancelled": "A referral was cancelled.",
    "referral.completed": "A referral's review was submitted.",
    "review.drafted": "A review draft was saved.",
    "review.submitted": "A review was submitted.",
    "review.amended": "A submitted review was amended (a new version).",
    "finding.recorded": "A finding was recorded against a death and its review.",
    "finding.updated": "A finding was changed.",
    "theme.created": "A theme was added.",
    "theme.updated": "A theme was renamed or retired.",
    "action_plan.created": "An action plan was created (or imported).",
    "action_plan.updated": "An action plan was changed.",
    "action.created": "An action was added to a plan.",
    "action.updated": "An action's status, progress, dates or lead changed.",
    "action.overdue": "An open action passed its due date (raised once per due date).",
    "programme.created": "A review programme was defined (a draft until its cohort is built).",
    "programme.updated": "A review programme's definition, questions, recommendations, action "
    "plan approval or status changed.",
    "programme.cohort_built": "A review programme's cohort was built or grew: deaths joined, "
    "the sample was topped up, programme referrals were made and their deaths went under "
    "review. One event per pass (no referral.created or death.updated per referral): read the "
    "new work from GET /v1/referrals?programme_id=.",
    "programme_case.answered": "Answers to a programme's questions, or the relatives' view, "
    "were recorded for a case.",
    "programme_case.second_opinion_requested": "A programme reviewer asked for a second opinion "
    "on a case (a programme referral of its own).",
    "programme_case.excluded": "A case was taken out of a programme's cohort, with a reason.",
    "theme_mapping.created": "Two themes were mapped as meaning the same thing (for comparing "
    "programmes' themes).",
    "theme_mapping.deleted": "A theme mapping was removed.",
    "history.imported": "A batch of a history import was committed: one event per batch, "
    "not one per record (its counts and case-number range: GET the import).",
}
