"""The cost of the credential paths and of the metrics middleware, in process.

    python bench/auth_metrics.py [--database-url URL] [--requests 2000]

Builds the app (httpx's ASGI transport, no network, so that only the service's own work is
timed) on a fresh SQLite file, or on the given (empty or migrated) PostgreSQL database, with a
death to read, and times, one request at a time:

- GET /v1/deaths/{id} with an API key (the SHA-256 lookup by prefix);
- the same with an access token from POST /oauth2/token (RS512 verification of the token,
  then the client's row by id);
- POST /oauth2/token itself (verify an RS512 client assertion, spend its jti, sign a token);
- GET /healthz and GET /v1/deaths/{id} with the metrics middleware on, and again with it off
  (LFD_METRICS_ENABLED=false), in alternating rounds so that drift affects both alike;
- GET /metrics (the scrape: its gauges' queries).

It prints the mean and percentiles of each and the machine's load average.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(_HERE).parent))

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.clients.service import add_public_key
from app.config import Settings
from app.main import create_app
from app.migrate import upgrade
from bench.kit import asgi_client, durations, load_average

SCREENING = {
    "death": {
        "source_system": "bench",
        "source_reference": "",
        "nhs_number_status": "01",
        "nhs_number": "9434765919",
        "date_of_birth": "1948-06-01",
        "sex": "female",
        "died_at": "2026-11-20T03:10:00+00:00",
        "place_of_death": "inpatient",
        "admission_method": "emergency",
    },
    "screening": {
        "examiner": {"name": "Dr A Examiner", "gmc_number": "1234567"},
        "screened_at": "2026-11-21T09:00:00+00:00",
        "records_reviewed": True,
        "qap_discussed": True,
        "bereaved_contacted": True,
        "coroner_notified": False,
        "death_expected": True,
        "overrides": [],
    },
}


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"mean {statistics.fmean(samples) * 1000:7.3f} ms  p50 {at(0.5):7.3f}  "
        f"p90 {at(0.9):7.3f}  p99 {at(0.99):7.3f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="lfd-bench-")
    url = args.database_url or f"sqlite+aiosqlite:///{scratch}/bench.db"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(database_url=url, run_worker_in_serve=False, log_level="WARNING")
    on = create_app(settings)
    off = create_app(settings.model_copy(update={"metrics_enabled": False}))
    database = on.state.database
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with database.transaction() as session:
        made = await create_client(session, "bench", [Scope.admin])
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        await add_public_key(session, made.client.id, pem=pem.decode())
    api_key = {"Authorization": f"Bearer {made.key}"}
    client_id = str(made.client.id)

    def assertion() -> str:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": "http://bench/oauth2/token"}
        claims |= {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, key, "RS512")

    def form() -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(),
        }

    async with asgi_client(on, timeout=5) as http_on, asgi_client(off, timeout=5) as http_off:
        body = {**SCREENING, "death": {**SCREENING["death"], "source_reference": uuid.uuid4().hex}}
        posted = await http_on.post(
            "/v1/screenings", json=body, headers={**api_key, "Idempotency-Key": uuid.uuid4().hex}
        )
        assert posted.status_code == 201, posted.text
        death = f"/v1/deaths/{posted.json()['death_id']}"
        token = (await http_on.post("/oauth2/token", data=form())).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        n = args.requests
        await durations(100, lambda: http_on.get(death, headers=api_key))  # warm up
        await durations(100, lambda: http_on.get(death, headers=bearer))
        results: dict[str, list[float]] = {}
        results["death, API key"] = await durations(n, lambda: http_on.get(death, headers=api_key))
        results["death, access token"] = await durations(
            n, lambda: http_on.get(death, headers=bearer)
        )
        results["POST /oauth2/token"] = await durations(
            max(n // 10, 50), lambda: http_on.post("/oauth2/token", data=form())
        )
        for name in ("healthz", "death"):
            results[f"{name}, metrics on"] = []
            results[f"{name}, metrics off"] = []
        for _ in range(10):
            for label, http in (("on", http_on), ("off", http_off)):
                results[f"healthz, metrics {label}"] += await durations(
                    n // 10, lambda http=http: http.get("/healthz")
                )
                results[f"death, metrics {label}"] += await durations(
                    n // 10, lambda http=http: http.get(death, headers=api_key)
                )
        results["GET /metrics"] = await durations(
            max(n // 20, 20), lambda: http_on.get("/metrics", headers=api_key)
        )
    await database.dispose()
    await off.state.database.dispose()
    print(f"database: {'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}")
    print(f"load average before/after: {load_average()}")
    for name, samples in results.items():
        print(f"{name:<24} n={len(samples):<5} {percentiles(samples)}")


if __name__ == "__main__":
    asyncio.run(main())
