"""The service at national scale (issue 19): build a synthetic deployment of many trusts and years
in PostgreSQL, then time what a trust's users and integrations do, in process over HTTP.

    python bench/national_scale.py build \\
        --database-url postgresql://postgres@127.0.0.1:5432/lfd_national
        (defaults: --deaths 6000000 --organisations 203 --years 10 --audit-rows 100000000)
    python bench/national_scale.py build \\
        --database-url postgresql://postgres@127.0.0.1:5432/lfd_10k \\
        --deaths 10000 --organisations 2 --years 1.7 --audit-rows 166667
    python bench/national_scale.py measure --output scale.json \\
        postgresql://postgres@127.0.0.1:5432/lfd_10k \\
        postgresql://postgres@127.0.0.1:5432/lfd_national
    python bench/national_scale.py drop postgresql://postgres@127.0.0.1:5432/lfd_10k ...

Both sizes have the same trust: about 4,000 deaths a year (6,000,000 deaths = 150 trusts over
ten years; 10,000 = two trusts over fifteen months), so that a trust's pages, searches and
dashboard have the same work in front of them and what differs is everything around it (149
other trusts, nine more years, 100,000,000 audit rows in 120 monthly partitions). The figure
of each operation at national scale should be within 2x of the small deployment's.

**The data** are made in the database by INSERT ... SELECT over generate_series (every value
drawn from a hash of the row's number, so a build is reproducible), the big tables a month at
a time into a table of their own that is then attached as the month's partition (its indexes
built once, on the whole month):

- organisations: a region and its trusts; deaths spread evenly over the trusts and the years,
  in order of death (as the intake writes them), each with a screening; SJR referrals for a
  quarter, LeDeR, M&M and PSII as in bench/reports.py, the older ones completed with a
  submitted review and its phase ratings, those of the last 70 days ready (85%) or in progress;
- outbox events: ``--events-per-death`` (3) per death over the days after it, numbered in
  order of time (positions below the server's transaction horizon, so the feed shows them);
  months older than a day then closed as the runner would (app.partitions);
- audit rows: ``--audit-rows`` spread evenly over the months; 90% a read or change of one
  record of a death of the last three months of the acting client's trust, 10% a page naming
  the trust's 20 latest deaths (a queue page), all sealed. Lean: no request id, no person, the
  hashes eight characters instead of 64 (the rows are never verified; 100,000,000 rows of
  full width would not fit beside everything else on the 75 GB disk this was sized for).

**The measurements** run the app in this process (httpx over ASGI), connected as a service role
that owns nothing, so that row-level security applies as in production. Each is one warm-up
and ``--runs`` timed requests, the median (and 90th percentile) reported, with the process's
RSS (the server's memory) after each and the machine's load average:

- ``queue page``: GET /v1/referrals?route=sjr&status=ready&limit=50, the trust's reviewer;
- ``claim``: POST /v1/referrals/claim {"route": "sjr"}, one referral each (released after);
- ``death page``: GET /v1/deaths/{id}, a different death of the trust's last year each time;
- ``who read patient X``: GET /v1/audit-events?death_id=X&limit=50, the trust's IG officer,
  for deaths of the last two weeks (``recent``) and of six to twelve months ago (``older``);
- ``feed page``: GET /v1/events?cursor=...&limit=100 from a month ago (catching up) and at the
  head (an idle poll), for the trust's integration and for the region's (pseudonymised);
- ``dashboard``: GET /v1/reports/lfd-dashboard for the last twelve complete months, the trust
  (and the region's, for information: its work grows with the deployment, by design).

With ``--explain`` it prints the plan of the audit search and of a feed page (the partitions
each reads). The databases stay until ``drop`` (a build takes long: measure them as often as
you like).
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
import json
import re
import shutil
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from app.auth.scopes import Scope
from app.events.feed import Position, encode_position
from bench import kit

SERVICE_ROLE = "lfd_bench_service"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/lfd_national"
MIN_FREE_BYTES = 8 * 1024**3

# bench.kit's, and the ids of the rows drawn from their numbers (so that a build is reproducible).
FUNCTIONS = (
    kit.FUNCTIONS
    + """
CREATE OR REPLACE FUNCTION bench_id(kind int, g bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
  SELECT (lpad(to_hex(hashint8(g * 16 + kind)), 16, '0')
          || lpad(to_hex(g * 16 + kind), 16, '0'))::uuid
$$;
CREATE OR REPLACE FUNCTION bench_death(g bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$ SELECT bench_id(1, g) $$;
CREATE OR REPLACE FUNCTION bench_org(o bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$ SELECT bench_id(2, o) $$;
"""
)

ORGANISATIONS = """
INSERT INTO organisations (id, ods_code, name, kind, parent_id, aliases, is_default, settings,
    version, created_at, updated_at)
SELECT bench_org(0), 'BR0', 'Bench region', 'icb', NULL, '[]'::jsonb, false, '{}'::jsonb, 1,
    now(), now()
UNION ALL
SELECT bench_org(o), 'BT' || o, 'Bench trust ' || o, 'trust', bench_org(0), '[]'::jsonb, false,
    '{}'::jsonb,
    1, now(), now()
FROM generate_series(1, :orgs) AS o
"""

# Death g (1..D) dies at start + (g - 0.5) * span / D, in trust (g mod N) + 1.
DEATHS = f"""
INSERT INTO deaths (id, organisation_id, source_system, source_reference, nhs_number,
    nhs_number_status, date_of_birth, sex, died_at, died_on, place_of_death, site, ward,
    admitting_specialty, specialty_at_death, admission_method, learning_disability, autism,
    serious_mental_illness, pregnant_or_recently_pregnant, age_at_death, age_in_days_at_death,
    within_30_days_of_discharge, status, version, created_at, updated_at)
SELECT bench_death(g), bench_org(g % :orgs + 1), 'lfd-bench-national', 'N' || g,
    lpad((4000000000 + g)::text, 10, '0'), '01',
    (died AT TIME ZONE 'Europe/London')::date - (age * 365 + 100),
    CASE WHEN bench_u(g, 3) < 0.5 THEN 'female' ELSE 'male' END,
    died, (died AT TIME ZONE 'Europe/London')::date,
    CASE WHEN place < 0.80 THEN 'inpatient' WHEN place < 0.88 THEN 'emergency_department'
        WHEN place < 0.91 THEN 'community_hospital' WHEN place < 0.94 THEN 'hospice'
        WHEN place < 0.96 THEN 'care_home' WHEN place < 0.99 THEN 'home' ELSE 'other' END,
    'Site ' || (1 + g % 5), 'Ward ' || (1 + g % 30), spec, spec,
    CASE WHEN bench_u(g, 7) < 0.85 THEN 'emergency' WHEN bench_u(g, 7) < 0.95 THEN 'elective'
        ELSE 'transfer' END,
    bench_u(g, 8) < 0.01, bench_u(g, 9) < 0.005, false, false,
    age, age * 365 + 100, false,
    CASE WHEN died < now() - interval '70 days' THEN 'reviewed' ELSE 'under_review' END,
    1, least(died + interval '1 day', now()), least(died + interval '1 day', now())
FROM (
    SELECT g, to_timestamp(:start + (g - 0.5) * :span / :deaths) AS died,
        18 + floor(82 * sqrt(bench_u(g, 2)))::int AS age, bench_u(g, 4) AS place,
        ({kit.sql_array(kit.SPECIALTIES)})[1 + floor(bench_u(g, 6) * 20)::int] AS spec
    FROM generate_series(:low::bigint, :high::bigint) AS g
    OFFSET 0
) AS drawn
"""

SCREENINGS = """
INSERT INTO screenings (id, death_id, organisation_id, died_on, examiner_name,
    examiner_gmc_number, screened_at, records_reviewed, qap_discussed, bereaved_contacted,
    coroner_notified, death_expected, routes_requested, version, created_at, updated_at)
SELECT bench_id(3, g), d.id, d.organisation_id, d.died_on,
    'Dr Examiner ' || (g % 40), lpad((1000000 + g % 9000000)::text, 7, '0'), d.created_at,
    true, true, bench_u(g, 15) < 0.8, false, bench_u(g, 16) < 0.7, '[]'::jsonb, 1,
    d.created_at, d.created_at
FROM (SELECT bench_death(g) AS death, g FROM generate_series(:low::bigint, :high::bigint) g) s
JOIN deaths d ON d.id = s.death
"""

_DEATH_ROWS = """(SELECT d.*, s.g FROM
    (SELECT bench_death(g) AS death, g FROM generate_series(:low::bigint, :high::bigint) g) s
    JOIN deaths d ON d.id = s.death)"""

SJR_REFERRALS = f"""
INSERT INTO referrals (id, death_id, organisation_id, died_on, route, stage, reasons, status,
    specialty, site, priority, due_at, version, created_at, updated_at, completed_at)
SELECT gen_random_uuid(), d.id, d.organisation_id, d.died_on, 'sjr', 1,
    '["unexpected_death"]'::jsonb,
    CASE WHEN d.died_at < now() - interval '70 days'
         THEN CASE WHEN bench_u(g, 11) < 0.97 THEN 'completed' ELSE 'cancelled' END
         WHEN bench_u(g, 11) < 0.85 THEN 'ready' ELSE 'in_progress' END,
    d.specialty_at_death, d.site, 3, d.died_at + interval '57 days', 1,
    d.created_at, d.created_at,
    CASE WHEN d.died_at < now() - interval '70 days' AND bench_u(g, 11) < 0.97
         THEN d.died_at + interval '40 days' END
FROM {_DEATH_ROWS} d
WHERE bench_u(d.g, 10) < 0.25
"""

OTHER_REFERRALS = f"""
INSERT INTO referrals (id, death_id, organisation_id, died_on, route, stage, reasons, status,
    specialty, site, priority, due_at, version, created_at, updated_at, completed_at)
SELECT gen_random_uuid(), d.id, d.organisation_id, d.died_on, r.route, NULL, r.reasons::jsonb,
    CASE WHEN d.died_at < now() - interval '70 days' THEN 'completed' ELSE 'ready' END,
    d.specialty_at_death, d.site, 2, d.died_at + interval '7 days', 1, d.created_at,
    d.created_at,
    CASE WHEN d.died_at < now() - interval '70 days' THEN d.died_at + interval '5 days' END
FROM {_DEATH_ROWS} d
JOIN (VALUES ('leder', '["learning_disability"]'), ('mm', '["specialty_mm"]'),
             ('psii', '["patient_safety_incident"]')) AS r(route, reasons)
  ON (r.route = 'leder' AND (d.learning_disability OR d.autism))
  OR (r.route = 'mm' AND d.specialty_at_death = 'General Surgery' AND bench_u(d.g, 13) < 0.5)
  OR (r.route = 'psii' AND bench_u(d.g, 14) < 0.01)
"""

REVIEWS = kit.reviews_of(f"JOIN {_DEATH_ROWS} d ON d.id = r.death_id WHERE r.status = 'completed'")

PHASES = f"""
INSERT INTO review_phase_ratings (id, review_id, organisation_id, phase, rating)
SELECT gen_random_uuid(), v.id, v.organisation_id, p.phase,
    CASE WHEN p.phase = 'overall' THEN v.overall_rating ELSE
    greatest(1, least(5, v.overall_rating + (floor(bench_u(abs(hashtext(v.id::text)), p.salt)
        * 3)::int - 1))) END
FROM reviews v
JOIN {_DEATH_ROWS} d ON d.id = v.death_id
CROSS JOIN (VALUES ('admission_initial', 31), ('ongoing', 32), ('end_of_life', 33),
                   ('overall', 0)) AS p(phase, salt)
WHERE v.route = 'sjr'
"""

# Events of the deaths dying in the month or up to `events` days before it, the k-th on day
# k + 1 after the death; positions in order of death (txid), then of k (seq).
EVENTS = """
INSERT INTO {table} (id, type, resource_type, resource_id, death_id, organisation_id, changed,
    occurred_at, client_id, request_id, txid, seq)
SELECT bench_id(4, g * 8 + k),
    (ARRAY['death.created','screening.recorded','referral.created','referral.claimed',
           'review.submitted','referral.completed'])[1 + k % 6],
    (ARRAY['death','screening','referral','referral','review','referral'])[1 + k % 6],
    CASE WHEN k = 0 THEN bench_death(g) ELSE bench_id(5, g * 8 + k) END,
    bench_death(g), bench_org(g % :orgs + 1), '[]'::jsonb, at, NULL, NULL,
    1 + ((g - 1) * (:txids - 1)) / :deaths, (g - 1) * :events + k + 1
FROM (SELECT g, k, least(to_timestamp(:start + (g - 0.5) * :span / :deaths)
                         + (k + 1) * interval '1 day', now() - interval '1 hour') AS at
      FROM generate_series(greatest(1, :glow)::bigint, least(:deaths, :ghigh)::bigint) g,
           generate_series(0, :events - 1) k OFFSET 0) e
WHERE at >= to_timestamp(:mlow) AND at < to_timestamp(:mhigh)
"""

# Audit row r of a month at time t: trust o = 1 + hash(r) mod N; g_o its latest death by t.
AUDIT = """
INSERT INTO {table} (id, occurred_at, client_id, client_name, on_behalf_of,
    on_behalf_of_verified, on_behalf_of_role, action, resource_type, resource_id, death_ids,
    organisation_id, request_id, outcome, query_hash, row_hash, chain_seq, chain_hash)
SELECT bench_id(6, :month::bigint * 100000000 + r), at, (ORG_IDS::uuid[])[o], NULL,
    NULL, NULL, NULL,
    CASE WHEN page THEN 'referral.list'
         ELSE (ARRAY['death.read','referral.read','referral.claim','screening.read',
                     'review.create','death.update'])[1 + r % 6] END,
    CASE WHEN page THEN 'referral' ELSE (ARRAY['death','referral','referral','screening',
                                                'review','death'])[1 + r % 6] END,
    CASE WHEN page THEN NULL WHEN r % 6 IN (0, 5) THEN bench_death(one)
         ELSE bench_id(5, one * 8 + r % 6) END,
    CASE WHEN page THEN ARRAY[
        bench_death(greatest(latest - :orgs * 0, first)), bench_death(greatest(latest - :orgs *
        1, first)), bench_death(greatest(latest - :orgs * 2, first)),
        bench_death(greatest(latest - :orgs * 3, first)), bench_death(greatest(latest -
        :orgs * 4, first)), bench_death(greatest(latest - :orgs * 5, first)),
        bench_death(greatest(latest - :orgs * 6, first)), bench_death(greatest(latest -
        :orgs * 7, first)), bench_death(greatest(latest - :orgs * 8, first)),
        bench_death(greatest(latest - :orgs * 9, first)), bench_death(greatest(latest -
        :orgs * 10, first)), bench_death(greatest(latest - :orgs * 11, first)),
        bench_death(greatest(latest - :orgs * 12, first)), bench_death(greatest(latest -
        :orgs * 13, first)), bench_death(greatest(latest - :orgs * 14, first)),
        bench_death(greatest(latest - :orgs * 15, first)), bench_death(greatest(latest -
        :orgs * 16, first)), bench_death(greatest(latest - :orgs * 17, first)),
        bench_death(greatest(latest - :orgs * 18, first)), bench_death(greatest(latest -
        :orgs * 19, first))] ELSE ARRAY[bench_death(one)] END,
    (ORG_IDS::uuid[])[o], NULL, 'success', NULL, lpad(to_hex(r), 8, '0'), :seq0 + r,
    lpad(to_hex(:seq0 + r), 8, '0')
FROM (
    SELECT r, at, o, page, latest, CASE WHEN o = 1 THEN :orgs ELSE o - 1 END AS first,
        greatest(latest - :orgs
                          * floor(bench_u(r + :month::bigint * 100000000, 41) * :window)::bigint,
                 CASE WHEN o = 1 THEN :orgs ELSE o - 1 END) AS one
    FROM (
        SELECT r, at, o, bench_u(r + :month::bigint * 100000000, 40) < 0.1 AS page,
            greatest(CASE WHEN o = 1 THEN :orgs ELSE o - 1 END,
                     dead - ((dead - o + 1) % :orgs + :orgs) % :orgs) AS latest
        FROM (
            SELECT r, at, 1 + (hashint8(r * 7 + :month) & 1048575) % :orgs AS o,
                least(:deaths, floor((extract(epoch FROM at) - :start) * :deaths / :span))::bigint
                    AS dead
            FROM (SELECT r, to_timestamp(:mlow + (r - 0.5) * (:mend - :mlow) / :rows) AS at
                  FROM generate_series(1::bigint, :rows::bigint) r OFFSET 0) timed
            OFFSET 0
        ) drawn
        OFFSET 0
    ) picked
    OFFSET 0
) rows_
WHERE at < now() - interval '1 minute'
"""


def months_between(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def epoch(month: date) -> int:
    return int(datetime(month.year, month.month, 1, tzinfo=UTC).timestamp())


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


class Shape:
    """The deployment's shape (kept in the database, table bench_shape, for the measuring)."""

    def __init__(
        self, deaths: int, orgs: int, start: int, span: int, audit_rows: int, events: int
    ) -> None:
        self.deaths, self.orgs, self.audit_rows, self.events = deaths, orgs, audit_rows, events
        self.start, self.span = start, span
        self.end = start + span
        # The trust's deaths of about 90 days: how far back a single audited read reaches.
        self.window = max(1, int(self.deaths / self.orgs * 90 * 86400 / self.span))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Shape:
        end = int(datetime.now(UTC).timestamp()) // 3600 * 3600
        span = int(args.years * 365.25 * 86400)
        return cls(
            args.deaths,
            args.organisations,
            end - span,
            span,
            args.audit_rows,
            args.events_per_death,
        )

    @classmethod
    async def from_database(cls, connection: asyncpg.Connection) -> Shape:
        row = await connection.fetchrow("SELECT * FROM bench_shape")
        return cls(
            row["deaths"],
            row["orgs"],
            row["start_epoch"],
            row["span"],
            row["audit_rows"],
            row["events"],
        )

    async def save(self, connection: asyncpg.Connection) -> None:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_shape (deaths bigint, orgs int, start_epoch bigint,"
            " span bigint, audit_rows bigint, events int)"
        )
        await connection.execute("DELETE FROM bench_shape")
        await connection.execute(
            "INSERT INTO bench_shape VALUES ($1, $2, $3, $4, $5, $6)",
            self.deaths,
            self.orgs,
            self.start,
            self.span,
            self.audit_rows,
            self.events,
        )

    def values(self) -> dict[str, float | int]:
        return {
            "deaths": self.deaths,
            "orgs": self.orgs,
            "start": self.start,
            "span": self.span,
            "events": self.events,
            "window": self.window,
        }

    def months(self) -> list[date]:
        first = datetime.fromtimestamp(self.start, UTC).date()
        return months_between(first, datetime.fromtimestamp(self.end, UTC).date())

    def death_at(self, moment: float) -> int:
        return int((moment - self.start) * self.deaths / self.span)


async def warn_of_slots(url: str) -> None:
    async with kit.server(url) as admin:
        slots = await admin.fetchval("SELECT count(*) FROM pg_replication_slots")
    if slots:
        print(f"warning: {slots} replication slot(s) on this server retain the load's WAL")


def check_disk(path: str = "/") -> None:
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise SystemExit(f"stopping: {free / 1024**3:.1f} GiB free, below 8 GiB")


async def load_deaths(connection: asyncpg.Connection, shape: Shape, chunk: int) -> None:
    values = shape.values()
    await kit.step(connection, "organisations", kit.bind(ORGANISATIONS, **values))
    for low in range(1, shape.deaths + 1, chunk):
        high = min(shape.deaths, low + chunk - 1)
        check_disk()
        print(f" deaths {low:,}..{high:,}", flush=True)
        for label, sql in (
            ("deaths", DEATHS),
            ("screenings", SCREENINGS),
            ("sjr referrals", SJR_REFERRALS),
            ("other referrals", OTHER_REFERRALS),
            ("reviews", REVIEWS),
            ("phase ratings", PHASES),
        ):
            await kit.step(connection, label, kit.bind(sql, low=low, high=high, **values))


async def attach_month(
    connection: asyncpg.Connection, table: str, month: date, fill: str, values: dict[str, Any]
) -> None:
    """Load one month into a table of its own, then attach it (its indexes built on the
    whole month at once) with row-level security enabled, as app.partitions makes them."""
    part = f"{table}_p{month:%Y_%m}"
    existing = await connection.fetchval("SELECT to_regclass($1)::text", part)
    if existing:
        attached = await connection.fetchval(
            "SELECT 1 FROM pg_inherits WHERE inhrelid = $1::regclass", part
        )
        if attached:
            await connection.execute(f"ALTER TABLE {table} DETACH PARTITION {part}")
        await connection.execute(f"DROP TABLE {part}")
    await connection.execute(f"CREATE TABLE {part} (LIKE {table} INCLUDING DEFAULTS)")
    started = time.perf_counter()
    status = await connection.execute(kit.bind(fill.replace("{table}", part), **values))
    low, high = epoch(month), epoch(next_month(month))
    await connection.execute(
        f"ALTER TABLE {part} ADD CONSTRAINT {part}_range"
        f" CHECK (occurred_at >= to_timestamp({low}) AND occurred_at < to_timestamp({high}))"
    )
    await connection.execute(
        f"ALTER TABLE {table} ATTACH PARTITION {part} FOR VALUES FROM"
        f" (to_timestamp({low})) TO (to_timestamp({high}))"
    )
    await connection.execute(f"ALTER TABLE {part} DROP CONSTRAINT {part}_range")
    await connection.execute(f"ALTER TABLE {part} ENABLE ROW LEVEL SECURITY")
    print(f"  {part}: {status} ({time.perf_counter() - started:.1f} s)", flush=True)


async def load_events_and_audit(connection: asyncpg.Connection, shape: Shape) -> None:
    values = shape.values()
    # The trusts' ids once, as an array literal (a row's client and organisation: the same id,
    # as a client of that trust; made per row they cost a sixth of the load's time).
    ids = await connection.fetchval(
        "SELECT array_agg(bench_org(o) ORDER BY o)::text FROM generate_series(1, $1) o", shape.orgs
    )
    audit = AUDIT.replace("ORG_IDS", f"'{ids}'")
    # Positions below the server's horizon, or the feed would wait for them: the numbers the
    # server has given out so far, less a margin.
    xid = int(await connection.fetchval("SELECT pg_current_xact_id()::text::bigint"))
    txids = max(2, xid - 50)
    months = shape.months()
    per_month = shape.audit_rows / (shape.span / 86400 / 30.44)
    seq0 = 0
    for month in months:
        check_disk()
        low, high = epoch(month), min(epoch(next_month(month)), shape.end)
        first = max(1, shape.death_at(low - (shape.events + 1) * 86400))
        last = shape.death_at(high) + 1
        await attach_month(
            connection,
            "outbox_events",
            month,
            EVENTS,
            {
                **values,
                "txids": txids,
                "glow": first,
                "ghigh": last,
                "mlow": low,
                "mhigh": epoch(next_month(month)),
            },
        )
        rows = max(1, round(per_month * (high - low) / (epoch(next_month(month)) - low)))
        await attach_month(
            connection,
            "audit_events",
            month,
            audit,
            {
                **values,
                "rows": rows,
                "month": month.year * 100 + month.month,
                "seq0": seq0,
                "mlow": low,
                "mend": high,
            },
        )
        seq0 += rows
    await connection.execute(
        "SELECT setval(pg_get_serial_sequence('outbox_events', 'seq'),"
        " (SELECT coalesce(max(seq), 0) + 1 FROM outbox_events), false)"
    )
    await connection.execute(
        "UPDATE audit_chain_heads SET last_seq = $1, last_hash = lpad(to_hex($1::bigint), 8, '0')"
        " WHERE name = 'main'",
        seq0,
    )
    await kit.scoped(connection)
    closed = await connection.fetchval("SELECT lfd_close_event_months(now() - interval '1 day')")
    print(f"  event months closed: {closed}", flush=True)


async def build(url: str, shape: Shape, chunk: int, resume: bool = False) -> None:
    """``resume``: the deaths are in (an earlier build stopped in the months of events and
    audit rows); load every month again from the saved shape (a month loaded before is
    detached and remade)."""
    connection = await asyncpg.connect(kit.asyncpg_url(url))
    try:
        await connection.execute("SET maintenance_work_mem = '1GB'")
        await kit.scoped(connection)
        await connection.execute(FUNCTIONS)
        started = time.perf_counter()
        if resume:
            shape = await Shape.from_database(connection)
        else:
            await shape.save(connection)
            await load_deaths(connection, shape, chunk)
        await load_events_and_audit(connection, shape)
        print(" vacuum analyze", flush=True)
        await connection.execute("VACUUM (ANALYZE)")
        size = await connection.fetchval(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        )
        print(f"built in {time.perf_counter() - started:.0f} s; database {size}", flush=True)
    finally:
        await connection.close()


def trust_deaths(shape: Shape, days_from: float, days_to: float, count: int) -> list[int]:
    """``count`` deaths of trust 1 (their numbers g, multiples of N), spread over the days ago
    given."""
    newest = shape.death_at(shape.end - days_from * 86400)
    oldest = max(shape.orgs, shape.death_at(shape.end - days_to * 86400))
    picks = []
    for index in range(count):
        g = oldest + (newest - oldest) * index // max(1, count - 1)
        picks.append(max(shape.orgs, g - g % shape.orgs))
    return picks


class Capture:
    """The SQL the app sends during one request (for --explain)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements: list[tuple[str, Any]] = []
        self.on = False

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if self.on:
                self.statements.append((statement, params))


PARTITION = re.compile(r" on ((?:audit|outbox)_events_(?:p\d{4}_\d{2}|default))")


async def explain(owner_url: str, capture: Capture, table: str, label: str) -> None:
    """EXPLAIN ANALYZE of the longest captured SELECT on ``table``, as the owner: the partitions
    it read (a partition pruned while running shows as never executed)."""
    found = [
        (sql, params)
        for sql, params in capture.statements
        if table in sql and sql.lstrip().upper().startswith("SELECT")
    ]
    if not found:
        print(f"    ({label}: no SELECT on {table} captured)")
        return
    sql, params = max(found, key=lambda item: len(item[0]))
    connection = await asyncpg.connect(kit.asyncpg_url(owner_url))
    try:
        await kit.scoped(connection)
        plan = [
            row[0]
            for row in await connection.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *(params or ())
            )
        ]
    finally:
        await connection.close()
    read = sorted(
        {m[1] for line in plan if "never executed" not in line for m in PARTITION.finditer(line)}
    )
    print(
        f"    plan of {label}: {len(read)} partition(s) read: {', '.join(read[:8])}"
        + (" ..." if len(read) > 8 else "")
    )
    for line in plan:
        print(f"      {line}")


class Deployment:
    """One benchmark database, its app in this process, its clients and the records to ask for."""

    def __init__(self, url: str, runs: int) -> None:
        self.url, self.runs = kit.asyncpg_url(url), runs

    async def open(self) -> None:
        owner = await asyncpg.connect(self.url)
        try:
            await kit.scoped(owner)
            self.shape = await Shape.from_database(owner)
            month_ago = await owner.fetchrow(
                "SELECT txid, seq FROM outbox_events WHERE occurred_at >= now() - interval"
                " '30 days' ORDER BY occurred_at, txid, seq LIMIT 1"
            )
            self.audit_rows = int(
                await owner.fetchval(
                    "SELECT sum(c.reltuples)::bigint FROM pg_class c JOIN pg_inherits i"
                    " ON i.inhrelid = c.oid WHERE i.inhparent = 'audit_events'::regclass"
                )
                or 0
            )
            self.partitions = int(
                await owner.fetchval(
                    "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass"
                )
            )
            self.size = await owner.fetchval(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"
            )
            count = self.runs + 1
            picks = {
                "recent": trust_deaths(self.shape, 2, 14, count),
                "older": trust_deaths(self.shape, 180, 365, count),
                "pages": trust_deaths(self.shape, 90, 365, count),
            }
            ids = {
                kind: [await owner.fetchval("SELECT bench_death($1::bigint)", g) for g in numbers]
                for kind, numbers in picks.items()
            }
            trust_org, region_org = await owner.fetchrow("SELECT bench_org(1), bench_org(0)")
        finally:
            await owner.close()
        self.app = kit.in_process_app(self.url, SERVICE_ROLE)
        self.capture = Capture(self.app.state.database.engine)
        trust_scopes = [
            Scope.deaths_read,
            Scope.referrals_read,
            Scope.referrals_claim,
            Scope.events_read,
            Scope.reports_read,
            Scope.audit_read,
        ]
        region_scopes = [Scope.events_read, Scope.reports_read]
        self.heads = {
            "trust": {
                **await kit.bearer(
                    self.app, "bench trust", trust_scopes, organisation_id=trust_org
                ),
                "X-On-Behalf-Of": "Dr Bench",
            },
            "region": await kit.bearer(
                self.app,
                "bench region",
                region_scopes,
                pseudonymised=True,
                organisation_id=region_org,
            ),
        }
        start = encode_position(Position(month_ago["txid"], month_ago["seq"]))
        self.cursors = {"trust": start, "region": start}
        self.recent, self.older, self.pages = ids["recent"], ids["older"], ids["pages"]
        self.http = kit.asgi_client(self.app, timeout=300)

    async def close(self) -> None:
        await self.http.aclose()
        await self.app.state.database.dispose()

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "deaths": self.shape.deaths,
            "organisations": self.shape.orgs,
            "years": round(self.shape.span / 365.25 / 86400, 2),
            "audit_rows_estimated": self.audit_rows,
            "audit_partitions": self.partitions,
            "database_size": self.size,
        }

    # The operations: (deployment, run) -> response; run -1 is the warm-up.
    async def queue_page(self, run: int) -> httpx.Response:
        params = {"route": "sjr", "status": "ready", "limit": 50}
        return await self.http.get("/v1/referrals", params=params, headers=self.heads["trust"])

    async def claim(self, run: int) -> httpx.Response:
        return await self.http.post(
            "/v1/referrals/claim", json={"route": "sjr"}, headers=self.heads["trust"]
        )

    async def death_page(self, run: int) -> httpx.Response:
        return await self.http.get(f"/v1/deaths/{self.pages[run + 1]}", headers=self.heads["trust"])

    async def _who_read(self, death: uuid.UUID) -> httpx.Response:
        params = {"death_id": str(death), "limit": 50}
        return await self.http.get("/v1/audit-events", params=params, headers=self.heads["trust"])

    async def who_read_recent(self, run: int) -> httpx.Response:
        return await self._who_read(self.recent[run + 1])

    async def who_read_older(self, run: int) -> httpx.Response:
        return await self._who_read(self.older[run + 1])

    async def _feed(self, who: str) -> httpx.Response:
        response = await self.http.get(
            "/v1/events",
            params={"cursor": self.cursors[who], "limit": 100},
            headers=self.heads[who],
        )
        self.cursors[who] = response.json()["next_cursor"]
        return response

    async def feed_trust(self, run: int) -> httpx.Response:
        return await self._feed("trust")

    async def feed_region(self, run: int) -> httpx.Response:
        return await self._feed("region")

    async def feed_idle(self, run: int) -> httpx.Response:
        head = await self.http.get(
            "/v1/events", params={"start": "now"}, headers=self.heads["trust"]
        )
        return await self.http.get(
            "/v1/events",
            params={"cursor": head.json()["next_cursor"], "limit": 100},
            headers=self.heads["trust"],
        )

    async def dashboard(self, run: int, who: str = "trust") -> httpx.Response:
        return await self.http.get(
            "/v1/reports/lfd-dashboard", params={"period": FINANCIAL_YEAR}, headers=self.heads[who]
        )

    async def dashboard_region(self, run: int) -> httpx.Response:
        return await self.dashboard(run, "region")


def last_financial_year() -> str:
    today = datetime.now(UTC).date()
    first = today.year - (1 if today.month >= 4 else 2)
    return f"{first}-{str(first + 1)[2:]}"


FINANCIAL_YEAR = last_financial_year()

OPERATIONS: list[tuple[str, str | None, Callable[[Deployment, int], Awaitable[httpx.Response]]]] = [
    ("queue page (50 referrals)", "referrals", Deployment.queue_page),
    ("claim (count=1)", "referrals", Deployment.claim),
    ("death page", None, Deployment.death_page),
    ("who read patient X (died last fortnight)", "audit_events", Deployment.who_read_recent),
    ("who read patient X (died 6-12 months ago)", "audit_events", Deployment.who_read_older),
    ("feed page of 100, catching up (trust)", "outbox_events", Deployment.feed_trust),
    ("feed page of 100, catching up (region)", "outbox_events", Deployment.feed_region),
    ("feed, idle poll at the head (trust)", "outbox_events", Deployment.feed_idle),
    (f"LfD dashboard {FINANCIAL_YEAR} (trust)", None, Deployment.dashboard),
    (f"LfD dashboard {FINANCIAL_YEAR} (region)", None, Deployment.dashboard_region),
]


async def measure(urls: list[str], runs: int, show_plans: bool) -> dict[str, Any]:
    """Each operation on each deployment in turn, run after run (so that a change in the
    machine's load falls on all of them alike); medians of wall time and of this process's CPU
    time per request (the server's share of the work: PostgreSQL's is not in it)."""
    deployments = [Deployment(url, runs) for url in urls]
    for deployment in deployments:
        await deployment.open()
    results: dict[str, Any] = {
        "deployments": [deployment.describe() for deployment in deployments],
        "load_before": kit.load_average(),
        "operations": {},
    }
    for deployment in deployments:
        print(f"{deployment.url}: {deployment.describe()}")
    try:
        for name, table, operation in OPERATIONS:
            walls: list[list[float]] = [[] for _ in deployments]
            cpus: list[list[float]] = [[] for _ in deployments]
            for deployment in deployments:
                warm = await operation(deployment, -1)
                assert warm.status_code < 300, (name, warm.status_code, warm.text[:400])
            for run in range(runs):
                for index, deployment in enumerate(deployments):
                    capture = deployment.capture
                    capture.statements, capture.on = [], run == 0
                    wall, cpu = time.perf_counter(), time.process_time()
                    response = await operation(deployment, run)
                    walls[index].append((time.perf_counter() - wall) * 1000)
                    cpus[index].append((time.process_time() - cpu) * 1000)
                    capture.on = False
                    assert response.status_code < 300, (name, response.status_code, response.text)
                    if run == 0 and show_plans and table:
                        await explain(deployment.url, capture, table, f"{name}, {deployment.url}")
            rss, peak = kit.rss_mib()
            figures = [
                {
                    "median_ms": round(statistics.median(wall), 2),
                    "p90_ms": round(sorted(wall)[max(0, int(len(wall) * 0.9) - 1)], 2),
                    "cpu_ms": round(statistics.median(cpu), 2),
                }
                for wall, cpu in zip(walls, cpus, strict=True)
            ]
            results["operations"][name] = {"figures": figures, "rss_mib": round(rss)}
            ratio = (
                f", ratio {figures[-1]['median_ms'] / figures[0]['median_ms']:.2f}"
                if len(figures) > 1
                else ""
            )
            medians = " / ".join(f"{figure['median_ms']:.1f}" for figure in figures)
            print(
                f"  {name}: median {medians} ms{ratio}; RSS {rss:.0f} MiB (peak {peak:.0f})",
                flush=True,
            )
    finally:
        for deployment in deployments:
            await deployment.close()
    results["load_after"] = kit.load_average()
    return results


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table (the first deployment against the last)."""
    first, last = results["deployments"][0], results["deployments"][-1]
    lines = [
        f"| operation | {first['deaths']:,} deaths: median ms (CPU ms) |"
        f" {last['deaths']:,} deaths: median ms (CPU ms) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in results["operations"].items():
        small, large = entry["figures"][0], entry["figures"][-1]
        ratio = large["median_ms"] / small["median_ms"] if small["median_ms"] else float("inf")
        lines.append(
            f"| {name} | {small['median_ms']:.1f} ({small['cpu_ms']:.1f}) |"
            f" {large['median_ms']:.1f} ({large['cpu_ms']:.1f}) | {ratio:.2f}x |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    building = sub.add_parser("build", help="make (or remake) one benchmark database")
    building.add_argument("--database-url", default=DEFAULT_URL)
    building.add_argument("--deaths", type=int, default=6_000_000)
    building.add_argument("--organisations", type=int, default=203)
    building.add_argument("--years", type=float, default=10)
    building.add_argument("--audit-rows", type=int, default=100_000_000)
    building.add_argument("--events-per-death", type=int, default=3)
    building.add_argument("--chunk", type=int, default=500_000, help="deaths per statement")
    building.add_argument(
        "--resume", action="store_true", help="the deaths are in: load the months again"
    )
    measuring = sub.add_parser("measure", help="time the operations on one or more databases")
    measuring.add_argument("urls", nargs="+", metavar="DATABASE_URL")
    measuring.add_argument("--runs", type=int, default=15)
    measuring.add_argument("--explain", action="store_true", help="print the plans")
    measuring.add_argument("--output", help="write the figures to this JSON file")
    dropping = sub.add_parser("drop", help="drop benchmark databases")
    dropping.add_argument("urls", nargs="+", metavar="DATABASE_URL")
    args = parser.parse_args()
    if args.command == "build":
        await warn_of_slots(args.database_url)
        await kit.ensure_database(
            args.database_url, reset=not args.resume, service_role=SERVICE_ROLE
        )
        print(f"load average {kit.load_average()}", flush=True)
        await build(args.database_url, Shape.from_args(args), args.chunk, args.resume)
    elif args.command == "measure":
        results = await measure(args.urls, args.runs, args.explain)
        results["command"] = " ".join(["python", *sys.argv])
        print(f"load average {results['load_before']} before, {results['load_after']} after")
        print(table(results))
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, json.dumps(results, indent=2))
    else:
        for url in args.urls:
            await kit.drop_database(url)
            print(f"dropped {url}")


if __name__ == "__main__":
    asyncio.run(main())
