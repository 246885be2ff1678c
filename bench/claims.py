"""Concurrent claimers: POST /v1/referrals/claim under contention, and a check that no referral
is ever leased to two claimers at once.

    python bench/claims.py [--url http://127.0.0.1:8077] [--key KEY] [--claimers 32]
        [--seconds 20] [--count 1] [--release 0.8] [--route sjr] [--server-pid PID]
        [--database-url ...] [--json results.json]

The key (``--key`` or LFD_BENCH_KEY) needs ``referrals:claim`` and ``referrals:read``. Each
claimer is an asyncio task with its own reviewer name (``X-On-Behalf-Of: Bench Reviewer NN``)
that, until the time is up, claims ``--count`` referrals of the route, then for each one either
releases it at once (with probability ``--release``) or keeps it. Released referrals go back to
the head of the queue, so the claimers keep fighting over the same rows: the case that
``FOR UPDATE SKIP LOCKED`` is for. When the queue is empty a claimer backs off for 50 ms.

Every claim is recorded as (referral id, lease id, claimer, when the request was sent and the
answer received, when its release was sent, or its lease expiry if kept), and checked:

- a lease id is never handed out twice;
- for each referral, no claim's answer arrived before the previous holder had even sent its
  release (or, for a kept claim, before its lease expired): that would be two live leases at
  once. This errs on the side of missing a violation inside one round trip, never of
  reporting a false one;
- every release of a lease its claimer still held succeeded (a 409 there means somebody else
  had taken the referral);
- at the end, every kept claim is still held by its claimer (GET /v1/referrals/{id} shows the
  same lease id and reviewer); then the kept leases are released (``--keep`` to leave them).

It prints claims (referrals leased) per second, claim requests per second, latency
percentiles of the claim and release calls, and the verdict; the exit status is 1 on any
double claim or error. With ``--server-pid`` and ``--database-url`` it also reports CPU time
per claim by the server, PostgreSQL and this client, as bench/queue.py does.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py shadows the standard library's queue module (which asyncio and
# concurrent.futures import) when a script here runs as ``python bench/<script>.py``, since
# Python puts the script's directory first on the path: take that directory off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import importlib.util
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx


def _load_sibling(name: str) -> Any:
    """bench/queue.py's CPU meter, loaded by path (a plain import would find the standard
    library's queue module)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(_HERE, name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Claim:
    referral_id: str
    lease_id: str
    claimer: str
    sent: float  # wall-clock seconds, this machine
    received: float
    lease_expires_at: float  # from the server
    released_sent: float | None = None
    release_status: int | None = None


@dataclass
class Report:
    claimers: int
    count: int
    release_probability: float
    seconds: float
    claim_requests: int
    empty_claims: int
    claims: int
    distinct_referrals: int
    claims_per_second: float
    claim_requests_per_second: float
    releases: int
    claim_p50_ms: float
    claim_p99_ms: float
    release_p50_ms: float
    release_p99_ms: float
    duplicate_lease_ids: int
    double_claims: int
    release_conflicts: int
    kept_not_held: int
    errors: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_claim: dict[str, float] = field(default_factory=dict)
    connections: str = ""  # client connections per server worker, e.g. "16/16"


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


async def claimer(
    client: httpx.AsyncClient,
    number: int,
    args: argparse.Namespace,
    deadline: float,
    claims: list[Claim],
    latencies: dict[str, list[float]],
    errors: Counter[str],
    counters: Counter[str],
    start_delay: float = 0.0,
) -> None:
    name = f"Bench Reviewer {number:02d}"
    headers = {"X-On-Behalf-Of": name}
    await asyncio.sleep(start_delay)
    rng = random.Random(number)
    body: dict[str, Any] = {"route": args.route, "count": args.count}
    if args.lease_seconds:
        body["lease_seconds"] = args.lease_seconds
    while time.perf_counter() < deadline:
        sent, started = time.time(), time.perf_counter()
        try:
            response = await client.post("/v1/referrals/claim", json=body, headers=headers)
        except httpx.HTTPError as error:
            errors[f"claim {type(error).__name__}"] += 1
            continue
        received = time.time()
        latencies["claim"].append(time.perf_counter() - started)
        counters["claim_requests"] += 1
        if response.status_code != 200:
            errors[f"claim {response.status_code}"] += 1
            continue
        items = response.json()["items"]
        if not items:
            counters["empty"] += 1
            await asyncio.sleep(0.05)
            continue
        for item in items:
            claim = Claim(
                referral_id=item["id"],
                lease_id=item["lease_id"],
                claimer=name,
                sent=sent,
                received=received,
                lease_expires_at=_ts(item["lease_expires_at"]),
            )
            claims.append(claim)
            if item.get("leased_to") != name:
                errors["claim answered with another reviewer's lease"] += 1
        for claim in claims[-len(items) :]:
            if rng.random() >= args.release:
                continue
            claim.released_sent = time.time()
            started = time.perf_counter()
            try:
                release = await client.post(
                    f"/v1/referrals/{claim.referral_id}/release",
                    json={"lease_id": claim.lease_id},
                    headers=headers,
                )
            except httpx.HTTPError as error:
                errors[f"release {type(error).__name__}"] += 1
                claim.released_sent = None
                continue
            latencies["release"].append(time.perf_counter() - started)
            claim.release_status = release.status_code
            if release.status_code not in (200, 409):
                errors[f"release {release.status_code}"] += 1


def check(claims: list[Claim]) -> tuple[int, int, list[str]]:
    """(duplicate lease ids, double claims, examples)."""
    examples: list[str] = []
    leases = Counter(c.lease_id for c in claims)
    duplicates = sum(1 for n in leases.values() if n > 1)
    by_referral: dict[str, list[Claim]] = defaultdict(list)
    for claim in claims:
        by_referral[claim.referral_id].append(claim)
    doubles = 0
    for referral_id, held in by_referral.items():
        held.sort(key=lambda c: c.received)
        for index, later in enumerate(held):
            for earlier in held[:index]:
                # The earlier holder let go no sooner than it sent its release (or its lease
                # ran out); a later claim answered before that overlapped it.
                ended = (
                    earlier.released_sent
                    if earlier.released_sent is not None and earlier.release_status == 200
                    else earlier.lease_expires_at
                )
                if later.lease_id != earlier.lease_id and later.received < ended:
                    doubles += 1
                    if len(examples) < 5:
                        examples.append(
                            f"referral {referral_id}: {earlier.claimer} (lease {earlier.lease_id})"
                            f" and {later.claimer} (lease {later.lease_id})"
                        )
    return duplicates, doubles, examples


async def verify_kept(client: httpx.AsyncClient, kept: list[Claim], errors: Counter[str]) -> int:
    """Kept claims whose referral no longer shows that lease and reviewer."""
    semaphore = asyncio.Semaphore(16)
    wrong = 0

    async def one(claim: Claim) -> None:
        nonlocal wrong
        async with semaphore:
            response = await client.get(f"/v1/referrals/{claim.referral_id}")
        if response.status_code != 200:
            errors[f"verify {response.status_code}"] += 1
            return
        body = response.json()
        if (
            body["lease_id"] != claim.lease_id
            or body["leased_to"] != claim.claimer
            or body["status"] not in ("claimed", "in_progress")  # a draft's lease keeps it
        ):
            wrong += 1
            if wrong <= 3:
                print(
                    f"  kept claim not held: {claim.referral_id} claimed by {claim.claimer} "
                    f"(lease {claim.lease_id}) now reads status {body['status']}, lease "
                    f"{body['lease_id']}, leased to {body['leased_to']}"
                )

    await asyncio.gather(*(one(c) for c in kept))
    return wrong


async def release_kept(client: httpx.AsyncClient, kept: list[Claim]) -> None:
    semaphore = asyncio.Semaphore(16)

    async def one(claim: Claim) -> None:
        async with semaphore:
            await client.post(
                f"/v1/referrals/{claim.referral_id}/release",
                json={"lease_id": claim.lease_id},
                headers={"X-On-Behalf-Of": claim.claimer},
            )

    await asyncio.gather(*(one(c) for c in kept))


async def main_async(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("LFD_BENCH_KEY")
    if not key:
        raise SystemExit("give --key or LFD_BENCH_KEY (a client with referrals:claim)")
    database_url = args.database_url or os.environ.get("LFD_DATABASE_URL")
    meter = None
    if args.server_pid:
        database = database_url.rsplit("/", 1)[-1].split("?")[0] if database_url else None
        meter = _load_sibling("queue.py").CpuMeter(args.server_pid, database)
    claims: list[Claim] = []
    latencies: dict[str, list[float]] = {"claim": [], "release": []}
    errors = Counter[str]()
    counters = Counter[str]()
    limits = httpx.Limits(max_connections=args.claimers, max_keepalive_connections=args.claimers)
    async with httpx.AsyncClient(
        base_url=args.url,
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=30.0,
    ) as client:
        # Warm-up: connections open, code paths hot; then everything it kept is given back.
        # The claimers start 20 ms apart so that their connections spread over the server's
        # workers (a burst of connections is accepted in one go by whichever worker wakes
        # first, and a keep-alive connection stays with the worker that accepted it).
        warm: list[Claim] = []
        warm_deadline = time.perf_counter() + args.warmup + 0.02 * args.claimers
        await asyncio.gather(
            *(
                claimer(
                    client,
                    n,
                    args,
                    warm_deadline,
                    warm,
                    {"claim": [], "release": []},
                    Counter(),
                    Counter(),
                    start_delay=0.02 * n,
                )
                for n in range(args.claimers)
            )
        )
        await release_kept(client, [c for c in warm if c.released_sent is None])

        spread = meter.spread(urlsplit(args.url).port or 80) if meter else ""
        if meter:
            meter.start()
        started = time.perf_counter()
        deadline = started + args.seconds
        await asyncio.gather(
            *(
                claimer(client, n, args, deadline, claims, latencies, errors, counters)
                for n in range(args.claimers)
            )
        )
        elapsed = time.perf_counter() - started
        cpu = meter.stop() if meter else {}

        duplicates, doubles, examples = check(claims)
        conflicts = sum(1 for c in claims if c.release_status == 409)
        kept = [c for c in claims if c.release_status is None]
        not_held = await verify_kept(client, kept, errors)
        if not args.keep:
            await release_kept(client, kept)

    report = Report(
        claimers=args.claimers,
        count=args.count,
        release_probability=args.release,
        seconds=round(elapsed, 2),
        claim_requests=counters["claim_requests"],
        empty_claims=counters["empty"],
        claims=len(claims),
        distinct_referrals=len({c.referral_id for c in claims}),
        claims_per_second=round(len(claims) / elapsed, 1),
        claim_requests_per_second=round(counters["claim_requests"] / elapsed, 1),
        releases=sum(1 for c in claims if c.release_status is not None),
        claim_p50_ms=_pct(latencies["claim"], 0.5),
        claim_p99_ms=_pct(latencies["claim"], 0.99),
        release_p50_ms=_pct(latencies["release"], 0.5),
        release_p99_ms=_pct(latencies["release"], 0.99),
        duplicate_lease_ids=duplicates,
        double_claims=doubles,
        release_conflicts=conflicts,
        kept_not_held=not_held,
        errors=dict(errors),
        cpu_ms_per_claim={g: round(1000 * s / max(len(claims), 1), 2) for g, s in cpu.items()},
        connections=spread,
    )
    print(
        f"{report.claimers} claimers, count {report.count}, release {report.release_probability}:"
        f" {report.claims} claims of {report.distinct_referrals} referrals in {report.seconds} s"
        f" = {report.claims_per_second} claims/s ({report.claim_requests_per_second} claim "
        f"requests/s, {report.empty_claims} empty, {report.releases} releases)"
    )
    print(
        f"claim p50 {report.claim_p50_ms} ms, p99 {report.claim_p99_ms} ms; "
        f"release p50 {report.release_p50_ms} ms, p99 {report.release_p99_ms} ms"
    )
    if report.cpu_ms_per_claim:
        print(
            f"CPU ms per claim (with its release, if any): {report.cpu_ms_per_claim}; "
            f"client connections per server worker: {report.connections}"
        )
    verdict_ok = not (duplicates or doubles or conflicts or not_held or errors)
    print(
        f"double claims: {doubles}; duplicate lease ids: {duplicates}; release conflicts: "
        f"{conflicts}; kept claims not held at the end: {not_held} of {len(kept)}; "
        f"errors: {dict(errors) or 0} -> {'OK' if verdict_ok else 'FAILED'}"
    )
    for example in examples:
        print("  " + example)
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(asdict(report), indent=2))
    return 0 if verdict_ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("LFD_BENCH_URL", "http://127.0.0.1:8077"))
    parser.add_argument("--key", default=None)
    parser.add_argument("--claimers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--count", type=int, default=1, help="referrals per claim request")
    parser.add_argument(
        "--release", type=float, default=0.8, help="chance a claim is released at once"
    )
    parser.add_argument("--lease-seconds", type=int, default=600)
    parser.add_argument("--route", default="sjr")
    parser.add_argument("--keep", action="store_true", help="leave the kept leases in place")
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
