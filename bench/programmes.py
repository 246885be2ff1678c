"""Time a review programme of about 10,000 deaths among 1,000,000 on PostgreSQL (issue 17):
the cohort's dry run and build, the background runner's pass, a page of cases, the programme
report in each format and the themes comparison, through the HTTP API in-process.

    python bench/programmes.py [--deaths 1000000] [--per-day 548] [--days 18] [--runs 5]
        [--reset] [--database-url postgresql://postgres@127.0.0.1:5432/lfd_bench_programmes]

The database is the benchmark's own (default `lfd_bench_programmes`; it refuses `test`),
created and migrated when missing. Data are made in the database by INSERT ... SELECT over
generate_series, drawn from a hash of the row number so that a run is reproducible:

- `--deaths` deaths of the default organisation at `--per-day` a day going back from now
  (1,000,000 at 548 a day is five years), 80% inpatient, 8% in the emergency department, the
  rest in community hospitals, hospices, care homes, at home (a third of those discharged
  within 40 days) or elsewhere; ages 18 to 100; 30 wards, one of them the "Mental Health
  Unit"; 20 specialties;
- a routine SJR referral for a quarter of the deaths, those older than 70 days mostly
  completed with a submitted review (overall care and avoidability in published
  proportions), three phase ratings and the overall one each.

The programme audits the `--days` (18) days of deaths that ended a year ago (about 10,000
deaths at 548 a day): inpatient, emergency department or community hospital, or within 30 days
of discharge; adults; not on the Mental Health Unit, not under Psychiatry; every death
reviewed, the routine SJRs linked; four questions. After the build, a programme review (SJR,
phase ratings, a problem in care for one in five) and answers for nine in ten of its
referrals, a second opinion for one in fifty, findings under six themes for one in four
reviewed cases and a referral judgement for one in three are written in SQL, then the report is
timed: one warm-up, `--runs` requests, the median. A second programme a year earlier, with
mapped themes, makes the comparison. The load average is printed before and after.
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
import time
from datetime import date, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.auth.scopes import Scope
from app.kit.time import local_date, now
from app.programmes.cohort import refresh_open_programmes
from bench import kit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/lfd_bench_programmes"
SOURCE = "lfd-bench-programmes"

# Psychiatry in the place of Obstetrics: the programme's cohort leaves it out.
PROGRAMME_SPECIALTIES = kit.sql_array(
    "Psychiatry" if name == "Obstetrics" else name for name in kit.SPECIALTIES
)

DEATHS = f"""
INSERT INTO deaths (id, source_system, source_reference, organisation_id, nhs_number_status,
    date_of_birth, sex, died_at, died_on, place_of_death, site, ward, admitting_specialty,
    specialty_at_death, admission_method, discharged_at, learning_disability, autism,
    serious_mental_illness, pregnant_or_recently_pregnant, age_at_death, age_in_days_at_death,
    within_30_days_of_discharge, status, version, created_at, updated_at)
SELECT gen_random_uuid(), '{SOURCE}', 'P' || g,
    (SELECT id FROM organisations WHERE is_default), '03',
    (died AT TIME ZONE 'Europe/London')::date - (age * 365 + 100),
    CASE WHEN bench_u(g, 3) < 0.5 THEN 'female' ELSE 'male' END,
    died, (died AT TIME ZONE 'Europe/London')::date, place, 'General Hospital',
    CASE WHEN g % 30 = 0 THEN 'Mental Health Unit' ELSE 'Ward ' || (1 + g % 30) END,
    spec, spec, 'emergency',
    CASE WHEN place IN ('home', 'care_home') AND bench_u(g, 15) < 0.33
         THEN died - (1 + floor(bench_u(g, 16) * 40)) * interval '1 day' END,
    false, false, false, false, age, age * 365 + 100, false, 'screened', 1, died, died
FROM (
    SELECT g, now() - (g - 1) * (86400.0 / :per_day) * interval '1 second' AS died,
        18 + floor(82 * sqrt(bench_u(g, 2)))::int AS age,
        ({PROGRAMME_SPECIALTIES})[1 + floor(bench_u(g, 6) * 20)::int] AS spec,
        CASE bench_pick(bench_u(g, 4), ARRAY[0.80, 0.88, 0.91, 0.94, 0.96, 0.99, 1.0])
            WHEN 1 THEN 'inpatient' WHEN 2 THEN 'emergency_department'
            WHEN 3 THEN 'community_hospital' WHEN 4 THEN 'hospice' WHEN 5 THEN 'care_home'
            WHEN 6 THEN 'home' ELSE 'other' END AS place
    FROM generate_series(:low::bigint, :high::bigint) AS g
) AS drawn
"""

SJR_REFERRALS = f"""
INSERT INTO referrals (id, death_id, died_on, route, stage, reasons, status, specialty, site,
    priority, due_at, version, created_at, updated_at, completed_at, organisation_id)
SELECT gen_random_uuid(), d.id, d.died_on, 'sjr', 1, '["unexpected_death"]'::jsonb,
    CASE WHEN d.died_at < now() - interval '70 days' AND bench_u(g, 11) < 0.93 THEN 'completed'
         WHEN bench_u(g, 11) > 0.98 THEN 'cancelled' ELSE 'ready' END,
    d.specialty_at_death, d.site, 3, d.died_at + interval '57 days', 1,
    d.died_at + interval '1 day', d.died_at + interval '1 day',
    CASE WHEN d.died_at < now() - interval '70 days' AND bench_u(g, 11) < 0.93
         THEN d.died_at + interval '40 days' END, d.organisation_id
FROM (SELECT *, substr(source_reference, 2)::bigint AS g FROM deaths
      WHERE source_system = '{SOURCE}') d
WHERE d.g BETWEEN :low AND :high AND bench_u(d.g, 10) < 0.25
"""

# Submitted reviews of the completed referrals without one (routine and programme alike).
REVIEWS = """
INSERT INTO reviews (id, referral_id, death_id, died_on, route, stage, instrument, status,
    reviewer, submitted_at, detail, overall_rating, quality_of_records, avoidability,
    version, created_at, updated_at, organisation_id)
SELECT gen_random_uuid(), r.id, r.death_id, r.died_on, r.route, r.stage, 'sjr', 'submitted',
    'Dr Bench ' || (1 + h % 40), r.completed_at, '{}'::jsonb,
    bench_pick(bench_u(h, 21), ARRAY[0.03, 0.13, 0.48, 0.90, 1.0]), 2 + (h % 4),
    bench_pick(bench_u(h, 22), ARRAY[0.005, 0.015, 0.04, 0.10, 0.30, 1.0]),
    1, r.created_at, r.completed_at, r.organisation_id
FROM (SELECT r.*, abs(hashtext(r.id::text))::bigint AS h FROM referrals r
      LEFT JOIN reviews v ON v.referral_id = r.id
      WHERE r.status = 'completed' AND v.id IS NULL) r
"""

PHASES = """
INSERT INTO review_phase_ratings (id, review_id, phase, rating, organisation_id)
SELECT gen_random_uuid(), v.id, p.phase,
    CASE WHEN p.phase = 'overall' THEN v.overall_rating ELSE
    greatest(1, least(5, v.overall_rating + (floor(bench_u(abs(hashtext(v.id::text)), p.salt)
        * 3)::int - 1))) END, v.organisation_id
FROM reviews v
CROSS JOIN (VALUES ('admission_initial', 31), ('ongoing', 32), ('end_of_life', 33),
                   ('overall', 0)) AS p(phase, salt)
LEFT JOIN review_phase_ratings x ON x.review_id = v.id AND x.phase = p.phase
WHERE v.instrument = 'sjr' AND x.id IS NULL
"""

# The programme's own referrals: nine in ten completed, then reviewed (REVIEWS, PHASES).
COMPLETE_PROGRAMME = """
UPDATE referrals SET status = 'completed', completed_at = created_at + interval '20 days'
WHERE programme_id = $1 AND status = 'ready' AND bench_u(abs(hashtext(id::text)), 41) < 0.9
"""

PROBLEMS = """
INSERT INTO review_problems (id, review_id, problem_type, phase, harm, organisation_id)
SELECT gen_random_uuid(), v.id,
    (ARRAY['assessment','medication','treatment','infection','procedure','monitoring',
           'resuscitation','other'])[1 + abs(hashtext(v.id::text)) % 8],
    'ongoing', (ARRAY['no','probably','yes'])[1 + abs(hashtext(v.id::text)) % 3],
    v.organisation_id
FROM reviews v JOIN referrals r ON r.id = v.referral_id
WHERE r.programme_id = $1 AND bench_u(abs(hashtext(v.id::text)), 42) < 0.2
"""

ANSWERS = """
INSERT INTO programme_answers (id, case_id, programme_id, death_id, opinion, question_id,
    choice, scale, text, answered_by, answered_at)
SELECT gen_random_uuid(), c.id, c.programme_id, c.death_id, 1, q.id,
    CASE WHEN q.kind = 'yes_no' THEN (ARRAY['yes','no','not_applicable'])[
        1 + abs(hashtext(c.id::text || q.code)) % 3] END,
    CASE WHEN q.kind = 'scale' THEN 1 + abs(hashtext(c.id::text || q.code)) % 5 END,
    CASE WHEN q.kind = 'text' THEN 'Noted.' END, 'Dr Bench', now()
FROM programme_cases c JOIN programme_questions q ON q.programme_id = c.programme_id
WHERE c.programme_id = $1 AND c.selected
  AND bench_u(abs(hashtext(c.id::text)), 43) < 0.9
"""

SECOND_OPINIONS = """
WITH chosen AS (
    SELECT c.*, gen_random_uuid() AS referral FROM programme_cases c
    WHERE c.programme_id = $1 AND c.referral_id IS NOT NULL
      AND bench_u(abs(hashtext(c.id::text)), 44) < 0.02
), made AS (
    INSERT INTO referrals (id, death_id, died_on, route, stage, reasons, status, specialty,
        site, priority, due_at, version, created_at, updated_at, completed_at, programme_id,
        organisation_id)
    SELECT referral, chosen.death_id, chosen.died_on, 'programme', NULL,
        '["second_opinion"]'::jsonb, 'completed', NULL, NULL, 4, now(), 1,
        now() - interval '5 days', now(), now(), programme_id, d.organisation_id
    FROM chosen JOIN deaths d ON d.id = chosen.death_id RETURNING id
)
INSERT INTO programme_opinions (id, case_id, programme_id, death_id, number, referral_id,
    requested_by, reason, requested_at)
SELECT gen_random_uuid(), id, programme_id, death_id, 2, referral, 'Dr Bench', 'Borderline.',
    now() - interval '5 days'
FROM chosen
"""

FINDINGS = """
INSERT INTO findings (id, death_id, review_id, kind, theme_id, description, died_on, route,
    version, created_at, updated_at, organisation_id)
SELECT gen_random_uuid(), v.death_id, v.id,
    (ARRAY['problem_in_care','good_practice','learning_point','concern'])[
        1 + abs(hashtext(v.id::text)) % 4],
    (SELECT id FROM themes WHERE code = $2 || (abs(hashtext(v.id::text)) % 6)),
    'Found.', v.died_on, v.route, 1, now(), now(), v.organisation_id
FROM reviews v JOIN programme_cases c ON c.death_id = v.death_id AND c.programme_id = $1
WHERE v.status = 'submitted' AND bench_u(abs(hashtext(v.id::text)), 45) < 0.25
  AND ((v.route = 'programme' AND v.referral_id = c.referral_id)
       OR (c.linked AND v.route = 'sjr'))
"""

THEMES = """
INSERT INTO themes (id, code, name, version, created_at, updated_at)
SELECT gen_random_uuid(), $1 || n, 'Bench theme ' || $1 || n, 1, now(), now()
FROM generate_series(0, 5) AS n
ON CONFLICT DO NOTHING
"""

SCREENINGS_AND_JUDGEMENTS = """
WITH cases AS (
    SELECT c.death_id, c.died_on, d.organisation_id FROM programme_cases c
    JOIN deaths d ON d.id = c.death_id WHERE c.programme_id = $1
      AND bench_u(abs(hashtext(c.death_id::text)), 46) < 0.34
      AND NOT EXISTS (SELECT 1 FROM screenings s WHERE s.death_id = c.death_id)
), screened AS (
    INSERT INTO screenings (id, death_id, died_on, examiner_name, examiner_gmc_number,
        screened_at, records_reviewed, qap_discussed, bereaved_contacted, coroner_notified,
        death_expected, routes_requested, version, created_at, updated_at, organisation_id)
    SELECT gen_random_uuid(), death_id, died_on, 'Dr Examiner', '7654321', now(), true, true,
        true, false, true, '[]'::jsonb, 1, now(), now(), organisation_id
    FROM cases RETURNING id, death_id, died_on, organisation_id
)
INSERT INTO referral_judgements (id, screening_id, death_id, died_on, judgement, reason,
    judged_at, version, organisation_id)
SELECT gen_random_uuid(), id, death_id, died_on,
    (ARRAY['appropriate','appropriate','possibly_missed','should_have_been_referred'])[
        1 + abs(hashtext(death_id::text)) % 4], 'Judged.', now(), 1, organisation_id
FROM screened
"""


async def load(connection: asyncpg.Connection, size: int, per_day: int) -> float:
    steps = [
        ("deaths", DEATHS),
        ("sjr referrals", SJR_REFERRALS),
        ("reviews", REVIEWS),
        ("phase ratings", PHASES),
    ]
    return await kit.grow(connection, SOURCE, size, steps, per_day=per_day)


def programme_body(name: str, start: date, days: int, themes: str) -> dict[str, Any]:
    return {
        "name": name,
        "owner": "Bench committee",
        "period_start": start.isoformat(),
        "period_end": (start + timedelta(days=days - 1)).isoformat(),
        "cohort": {
            "places_of_death": ["inpatient", "emergency_department", "community_hospital"],
            "discharged_within_days": 30,
            "age_min": 18,
            "excluded_wards": ["Mental Health Unit"],
            "excluded_specialties": ["Psychiatry"],
        },
        "sampling": {"mode": "all", "seed": 17},
        "questions": [
            {"code": "avoidable_admission", "text": "Avoidable admission?", "kind": "yes_no"},
            {"code": "dnacpr", "text": "DNACPR sought?", "kind": "yes_no"},
            {"code": "fast_track", "text": "Fast track effective?", "kind": "scale"},
            {"code": "notes", "text": "Notes", "kind": "text"},
        ],
        "themes": [f"{themes}{n}" for n in range(6)],
    }


async def complete(connection: asyncpg.Connection, programme_id: str, themes: str) -> None:
    """The programme's reviews, answers, second opinions, findings and judgements, in SQL."""
    for label, sql, args in (
        ("programme referrals completed", COMPLETE_PROGRAMME, (programme_id,)),
        ("second opinions", SECOND_OPINIONS, (programme_id,)),
        ("reviews", REVIEWS, ()),
        ("phase ratings", PHASES, ()),
        ("problems in care", PROBLEMS, (programme_id,)),
        ("answers", ANSWERS, (programme_id,)),
        ("findings", FINDINGS, (programme_id, themes)),
        ("screenings and judgements", SCREENINGS_AND_JUDGEMENTS, (programme_id,)),
    ):
        await kit.step(connection, label, sql, *args, indent="    ")
    await connection.execute("ANALYZE")


async def measure(url: str, runs: int, days: int) -> None:
    app = kit.in_process_app(url)
    database = app.state.database
    headers = await kit.bearer(app, "bench programmes", [Scope.admin])
    connection = await asyncpg.connect(url)
    await kit.scoped(connection)
    await connection.execute(kit.FUNCTIONS)
    tag = f"bench_{int(time.time())}_"
    await connection.execute(THEMES, tag)
    year_ago = local_date(now()) - timedelta(days=365)
    async with kit.asgi_client(app, timeout=600) as http:
        ids = []
        for label, start in (("later", year_ago - timedelta(days=days)),
                             ("earlier", year_ago - timedelta(days=365 + days))):  # fmt: skip
            response = await http.post(
                "/v1/programmes",
                json=programme_body(f"Bench {label} {tag}", start, days, tag),
                headers=headers,
            )
            assert response.status_code == 201, response.text
            programme = response.json()["id"]
            ids.append(programme)
            path = f"/v1/programmes/{programme}/cohort"
            started = time.perf_counter()
            dry = await http.post(path, params={"dry_run": "true"}, headers=headers)
            dry_ms = (time.perf_counter() - started) * 1000
            assert dry.status_code == 200, dry.text
            started = time.perf_counter()
            built = await http.post(path, headers=headers)
            build_ms = (time.perf_counter() - started) * 1000
            assert built.status_code == 200, built.text
            counts = built.json()
            print(
                f"  {label} programme: {counts['deaths_in_period']:,} deaths in the period, "
                f"{counts['added']:,} in the cohort, {counts['linked']:,} linked, "
                f"{counts['referred']:,} referred; dry run {dry_ms:,.0f} ms, "
                f"build {build_ms:,.0f} ms",
                flush=True,
            )
            await complete(connection, programme, tag)
        later, earlier = ids
        # The mappings of the comparison: each later theme to the earlier theme of the next
        # number (the same themes for both, so a row is both 'same theme' and mapped).
        for n in range(5):
            mapped = await http.post(
                "/v1/theme-mappings",
                json={"themes": [f"{tag}{n}", f"{tag}{n + 1}"]},
                headers=headers,
            )
            assert mapped.status_code in (200, 201), mapped.text
        print(f"  load average before {kit.load_average()}", flush=True)
        started = time.perf_counter()
        await refresh_open_programmes(database)
        print(
            "  background pass over the open programmes (nothing new): "
            f"{(time.perf_counter() - started) * 1000:,.0f} ms"
        )
        report = f"/v1/reports/programmes/{later}"
        for output in ("json", "csv", "xlsx", "html"):
            ms = await kit.timed(
                runs, lambda o=output: http.get(report, params={"format": o}, headers=headers)
            )
            print(f"  programme report ({output}): median {ms:,.0f} ms", flush=True)
        ms = await kit.timed(
            runs,
            lambda: http.get(f"{report}/comparison", params={"other": earlier}, headers=headers),
        )
        print(f"  themes comparison: median {ms:,.0f} ms", flush=True)
        ms = await kit.timed(
            runs,
            lambda: http.get(
                f"/v1/programmes/{later}/cases", params={"limit": 50}, headers=headers
            ),
        )
        print(f"  a page of 50 cases: median {ms:,.0f} ms", flush=True)
        figures = (await http.get(report, headers=headers)).json()
        cohort = next(t for t in figures["tables"] if t["key"] == "cohort")["rows"][0]
        print(
            f"  the report's cohort: {cohort['in_cohort']:,} in cohort, "
            f"{cohort['reviewed']:,} reviewed, {cohort['rated']:,} rated"
        )
        print(f"  load average after {kit.load_average()}", flush=True)
    await connection.close()
    await database.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deaths", type=int, default=1_000_000)
    parser.add_argument("--per-day", type=int, default=548)
    parser.add_argument("--days", type=int, default=18)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reset", action="store_true")
    parser.add_argument(
        "--database-url", default=os.environ.get("LFD_BENCH_PROGRAMMES_URL", DEFAULT_URL)
    )
    args = parser.parse_args()
    url = kit.asyncpg_url(args.database_url)
    await kit.ensure_database(url, args.reset)
    connection = await asyncpg.connect(url)
    try:
        await kit.scoped(connection)
        seconds = await load(connection, args.deaths, args.per_day)
    finally:
        await connection.close()
    print(f"{args.deaths:,} deaths (loaded in {seconds:.0f} s); median of {args.runs} runs")
    await measure(url, args.runs, args.days)


if __name__ == "__main__":
    asyncio.run(main())
