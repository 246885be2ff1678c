"""Every operation in the OpenAPI document, called by a client of organisation A against the
data of organisation B (issue 16): B's ids in the path, in filters and in bodies, every
format, the feed and webhooks. Each answer is a 404 (or another refusal) or shows nothing of
B's; nothing of B's changes; the walk counts every operation it made.

B's patient is seeded with identifiers everywhere (tests/kit/pseudonymised.seed), by an
administrator of B; A's client holds every scope (admin) in its own organisation.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.db import Database
from app.models import Organisation, WebhookDelivery
from app.webhooks.fanout import fan_out
from tests.factories import idem
from tests.kit.pseudonymised import seed
from tests.kit.walk import (
    LIST_FILTERS,
    PATH_VALUES,
    SEEDED_YEAR,
    WEBHOOK_PREFIX,
    _body_text,
    _decoded_cursors,
    _variants,
)

# Keys of a request body's example that name a record: replaced by B's record of that kind.
BODY_IDS = {
    "death_id": "death_id",
    "referral_id": "referral_id",
    "review_id": "review_id",
    "finding_id": "finding_id",
    "plan_id": "plan_id",
    "action_id": "action_id",
    "screening_id": "screening_id",
    "other_death_id": "death_id",
    "finding_ids": "finding_id",
    "programme_id": "programme_id",
}
# What B's data may not show A (besides its identifiers): the ids of its records.
B_RECORDS = (
    "death_id",
    "notification_id",
    "screening_id",
    "referral_id",
    "review_id",
    "finding_id",
    "plan_id",
    "action_id",
    "import_id",
    "case_reference",
    "programme_id",
    "case_id",
    "mapping_id",
)
REFUSALS = {304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 428}
# B's records whose version must not move while A walks: (path, id key).
WATCHED = (
    ("/v1/deaths/{}", "death_id"),
    ("/v1/screenings/{}", "screening_id"),
    ("/v1/referrals/{}", "referral_id"),
    ("/v1/reviews/{}", "review_id"),
    ("/v1/findings/{}", "finding_id"),
    ("/v1/action-plans/{}", "plan_id"),
    ("/v1/actions/{}", "action_id"),
    ("/v1/programmes/{}", "programme_id"),
    ("/v1/webhook-endpoints/{}", "endpoint_id"),
)


def _with_b_ids(value: Any, ids: dict[str, str], key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _with_b_ids(v, ids, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_b_ids(item, ids, key) for item in value]
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


def _shown(response: Any) -> str:
    """What an answer shows, less what merely echoes the caller's own request: a problem's
    `instance` (the path asked for) and a FHIR Bundle's `link`s (the search asked for)."""
    text = _body_text(response)
    if response.headers.get("content-type", "").split(";")[0].endswith("json"):
        try:
            document = response.json()
        except ValueError:
            return text
        if isinstance(document, dict):
            document.pop("instance", None)
            if document.get("resourceType") == "Bundle":
                document.pop("link", None)
        text = (
            json.dumps(document)
            + "\n"
            + "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "location")
        )
    return text


async def _versions(api: Any, ids: dict[str, str]) -> dict[str, Any]:
    found = {}
    for template, key in WATCHED:
        response = await api.get(template.format(ids[key]))
        assert response.status_code == 200, (template, response.text)
        found[key] = (response.json().get("version"), response.headers.get("ETag"))
    return found


async def test_a_client_of_one_organisation_reaches_nothing_of_another(
    app_factory: Any, make_api: Any, database: Database
) -> None:
    app, http = await app_factory(webhook_allowed_urls=[WEBHOOK_PREFIX])
    ids: dict[str, uuid.UUID] = {}
    async with database.transaction() as session:
        for name in ("Walk trust A", "Walk trust B", "Walk practice C"):
            made = Organisation(id=uuid.uuid4(), name=name, kind="trust", aliases=[], settings={})
            session.add(made)
            ids[name] = made.id
    a = await make_api(client=http, organisation_id=ids["Walk trust A"])
    b = await make_api(client=http, organisation_id=ids["Walk trust B"])
    seeded = await seed(b)
    values = dict(seeded.ids)
    b_endpoint = await b.post(
        "/v1/webhook-endpoints", json={"url": f"{WEBHOOK_PREFIX}b"}, headers=idem()
    )
    assert b_endpoint.status_code == 201, b_endpoint.text
    values["endpoint_id"] = b_endpoint.json()["id"]
    b_test = await b.post(f"/v1/webhook-endpoints/{values['endpoint_id']}/test")
    values["delivery_id"] = b_test.json()["id"]
    values["client_id"] = str(b.client_id)
    shared = await b.post(
        f"/v1/deaths/{values['death_id']}/shares",
        json={"organisation": str(ids["Walk practice C"]), "purpose": "review"},
    )
    assert shared.status_code == 201, shared.text
    values["share_id"] = shared.json()["id"]
    values["key_id"] = str(uuid.uuid4())
    values["organisation_id"] = str(ids["Walk trust B"])  # A may read it, never change it
    from tests.history_records import bundle, history_record

    imported = await b.post(
        "/v1/history/imports",
        content=bundle([history_record(datetime(2019, 3, 2, 10, 5, tzinfo=UTC))]),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 202, imported.text
    values["import_id"] = imported.json()["id"]
    a_endpoint = await a.post(
        "/v1/webhook-endpoints", json={"url": f"{WEBHOOK_PREFIX}a"}, headers=idem()
    )
    assert a_endpoint.status_code == 201, a_endpoint.text
    before = await _versions(b, values)
    needles = seeded.needles + [values[key] for key in B_RECORDS]

    spec = app.openapi()
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    # The audit log first: A's own refused attempts below are audited in A's name, with the
    # ids A asked for (its own request, not B's data).
    operations.sort(key=lambda entry: not entry[0].startswith("/v1/audit"))
    outcomes: Counter[int] = Counter()
    walked: set[tuple[str, str]] = set()
    for path, method, operation in operations:
        url = path
        for name in re.findall(r"\{([^}]+)\}", path):
            if name not in PATH_VALUES:
                pytest.fail(f"{path}: no value for {{{name}}}; add it to PATH_VALUES")
            url = url.replace(f"{{{name}}}", values[PATH_VALUES[name]])
        template, _ = LIST_FILTERS.get(path, ({}, None))
        params = {name: value.format(**values) for name, value in template.items()}
        takes = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if "period" in takes:
            params["period"] = SEEDED_YEAR
        if "death_id" in takes:
            params["death_id"] = values["death_id"]
        headers = {"If-Match": "*", **idem()}
        kwargs: dict[str, Any] = {}
        example = _example(spec, operation)
        if example is not None:
            media, content = example
            content = _with_b_ids(content, values)
            if media.endswith("json") and not isinstance(content, str):
                kwargs["content"] = json.dumps(content).encode()
            elif isinstance(content, str):
                kwargs["content"] = content.encode()
            else:
                kwargs["content"] = b""
            headers["Content-Type"] = media
        variants = _variants(spec, operation) if method == "get" else [{}]
        for variant in variants:
            response = await a.request(
                method.upper(), url, params={**params, **variant}, headers=headers, **kwargs
            )
            label = f"{method.upper()} {url} {variant or ''}".strip()
            assert response.status_code < 500, f"{label}: {response.status_code}"
            assert response.status_code in REFUSALS or response.status_code < 300, label
            if response.status_code < 300:
                leaks = [n for n in needles if n.lower() in _shown(response).lower()]
                leaks += [n for n in needles if n.lower() in _decoded_cursors(response).lower()]
                assert not leaks, f"{label} shows B's {leaks}: {_shown(response)[:3000]}"
            outcomes[response.status_code] += 1
        walked.add((method, path))

    # Every operation of the document was called, and nothing of B's moved.
    assert walked == {(method, path) for path, method, _ in operations}
    assert await _versions(b, values) == before
    # The feed and webhooks: A's endpoint gets A's events, never B's.
    await fan_out(app.state.database)
    async with database.transaction() as session:
        bodies = (
            await session.scalars(
                select(WebhookDelivery.body).where(
                    WebhookDelivery.endpoint_id == uuid.UUID(a_endpoint.json()["id"])
                )
            )
        ).all()
    assert not [body for body in bodies if values["death_id"] in body]
    print(f"walked {len(walked)} operations, {sum(outcomes.values())} calls: {dict(outcomes)}")
    assert len(walked) >= 100
