"""Who changes what across organisations (issue 16, acceptance review): a commissioner's
pseudonymised client reads its members' action plans and changes only its own organisation's;
a deployment-level administrator, which reads no patient data, makes no client of an
organisation that would (it could read through it), and what it does to an organisation's
clients, refusals included, is in that organisation's audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from app.auth.scopes import Scope
from app.db import Database
from app.models import Organisation
from tests.conftest import Api, MakeApi
from tests.factories import idem


@dataclass
class System:
    icb: uuid.UUID
    trust: uuid.UUID
    site: uuid.UUID
    trust_admin: Api
    site_api: Api
    commissioner: Api
    deployment: Api


async def _organisation(
    database: Database, name: str, kind: str, parent: uuid.UUID | None = None
) -> uuid.UUID:
    async with database.transaction() as session:
        made = Organisation(
            id=uuid.uuid4(), name=name, kind=kind, parent_id=parent, aliases=[], settings={}
        )
        session.add(made)
    return made.id


@pytest.fixture
async def system(database: Database, make_api: MakeApi) -> System:
    icb = await _organisation(database, "Writes ICB", "icb")
    trust = await _organisation(database, "Writes trust", "trust", icb)
    site = await _organisation(database, "Writes site", "site", trust)
    return System(
        icb=icb,
        trust=trust,
        site=site,
        trust_admin=await make_api(organisation_id=trust),
        site_api=await make_api(Scope.actions_read, Scope.actions_write, organisation_id=site),
        commissioner=await make_api(pseudonymised=True, organisation_id=icb),
        deployment=await make_api(deployment_level=True),
    )


async def _plan(api: Api, title: str) -> dict[str, Any]:
    made = await api.post(
        "/v1/action-plans", json={"title": title, "sections": ["Escalation"]}, headers=idem()
    )
    assert made.status_code == 201, made.text
    plan: dict[str, Any] = made.json()
    return plan


async def _action(api: Api, plan: dict[str, Any]) -> dict[str, Any]:
    made = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan["id"],
            "section_id": plan["sections"][0]["id"],
            "reference": "1",
            "action": "Teach NEWS2 escalation on every ward",
            "due_date": "2030-01-31",
        },
        headers=idem(),
    )
    assert made.status_code == 201, made.text
    action: dict[str, Any] = made.json()
    return action


async def test_a_commissioner_changes_its_own_plans_never_its_members(system: System) -> None:
    trusts = await _plan(system.trust_admin, "Trust plan")
    action = await _action(system.trust_admin, trusts)
    # It reads the member's plan (pseudonymised reading of its system) ...
    read = await system.commissioner.get(f"/v1/action-plans/{trusts['id']}")
    assert read.status_code == 200, read.text
    # ... and every change to it or its actions is refused, before anything is written.
    plan_tag = read.headers["ETag"]
    action_tag = (await system.commissioner.get(f"/v1/actions/{action['id']}")).headers["ETag"]
    attempts = [
        ("PATCH", f"/v1/action-plans/{trusts['id']}", {"title": "Renamed by the ICB"}, plan_tag),
        ("POST", f"/v1/action-plans/{trusts['id']}/sections", {"title": "ICB section"}, None),
        ("PATCH", f"/v1/actions/{action['id']}", {"status": 5}, action_tag),
        ("POST", f"/v1/actions/{action['id']}/updates", {"narrative": "Done"}, action_tag),
    ]
    for method, url, body, tag in attempts:
        headers = {"If-Match": tag} if tag else {}
        refused = await system.commissioner.request(method, url, json=body, headers=headers)
        assert refused.status_code == 403, (url, refused.text)
        assert refused.json()["type"].endswith("/not-record-owner"), refused.text
    added = await system.commissioner.post(
        "/v1/actions",
        json={
            "plan_id": trusts["id"],
            "section_id": trusts["sections"][0]["id"],
            "reference": "2",
            "action": "An ICB action in the trust's plan",
            "due_date": "2030-01-31",
        },
        headers=idem(),
    )
    assert added.status_code == 403, added.text
    after = await system.trust_admin.get(f"/v1/action-plans/{trusts['id']}")
    assert after.json()["version"] == trusts["version"]
    assert after.json()["title"] == "Trust plan" and len(after.json()["sections"]) == 1
    kept = await system.trust_admin.get(f"/v1/actions/{action['id']}")
    assert kept.json()["version"] == action["version"] and kept.json()["status"] == action["status"]
    # Its own plan it changes as any plan's owner does.
    own = await _plan(system.commissioner, "ICB system plan")
    own_action = await _action(system.commissioner, own)
    tag = (await system.commissioner.get(f"/v1/actions/{own_action['id']}")).headers["ETag"]
    changed = await system.commissioner.patch(
        f"/v1/actions/{own_action['id']}", json={"status": 3}, headers={"If-Match": tag}
    )
    assert changed.status_code == 200, changed.text


async def test_a_trust_changes_the_plans_of_its_sites(system: System) -> None:
    sites = await _plan(system.site_api, "Site plan")
    read = await system.trust_admin.get(f"/v1/action-plans/{sites['id']}")
    renamed = await system.trust_admin.patch(
        f"/v1/action-plans/{sites['id']}",
        json={"title": "Site plan, as the trust named it"},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert renamed.status_code == 200, renamed.text


async def _audit_actions(api: Api, **params: str) -> list[tuple[str, str]]:
    response = await api.get("/v1/audit-events", params=params)
    assert response.status_code == 200, response.text
    return [(row["action"], row["outcome"]) for row in response.json()["items"]]


async def test_a_deployment_administrator_mints_no_client_that_reads_patient_data(
    system: System, make_api: MakeApi
) -> None:
    trust = str(system.trust)
    for scopes in (["deaths:read"], ["admin"], ["webhooks:manage", "findings:read"]):
        refused = await system.deployment.post(
            "/v1/clients", json={"name": "Minted", "scopes": scopes, "organisation_id": trust}
        )
        assert refused.status_code == 403, refused.text
        problem = refused.json()
        assert problem["type"].endswith("/patient-data-client-refused"), problem
        assert problem["patient_data_scopes"] == [s for s in scopes if s != "webhooks:manage"]
        assert "lfd clients create --organisation" in problem["detail"]
    # Without an organisation named, the client would be the default organisation's.
    unnamed = await system.deployment.post(
        "/v1/clients", json={"name": "Minted", "scopes": ["deaths:read"]}
    )
    assert unnamed.status_code == 403, unnamed.text
    # Clients that reach no patient data it makes and re-keys.
    made = await system.deployment.post(
        "/v1/clients",
        json={
            "name": "Trust integration",
            "scopes": ["webhooks:manage", "events:read", "metrics:read"],
            "organisation_id": trust,
        },
    )
    assert made.status_code == 201, made.text
    integration = made.json()["id"]
    rotated = await system.deployment.post(f"/v1/clients/{integration}/rotate-key", json={})
    assert rotated.status_code == 200, rotated.text
    # A client of the trust that reads patient data: neither a new key nor a public key for
    # it, though it may still expire or revoke it.
    reader = await make_api(Scope.deaths_read, organisation_id=system.trust)
    for path, body in (
        ("rotate-key", {}),
        ("public-keys", {"jwks_url": "https://review-tool.trust.nhs.uk/.well-known/jwks.json"}),
    ):
        refused = await system.deployment.post(f"/v1/clients/{reader.client_id}/{path}", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/patient-data-client-refused")
    assert (await reader.get("/v1/deaths")).status_code == 200  # its key still works
    revoked = await system.deployment.post(f"/v1/clients/{reader.client_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    # The trust's own administrator makes its patient-data clients.
    own = await system.trust_admin.post(
        "/v1/clients", json={"name": "Review tool", "scopes": ["deaths:read", "reviews:write"]}
    )
    assert own.status_code == 201, own.text
    assert own.json()["organisation_id"] == trust

    # All of it is in the trust's audit log, the refusals included; none in another's.
    assert {("client.create", "success"), ("client.rotate_key", "success")} <= set(
        await _audit_actions(system.trust_admin, resource_id=integration)
    )
    assert ("client.rotate_key", "refused") in await _audit_actions(
        system.trust_admin, resource_id=str(reader.client_id)
    )
    created = await _audit_actions(system.trust_admin, action="client.create", outcome="refused")
    assert len(created) == 3  # the three named the trust (the fourth, the default organisation)
    other = await make_api(organisation_id=system.icb)
    assert await _audit_actions(other, resource_id=integration) == []
