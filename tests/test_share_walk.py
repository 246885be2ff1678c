"""Every write of the OpenAPI document, by a client of an organisation that a death was shared
with, against that death (issue 16, acceptance review): the shared death's ids in paths and
bodies, its sender's keys in the intake bodies. A share is not a key to the death: each write
is refused (a 403 `not-record-owner` saying what the share allows, where the recipient can
see what it named) unless it is on the explicit list of what a share for review allows, or
makes only the recipient's own records; and nothing of the recording organisation's moves.

The recipient's client holds every scope (admin). The share names the death's LeDeR referral,
so the SJR referral whose id the walk sends is not shared: its review and lease are refused
too. What a share does allow (review, lease, findings) is proved in tests/test_share_work.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from app.db import Database
from app.models import Organisation
from tests.factories import idem, screening_body
from tests.history_records import NDJSON, bundle, history_record
from tests.kit.hl7 import adt
from tests.kit.notifications import notification_body
from tests.kit.pseudonymised import DIED_AT, seed
from tests.kit.walk import PATH_VALUES, WEBHOOK_PREFIX

# The one write a share for review allows that the walk's ids reach: a finding on the death
# (the review and the lease are the shared referral's, which the walk does not name).
ALLOWED = {("post", "/v1/findings")}
# Writes that name nothing of the shared death: they make the recipient's own records (or,
# for an administrator, the deployment's registry and vocabulary), and may succeed.
OWN_RECORDS = {
    ("post", "/v1/action-plans"),
    ("post", "/v1/action-plans/import"),
    ("post", "/v1/webhook-endpoints"),
    ("post", "/v1/themes"),
    ("patch", "/v1/themes/{theme_id}"),  # a theme of the vocabulary no finding of it uses
    ("post", "/v1/organisations"),
    ("post", "/v1/clients"),
    ("post", "/oauth2/token"),
    ("post", "/v1/referrals/claim"),  # its queue: nothing of the shared death's but its share
    ("post", "/v1/programmes"),  # a review programme of its own (issue 17)
    ("post", "/v1/theme-mappings"),
}
# Writes that name another record of the recording organisation's, which the share does not
# open: refused as unknown (404, or 422 at the field naming it) or as another's (403).
UNSHARED = {
    "/v1/action-plans/{plan_id}",
    "/v1/action-plans/{plan_id}/sections",
    "/v1/actions",
    "/v1/actions/{action_id}",
    "/v1/actions/{action_id}/updates",
    "/v1/actions/{action_id}/findings",
    "/v1/webhook-endpoints/{endpoint_id}",
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    "/v1/webhook-endpoints/{endpoint_id}/test",
    "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
    "/v1/clients/{client_id}",
    "/v1/clients/{client_id}/revoke",
    "/v1/clients/{client_id}/expire",
    "/v1/clients/{client_id}/rotate-key",
    "/v1/clients/{client_id}/public-keys",
    "/v1/clients/{client_id}/public-keys/{key_id}/retire",
    "/v1/clients/{client_id}/users",
    "/v1/organisations/{organisation_id}",
    # The recording organisation's review programme, which holds the shared death's case: a
    # share opens the death, never the programme.
    "/v1/programmes/{programme_id}",
    "/v1/programmes/{programme_id}/recommendations",
    "/v1/programmes/{programme_id}/cohort",
    "/v1/programmes/{programme_id}/cases/{case_id}/review",
    "/v1/programmes/{programme_id}/cases/{case_id}/answers",
    "/v1/programmes/{programme_id}/cases/{case_id}/second-opinions",
    "/v1/programmes/{programme_id}/cases/{case_id}/exclude",
    "/v1/theme-mappings/{mapping_id}",
}
UNSHARED_REFUSALS = {400, 403, 404, 409, 412, 422}
BODY_IDS = {
    "death_id": "death_id",
    "referral_id": "referral_id",
    "review_id": "review_id",
    "finding_id": "finding_id",
    "plan_id": "plan_id",
    "action_id": "action_id",
    "screening_id": "screening_id",
    "other_death_id": "other_death_id",
    "finding_ids": "finding_id",
}
# What the recording organisation reads before and after the walk: every record of the death
# and its neighbours, whole (a version, a lease, a status, a list that grew would show).
SNAPSHOTS = (
    "/v1/deaths/{death_id}",
    "/v1/deaths/{other_death_id}",
    "/v1/deaths/{death_id}/shares",
    "/v1/screenings/{screening_id}",
    "/v1/screenings/{screening_id}/versions",
    "/v1/screenings/{screening_id}/referral-judgement",
    "/v1/screenings/{screening_id}/referral-judgement/versions",
    "/v1/referrals/{referral_id}",
    "/v1/referrals/{referral_id}/history",
    "/v1/referrals/{leder_id}",
    "/v1/referrals/{leder_id}/history",
    "/v1/reviews/{review_id}",
    "/v1/reviews/{review_id}/history",
    "/v1/findings/{finding_id}",
    "/v1/death-notifications/{notification_id}",
    "/v1/action-plans/{plan_id}",
    "/v1/actions/{action_id}",
    "/v1/webhook-endpoints/{endpoint_id}",
)


def _with_ids(value: Any, ids: dict[str, str], key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _with_ids(v, ids, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_ids(item, ids, key) for item in value]
    if key in BODY_IDS and isinstance(value, str):
        return ids[BODY_IDS[key]]
    return value


def _example(spec: dict[str, Any], operation: dict[str, Any]) -> tuple[str, Any] | None:
    for media, body in operation.get("requestBody", {}).get("content", {}).items():
        example = body.get("example")
        name = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
        if example is None and name:
            examples = spec["components"]["schemas"][name].get("examples") or []
            example = examples[0] if examples else None
        return media, example
    return None


async def _snapshots(api: Any, values: dict[str, str]) -> dict[str, Any]:
    found = {}
    for template in SNAPSHOTS:
        response = await api.get(template.format(**values))
        assert response.status_code == 200, (template, response.text)
        found[template] = (response.json(), response.headers.get("ETag"))
    return found


def _intake(values: dict[str, str], hl7: str, spec: dict[str, Any]) -> dict[Any, Any]:
    """The intake writes, each under a sender's key the shared death holds."""
    screening = screening_body(
        death={"source_system": "test-me-office", "source_reference": values["source_reference"]}
    )
    fhir = _example(spec, spec["paths"]["/fhir/r4"]["post"])
    assert fhir is not None
    transaction = dict(fhir[1])
    transaction["identifier"] = {"system": "test-pas", "value": values["pas_reference"]}
    died = datetime.fromisoformat(DIED_AT)
    record = history_record(died, system="test-me-office", reference=values["source_reference"])
    return {
        ("post", "/v1/screenings"): ("application/json", screening),
        ("post", "/v1/screenings/batch"): ("application/json", {"screenings": [screening]}),
        ("post", "/v1/death-notifications"): (
            "application/json",
            notification_body(source_system="test-pas", source_reference=values["pas_reference"]),
        ),
        ("post", "/v1/hl7v2/adt"): ("application/hl7-v2", hl7),
        ("post", "/fhir/r4"): ("application/fhir+json", transaction),
        ("post", "/v1/history/imports"): (NDJSON["Content-Type"], bundle([record])),
    }


# The intakes that refuse inside their answer: an HL7 AE (a 422), a batch's item, an import's
# record (the job, read after the walk).
INSIDE = {"/v1/hl7v2/adt", "/v1/screenings/batch", "/v1/history/imports"}


def _refused_inside(path: str, response: Any) -> bool:
    if path == "/v1/hl7v2/adt":
        return "|AE|" in response.text and "shared with your organisation" in response.text
    if path == "/v1/screenings/batch":
        items = response.json()["items"]
        return all(item["problem"]["type"].endswith("/not-record-owner") for item in items)
    return response.status_code == 202


async def test_a_share_lets_its_recipient_change_nothing_it_does_not_allow(
    app_factory: Any, make_api: Any, database: Database
) -> None:
    app, http = await app_factory(webhook_allowed_urls=[WEBHOOK_PREFIX])
    ids: dict[str, uuid.UUID] = {}
    async with database.transaction() as session:
        for name in ("Share walk owner", "Share walk recipient"):
            made = Organisation(id=uuid.uuid4(), name=name, kind="trust", aliases=[], settings={})
            session.add(made)
            ids[name] = made.id
    owner = await make_api(client=http, organisation_id=ids["Share walk owner"])
    recipient = await make_api(client=http, organisation_id=ids["Share walk recipient"])
    seeded = await seed(owner)
    values = dict(seeded.ids)
    values["source_reference"] = seeded.source_reference
    values["pas_reference"] = f"PAS-{seeded.source_reference}"
    death = await owner.get(f"/v1/deaths/{values['death_id']}")
    values["leder_id"] = next(r["id"] for r in death.json()["referrals"] if r["route"] == "leder")
    # The death notified by the owner's PAS over HL7, and the same person recorded again
    # (flagged as a possible duplicate of the shared death): the recipient sends both on.
    died = datetime.fromisoformat(DIED_AT)
    hl7 = adt(nhs_number=seeded.nhs_number, died=died)
    notified = await owner.post(
        "/v1/hl7v2/adt", content=hl7.encode(), headers={"Content-Type": "application/hl7-v2"}
    )
    assert "|AA|" in notified.text, notified.text
    again = screening_body(died_at=died, death={"nhs_number": seeded.nhs_number})
    other = await owner.post("/v1/screenings", json=again, headers=idem())
    assert other.status_code == 201, other.text
    values["other_death_id"] = other.json()["death"]["id"]
    endpoint = await owner.post(
        "/v1/webhook-endpoints", json={"url": f"{WEBHOOK_PREFIX}owner"}, headers=idem()
    )
    values["endpoint_id"] = endpoint.json()["id"]
    values["delivery_id"] = (
        await owner.post(f"/v1/webhook-endpoints/{values['endpoint_id']}/test")
    ).json()["id"]
    values["client_id"] = str(owner.client_id)
    values["key_id"] = str(uuid.uuid4())
    values["organisation_id"] = str(ids["Share walk owner"])
    values["import_id"] = str(uuid.uuid4())
    theme = await owner.post(
        "/v1/themes", json={"name": f"Share walk {uuid.uuid4().hex[:8]}"}, headers=idem()
    )
    assert theme.status_code == 201, theme.text
    values["theme_id"] = theme.json()["id"]
    shared = await owner.post(
        f"/v1/deaths/{values['death_id']}/shares",
        json={
            "organisation": str(ids["Share walk recipient"]),
            "purpose": "review",
            "referral_id": values["leder_id"],
        },
    )
    assert shared.status_code == 201, shared.text
    values["share_id"] = shared.json()["id"]
    before = await _snapshots(owner, values)

    spec = app.openapi()
    intake = _intake(values, hl7, spec)
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"post", "put", "patch", "delete"}
    ]
    outcomes: Counter[str] = Counter()
    walked: set[tuple[str, str]] = set()
    imports: list[str] = []
    findings: list[str] = []
    for path, method, operation in operations:
        url = path
        for name in re.findall(r"\{([^}]+)\}", path):
            if name not in PATH_VALUES:
                pytest.fail(f"{path}: no value for {{{name}}}; add it to PATH_VALUES")
            url = url.replace(f"{{{name}}}", values[PATH_VALUES[name]])
        headers = {"If-Match": "*", **idem()}
        kwargs: dict[str, Any] = {}
        example = intake.get((method, path)) or _example(spec, operation)
        if example is not None:
            media, content = example
            if (method, path) not in intake:
                content = _with_ids(content, values)
            if isinstance(content, bytes):
                kwargs["content"] = content
            elif isinstance(content, str):
                kwargs["content"] = content.encode()
            else:
                kwargs["content"] = json.dumps(content).encode()
            headers["Content-Type"] = media
        response = await recipient.request(method.upper(), url, headers=headers, **kwargs)
        label = f"{method.upper()} {path}: {response.status_code} {response.text[:400]}"
        assert response.status_code < 500, label
        if (method, path) in ALLOWED:
            assert response.status_code == 201, label
            findings.append(response.json()["id"])
            outcome = "allowed"
        elif (method, path) in OWN_RECORDS:
            outcome = "own" if response.status_code < 300 else "refused"
        elif path in UNSHARED:
            assert response.status_code in UNSHARED_REFUSALS, label
            outcome = "refused"
        elif path in INSIDE:
            assert _refused_inside(path, response), label
            if path == "/v1/history/imports":
                imports.append(response.headers["Location"])
            outcome = "refused inside"
        else:
            # A record of the shared death, which the recipient reads: refused for what it is.
            assert response.status_code == 403, label
            problem = response.json()
            if "issue" in problem:  # FHIR: an OperationOutcome
                assert "shared with your organisation" in json.dumps(problem), label
            else:
                assert problem["type"].endswith("/not-record-owner"), label
                assert problem["share_purposes"] == ["review"], label
                assert problem["share_allows"] == ["read", "review", "lease", "findings"], label
                assert problem["shared_referral_ids"] == [values["leder_id"]], label
            outcome = "not-record-owner"
        outcomes[outcome] += 1
        walked.add((method, path))

    assert walked == {(method, path) for path, method, _ in operations}
    assert not (ALLOWED | OWN_RECORDS) - walked, "a listed operation is gone: update the lists"
    for location in imports:
        job = await _finished(recipient, location)
        assert job["created"] == 0 and job["refused"] == 1, job
        assert [e["code"] for e in job["problems"][0]["errors"]] == ["source_key_taken"], job
    # Nothing of the recording organisation's moved; the findings the share allowed are there.
    after = await _snapshots(owner, values)
    assert after == before
    listed = await owner.get("/v1/findings", params={"death_id": values["death_id"]})
    assert set(findings) <= {item["id"] for item in listed.json()["items"]}
    print(f"walked {len(walked)} writes: {dict(outcomes)}")
    assert outcomes["not-record-owner"] >= 23


async def _finished(api: Any, location: str) -> dict[str, Any]:
    import asyncio

    for _ in range(2000):
        job: dict[str, Any] = (await api.get(location)).json()
        if job["status"] in {"completed", "refused", "failed"}:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError("the import did not finish")
