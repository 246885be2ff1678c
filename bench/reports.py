"""Time the LfD dashboard and the care-quality report over 100,000 and 1,000,000 deaths on
PostgreSQL, through the HTTP API in-process, and watch the process's memory.

    python bench/reports.py [--sizes 100000,1000000] [--runs 7] [--per-day 548] [--reset]
        [--database-url postgresql://postgres@127.0.0.1:5432/lfd_bench_reports]

The database is the benchmark's own (default `lfd_bench_reports`; it refuses `test`), created
and migrated when missing. Data are made in the database by INSERT ... SELECT over
generate_series, drawn from a hash of the row number so that a run is reproducible, and grown
size by size (the first 100,000 deaths stay when the load grows to 1,000,000):

- deaths at `--per-day` (548) a day going back from now, newest first, so that the table's
  physical order follows the time of death as the intake's does: 100,000 deaths are the last
  six months, 1,000,000 five years (about 200,000 a financial year, a region's deaths); 88% in
  hospital (inpatient or emergency department),
  8 sites, 20 specialties, 1% with a learning disability and 0.5% autistic;
- SJR referrals for a quarter of deaths; those older than 70 days mostly completed with a
  submitted review (overall care and avoidability in the proportions trusts publish: about 4%
  avoidability 1-3, 13% care poor or very poor), three phase ratings each; a stage 2 for every
  stage 1 rating care 1-2 or avoidability 1-3, and a PSII referral where the stage 2 judges
  the death more likely than not avoidable; M&M for half of General Surgery deaths; LeDeR for
  every death of a person with a learning disability or autism.

Each report is asked for the current financial year (to date) and the last complete one: one
warm-up, then `--runs` timed requests, the median reported. Memory is this process's RSS (it is
the server: the app runs in-process under httpx's ASGI transport) after each size's runs, and
its peak. The machine's load average is printed before and after each size's runs (on a shared
machine the timings mean little without it).

Growing is one way: to measure 100,000 deaths after 1,000,000 have been loaded, give another
database (`--database-url .../lfd_bench_reports_100k --sizes 100000`).
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
from datetime import date
from functools import partial

import asyncpg  # type: ignore[import-untyped]

from app.auth.scopes import Scope
from app.kit.time import local_date, now
from app.reports.model import financial_year_of
from bench import kit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/lfd_bench_reports"

SOURCE = "lfd-bench-reports"

SITES = (
    "ARRAY['Royal Infirmary','General Hospital','St Mary''s','Northern General',"
    "'Community Hospital','Eastern Site','Western Site','Children''s Hospital']"
)
DEATHS = f"""
INSERT INTO deaths (id, source_system, source_reference, nhs_number_status, date_of_birth, sex,
    died_at, died_on, place_of_death, site, ward, admitting_specialty, specialty_at_death,
    admission_method, learning_disability, autism, serious_mental_illness,
    pregnant_or_recently_pregnant, age_at_death, age_in_days_at_death,
    within_30_days_of_discharge, status, version, created_at, updated_at, organisation_id)
SELECT gen_random_uuid(), 'lfd-bench-reports', 'R' || g, '03',
    (died AT TIME ZONE 'Europe/London')::date - (age * 365 + 100),
    CASE WHEN bench_u(g, 3) < 0.5 THEN 'female' ELSE 'male' END,
    died, (died AT TIME ZONE 'Europe/London')::date,
    CASE bench_pick(bench_u(g, 4), ARRAY[0.80, 0.88, 0.91, 0.94, 0.96, 0.99, 1.0])
        WHEN 1 THEN 'inpatient' WHEN 2 THEN 'emergency_department'
        WHEN 3 THEN 'community_hospital' WHEN 4 THEN 'hospice' WHEN 5 THEN 'care_home'
        WHEN 6 THEN 'home' ELSE 'other' END,
    ({SITES})[1 + floor(bench_u(g, 5) * 8)::int], 'Ward ' || (1 + g % 30),
    spec, spec,
    CASE WHEN bench_u(g, 7) < 0.85 THEN 'emergency' WHEN bench_u(g, 7) < 0.95 THEN 'elective'
        ELSE 'transfer' END,
    bench_u(g, 8) < 0.01, bench_u(g, 9) < 0.005, false, false,
    age, age * 365 + 100, false, 'reviewed', 1, died, died,
    (SELECT id FROM organisations WHERE is_default)
FROM (
    SELECT g, now() - (g - 1) * (86400.0 / :per_day) * interval '1 second' AS died,
        18 + floor(82 * sqrt(bench_u(g, 2)))::int AS age,
        ({kit.sql_array(kit.SPECIALTIES)})[1 + floor(bench_u(g, 6) * 20)::int] AS spec
    FROM generate_series(:low::bigint, :high::bigint) AS g
) AS drawn
"""

# One referral per death and route, drawn from the death's number (g).
SJR_REFERRALS = """
INSERT INTO referrals (id, death_id, organisation_id,
    died_on, route, stage, reasons, status, specialty, site,
    priority, due_at, version, created_at, updated_at, completed_at)
SELECT gen_random_uuid(), d.id, d.organisation_id,
    d.died_on, 'sjr', 1, '["unexpected_death"]'::jsonb,
    CASE WHEN d.died_at < now() - interval '70 days' AND bench_u(g, 11) < 0.93 THEN 'completed'
         WHEN bench_u(g, 11) > 0.98 THEN 'cancelled' ELSE 'ready' END,
    d.specialty_at_death, d.site, 3, d.died_at + interval '57 days', 1,
    d.died_at + interval '1 day', d.died_at + interval '1 day',
    CASE WHEN d.died_at < now() - interval '70 days' AND bench_u(g, 11) < 0.93
         THEN d.died_at + interval '40 days' END
FROM (SELECT *, substr(source_reference, 2)::bigint AS g FROM deaths
      WHERE source_system = 'lfd-bench-reports') d
WHERE d.g BETWEEN :low AND :high AND bench_u(d.g, 10) < 0.25
"""

OTHER_REFERRALS = """
INSERT INTO referrals (id, death_id, organisation_id,
    died_on, route, stage, reasons, status, specialty, site,
    priority, due_at, version, created_at, updated_at, completed_at)
SELECT gen_random_uuid(), d.id, d.organisation_id, d.died_on, r.route, NULL, r.reasons::jsonb,
    CASE WHEN d.died_at < now() - interval '70 days' THEN 'completed' ELSE 'ready' END,
    d.specialty_at_death, d.site, 2, d.died_at + interval '7 days', 1, d.died_at + interval '1 day',
    d.died_at + interval '1 day',
    CASE WHEN d.died_at < now() - interval '70 days' THEN d.died_at + interval '5 days' END
FROM (SELECT *, substr(source_reference, 2)::bigint AS g FROM deaths
      WHERE source_system = 'lfd-bench-reports') d
JOIN (VALUES ('leder', '["learning_disability"]'), ('mm', '["specialty_mm"]'),
             ('psii', '["patient_safety_incident"]')) AS r(route, reasons)
  ON (r.route = 'leder' AND (d.learning_disability OR d.autism))
  OR (r.route = 'mm' AND d.specialty_at_death = 'General Surgery' AND bench_u(d.g, 13) < 0.5)
  OR (r.route = 'psii' AND bench_u(d.g, 14) < 0.01)
WHERE d.g BETWEEN :low AND :high
"""

# Reviews of completed referrals without one.
REVIEWS = kit.reviews_of(
    "LEFT JOIN reviews v ON v.referral_id = r.id WHERE r.status = 'completed' AND v.id IS NULL"
)

PHASES = """
INSERT INTO review_phase_ratings (id, review_id, organisation_id, phase, rating)
SELECT gen_random_uuid(), v.id, v.organisation_id, p.phase,
    greatest(1, least(5, v.overall_rating + (floor(bench_u(abs(hashtext(v.id::text)), p.salt)
        * 3)::int - 1)))
FROM reviews v
CROSS JOIN (VALUES ('admission_initial', 31), ('ongoing', 32), ('end_of_life', 33),
                   ('overall', 0)) AS p(phase, salt)
LEFT JOIN review_phase_ratings x ON x.review_id = v.id AND x.phase = p.phase
WHERE v.route = 'sjr' AND x.id IS NULL
"""

FIX_OVERALL_PHASE = """
UPDATE review_phase_ratings x SET rating = v.overall_rating
FROM reviews v WHERE x.review_id = v.id AND x.phase = 'overall' AND x.rating <> v.overall_rating
"""

# Stage 2 for stage-1 reviews rating care 1-2 or avoidability 1-3 (one per death).
STAGE_TWO = """
INSERT INTO referrals (id, death_id, organisation_id,
    died_on, route, stage, reasons, status, specialty, site,
    priority, due_at, version, created_at, updated_at, completed_at, excluded_reviewer)
SELECT gen_random_uuid(), v.death_id, v.organisation_id,
    v.died_on, 'sjr', 2, '["second_stage"]'::jsonb,
    CASE WHEN v.submitted_at < now() - interval '60 days' THEN 'completed' ELSE 'ready' END,
    r.specialty, r.site, 3, v.submitted_at + interval '56 days', 1, v.submitted_at,
    v.submitted_at,
    CASE WHEN v.submitted_at < now() - interval '60 days' THEN v.submitted_at + interval '30 days'
    END,
    v.reviewer
FROM reviews v JOIN referrals r ON r.id = v.referral_id
WHERE v.route = 'sjr' AND v.stage = 1 AND (v.overall_rating <= 2 OR v.avoidability <= 3)
  AND NOT EXISTS (SELECT 1 FROM referrals s WHERE s.death_id = v.death_id AND s.route = 'sjr'
                  AND s.stage = 2)
"""

PSII_FROM_STAGE_TWO = """
INSERT INTO referrals (id, death_id, organisation_id,
    died_on, route, stage, reasons, status, specialty, site,
    priority, due_at, version, created_at, updated_at)
SELECT gen_random_uuid(), v.death_id, v.organisation_id, v.died_on, 'psii', NULL,
    '["more_likely_than_not_avoidable"]'::jsonb, 'ready', NULL, NULL, 1,
    v.submitted_at + interval '7 days', 1, v.submitted_at, v.submitted_at
FROM reviews v
WHERE v.route = 'sjr' AND v.stage = 2 AND v.avoidability <= 3
  AND NOT EXISTS (SELECT 1 FROM referrals p WHERE p.death_id = v.death_id AND p.route = 'psii')
"""


# The loader's statements, in order (DEATHS, SJR_REFERRALS and OTHER_REFERRALS for the deaths
# added, the others for whatever lacks its row).
STEPS = [
    ("deaths", DEATHS),
    ("sjr referrals", SJR_REFERRALS),
    ("leder, mm, psii referrals", OTHER_REFERRALS),
    ("stage-1 and other reviews", REVIEWS),
    ("stage-2 referrals", STAGE_TWO),
    ("stage-2 reviews", REVIEWS),
    ("psii from stage 2", PSII_FROM_STAGE_TWO),
    ("phase ratings", PHASES),
    ("overall phase = overall rating", FIX_OVERALL_PHASE),
]


async def load_to(connection: asyncpg.Connection, size: int, per_day: int) -> float:
    """Grow the benchmark's deaths (and their work) to `size`; seconds taken."""
    return await kit.grow(connection, SOURCE, size, STEPS, per_day=per_day)


async def measure(url: str, runs: int, periods: list[str]) -> list[tuple[str, str, float]]:
    """(request, figure, value) rows: the median seconds of each report and format for each
    period, and the year's deaths and reviews as the dashboard counts them."""
    app = kit.in_process_app(url)
    headers = await kit.bearer(app, "bench reports", [Scope.reports_read])
    results: list[tuple[str, str, float]] = []
    async with kit.asgi_client(app, timeout=120) as http:
        for period in periods:
            for name, extra in (
                ("lfd-dashboard", {}),
                ("care-quality", {}),
                ("care-quality", {"by": "specialty"}),
                ("lfd-dashboard", {"format": "xlsx"}),
            ):
                params = {"period": period, **extra}
                path = f"/v1/reports/{name}"
                label = " ".join([name, period, *(f"{k}={v}" for k, v in extra.items())])
                call = partial(http.get, path, params=params, headers=headers)
                warm = await call()
                assert warm.status_code == 200, warm.text
                if name == "lfd-dashboard" and not extra:
                    year = warm.json()["tables"][0]["rows"][-1]
                    results.append((label, "deaths in scope", year["all_deaths"]))
                    results.append((label, "deaths reviewed", year["reviewed"]))
                results.append((label, "median ms", await kit.timed(runs, call, warm_up=False)))
    await app.state.database.dispose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--per-day", type=int, default=548)
    parser.add_argument("--reset", action="store_true")
    parser.add_argument(
        "--database-url", default=os.environ.get("LFD_BENCH_REPORTS_URL", DEFAULT_URL)
    )
    args = parser.parse_args()
    url = kit.asyncpg_url(args.database_url)
    await kit.ensure_database(url, args.reset)
    today: date = local_date(now())
    current = financial_year_of(today)
    periods = [f"{year}-{str(year + 1)[2:]}" for year in (current, current - 1)]
    print(f"financial years {', '.join(periods)} (the first to date), median of {args.runs} runs")
    for size in (int(part) for part in args.sizes.split(",")):
        connection = await asyncpg.connect(url)
        try:
            seconds = await load_to(connection, size, args.per_day)
        finally:
            await connection.close()
        print(f"{size:,} deaths (loaded in {seconds:.0f} s)")
        print(f"  load average before {kit.load_average()}", flush=True)
        for label, figure, value in await measure(url, args.runs, periods):
            print(f"  {label}: {figure} {value:,.0f}", flush=True)
        print(f"  load average after {kit.load_average()}")
        current, peak = kit.rss_mib()
        print(f"  process RSS {current:.0f} MiB (peak {peak:.0f} MiB)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
