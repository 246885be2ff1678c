"""`lfd demo`: a synthetic data set loaded through the same service as the API, once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select

from app import demo
from app.cli import main
from app.config import get_settings
from app.demo import financial_year, run_demo
from app.kit.nhs_number import normalise_nhs_number
from app.models import AuditEvent, OutboxEvent
from app.referrals.service import rule_config

# Pinned "now": the demo then covers financial years 2024/25 and 2025/26.
AT = datetime(2025, 11, 15, 12, 0, tzinfo=UTC)
SEED = 424_242
N = 60


async def _demo_deaths(api) -> list[dict]:
    """This seed's demo deaths, as a user of the API lists them."""
    deaths: list[dict] = []
    cursor = None
    while True:
        params = {"source_system": demo.SOURCE_SYSTEM, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = await api.get("/v1/deaths", params=params)
        assert page.status_code == 200, page.text
        deaths += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    return [d for d in deaths if d["source_reference"].startswith(f"DEMO-{SEED}-")]


async def _events(database, death_ids: list[str]) -> int:
    async with database.transaction() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.death_id.in_([uuid.UUID(i) for i in death_ids]))
        )
    return int(count or 0)


async def test_demo_loads_a_realistic_synthetic_set_once(api, base_settings, database, capsys):
    assert await run_demo(base_settings, deaths=N, seed=SEED, at=AT) == 0
    first = capsys.readouterr().out
    assert f"{N}/{N}:" in first
    assert "financial years 2024/25 and 2025/26" in first

    deaths = await _demo_deaths(api)
    assert len(deaths) == N
    assert {d["source_system"] for d in deaths} == {"lfd-demo"}

    # No real person: NHS numbers from the reserved 999 range, each valid and each different.
    numbers = [d["nhs_number"] for d in deaths if d["nhs_number"] is not None]
    assert len(numbers) >= N * 0.9
    assert all(n.startswith("999") and normalise_nhs_number(n) == n for n in numbers)
    assert len(set(numbers)) == len(numbers)
    assert {d["family_name"] for d in deaths} - {None} <= set(demo.FAMILY)

    # Two financial years, mostly older people, mostly inpatient emergency admissions.
    years = Counter(financial_year(datetime.fromisoformat(d["died_at"])) for d in deaths)
    assert set(years) == {2024, 2025}
    assert sum(d["age_at_death"] >= 65 for d in deaths) >= N * 0.6
    assert sum(d["place_of_death"] in {"inpatient", "emergency_department"} for d in deaths) >= (
        N * 0.8
    )
    assert Counter(d["admission_method"] for d in deaths).most_common(1)[0][0] == "emergency"

    # Each death was screened within days, and the configured rules raised referrals.
    routes: Counter[str] = Counter()
    for death in deaths:
        detail = await api.get(f"/v1/deaths/{death['id']}")
        assert detail.status_code == 200
        screening = detail.json()["screening"]
        died_at = datetime.fromisoformat(death["died_at"])
        delay = datetime.fromisoformat(screening["screened_at"]) - died_at
        assert 0 < delay.total_seconds() < 4 * 86_400
        assert screening["coroner_notified"] == (screening["coroner_reason"] is not None)
        referrals = detail.json()["referrals"]
        routes.update(r["route"] for r in referrals)
        assert death["status"] == ("under_review" if referrals else "screened")
    assert {"sjr", "coroner", "mm"} <= set(routes), routes

    # The same service as the API: events and audit rows came with every death.
    ids = [d["id"] for d in deaths]
    events = await _events(database, ids)
    assert events >= 2 * N  # death.created and screening.recorded, then the referrals
    async with database.transaction() as session:
        audited = await session.scalar(
            select(func.count(func.distinct(AuditEvent.death_id))).where(
                AuditEvent.client_name == demo.CLIENT_NAME, AuditEvent.action == "death.create"
            )
        )
    assert (audited or 0) >= N

    # Running it again finds every death already there and creates nothing.
    assert await run_demo(base_settings, deaths=N, seed=SEED, at=AT) == 0
    second = capsys.readouterr().out
    assert f"Created 0 deaths ({N} already there)" in second
    assert len(await _demo_deaths(api)) == N
    assert await _events(database, ids) == events


async def test_demo_is_the_same_data_for_the_same_seed(base_settings) -> None:
    window = demo.demo_window(AT)
    config = rule_config(base_settings)
    first = [demo.synthetic_screening(7, i, window, config) for i in range(20)]
    again = [demo.synthetic_screening(7, i, window, config) for i in range(20)]
    other = [demo.synthetic_screening(8, i, window, config) for i in range(20)]
    assert first == again
    assert first != other


async def test_demo_refuses_a_count_it_cannot_number(base_settings, capsys) -> None:
    assert await run_demo(base_settings, deaths=0, seed=SEED) == 2
    assert "--deaths must be between" in capsys.readouterr().err


async def test_lfd_demo_migrates_a_fresh_database_first(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LFD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    get_settings.cache_clear()
    try:
        # In a thread, as from a shell: the command runs its own event loop.
        code = await asyncio.to_thread(main, ["demo", "--deaths", "12", "--seed", "3"])
    finally:
        get_settings.cache_clear()
    assert code == 0
    assert "Created 12 deaths (0 already there)" in capsys.readouterr().out
