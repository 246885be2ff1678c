"""`lfd demo`: three financial years of synthetic history, brought in by the history importer,
and an action plan; the board's reports over it, month by month; the same seed, the same
records; a second run changes nothing."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime

import orjson
from sqlalchemy import func, select

from app import demo
from app.auth.scopes import Scope
from app.cli import main
from app.config import get_settings
from app.demo import financial_year, run_demo, synthetic_records
from app.demo.plan import plan_title
from app.history.validation import parse_record
from app.kit.nhs_number import normalise_nhs_number
from app.kit.time import LONDON, local_date
from app.models import (
    Action,
    ActionPlan,
    ActionUpdate,
    AuditEvent,
    Death,
    Finding,
    OutboxEvent,
    Referral,
    Theme,
)

# Pinned "now": the demo then covers financial years 2023/24, 2024/25 and 2025/26 (to 12 Nov).
AT = datetime(2025, 11, 15, 12, 0, tzinfo=UTC)
YEARS = ("2023-24", "2024-25", "2025-26")
SEED = 424_242
N = 1500


def _mine():
    return Death.source_system == demo.SOURCE_SYSTEM, Death.source_reference.like(f"DEMO-{SEED}-%")


async def _counts(database) -> dict[str, int]:
    """What this seed's demo put in the database, and the events and audit rows around it."""
    async with database.transaction() as session:

        async def count(query) -> int:
            return int(await session.scalar(query) or 0)

        plan = select(ActionPlan.id).where(ActionPlan.title == plan_title(SEED))
        return {
            "deaths": await count(select(func.count()).select_from(Death).where(*_mine())),
            "referrals": await count(
                select(func.count()).select_from(Referral).join(Death).where(*_mine())
            ),
            "findings": await count(
                select(func.count()).select_from(Finding).join(Death).where(*_mine())
            ),
            "plans": await count(select(func.count()).select_from(plan.subquery())),
            "actions": await count(select(func.count()).where(Action.plan_id.in_(plan))),
            "updates": await count(
                select(func.count())
                .select_from(ActionUpdate)
                .join(Action)
                .where(Action.plan_id.in_(plan))
            ),
            "events": await count(
                select(func.count()).where(OutboxEvent.resource_type == "history_import")
            ),
            "audited": await count(
                select(func.count()).where(
                    AuditEvent.client_name == demo.CLIENT_NAME,
                    AuditEvent.action == "history.import.completed",
                )
            ),
        }


async def _report(api, key: str, **params) -> dict[str, dict]:
    response = await api.get(f"/v1/reports/{key}", params=params)
    assert response.status_code == 200, response.text
    return {table["key"]: table for table in response.json()["tables"]}


def _months() -> list[str]:
    """Every month of the three years before the demo's today's (whose deaths stop three days
    before it): April 2023 to October 2025."""
    months, day = [], date(2023, 4, 1)
    while day < date(AT.year, AT.month, 1):
        months.append(day.strftime("%b %Y"))
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


async def test_demo_fills_every_month_of_three_years_once(
    api, make_api, base_settings, database, tmp_path, capsys
):
    settings = base_settings.model_copy(update={"history_spool_dir": str(tmp_path)})
    before = await _counts(database)
    assert await run_demo(settings, deaths=N, seed=SEED, at=AT) == 0
    out = capsys.readouterr().out
    assert "financial years 2023/24, 2024/25, 2025/26" in out
    # On a database kept from an earlier run of the tests, the records are there already.
    done = re.search(r"completed: ([\d,]+) created, 0 updated, ([\d,]+) unchanged, 0 refused", out)
    assert done is not None, out
    created, unchanged = (int(n.replace(",", "")) for n in done.groups())
    assert created + unchanged == N and created in (0, N)
    first = await _counts(database)
    assert first["deaths"] == N
    assert first["plans"] == 1 and first["actions"] >= 9 and first["updates"] > first["actions"]
    # Through the importer: one summary event a batch, one audit row, no storm of past events.
    batches = -(-N // settings.history_batch_size)
    assert first["events"] - before["events"] == (batches if created else 0)
    assert first["audited"] - before["audited"] == 1
    assert list(tmp_path.iterdir()) == []  # the bundle is not left behind

    reader = await make_api(Scope.reports_read)
    months = _months()
    seen: dict[str, dict] = {}
    for year in YEARS:
        tables = await _report(reader, "lfd-dashboard", period=year)
        scores = {row["period"]: row for row in tables["avoidability"]["rows"]}
        leder = {row["period"]: row for row in tables["ld_autism"]["rows"]}
        for row in tables["deaths"]["rows"]:
            figures = {**row, **scores[row["period"]], **leder[row["period"]]}
            if row["row_kind"] == "month":
                seen[row["period"]] = figures
            elif row["row_kind"] == "year_to_date":
                totals = figures
        # A few PSIIs and deaths more likely than not due to problems in care every year.
        assert totals["investigated"] > 0 and totals["avoidable"] > 0, (year, totals)
        if year != YEARS[-1]:
            assert totals["ld_completed"] > 0, (year, totals)  # LeDeR's reviews take months
    for month in months:
        row = seen[month]
        # Every month: reviews, avoidability scores and LeDeR notifications.
        assert row["deaths"] > 0 and row["reviewed"] > 0, (month, row)
        assert row["scored"] > 0, (month, row)
        assert row["ld_deaths"] > 0 and row["ld_notified"] > 0, (month, row)
    assert seen["Nov 2025"]["all_deaths"] > 0
    assert seen["Dec 2025"]["all_deaths"] == 0  # after the demo's today

    # Overdue work every month: each month's stalled review is still open past its due date.
    for month in months:
        period = datetime.strptime(month, "%b %Y").strftime("%Y-%m")
        overdue = (await _report(reader, "timeliness", period=period))["overdue"]["rows"][0]
        assert overdue["route"] == "all routes" and overdue["overdue"] > 0, (month, overdue)

    # Reviews submitted over time: some late (56 days due), quicker year by year.
    medians = []
    for year in YEARS:
        intervals = (await _report(reader, "timeliness", period=year))["intervals"]["rows"]
        sjr = next(
            r for r in intervals if r["interval"].startswith("Referral to") and r["route"] == "sjr"
        )
        if year != YEARS[-1]:  # the current year's slow reviews are still open
            assert sjr["p90_days"] > 56, (year, sjr)
        medians.append(sjr["median_days"])
    assert medians[0] > medians[1] > medians[2], medians

    # Second stages and PSIIs, raised after their first stages.
    async with database.transaction() as session:
        routes = Counter(
            (route, stage)
            for route, stage in (
                await session.execute(
                    select(Referral.route, Referral.stage).join(Death).where(*_mine())
                )
            ).all()
        )
    assert routes[("sjr", 2)] > 0 and routes[("psii", None)] > 0 and routes[("mm", None)] > 0
    assert routes[("sjr", 2)] < routes[("sjr", 1)] / 4

    # Themes shift: each year's most frequent theme is another's.
    async with database.transaction() as session:
        found = (
            await session.execute(
                select(Finding.died_on, Theme.code).join(Theme).join(Death).where(*_mine())
            )
        ).all()
    top = []
    for year in YEARS:
        start = int(year[:4])
        themes = Counter(code for died_on, code in found if financial_year_of(died_on) == start)
        top.append(themes.most_common(1)[0][0])
    assert len(set(top)) == 3, top

    # A few required referrals never made in the early years: the audit question.
    missed = await reader.get(
        "/v1/history/missed-referrals", params={"from": "2023-04-01", "to": "2024-03-31"}
    )
    assert missed.status_code == 200, missed.text
    assert missed.json()["with_a_missed_referral"] > 0

    # The action plan: progress, most complete, an overdue tail.
    plans = (await _report(reader, "actions"))["by_plan"]["rows"]
    plan = next(p for p in plans if p["plan"] == plan_title(SEED))
    assert plan["complete"] > 0 and plan["overdue"] > 0, plan

    # Run again (on any later day): the same records, found unchanged; nothing is made twice.
    assert await run_demo(settings, deaths=N, seed=SEED) == 0
    out = capsys.readouterr().out
    assert f"loaded before, as of {AT:%Y-%m-%d %H:%M:%S} UTC" in out
    assert f"0 created, 0 updated, {N:,} unchanged, 0 refused." in out
    assert "already there" in out
    again = await _counts(database)
    assert {k: v for k, v in again.items() if k != "audited"} == {
        k: v for k, v in first.items() if k != "audited"
    }
    assert again["audited"] == first["audited"] + 1


def financial_year_of(day: date) -> int:
    return day.year if day.month >= 4 else day.year - 1


async def test_demo_is_the_same_data_for_the_same_seed(base_settings) -> None:
    first = list(synthetic_records(base_settings, 7, 120, AT))
    again = list(synthetic_records(base_settings, 7, 120, AT))
    fewer = list(synthetic_records(base_settings, 7, 80, AT))
    other = list(synthetic_records(base_settings, 8, 120, AT))
    assert first == again
    assert fewer == first[:80]  # a death is the same whatever the number asked for
    assert first != other

    def routes(records) -> Counter[str]:
        return Counter(r["route"] for record in records for r in record["referrals"])

    assert routes(first) == routes(again) and routes(first) != routes(other)


async def test_demo_records_are_valid_history_of_no_real_person(base_settings) -> None:
    records = list(synthetic_records(base_settings, 11, 400, AT))
    moment = datetime.now(UTC)
    for line, record in enumerate(records, start=1):
        checked = parse_record(orjson.loads(orjson.dumps(record)), line, moment)
        assert checked.errors == [], (line, checked.errors)
    deaths = [record["death"] for record in records]
    numbers = [d["nhs_number"] for d in deaths if d["nhs_number"] is not None]
    assert len(numbers) >= len(deaths) * 0.9
    assert all(n.startswith("999") and normalise_nhs_number(n) == n for n in numbers)
    assert len(set(numbers)) == len(numbers)
    assert {d["family_name"] for d in deaths} - {None} <= set(demo.FAMILY)
    years = Counter(financial_year(d["died_at"]) for d in deaths)
    assert set(years) == {2023, 2024, 2025}
    # Nothing after the demo's today; open referrals only among the recent and the stalled.
    for record in records:
        for referral in record["referrals"]:
            assert referral["created_at"] <= AT
            assert referral.get("closed_at") is None or referral["closed_at"] <= AT
        assert all(f["recorded_at"] <= AT for f in record["findings"])
    # Months by UK local date: every month has a death of a person with a learning disability.
    by_month = Counter(
        local_date(d["died_at"].astimezone(LONDON)).replace(day=1)
        for d in deaths
        if d["learning_disability"]
    )
    assert len(by_month) == 32  # April 2023 to November 2025


async def test_demo_refuses_what_it_cannot_do(base_settings, capsys) -> None:
    assert await run_demo(base_settings, deaths=0, seed=SEED) == 2
    assert "--deaths must be between" in capsys.readouterr().err
    assert (
        await run_demo(base_settings, deaths=5, seed=SEED, at=datetime(2999, 1, 1, tzinfo=UTC)) == 2
    )
    assert "cannot be in the future" in capsys.readouterr().err


async def test_demo_refuses_a_seed_the_old_demo_posted_live(
    api, base_settings, tmp_path, capsys
) -> None:
    """The demo before the history import posted its deaths as live screenings, which an
    import cannot replace: said plainly, nothing imported."""
    record = next(synthetic_records(base_settings, 99, 1, AT))
    body = {"death": record["death"], "screening": {**record["screening"], "overrides": []}}
    posted = await api.post(
        "/v1/screenings",
        content=orjson.dumps(body),
        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert posted.status_code in (201, 409), posted.text  # 409: kept from an earlier run
    settings = base_settings.model_copy(update={"history_spool_dir": str(tmp_path)})
    assert await run_demo(settings, deaths=3, seed=99, at=AT) == 1
    assert "1 deaths of seed 99 from an earlier version" in capsys.readouterr().err


async def test_lfd_demo_migrates_a_fresh_database_first(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LFD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("LFD_HISTORY_SPOOL_DIR", str(tmp_path / "spool"))
    get_settings.cache_clear()
    try:
        # In a thread, as from a shell: the command runs its own event loop.
        code = await asyncio.to_thread(main, ["demo", "--deaths", "12", "--seed", "3"])
    finally:
        get_settings.cache_clear()
    assert code == 0
    assert "completed: 12 created, 0 updated, 0 unchanged, 0 refused." in capsys.readouterr().out
