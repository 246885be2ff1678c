"""The scopes a client can hold (DESIGN.md section 8)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Scope(StrEnum):
    screenings_write = "screenings:write"
    notifications_write = "notifications:write"
    worklist_claim = "worklist:claim"
    deaths_read = "deaths:read"
    deaths_write = "deaths:write"
    referrals_read = "referrals:read"
    referrals_claim = "referrals:claim"
    reviews_write = "reviews:write"
    findings_read = "findings:read"
    findings_write = "findings:write"
    actions_read = "actions:read"
    actions_write = "actions:write"
    reports_read = "reports:read"
    programmes_read = "programmes:read"
    programmes_write = "programmes:write"
    events_read = "events:read"
    webhooks_manage = "webhooks:manage"
    audit_read = "audit:read"
    metrics_read = "metrics:read"
    admin = "admin"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.screenings_write: "Post and amend medical examiner screenings (creates deaths).",
    Scope.notifications_write: "Notify deaths from trust systems (JSON, HL7 v2, FHIR; creates "
    "deaths awaiting screening).",
    Scope.worklist_claim: "Claim, renew and release deaths on the medical examiner worklist.",
    Scope.deaths_read: "Read deaths with their screening and referrals.",
    Scope.deaths_write: "Correct a death's details.",
    Scope.referrals_read: "Read the referral queues.",
    Scope.referrals_claim: "Claim, renew and release referrals.",
    Scope.reviews_write: "Post reviews.",
    Scope.findings_read: "Read findings and themes.",
    Scope.findings_write: "Record findings and link them to actions.",
    Scope.actions_read: "Read action plans and actions.",
    Scope.actions_write: "Create and update action plans and actions.",
    Scope.reports_read: "Read reports (the review programmes' reports included).",
    Scope.programmes_read: "Read review programmes: their definitions, cohorts and cases, "
    "and the theme mappings.",
    Scope.programmes_write: "Define review programmes, build their cohorts, record their "
    "recommendations and plan approval, and edit the theme mappings.",
    Scope.events_read: "Read the change feed.",
    Scope.webhooks_manage: "Manage webhook endpoints.",
    Scope.audit_read: "Read the audit log.",
    Scope.metrics_read: "Read the Prometheus metrics at /metrics (no patient data).",
    Scope.admin: "Administer the service (implies every other scope).",
}


PSEUDONYMISED_SCOPES: frozenset[Scope] = frozenset(
    {
        Scope.deaths_read,
        Scope.referrals_read,
        Scope.findings_read,
        Scope.actions_read,
        Scope.actions_write,
        Scope.reports_read,
        Scope.events_read,
        Scope.webhooks_manage,
    }
)
"""The only scopes a pseudonymised client (a commissioner) can hold: reads, which it gets
pseudonymised, and writes that carry no patient data (action plans, its own webhook
endpoints). Writing screenings, deaths, reviews or findings means sending a patient's
identifiers or free text about their care; claiming leases the review work of the trust's
staff; the audit log and `admin` reach everything (docs/pseudonymisation.md)."""


ADMINISTRATIVE_SCOPES: frozenset[Scope] = frozenset(
    {Scope.events_read, Scope.webhooks_manage, Scope.metrics_read}
)
"""The scopes that reach no patient data, read or written: the change feed and webhooks carry
thin events (ids, types and the names of changed fields, never a value), the metrics counts.
Every other scope reads or writes patient data, `admin` included (it implies every scope), and
so does a pseudonymised client's `deaths:read` (pseudonymised data is still a patient's). A
deployment-level administrator, which reads no patient data, makes or re-keys clients of an
organisation with these scopes only (app.clients.router; docs/organisations.md)."""


def patient_data_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes among ``scopes`` that reach patient data (all but ADMINISTRATIVE_SCOPES)."""
    administrative = {scope.value for scope in ADMINISTRATIVE_SCOPES}
    return sorted({scope for scope in scopes if scope not in administrative})
