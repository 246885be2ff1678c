"""A read-only FHIR R4 view: referrals as Task, deaths as Patient (issue 5, docs/fhir.md)."""
