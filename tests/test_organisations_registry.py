"""The organisation registry over HTTP (issue 16, item 1): ODS codes by their real formats per
kind, the parent rules, aliases unique across the registry, look-ups by code and alias, PATCH
with If-Match, who may write, and every write audited and evented."""

from __future__ import annotations

import asyncio
import random
import string
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.scopes import Scope
from app.config import Settings
from app.db import Database
from app.models import AuditEvent, Death, HistoryRecord, Organisation, OutboxEvent
from tests.conftest import owner_url
from tests.factories import idem, screening_body
from tests.history_records import bundle, history_record
from tests.kit.notifications import notification_body, screening_of
from tests.kit.organisations import (
    bound_client,
    icb_code,
    practice_code,
    register,
    remember_codes,
    sub_icb_code,
    trust_code,
    unique_name,
)

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
async def _codes_in_use(database) -> None:
    await remember_codes(database)


def pointers(response) -> set[str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {error["pointer"] for error in response.json().get("errors") or []}


async def test_a_trust_is_registered_read_and_looked_up_by_code_alias_and_search(
    api, http, database
) -> None:
    code = trust_code()
    name = unique_name("Leicester Hospitals NHS Trust")
    alias = f"U.H.L. {uuid.uuid4().hex[:6]}"
    created = await api.post(
        "/v1/organisations",
        json={"ods_code": f" {code.lower()} ", "name": name, "kind": "trust", "aliases": [alias]},
        headers=idem(),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["ods_code"] == code and body["kind"] == "trust" and body["version"] == 1
    assert body["aliases"] == [alias] and body["is_default"] is False
    assert created.headers["Location"] == f"/v1/organisations/{body['id']}"
    tag = created.headers["ETag"]

    read = await api.get(f"/v1/organisations/{body['id']}")
    assert read.status_code == 200 and read.json() == body and read.headers["ETag"] == tag
    unchanged = await api.get(f"/v1/organisations/{body['id']}", headers={"If-None-Match": tag})
    assert unchanged.status_code == 304

    by_code = await api.get("/v1/organisations", params={"ods_code": code.lower()})
    assert [item["id"] for item in by_code.json()["items"]] == [body["id"]]
    # An alias matches without regard to case, spacing or punctuation.
    spelled = alias.replace(".", "-").lower().replace(" ", "  ")
    by_alias = await api.get("/v1/organisations", params={"alias": spelled})
    assert [item["id"] for item in by_alias.json()["items"]] == [body["id"]]
    for q in (name.split()[-1].upper(), code, alias.split()[-1]):
        found = await api.get("/v1/organisations", params={"q": q})
        assert body["id"] in {item["id"] for item in found.json()["items"]}, q
    missing = await api.get("/v1/organisations", params={"alias": "no such alias anywhere"})
    assert missing.status_code == 200 and missing.json() == {"items": [], "next_cursor": None}


async def test_any_client_reads_the_registry_but_only_admin_writes_it(api, make_api) -> None:
    created = await register(api, name=unique_name("Hospice"), kind="hospice")
    reader = await make_api(Scope.events_read)
    assert (await reader.get(f"/v1/organisations/{created['id']}")).status_code == 200
    assert (await reader.get("/v1/organisations", params={"kind": "hospice"})).status_code == 200
    commissioner = await make_api(pseudonymised=True)
    assert (await commissioner.get(f"/v1/organisations/{created['id']}")).status_code == 200
    refused = await reader.post(
        "/v1/organisations", json={"name": "X", "kind": "other"}, headers=idem()
    )
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    patched = await reader.patch(
        f"/v1/organisations/{created['id']}", json={"name": "Y"}, headers={"If-Match": "*"}
    )
    assert patched.status_code == 403


async def test_ods_codes_are_checked_against_the_kind(api) -> None:
    cases = [
        ("trust", "Q12"),  # an ICB's shape
        ("trust", "RWE01"),  # a site's
        ("icb", "RWE"),
        ("sub_icb", "4V"),
        ("sub_icb", "D4U1"),  # a merged CCG's is five characters, letters and digits alternating
        ("sub_icb", "DD4U1"),
        ("gp_practice", "C8200"),
        ("gp_practice", "12345A"),
        ("independent_provider", "RWE"),
        ("other", "NOT-A-CODE"),
    ]
    for kind, code in cases:
        response = await api.post(
            "/v1/organisations",
            json={"ods_code": code, "name": "Somewhere", "kind": kind},
            headers=idem(),
        )
        assert response.status_code == 422, (kind, code, response.text)
        assert pointers(response) == {"/ods_code"}, (kind, code)
    # A sub-ICB location of CCGs merged before 2022 (D4U1Y, NHS Frimley ICB's) is a real code.
    merged = "".join(
        random.choice(string.ascii_uppercase if index % 2 == 0 else string.digits)
        for index in range(5)
    )
    for kind, code in [("icb", icb_code()), ("sub_icb", sub_icb_code()), ("sub_icb", merged)]:
        assert (await register(api, ods_code=code, name=unique_name(kind), kind=kind))[
            "ods_code"
        ] == code
    # A local authority, a hospice, a trust may have no code at all.
    for kind in ("local_authority", "hospice", "trust"):
        assert (await register(api, name=unique_name(kind), kind=kind))["ods_code"] is None


async def test_a_site_belongs_to_the_trust_its_code_names(api) -> None:
    trust_ods = trust_code()
    trust = await register(api, ods_code=trust_ods, name=unique_name("Trust"), kind="trust")
    # The trust is found from the site's code when no parent is given.
    site = await register(api, ods_code=f"{trust_ods}01", name=unique_name("Site"), kind="site")
    assert site["parent_id"] == trust["id"]
    other = await register(api, ods_code=trust_code(), name=unique_name("Other"), kind="trust")
    wrong_trust = await api.post(
        "/v1/organisations",
        json={
            "ods_code": f"{trust_ods}02",
            "name": "Elsewhere",
            "kind": "site",
            "parent_id": other["id"],
        },
        headers=idem(),
    )
    assert wrong_trust.status_code == 422 and pointers(wrong_trust) == {"/ods_code"}
    orphan_code = trust_code()
    orphan = await api.post(
        "/v1/organisations",
        json={"ods_code": f"{orphan_code}01", "name": "Nowhere", "kind": "site"},
        headers=idem(),
    )
    assert orphan.status_code == 422 and pointers(orphan) == {"/parent_id"}
    assert orphan_code in orphan.json()["errors"][0]["detail"]
    icb = await register(api, ods_code=icb_code(), name=unique_name("ICB"), kind="icb")
    under_icb = await api.post(
        "/v1/organisations",
        json={"name": "Odd site", "kind": "site", "parent_id": icb["id"]},
        headers=idem(),
    )
    assert under_icb.status_code == 422 and pointers(under_icb) == {"/parent_id"}


async def test_parents_follow_the_kinds(api) -> None:
    icb = await register(api, ods_code=icb_code(), name=unique_name("ICB"), kind="icb")
    sub = await register(
        api, ods_code=sub_icb_code(), name=unique_name("Sub"), kind="sub_icb", parent_id=icb["id"]
    )
    trust = await register(
        api,
        ods_code=trust_code(),
        name=unique_name("Trust"),
        kind="trust",
        parent_ods_code=icb["ods_code"],
    )
    assert trust["parent_id"] == icb["id"]
    for parent in (icb, sub):
        practice = await register(
            api,
            ods_code=practice_code(),
            name=unique_name("Practice"),
            kind="gp_practice",
            parent_id=parent["id"],
        )
        assert practice["parent_id"] == parent["id"]
    refused = [
        {"kind": "gp_practice", "parent_id": trust["id"]},
        {"kind": "trust", "parent_id": sub["id"]},
        {"kind": "icb", "parent_id": icb["id"]},
        {"kind": "mental_health_provider", "parent_id": trust["id"]},
        {"kind": "trust", "parent_id": str(uuid.uuid4())},
    ]
    for body in refused:
        response = await api.post(
            "/v1/organisations", json={"name": "Somewhere", **body}, headers=idem()
        )
        assert response.status_code == 422, (body, response.text)
        assert pointers(response) == {"/parent_id"}, body
    unknown_code = await api.post(
        "/v1/organisations",
        json={"name": "Somewhere", "kind": "trust", "parent_ods_code": icb_code()},
        headers=idem(),
    )
    assert unknown_code.status_code == 422 and pointers(unknown_code) == {"/parent_ods_code"}
    both = await api.post(
        "/v1/organisations",
        json={
            "name": "Somewhere",
            "kind": "trust",
            "parent_id": icb["id"],
            "parent_ods_code": icb["ods_code"],
        },
        headers=idem(),
    )
    assert both.status_code == 422 and pointers(both) == {"/parent_ods_code"}
    children = await api.get("/v1/organisations", params={"parent": icb["ods_code"]})
    assert {item["id"] for item in children.json()["items"]} >= {sub["id"], trust["id"]}
    unknown = await api.get("/v1/organisations", params={"parent": icb_code()})
    assert unknown.status_code == 422 and pointers(unknown) == {"query:/parent"}


async def test_codes_and_aliases_are_unique_across_the_registry(api) -> None:
    code = trust_code()
    alias = f"LTHT-{uuid.uuid4().hex[:6]}"
    first = await register(
        api, ods_code=code, name=unique_name("First"), kind="trust", aliases=[alias]
    )
    same_code = await api.post(
        "/v1/organisations",
        json={"ods_code": code.lower(), "name": "Second", "kind": "trust"},
        headers=idem(),
    )
    assert same_code.status_code == 409, same_code.text
    assert same_code.json()["organisation"] == f"/v1/organisations/{first['id']}"
    assert pointers(same_code) == {"/ods_code"}
    # The same alias spelled otherwise (case, punctuation, spacing) is the same alias.
    respelled = alias.lower().replace("-", " . ")
    same_alias = await api.post(
        "/v1/organisations",
        json={"name": "Second", "kind": "trust", "aliases": [unique_name("Fine"), respelled]},
        headers=idem(),
    )
    assert same_alias.status_code == 409 and pointers(same_alias) == {"/aliases/1"}
    blank = await api.post(
        "/v1/organisations",
        json={"name": "Second", "kind": "trust", "aliases": ["..."]},
        headers=idem(),
    )
    assert blank.status_code == 422 and pointers(blank) == {"/aliases/0"}
    # Its own alias repeated is kept once.
    tag = uuid.uuid4().hex[:6]
    twice = await register(
        api, name=unique_name("Twice"), kind="other", aliases=[f"AB-C {tag}", f"ab  c {tag}"]
    )
    assert twice["aliases"] == [f"AB-C {tag}"]


async def test_a_post_with_an_idempotency_key_is_made_once(api) -> None:
    body = {"name": unique_name("Once"), "kind": "local_authority"}
    key = idem()
    first = await api.post("/v1/organisations", json=body, headers=key)
    again = await api.post("/v1/organisations", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    listed = await api.get("/v1/organisations", params={"q": body["name"]})
    assert len(listed.json()["items"]) == 1


async def test_patch_needs_the_etag_and_checks_the_registry_again(api, http, database) -> None:
    admin = await bound_client(database, http, deployment=True)
    trust_ods = trust_code()
    trust = await register(admin, ods_code=trust_ods, name=unique_name("Trust"), kind="trust")
    site = await register(admin, ods_code=f"{trust_ods}01", name=unique_name("Site"), kind="site")
    url = f"/v1/organisations/{trust['id']}"
    tag = (await admin.get(url)).headers["ETag"]
    assert (await admin.patch(url, json={"name": "Renamed"})).status_code == 428
    stale = await admin.patch(url, json={"name": "Renamed"}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    renamed = await admin.patch(
        url,
        json={"name": "Renamed Trust", "aliases": [unique_name("RT")]},
        headers={"If-Match": tag},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["version"] == 2 and renamed.json()["name"] == "Renamed Trust"
    tag = renamed.headers["ETag"]
    # Its site's code must keep starting with the trust's; a kind its site cannot sit under
    # is refused too.
    recoded = await admin.patch(url, json={"ods_code": trust_code()}, headers={"If-Match": tag})
    assert recoded.status_code == 422 and pointers(recoded) == {"/ods_code"}
    rekinded = await admin.patch(
        url, json={"kind": "icb", "ods_code": icb_code()}, headers={"If-Match": tag}
    )
    assert rekinded.status_code == 422 and "/kind" in pointers(rekinded)
    cleared = await admin.patch(url, json={"name": None, "kind": None}, headers={"If-Match": tag})
    assert cleared.status_code == 422 and pointers(cleared) == {"/name", "/kind"}
    # A site's parent cannot be cleared; closing and reopening work.
    site_url = f"/v1/organisations/{site['id']}"
    site_tag = (await admin.get(site_url)).headers["ETag"]
    orphaned = await admin.patch(site_url, json={"parent_id": None}, headers={"If-Match": site_tag})
    assert orphaned.status_code == 422 and pointers(orphaned) == {"/parent_id"}
    closed = await admin.patch(site_url, json={"closed": True}, headers={"If-Match": site_tag})
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    only_closed = await admin.get("/v1/organisations", params={"closed": True, "q": site["name"]})
    assert [item["id"] for item in only_closed.json()["items"]] == [site["id"]]
    only_open = await admin.get("/v1/organisations", params={"closed": False, "q": site["name"]})
    assert only_open.json()["items"] == []
    # Nothing sent that differs: no new version.
    same = await admin.patch(
        url, json={"name": "Renamed Trust"}, headers={"If-Match": renamed.headers["ETag"]}
    )
    assert same.status_code == 200 and same.json()["version"] == 2


async def test_no_organisation_becomes_its_own_ancestor(http, database) -> None:
    admin = await bound_client(database, http, deployment=True)
    top = await register(admin, name=unique_name("Top"), kind="other")
    middle = await register(admin, name=unique_name("Middle"), kind="other", parent_id=top["id"])
    bottom = await register(admin, name=unique_name("Bottom"), kind="other", parent_id=middle["id"])
    url = f"/v1/organisations/{top['id']}"
    tag = (await admin.get(url)).headers["ETag"]
    for parent in (bottom["id"], top["id"]):
        cycle = await admin.patch(url, json={"parent_id": parent}, headers={"If-Match": tag})
        assert cycle.status_code == 422 and pointers(cycle) == {"/parent_id"}
        assert cycle.json()["errors"][0]["code"] == "cycle"


async def test_an_organisations_admin_changes_only_its_own_tree(http, database) -> None:
    deployment = await bound_client(database, http, deployment=True)
    trust_ods = trust_code()
    trust = await register(deployment, ods_code=trust_ods, name=unique_name("Own"), kind="trust")
    site = await register(deployment, ods_code=f"{trust_ods}01", name=unique_name("S"), kind="site")
    other = await register(deployment, name=unique_name("Other"), kind="trust")
    admin = await bound_client(database, http, organisation_id=trust["id"])

    async def patch(organisation: dict, body: dict):
        url = f"/v1/organisations/{organisation['id']}"
        tag = (await admin.get(url)).headers["ETag"]
        return await admin.patch(url, json=body, headers={"If-Match": tag})

    assert (await patch(site, {"aliases": [unique_name("Main site")]})).status_code == 200
    assert (await patch(trust, {"settings": {"mm_specialties": ["Oncology"]}})).status_code == 200
    assert (await patch(other, {"name": "Taken over"})).status_code == 403
    # Kind and parent decide who sees an organisation's records: deployment level only.
    moved = await patch(site, {"parent_id": other["id"]})
    assert moved.status_code == 403 and "deployment-level" in moved.json()["detail"]
    assert (await patch(trust, {"kind": "mental_health_provider"})).status_code == 403
    # It may still register organisations (a new one holds no records).
    assert (await register(admin, name=unique_name("New"), kind="hospice"))["kind"] == "hospice"


async def test_settings_are_validated_and_unknown_keys_refused(http, database) -> None:
    admin = await bound_client(database, http, deployment=True)
    created = await register(
        admin,
        name=unique_name("Set"),
        kind="trust",
        settings={"learning_sample_percent": 5, "due_days": {"sjr": 30}},
    )
    assert created["settings"]["learning_sample_percent"] == 5
    assert created["settings"]["due_days"] == {"sjr": 30}
    assert created["settings"]["mm_specialties"] is None
    url = f"/v1/organisations/{created['id']}"
    tag = (await admin.get(url)).headers["ETag"]
    bad = {
        "/settings/timezone": {"timezone": "UTC"},
        "/settings/learning_sample_percent": {"learning_sample_percent": 150},
        "/settings/due_days/sjrr": {"due_days": {"sjrr": 3}},
        "/settings/due_days/sjr": {"due_days": {"sjr": -1}},
        "/settings/mm_specialties": {"mm_specialties": "Cardiology"},
    }
    for pointer, settings in bad.items():
        response = await admin.patch(url, json={"settings": settings}, headers={"If-Match": tag})
        assert response.status_code == 422, (settings, response.text)
        assert any(p.startswith(pointer) for p in pointers(response)), (pointer, response.text)
    replaced = await admin.patch(
        url, json={"settings": {"mm_specialties": ["Cardiology"]}}, headers={"If-Match": tag}
    )
    assert replaced.status_code == 200
    assert replaced.json()["settings"]["mm_specialties"] == ["Cardiology"]
    assert replaced.json()["settings"]["due_days"] is None  # replaced as a whole
    cleared = await admin.patch(
        url, json={"settings": None}, headers={"If-Match": replaced.headers["ETag"]}
    )
    assert cleared.status_code == 200
    assert set(cleared.json()["settings"].values()) == {None}


async def test_every_write_is_audited_and_evented(http, database) -> None:
    admin = await bound_client(database, http, deployment=True)
    created = await register(admin, name=unique_name("Evented"), kind="hospice")
    url = f"/v1/organisations/{created['id']}"
    tag = (await admin.get(url)).headers["ETag"]
    assert (
        await admin.patch(url, json={"aliases": [unique_name("EV")]}, headers={"If-Match": tag})
    ).is_success
    organisation_id = uuid.UUID(created["id"])
    async with database.transaction() as session:
        events = (
            await session.execute(
                select(OutboxEvent.type, OutboxEvent.organisation_id, OutboxEvent.changed)
                .where(OutboxEvent.resource_id == organisation_id)
                .order_by(OutboxEvent.seq, OutboxEvent.txid)
            )
        ).all()
        audits = (
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.resource_id == organisation_id)
                .order_by(AuditEvent.occurred_at)
            )
        ).all()
    assert [(e.type, e.organisation_id) for e in events] == [
        ("organisation.created", organisation_id),
        ("organisation.updated", organisation_id),
    ]
    assert events[1].changed == ["aliases"]
    assert audits == ["organisation.create", "organisation.update"]


async def test_the_default_organisation_cannot_be_closed(http, database) -> None:
    admin = await bound_client(database, http, deployment=True)
    async with database.transaction() as session:
        default_id = await session.scalar(
            select(Organisation.id).where(Organisation.is_default.is_(True))
        )
    url = f"/v1/organisations/{default_id}"
    read = await admin.get(url)
    assert read.json()["is_default"] is True
    closed = await admin.patch(
        url, json={"closed": True}, headers={"If-Match": read.headers["ETag"]}
    )
    assert closed.status_code == 409


async def test_the_list_pages_by_name_and_takes_hostile_searches(api) -> None:
    prefix = f"Paged {uuid.uuid4().hex[:8]}"
    made = [await register(api, name=f"{prefix} {n}", kind="other") for n in "CAB"]
    first = await api.get("/v1/organisations", params={"q": prefix, "limit": 2})
    page = first.json()
    assert [item["name"] for item in page["items"]] == [f"{prefix} A", f"{prefix} B"]
    second = await api.get(
        "/v1/organisations", params={"q": prefix, "limit": 2, "cursor": page["next_cursor"]}
    )
    assert [item["name"] for item in second.json()["items"]] == [f"{prefix} C"]
    assert second.json()["next_cursor"] is None
    assert {item["id"] for item in made} == {
        item["id"] for item in page["items"] + second.json()["items"]
    }
    for q in ("%", "_", "\\", "'; DROP TABLE organisations; --", "ü"):
        response = await api.get("/v1/organisations", params={"q": q})
        assert response.status_code == 200, (q, response.text)
    bad_cursor = await api.get("/v1/organisations", params={"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 400
    bad_kind = await api.get("/v1/organisations", params={"kind": "castle"})
    assert bad_kind.status_code == 422
    not_found = await api.get(f"/v1/organisations/{uuid.uuid4()}")
    assert not_found.status_code == 404


# --- per-organisation settings (issue 16, item 6) ----------------------------------------------


async def _organisation_with_client(admin, database, http, name: str, settings: dict):
    organisation = await register(admin, name=unique_name(name), kind="trust", settings=settings)
    client = await bound_client(
        database,
        http,
        Scope.screenings_write,
        Scope.deaths_read,
        organisation_id=organisation["id"],
    )
    return organisation, client


def _routes(recorded: dict) -> dict[str, dict]:
    return {referral["route"]: referral for referral in recorded["referrals"]}


async def test_two_organisations_refer_the_same_screening_by_their_own_rules(
    api, http, database
) -> None:
    specialty = f"Oncology {uuid.uuid4().hex[:6]}"
    admin = await bound_client(database, http, deployment=True)
    _, with_mm = await _organisation_with_client(
        admin, database, http, "M&M", {"mm_specialties": [specialty], "due_days": {"mm": 10}}
    )
    without, without_mm = await _organisation_with_client(
        admin, database, http, "No M&M", {"mm_specialties": []}
    )
    death = {"specialty_at_death": specialty, "admitting_specialty": specialty}
    recorded, tags = {}, {}
    for label, client in (("with", with_mm), ("without", without_mm), ("default", api)):
        body = screening_body(death=death)
        response = await client.post("/v1/screenings", json=body, headers=idem())
        assert response.status_code == 201, response.text
        recorded[label], tags[label] = response.json(), response.headers["ETag"]
    assert set(_routes(recorded["with"])) == {"mm"}
    mm = _routes(recorded["with"])["mm"]
    days = datetime.fromisoformat(mm["due_at"]) - datetime.fromisoformat(mm["created_at"])
    assert days == timedelta(days=10)  # its own due days, not the deployment's 56
    assert _routes(recorded["without"]) == {}
    # The default organisation keeps the deployment's rules (General Surgery, Obstetrics).
    assert _routes(recorded["default"]) == {}

    # The organisation changes its rules: its next amendment follows them.
    url = f"/v1/organisations/{without['id']}"
    tag = (await admin.get(url)).headers["ETag"]
    changed = await admin.patch(
        url, json={"settings": {"mm_specialties": [specialty.upper()]}}, headers={"If-Match": tag}
    )
    assert changed.status_code == 200, changed.text
    amended = await without_mm.put(
        f"/v1/screenings/{recorded['without']['id']}",
        json={**screening_body(death=death)["screening"], "qap_discussed": False},
        headers={"If-Match": tags["without"]},
    )
    assert amended.status_code == 200, amended.text
    routes = _routes(amended.json())
    assert set(routes) == {"mm"}
    days = datetime.fromisoformat(routes["mm"]["due_at"]) - datetime.fromisoformat(
        routes["mm"]["created_at"]
    )
    assert days == timedelta(days=56)  # its due days are still the deployment's


async def test_an_organisations_learning_sample_applies_to_its_deaths(http, database) -> None:
    admin = await bound_client(database, http, deployment=True)
    _, sampled = await _organisation_with_client(
        admin, database, http, "Sampled", {"learning_sample_percent": 100}
    )
    response = await sampled.post("/v1/screenings", json=screening_body(), headers=idem())
    assert response.status_code == 201, response.text
    sjr = _routes(response.json())["sjr"]
    assert "learning_sample" in sjr["reasons"]


@pytest.mark.postgres_only
async def test_registry_writes_pass_row_level_security_as_the_service_role(
    app_factory, database_url
) -> None:
    """A deployment-level client sees no organisation's records, yet its registry writes
    publish events naming the organisation written: connected as a role the policies bind
    (not the tables' owner), they still succeed (app.organisations.registry.registry_scope)."""
    role = f"lfd_test_{uuid.uuid4().hex[:10]}"
    # As the tables' owner (the run's PostgreSQL tests connect as a service role already).
    admin = create_async_engine(make_url(owner_url(database_url)), isolation_level="AUTOCOMMIT")
    grants = (
        f"CREATE ROLE {role} LOGIN",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
    )
    try:
        async with admin.connect() as connection:
            for statement in grants:
                await connection.exec_driver_sql(statement)
        url = make_url(owner_url(database_url)).set(username=role, password=None)
        _, http = await app_factory(database_url=url.render_as_string(hide_password=False))
        async with admin.connect() as connection:
            bypasses = await connection.exec_driver_sql(
                f"SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = '{role}'"
            )
            assert bypasses.scalar() is False
        service = Database(Settings(database_url=url.render_as_string(hide_password=False)))
        try:
            deployment = await bound_client(service, http, deployment=True)
            created = await register(deployment, name=unique_name("Under RLS"), kind="hospice")
            url_ = f"/v1/organisations/{created['id']}"
            tag = (await deployment.get(url_)).headers["ETag"]
            patched = await deployment.patch(
                url_, json={"aliases": [unique_name("RLS")]}, headers={"If-Match": tag}
            )
            assert patched.status_code == 200, patched.text
        finally:
            await service.dispose()
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f"DROP OWNED BY {role}")
            await connection.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        await admin.dispose()


async def test_a_reviews_follow_on_referral_is_due_by_its_organisations_days(
    http, database
) -> None:
    admin = await bound_client(database, http, deployment=True)
    organisation = await register(
        admin, name=unique_name("Due"), kind="trust", settings={"due_days": {"sjr": 20}}
    )
    reviewer = await bound_client(
        database,
        http,
        Scope.screenings_write,
        Scope.deaths_read,
        Scope.referrals_read,
        Scope.reviews_write,
        organisation_id=organisation["id"],
    )
    body = screening_body(screening={"death_expected": False})  # an unexpected death: SJR
    recorded = await reviewer.post("/v1/screenings", json=body, headers=idem())
    assert recorded.status_code == 201, recorded.text
    (sjr,) = recorded.json()["referrals"]
    review = {
        "instrument": "sjr",
        "reviewer": {"name": "Dr Reviewer"},
        "phases": [{"phase": "overall", "rating": 1, "narrative": "Very poor care."}],
        "quality_of_records": 2,
        "avoidability": 3,
    }
    posted = await reviewer.post(f"/v1/referrals/{sjr['id']}/review", json={"review": review})
    assert posted.status_code == 201, posted.text
    (second,) = [r for r in posted.json()["follow_on_referrals"] if r["stage"] == 2]
    submitted = datetime.fromisoformat(posted.json()["submitted_at"])
    due = datetime.fromisoformat(second["due_at"]) - submitted
    assert timedelta(days=19, hours=23) < due < timedelta(days=20, minutes=1)


async def test_a_notified_death_is_screened_by_its_organisations_rules(http, database) -> None:
    specialty = f"Urology {uuid.uuid4().hex[:6]}"
    admin = await bound_client(database, http, deployment=True)
    organisation = await register(
        admin, name=unique_name("Notified"), kind="trust", settings={"mm_specialties": [specialty]}
    )
    client = await bound_client(
        database,
        http,
        Scope.notifications_write,
        Scope.screenings_write,
        Scope.deaths_read,
        organisation_id=organisation["id"],
    )
    death = {"specialty_at_death": specialty, "admitting_specialty": specialty}
    notification = notification_body(**death)
    notified = await client.post("/v1/death-notifications", json=notification, headers=idem())
    assert notified.status_code in (200, 201, 202), notified.text
    screened = await client.post(
        "/v1/screenings", json=screening_of(notification, **death), headers=idem()
    )
    assert screened.status_code == 201, screened.text
    assert screened.json()["death"]["id"] == notified.json()["death_id"]
    assert [r["route"] for r in screened.json()["referrals"]] == ["mm"]


async def test_a_history_import_judges_by_its_organisations_rules(http, database) -> None:
    specialty = f"Vascular {uuid.uuid4().hex[:6]}"
    deployment = await bound_client(database, http, deployment=True)
    organisation = await register(
        deployment,
        name=unique_name("History"),
        kind="trust",
        settings={"mm_specialties": [specialty]},
    )
    admin = await bound_client(database, http, organisation_id=organisation["id"])
    died_at = datetime(2019, 5, 2, 10, 0, tzinfo=UTC)
    record = history_record(
        died_at, death={"admitting_specialty": specialty, "specialty_at_death": specialty}
    )
    posted = await admin.post(
        "/v1/history/imports",
        content=bundle([record]),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert posted.status_code == 202, posted.text
    for _ in range(3000):  # the import runs beside the request; generous, not a timed result
        job = (await admin.get(posted.headers["Location"])).json()
        if job["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.01)
    assert job["status"] == "completed" and job["created"] == 1, job
    async with database.transaction() as session:
        required = await session.scalar(
            select(HistoryRecord.required_routes)
            .join(Death, Death.id == HistoryRecord.death_id)
            .where(Death.source_reference == record["death"]["source_reference"])
        )
    assert required == {"mm": ["specialty_mm"]}
