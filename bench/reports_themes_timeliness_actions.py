"""Time the themes, timeliness and actions reports on PostgreSQL, through the HTTP API
in-process, and watch the process's memory.

    python bench/reports_themes_timeliness_actions.py [--sizes 100000,1000000] [--runs 5]
        [--reset] [--database-url postgresql://postgres@127.0.0.1:5432/lfd_bench_reports_r2]

The deaths, referrals and reviews are bench/reports.py's (its loader, in a database of this
benchmark's own); on top of them, made by INSERT ... SELECT and drawn from hashes so that a
run is reproducible:

- a screening for every death, 0 to 72 hours after it;
- a route override (SJR, "unexpected_death") for 2% of deaths;
- two findings for every submitted SJR, under one of the seeded themes, of one of the kinds;
- 50 action plans of the default organisation, of 5 sections and 100 actions each (5,000
  actions), statuses 1-5, a third past their due date, organisations from 12 ODS codes, half of
  them listing none.

Each report is asked for the current financial year to date, or `--year` (2025 for 2025/26),
themes compared with the year before: one warm-up, then `--runs` timed requests, the median
reported, with the machine's load average before and after (on a shared machine the timings
mean little without it).
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
from functools import partial

import asyncpg  # type: ignore[import-untyped]

from app.auth.scopes import Scope
from app.kit.time import local_date, now
from app.reports.model import financial_year_of
from bench import kit
from bench.reports import load_to

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/lfd_bench_reports_r2"

SCREENINGS = """
INSERT INTO screenings (id, death_id, organisation_id,
    died_on, examiner_name, examiner_gmc_number, screened_at,
    records_reviewed, qap_discussed, bereaved_contacted, coroner_notified, death_expected,
    routes_requested, version, created_at, updated_at)
SELECT gen_random_uuid(), d.id, d.organisation_id, d.died_on, 'Dr Bench', '7654321',
    d.died_at + bench_u(abs(hashtext(d.id::text)), 41) * interval '72 hours',
    true, true, true, false, true, '[]'::jsonb, 1, d.died_at, d.died_at
FROM deaths d LEFT JOIN screenings s ON s.death_id = d.id
WHERE s.id IS NULL
"""

OVERRIDES = """
INSERT INTO route_overrides (id, screening_id, death_id, organisation_id,
    died_on, route, reason_codes,
    override_reason, recorded_at)
SELECT gen_random_uuid(), s.id, s.death_id, s.organisation_id,
    s.died_on, 'sjr', '["unexpected_death"]'::jsonb,
    'The family declined a review.', s.screened_at
FROM screenings s
WHERE bench_u(abs(hashtext(s.death_id::text)), 42) < 0.02
  AND NOT EXISTS (SELECT 1 FROM route_overrides o WHERE o.screening_id = s.id)
"""

# The submitted SJRs without findings, listed before the findings are inserted: a NOT EXISTS on
# findings inside the INSERT was planned, on an empty findings table, as a nested loop that
# rescanned findings (the rows that INSERT had added so far) for every review, and ran for
# hours at 1,000,000 deaths.
UNFOUND = """
CREATE TEMPORARY TABLE bench_unfound ON COMMIT PRESERVE ROWS AS
SELECT v.id FROM reviews v
WHERE v.route = 'sjr' AND v.status = 'submitted'
  AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.review_id = v.id)
"""

FINDINGS = """
INSERT INTO findings (id, death_id, organisation_id,
    review_id, kind, theme_id, description, died_on, specialty,
    route, version, created_at, updated_at)
SELECT gen_random_uuid(), v.death_id, v.organisation_id, v.id,
    (ARRAY['problem_in_care','good_practice','learning_point','concern'])[
        1 + floor(bench_u(abs(hashtext(v.id::text)) + n, 43) * 4)::int],
    t.ids[1 + floor(bench_u(abs(hashtext(v.id::text)) + n, 44) * array_length(t.ids, 1))::int],
    'Learning.', d.died_on, d.specialty_at_death, v.route, 1, v.submitted_at, v.submitted_at
FROM bench_unfound u
JOIN reviews v ON v.id = u.id
JOIN deaths d ON d.id = v.death_id
CROSS JOIN generate_series(1, 2) AS n
CROSS JOIN (SELECT array_agg(id ORDER BY code) AS ids FROM themes) AS t
"""

PLANS = """
INSERT INTO action_plans (id, organisation_id, title, organisations, version, created_at,
    updated_at)
SELECT gen_random_uuid(), (SELECT id FROM organisations WHERE is_default), 'Bench plan ' || p,
    jsonb_build_array('R' || lpad((p % 12)::text, 2, '0'),
                      'R' || lpad(((p + 5) % 12)::text, 2, '0')),
    1, now(), now()
FROM generate_series(1, 50) AS p
WHERE NOT EXISTS (SELECT 1 FROM action_plans WHERE title LIKE 'Bench plan %')
"""

SECTIONS = """
INSERT INTO action_plan_sections (id, plan_id, position, title)
SELECT gen_random_uuid(), p.id, s, 'Area ' || s
FROM action_plans p CROSS JOIN generate_series(1, 5) AS s
WHERE p.title LIKE 'Bench plan %'
  AND NOT EXISTS (SELECT 1 FROM action_plan_sections x WHERE x.plan_id = p.id)
"""

ACTIONS = """
INSERT INTO actions (id, plan_id, section_id, position, reference, action, leads, organisations,
    due_date, due_precision, falls_due_on, status, version, created_at, updated_at)
SELECT gen_random_uuid(), x.plan_id, x.id, x.position * 100 + a, x.position || '.' || a,
    'Bench action', jsonb_build_array('Lead ' || (a % 17)),
    CASE WHEN a % 2 = 0 THEN '[]'::jsonb
         ELSE jsonb_build_array('R' || lpad((a % 12)::text, 2, '0')) END,
    due, 'day', due, 1 + (abs(hashtext(x.id::text || a)) % 5), 1, now(), now()
FROM action_plan_sections x
JOIN action_plans p ON p.id = x.plan_id AND p.title LIKE 'Bench plan %'
CROSS JOIN generate_series(1, 20) AS a
CROSS JOIN LATERAL (SELECT current_date + ((abs(hashtext(x.id::text || a || 'd')) % 600)
    - 200) AS due) AS d
WHERE NOT EXISTS (SELECT 1 FROM actions y WHERE y.section_id = x.id)
"""


async def load_more(connection: asyncpg.Connection) -> None:
    await connection.execute(kit.FUNCTIONS)
    for label, sql in (
        ("screenings", SCREENINGS),
        ("route overrides", OVERRIDES),
        ("submitted SJRs without findings", UNFOUND),
        ("findings", FINDINGS),
    ):
        await kit.step(connection, label, sql)
    await connection.execute("DROP TABLE bench_unfound")
    for label, sql in (("action plans", PLANS), ("sections", SECTIONS), ("actions", ACTIONS)):
        await kit.step(connection, label, sql)
    await connection.execute("VACUUM ANALYZE")


async def measure(url: str, runs: int, year: str, before: str) -> list[tuple[str, float]]:
    app = kit.in_process_app(url)
    headers = await kit.bearer(app, "bench reports r2", [Scope.reports_read])
    requests: list[tuple[str, dict[str, str]]] = [
        ("themes", {"period": year}),
        ("themes", {"period": year, "compare": before}),
        ("timeliness", {"period": year}),
        ("timeliness", {"period": year, "route": "sjr"}),
        ("timeliness", {"period": year, "format": "xlsx"}),
        ("actions", {}),
        ("actions", {"organisation": "R03"}),
        ("actions", {"format": "xlsx"}),
    ]
    results: list[tuple[str, float]] = []
    async with kit.asgi_client(app, timeout=300) as http:
        for name, params in requests:
            label = " ".join([name, *(f"{k}={v}" for k, v in params.items())])
            call = partial(http.get, f"/v1/reports/{name}", params=params, headers=headers)
            results.append((label, await kit.timed(runs, call)))
    await app.state.database.dispose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--per-day", type=int, default=548)
    parser.add_argument("--reset", action="store_true")
    parser.add_argument(
        "--year", type=int, help="the financial year by its first year (default: the current)"
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("LFD_BENCH_REPORTS_R2_URL", DEFAULT_URL)
    )
    args = parser.parse_args()
    url = kit.asyncpg_url(args.database_url)
    await kit.ensure_database(url, args.reset)
    current = args.year or financial_year_of(local_date(now()))
    year, before = f"{current}-{str(current + 1)[2:]}", f"{current - 1}-{str(current)[2:]}"
    print(f"financial year {year} (themes compared with {before}), median of {args.runs} runs")
    for size in (int(part) for part in args.sizes.split(",")):
        connection = await asyncpg.connect(url)
        try:
            seconds = await load_to(connection, size, args.per_day)
            await load_more(connection)
        finally:
            await connection.close()
        print(f"{size:,} deaths (deaths and reviews loaded in {seconds:.0f} s)")
        print(f"  load average before {kit.load_average()}", flush=True)
        for label, millis in await measure(url, args.runs, year, before):
            print(f"  {label}: median {millis:,.0f} ms", flush=True)
        print(f"  load average after {kit.load_average()}")
        current, peak = kit.rss_mib()
        print(f"  process RSS {current:.0f} MiB (peak {peak:.0f} MiB)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
