"""`lfd organisations` (issue 16, items 1 and 5): loading the ODS files a trust has
(tests/fixtures/ods mimic etr.csv, ets.csv, epraccur.csv and an ICB file, and the registry's
own headed CSV), adopting an existing deployment, and clients bound to organisations. Each test
has a database of its own: adopting changes the whole deployment."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.auth.scopes import Scope
from app.cli import main
from app.config import Settings, get_settings
from app.db import Database
from app.migrate import upgrade
from app.models import ActionPlan, ApiClient, AuditEvent, Death, Organisation, Programme
from tests.conftest import Api, new_client
from tests.factories import idem, screening_body

ODS = Path(__file__).parent / "fixtures" / "ods"


class Lfd:
    """The command line against the test's own database."""

    def __init__(self, url: str, capsys: Any) -> None:
        self.url = url
        self.capsys = capsys
        self.database = Database(Settings(database_url=url))

    async def __call__(self, *argv: str) -> tuple[Any, str]:
        def run() -> Any:
            try:
                return main(list(argv))
            except SystemExit as stop:
                return stop.code

        code = await asyncio.to_thread(run)
        captured = self.capsys.readouterr()
        if isinstance(code, str):  # SystemExit("message"): printed, exit status 1
            return 1, captured.out + captured.err + code
        return code, captured.out + captured.err

    async def load(self, name: str, *options: str) -> str:
        code, out = await self("organisations", "load", str(ODS / name), *options)
        assert code == 0, out
        return out

    async def organisation(self, code: str) -> Organisation:
        async with self.database.transaction() as session:
            found = await session.scalar(select(Organisation).where(Organisation.ods_code == code))
        assert found is not None, code
        return found

    async def count(self) -> int:
        async with self.database.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Organisation)) or 0)

    async def default(self) -> Organisation:
        async with self.database.transaction() as session:
            found = await session.scalar(
                select(Organisation).where(Organisation.is_default.is_(True))
            )
        assert found is not None
        return found


@pytest.fixture
async def lfd(scratch_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Any:
    await asyncio.to_thread(upgrade, scratch_url)
    monkeypatch.setenv("LFD_DATABASE_URL", scratch_url)
    get_settings.cache_clear()
    runner = Lfd(scratch_url, capsys)
    yield runner
    get_settings.cache_clear()
    await runner.database.dispose()


def summary(out: str) -> str:
    return out.splitlines()[0]


async def test_the_ods_downloads_load_in_any_order_and_again(lfd) -> None:
    # Sites before their trusts: each is skipped, saying which trust to load first.
    out = await lfd.load("ets.csv")
    assert summary(out) == "0 created, 0 updated, 0 unchanged, 5 skipped (5 rows)"
    assert "register the trust RWE first" in out
    assert summary(await lfd.load("eccg.csv")).startswith("4 created, 0 updated")
    out = await lfd.load("etr.csv")
    assert summary(out).startswith("4 created, 0 updated")
    assert "RX1: created: its parent QT1 is not in the registry" in out
    out = await lfd.load("ets.csv")
    assert summary(out) == "4 created, 0 updated, 0 unchanged, 1 skipped (5 rows)"
    assert "RHM01: skipped" in out and "register the trust RHM first" in out
    out = await lfd.load("epraccur.csv")
    assert summary(out) == "4 created, 0 updated, 0 unchanged, 1 skipped (5 rows)"
    assert "C8200X: skipped: ods_code: not the ODS code of a gp_practice" in out
    assert "N81001: created: its parent 27D is not in the registry" in out

    icb, trust, partnership = [await lfd.organisation(c) for c in ("QK1", "RWE", "RT5")]
    assert (icb.kind, trust.kind) == ("icb", "trust")
    assert trust.parent_id == icb.id and partnership.parent_id == icb.id
    assert trust.name == "UNIVERSITY HOSPITALS OF LEICESTER NHS TRUST"
    assert (await lfd.organisation("RWEAA")).parent_id == trust.id
    # A site without a parent column belongs to the trust its code starts with.
    assert (await lfd.organisation("RT5AB")).parent_id == partnership.id
    assert (await lfd.organisation("03W")).parent_id == icb.id
    assert (await lfd.organisation("C82001")).parent_id == (await lfd.organisation("04C")).id
    assert (await lfd.organisation("RNQ")).closed_at is not None
    assert (await lfd.organisation("C82003")).closed_at is not None
    assert (await lfd.organisation("C82001")).closed_at is None

    # Loaded again, nothing changes; the JSON answer says so row by row.
    count = await lfd.count()
    for name in ("eccg.csv", "etr.csv", "ets.csv"):
        assert summary(await lfd.load(name)).startswith("0 created, 0 updated"), name
    code, out = await lfd("organisations", "load", str(ODS / "epraccur.csv"), "--json")
    assert code == 0
    actions = {o["ods_code"]: o["action"] for o in json.loads(out.splitlines()[-1])["outcomes"]}
    assert actions == {
        "C82001": "unchanged",
        "C82002": "unchanged",
        "C82003": "unchanged",
        "N81001": "unchanged",
        "C8200X": "skipped",
    }
    assert await lfd.count() == count


async def test_a_dry_run_writes_nothing(lfd) -> None:
    before = await lfd.count()
    out = await lfd.load("eccg.csv", "--dry-run")
    assert summary(out) == (
        "4 created, 0 updated, 0 unchanged, 0 skipped (4 rows): a dry run, nothing was written"
    )
    assert await lfd.count() == before
    assert summary(await lfd.load("eccg.csv")).startswith("4 created")
    assert await lfd.count() == before + 4


async def test_a_headed_csv_brings_kinds_parents_and_aliases(lfd) -> None:
    await lfd.load("eccg.csv")
    await lfd.load("etr.csv")
    out = await lfd.load("registry.csv")
    assert summary(out) == "2 created, 2 updated, 0 unchanged, 2 skipped (6 rows)"
    assert "A Castle: skipped: unknown kind 'castle'" in out
    assert "RWE: skipped: the code is on line 2 already" in out
    trust = await lfd.organisation("RWE")
    # A curated name replaces the ODS file's capitals; the kind column is taken.
    assert trust.name == "University Hospitals of Leicester NHS Trust"
    assert trust.aliases == ["UHL", "Leicester Hospitals"]
    assert (await lfd.organisation("RT5")).kind == "mental_health_provider"
    # Loading the ODS file again keeps the curated name and kind (its capitals are the same
    # name; its kind is only the file's guess).
    assert summary(await lfd.load("etr.csv")).startswith("0 created, 0 updated, 4 unchanged")
    assert (await lfd.organisation("RT5")).kind == "mental_health_provider"
    # Rows without a code are matched by name and kind: loaded again, nothing is made twice.
    assert summary(await lfd.load("registry.csv")).startswith("0 created, 0 updated, 4 unchanged")
    code, out = await lfd("organisations", "show", "leicestershire & rutland hospice", "--json")
    assert code == 0, out
    hospice = json.loads(out.splitlines()[-1])
    assert hospice["kind"] == "hospice" and hospice["ods_code"] is None
    assert hospice["aliases"] == ["LOROS", "Leicestershire and Rutland Hospice"]
    assert hospice["parent_id"] == str((await lfd.organisation("QK1")).id)


async def test_a_headed_csv_in_its_own_order_with_a_merged_ccgs_code(lfd, tmp_path) -> None:
    """The header is found by its names, whatever their order (a file starting `name,` was
    read as an ODS download: its header a row, every row's code its name); a sub-ICB location
    of merged CCGs has a five-character code, and its practices go under it."""
    await lfd.load("eccg.csv")
    path = tmp_path / "frimley.csv"
    path.write_text(
        "name,ods_code,kind,parent_ods_code\n"
        "NHS Frimley ICB - D4U1Y,D4U1Y,sub_icb,QK1\n"
        "Frimley Green Practice,H81001,gp_practice,D4U1Y\n"
    )
    code, out = await lfd("organisations", "load", str(path))
    assert code == 0, out
    assert summary(out) == "2 created, 0 updated, 0 unchanged, 0 skipped (2 rows)", out
    location = await lfd.organisation("D4U1Y")
    assert location.kind == "sub_icb"
    assert (await lfd.organisation("H81001")).parent_id == location.id


async def test_create_list_and_show(lfd) -> None:
    code, out = await lfd("organisations", "create", "--name", "An ICB", "--kind", "icb",
                          "--ods-code", "qzz", "--alias", "Our ICB")  # fmt: skip
    assert code == 0 and "QZZ An ICB (icb)" in out, out
    code, out = await lfd("organisations", "create", "--name", "A trust", "--kind", "trust",
                          "--ods-code", "RZZ", "--parent", "our icb", "--json")  # fmt: skip
    assert code == 0, out
    trust = json.loads(out.splitlines()[-1])
    assert trust["parent_id"] == str((await lfd.organisation("QZZ")).id)
    code, out = await lfd("organisations", "create", "--name", "X", "--kind", "trust",
                          "--ods-code", "QZZ1")  # fmt: skip
    assert code != 0 and "ods_code: not the ODS code of a trust" in out
    code, out = await lfd("organisations", "create", "--name", "X", "--kind", "trust",
                          "--parent", "nowhere")  # fmt: skip
    assert code != 0 and "no organisation 'nowhere'" in out
    code, out = await lfd("organisations", "create", "--name", "X", "--kind", "castle")
    assert code == 2 and "unknown kind 'castle'" in out
    code, out = await lfd("organisations", "list", "--kind", "trust")
    assert code == 0
    assert "RZZ       trust                  A trust  under QZZ" in out
    assert "Default organisation [default]" in out
    code, out = await lfd("organisations", "show", "RZZ")
    assert code == 0 and "settings: (the deployment's)" in out
    code, out = await lfd("organisations", "show", "nothing-like-it")
    assert code != 0 and "no organisation" in out
    async with lfd.database.transaction() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.resource_type == "organisation")
            )
        ).all()
    assert sorted(actions) == ["organisation.create", "organisation.create"]


async def test_adopt_names_the_default_organisation(lfd) -> None:
    default = await lfd.default()
    code, out = await lfd("organisations", "adopt", "--ods-code", "QK1", "--name", "Wrong")
    assert code != 0 and "ods_code: not the ODS code of a trust" in out
    assert (await lfd.default()).ods_code is None
    code, out = await lfd("organisations", "adopt", "--ods-code", "rwe", "--name",
                          "University Hospitals of Leicester NHS Trust")  # fmt: skip
    assert code == 0, out
    assert "the default organisation is RWE University Hospitals of Leicester NHS Trust" in out
    adopted = await lfd.default()
    assert adopted.id == default.id and adopted.ods_code == "RWE" and adopted.kind == "trust"
    # The ODS files loaded afterwards find it by its code: its sites go under it.
    await lfd.load("eccg.csv")
    out = await lfd.load("etr.csv")
    assert "RWE: updated: parent_id" in out
    await lfd.load("ets.csv")
    assert (await lfd.organisation("RWEAA")).parent_id == default.id
    trust = await lfd.organisation("RWE")
    assert trust.name == "University Hospitals of Leicester NHS Trust" and trust.is_default


async def test_adopt_moves_what_the_default_owns_to_the_organisation_with_the_code(
    lfd, app_factory, base_settings
) -> None:
    _, http = await app_factory(database_url=lfd.url)
    key, client_id = await new_client(lfd.database, [Scope.admin])
    api = Api(http, key, client_id)
    recorded = await api.post("/v1/screenings", json=screening_body(), headers=idem())
    assert recorded.status_code == 201, recorded.text
    death_id = recorded.json()["death_id"]
    plan = await api.post("/v1/action-plans", json={"title": "Plan"}, headers=idem())
    assert plan.status_code == 201, plan.text
    old = await lfd.default()
    async with lfd.database.transaction() as session:
        audit_before = await session.scalar(
            select(func.count()).where(AuditEvent.organisation_id == old.id)
        )
    assert audit_before

    await lfd.load("etr.csv")
    code, out = await lfd("organisations", "adopt", "--ods-code", "RWE", "--name",
                          "University Hospitals of Leicester NHS Trust")  # fmt: skip
    assert code == 0, out
    assert f"moved from {old.id} (now closed): 1 deaths, 1 action plans" in out
    trust = await lfd.organisation("RWE")
    assert trust.is_default and trust.name == "University Hospitals of Leicester NHS Trust"
    async with lfd.database.transaction() as session:
        death = await session.get_one(Death, uuid.UUID(death_id))
        owner = await session.scalar(select(ActionPlan.organisation_id))
        client = await session.get_one(ApiClient, client_id)
        closed = await session.get_one(Organisation, old.id)
        audit_after = await session.scalar(
            select(func.count()).where(AuditEvent.organisation_id == old.id)
        )
    assert death.organisation_id == owner == client.organisation_id == trust.id
    assert closed.closed_at is not None and not closed.is_default
    assert audit_after == audit_before  # the audit log is never rewritten
    # The client, now of RWE, still reads its death; new clients go to RWE too.
    assert (await api.get(f"/v1/deaths/{death_id}")).status_code == 200
    _, new_id = await new_client(lfd.database, [Scope.deaths_read])
    async with lfd.database.transaction() as session:
        assert (await session.get_one(ApiClient, new_id)).organisation_id == trust.id


async def test_adopt_moves_the_defaults_programmes_and_theme_mappings_too(lfd, app_factory) -> None:
    """Review programmes and theme mappings (issue 17) are the organisation's records as plans
    are: they move with the rest, and a programme's cohort rules that name the old default
    name the adopted organisation (acceptance review of issue 16; they stayed with the closed
    default, out of every client's sight)."""
    _, http = await app_factory(database_url=lfd.url)
    key, client_id = await new_client(lfd.database, [Scope.admin])
    api = Api(http, key, client_id)
    old = await lfd.default()
    programme = await api.post(
        "/v1/programmes",
        json={
            "name": "Sepsis deaths",
            "owner": "Lead",
            "period_start": "2025-06-01",
            "period_end": "2025-06-30",
            "cohort": {"organisations": [str(old.id)]},
        },
        headers=idem(),
    )
    assert programme.status_code == 201, programme.text
    themes = (await api.get("/v1/themes")).json()["items"][:2]
    mapping = await api.post(
        "/v1/theme-mappings", json={"themes": [t["code"] for t in themes]}, headers=idem()
    )
    assert mapping.status_code == 201, mapping.text

    await lfd.load("etr.csv")
    code, out = await lfd("organisations", "adopt", "--ods-code", "RWE", "--name",
                          "University Hospitals of Leicester NHS Trust")  # fmt: skip
    assert code == 0, out
    assert "1 review programmes, 1 theme mappings" in out
    trust = await lfd.organisation("RWE")
    seen = await api.get(f"/v1/programmes/{programme.json()['id']}")
    assert seen.status_code == 200, seen.text
    async with lfd.database.transaction() as session:
        moved = await session.get_one(Programme, uuid.UUID(programme.json()["id"]))
    assert moved.organisation_id == trust.id
    assert moved.rules["organisations"] == [str(trust.id)]
    assert (await api.get(f"/v1/theme-mappings/{mapping.json()['id']}")).status_code == 200


async def test_clients_belong_to_an_organisation_or_to_the_deployment(lfd) -> None:
    await lfd.load("etr.csv")
    code, out = await lfd("clients", "create", "--name", "UHL review tool", "--scope",
                          "deaths:read", "--organisation", "rwe", "--json")  # fmt: skip
    assert code == 0, out
    bound = json.loads(out.splitlines()[0])
    assert bound["organisation_id"] == str((await lfd.organisation("RWE")).id)
    code, out = await lfd("clients", "create", "--name", "Registry admin", "--scope", "admin",
                          "--deployment")  # fmt: skip
    assert code == 0 and "deployment level" in out
    code, out = await lfd("clients", "create", "--name", "Closed", "--scope", "deaths:read",
                          "--organisation", "RNQ")  # fmt: skip
    assert code != 0 and "RNQ is closed" in out
    code, out = await lfd("clients", "create", "--name", "Nobody", "--scope", "deaths:read",
                          "--organisation", "RZZ")  # fmt: skip
    assert code != 0 and "no organisation 'RZZ'" in out
    code, out = await lfd("clients", "create", "--name", "Both", "--scope", "admin",
                          "--organisation", "RWE", "--deployment")  # fmt: skip
    assert code == 2 and "not allowed with argument" in out
    code, out = await lfd("clients", "list", "--json")
    assert code == 0
    listed = {row["name"]: row for row in json.loads(out.splitlines()[0])}
    assert listed["UHL review tool"]["organisation"] == "RWE"
    assert listed["Registry admin"]["organisation"] is None
    code, out = await lfd("clients", "list")
    line = next(row for row in out.splitlines() if "UHL review tool" in row)
    assert " RWE " in line and "deaths:read" in line
    line = next(row for row in out.splitlines() if "Registry admin" in row)
    assert "(deployment)" in line
