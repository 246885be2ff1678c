"""Action plans reference organisations from the registry (issue 16, item 7): a name or alias
the registry knows becomes its ODS code; a name it does not know is kept as written; imported
or sent to the API, and shown resolved (`organisation_refs`)."""

from __future__ import annotations

import uuid
from typing import Any

from app.actions.organisations import alias_table
from app.db import Database
from app.models import Action, Organisation
from app.models.base import utcnow
from app.organisations.aliases import _could_name, registry_aliases_in
from tests.kit.organisations import (
    letters_code,
    register,
    remember_codes,
    trust_code,
    unique_name,
)


async def test_the_registry_resolves_names_in_an_imported_plan(
    api: Any, database: Database
) -> None:
    tag = uuid.uuid4().hex[:6]
    code = "N" + uuid.uuid4().hex[:2].upper().replace("O", "1")  # an independent provider
    alias = f"Hosp{tag}"
    async with database.transaction() as session:
        session.add(
            Organisation(
                id=uuid.uuid4(),
                ods_code=code,
                name=f"Registry Hospice {tag}",
                kind="hospice",
                aliases=[alias],
                settings={},
            )
        )
    header = b"Organisation,Action reference number,Actions,Delivery date,Delivery Status\n"
    rows = f"{alias},1,Teach escalation,Jul-30,G\nLocal Forum {tag},2,Hold a forum,Aug-30,A\n"
    response = await api.post(
        "/v1/action-plans/import",
        content=header + rows.encode(),
        headers={"Content-Type": "text/csv"},
        params={"dry_run": "true", "title": f"Registry plan {tag}"},
    )
    assert response.status_code == 200, response.text
    actions = [a for s in response.json()["sections"] for a in s["actions"]]
    assert actions[0]["organisations"] == [code]
    assert actions[1]["organisations"] == []
    assert actions[1]["organisation_names"] == [f"Local Forum {tag}"]


# --- the JSON API (POST/PATCH of plans and actions) -------------------------------------------


async def _registered(api: Any) -> dict[str, Any]:
    """A trust of the registry with an alias written with punctuation ("U.H.L. 1a2b3c")."""
    return await register(
        api,
        ods_code=trust_code(),
        name=unique_name("University Hospitals NHS Trust"),
        kind="trust",
        aliases=[f"U.H.L. {uuid.uuid4().hex[:6]}"],
    )


def _ref(code: str | None, name: str | None, written: str, id_: str | None) -> dict[str, Any]:
    return {"code": code, "name": name, "written": written, "organisation_id": id_}


async def _patch(api: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    current = await api.get(path)
    assert current.status_code == 200, current.text
    response = await api.patch(path, json=body, headers={"If-Match": current.headers["ETag"]})
    assert response.status_code == 200, response.text
    changed: dict[str, Any] = response.json()
    return changed


async def test_the_api_resolves_codes_names_and_aliases_and_keeps_the_rest_as_written(
    api: Any, database: Database
) -> None:
    await remember_codes(database)
    trust = await _registered(api)
    code, name, alias = trust["ods_code"], trust["name"], trust["aliases"][0]
    unregistered = trust_code()  # a code of the right format the registry does not hold
    partner = f"Healthwatch Leicester {uuid.uuid4().hex[:6]}"
    sent_alias = alias.lower().replace(".", "-")  # "u-h-l- 1a2b3c": compared as aliases are
    response = await api.post(
        "/v1/action-plans",
        json={
            "title": unique_name("Joint plan"),
            "organisations": [sent_alias, f"  {partner} ", unregistered.lower()],
            "sections": ["Discharge"],
        },
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["organisations"] == [code, unregistered]
    assert plan["organisation_names"] == [sent_alias, partner, unregistered]
    refs = [
        _ref(code, name, sent_alias, trust["id"]),
        _ref(None, None, partner, None),
        _ref(unregistered, None, unregistered, None),
    ]
    assert plan["organisation_refs"] == refs
    read = await api.get(f"/v1/action-plans/{plan['id']}")
    assert read.json()["organisation_refs"] == refs
    listed = await api.get("/v1/action-plans", params={"organisation": code, "limit": 200})
    assert [p["organisation_refs"] for p in listed.json()["items"] if p["id"] == plan["id"]] == [
        refs
    ]

    # An action names the trust by its full name (any case) and a partner not registered.
    council = f"Leicester City Council {uuid.uuid4().hex[:6]}"
    created = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan["id"],
            "section_id": plan["sections"][0]["id"],
            "reference": "1.1",
            "action": "Agree a joint discharge protocol",
            "organisations": [name.upper(), council],
        },
    )
    assert created.status_code == 201, created.text
    action = created.json()
    assert action["organisations"] == [code]
    assert action["organisation_names"] == [name.upper(), council]
    assert action["organisation_refs"] == [
        _ref(code, name, name.upper(), trust["id"]),
        _ref(None, None, council, None),
    ]
    found = await api.get("/v1/actions", params={"organisation": code, "plan_id": plan["id"]})
    assert [item["id"] for item in found.json()["items"]] == [action["id"]]
    one = await api.get(f"/v1/actions/{action['id']}")
    assert one.json()["organisation_refs"] == action["organisation_refs"]

    # PATCH replaces them: the partner and another trust now, so the first trust's filter no
    # longer finds it.
    path = f"/v1/actions/{action['id']}"
    changed = await _patch(api, path, {"organisations": [council, unregistered]})
    assert changed["organisations"] == [unregistered]
    assert changed["organisation_names"] == [council, unregistered]
    assert changed["organisation_refs"] == [
        _ref(None, None, council, None),
        _ref(unregistered, None, unregistered, None),
    ]
    found = await api.get("/v1/actions", params={"organisation": code, "plan_id": plan["id"]})
    assert found.json()["items"] == []
    # Codes alone are stored as codes, as the API always stored them (no names beside).
    changed = await _patch(api, path, {"organisations": [code.lower(), alias]})
    assert changed["organisations"] == [code]
    assert changed["organisation_names"] == [code, alias]
    changed = await _patch(api, path, {"organisations": [code.lower()]})
    assert changed["organisation_names"] == [code]
    assert changed["organisation_refs"] == [_ref(code, name, code, trust["id"])]
    async with database.transaction() as session:
        stored = await session.get(Action, uuid.UUID(action["id"]))
        assert stored is not None
        assert (stored.organisations, stored.organisation_names) == ([code], None)

    plan_path = f"/v1/action-plans/{plan['id']}"
    replaced = await _patch(api, plan_path, {"organisations": [partner]})
    assert replaced["organisations"] == []
    assert replaced["organisation_refs"] == [_ref(None, None, partner, None)]
    listed = await api.get("/v1/action-plans", params={"organisation": code, "limit": 200})
    assert plan["id"] not in {p["id"] for p in listed.json()["items"]}


async def test_a_closed_organisation_is_not_resolved_and_exports_write_names_as_written(
    api: Any, database: Database
) -> None:
    await remember_codes(database)
    trust = await _registered(api)
    closed = await register(
        api,
        ods_code=trust_code(),
        name=unique_name("Closed Community Trust"),
        kind="trust",
        aliases=[f"CCT {uuid.uuid4().hex[:6]}"],
    )
    async with database.transaction() as session:
        row = await session.get(Organisation, uuid.UUID(closed["id"]))
        assert row is not None
        row.closed_at = utcnow()
    letters = "R" + "".join(c for c in uuid.uuid4().hex.upper() if c.isalpha())[:2]
    written = [trust["aliases"][0], closed["aliases"][0], letters, "Healthwatch"]
    response = await api.post(
        "/v1/action-plans",
        json={"title": unique_name("Exported plan"), "organisations": written, "sections": ["A"]},
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    # A code of letters only is a code, as the API always took it; a closed trust's alias is
    # a name (the importer resolves it the same).
    assert plan["organisations"] == [trust["ods_code"], letters]
    assert plan["organisation_names"] == written
    section = plan["sections"][0]["id"]
    created = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan["id"],
            "section_id": section,
            "reference": "1",
            "action": "Share the learning",
            "organisations": written,
        },
    )
    assert created.status_code == 201, created.text
    exported = await api.get(f"/v1/action-plans/{plan['id']}/export", params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    shown = f"{trust['aliases'][0]}, {closed['aliases'][0]}, ODS {letters}, Healthwatch"
    assert f"Organisations: {shown}" in exported.text
    assert exported.text.count(shown) == 2  # the preamble and the action's row


async def test_the_configured_alias_table_resolves_through_the_api(
    app_factory: Any, make_api: Any
) -> None:
    code = "RZ" + uuid.uuid4().hex[0].upper()
    word = f"Forum{uuid.uuid4().hex[:6]}"
    _, http = await app_factory(organisation_aliases={word: [code, "Forum Z"]})
    api = await make_api(client=http)
    response = await api.post(
        "/v1/action-plans",
        json={"title": unique_name("Configured"), "organisations": [word], "sections": ["A"]},
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["organisations"] == [code]
    assert [(r["code"], r["written"]) for r in plan["organisation_refs"]] == [(code, word)]


async def test_a_name_two_registry_organisations_share_stays_a_name(
    api: Any, database: Database
) -> None:
    """Many practices are called "The Surgery": such a name resolves to neither (whichever
    row came first), sent to the API or imported; the code names the one meant."""
    await remember_codes(database)
    shared = unique_name("The Surgery")
    _, second = [
        await register(api, ods_code=trust_code(), name=shared, kind="trust") for _ in range(2)
    ]
    one = await register(api, ods_code=trust_code(), name=unique_name("Lone Trust"), kind="trust")
    written = [shared.upper(), one["name"], second["ods_code"]]
    response = await api.post(
        "/v1/action-plans",
        json={"title": unique_name("Shared"), "organisations": written, "sections": ["A"]},
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["organisations"] == [one["ods_code"], second["ods_code"]]
    assert plan["organisation_names"] == written
    refs = [
        _ref(None, None, shared.upper(), None),
        _ref(one["ods_code"], one["name"], one["name"], one["id"]),
        _ref(second["ods_code"], shared, second["ods_code"], second["id"]),
    ]
    assert plan["organisation_refs"] == refs
    read = await api.get(f"/v1/action-plans/{plan['id']}")
    assert read.json()["organisation_refs"] == refs
    header = b"Organisation,Action reference number,Actions,Delivery date,Delivery Status\n"
    rows = f'"{shared}",1,Teach escalation,Jul-30,G\n"{one["name"]}",2,Hold a forum,Aug-30,A\n'
    imported = await api.post(
        "/v1/action-plans/import",
        content=header + rows.encode(),
        headers={"Content-Type": "text/csv"},
        params={"dry_run": "true", "title": unique_name("Shared import")},
    )
    assert imported.status_code == 200, imported.text
    actions = [a for s in imported.json()["sections"] for a in s["actions"]]
    assert [a["organisations"] for a in actions] == [[], [one["ods_code"]]]
    assert actions[0]["organisation_names"] == [shared]


async def test_codes_alone_are_shown_as_the_codes_held(api: Any, database: Database) -> None:
    """A list of codes only (organisation_names null) is shown as those codes, never resolved
    again: a code of letters only that is another organisation's alias stays the code."""
    await remember_codes(database)
    letters = letters_code()
    code = trust_code()
    response = await api.post(
        "/v1/action-plans",
        json={"title": unique_name("Codes"), "organisations": [code, letters], "sections": ["A"]},
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["organisations"] == plan["organisation_names"] == [code, letters]
    # The registry later holds the first code, with the second's letters as its alias.
    trust = await register(
        api, ods_code=code, name=unique_name("Alias Trust"), kind="trust", aliases=[letters]
    )
    read = await api.get(f"/v1/action-plans/{plan['id']}")
    assert read.json()["organisation_refs"] == [
        _ref(code, trust["name"], code, trust["id"]),
        _ref(letters, None, letters, None),
    ]


async def test_the_api_finds_what_the_whole_registry_would(api: Any, database: Database) -> None:
    """The API reads only the rows the entries could name: it resolves them as the whole
    registry (what the importer reads) does, codes written with punctuation included."""
    await remember_codes(database)
    tag = uuid.uuid4().hex[:6]
    trust = await register(
        api,
        ods_code=trust_code(),
        name=f"Leicester & Rutland Hospitals {tag}",
        kind="trust",
        aliases=[f"L.R.H. {tag}", f"ODS Forum {tag}"],
    )
    code = trust["ods_code"]
    texts = [
        f"{code}.",
        f"({code.lower()})",
        f" {code} ",
        f"ODS {code}",
        f"ods: {code}",
        f"Leicester and Rutland Hospitals {tag}",
        f"leicester & rutland hospitals {tag}!",
        f"lrh {tag}",
        f"ODS Forum {tag}",
        f"Forum {tag}",
        "Healthwatch & Co",
        "&",
        "ODS",
    ]
    async with database.transaction() as session:
        whole = alias_table({}, await registry_aliases_in(session))
        alone = {text: await registry_aliases_in(session, [text]) for text in texts}
    for text in texts:  # each alone: the rows another text reads do not help it
        some = alias_table({}, alone[text])
        assert some.resolve(text, codes=True) == whole.resolve(text, codes=True), text
        assert some.resolve(text) == whole.resolve(text), text
    # A code the entry plainly is needs no LIKE over the names; nor is "ODS" the word sought.
    assert [" like " in str(_could_name(text)).lower() for text in texts[:5]] == [
        True,  # "R3R." and "(r3r)": not plainly codes (the table finds them by alias key)
        True,
        False,
        False,
        False,
    ]
    sought = _could_name("ODS NW").compile(compile_kwargs={"literal_binds": True})
    assert "like '%nw%'" in str(sought).lower()
    response = await api.post(
        "/v1/action-plans",
        json={"title": unique_name("Tricky"), "organisations": texts[:2], "sections": ["A"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["organisations"] == [code]


async def test_a_registry_rename_changes_the_etags(api: Any, database: Database) -> None:
    """The organisations shown are the registry's names: renaming one changes the plan's and
    the action's ETags (If-None-Match re-downloads), though neither has a new version."""
    await remember_codes(database)
    trust = await _registered(api)
    response = await api.post(
        "/v1/action-plans",
        json={
            "title": unique_name("Renamed"),
            "organisations": [trust["ods_code"]],
            "sections": ["A"],
        },
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    created = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan["id"],
            "section_id": plan["sections"][0]["id"],
            "reference": "1",
            "action": "Share the learning",
            "organisations": [trust["ods_code"]],
        },
    )
    assert created.status_code == 201, created.text
    paths = [f"/v1/action-plans/{plan['id']}", f"/v1/actions/{created.json()['id']}"]
    before = [(await api.get(path)).headers["ETag"] for path in paths]
    renamed = unique_name("Renamed Trust")
    async with database.transaction() as session:
        row = await session.get(Organisation, uuid.UUID(trust["id"]))
        assert row is not None
        row.name = renamed
    for path, tag in zip(paths, before, strict=True):
        again = await api.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 200, path
        assert again.json()["organisation_refs"][0]["name"] == renamed
        assert again.headers["ETag"] != tag
