"""Per-request cost of the rate limits and the failed-authentication throttle (app.ratelimit),
measured in-process: what each request on the hot path (POST /v1/screenings, the queue pages)
pays on top of what it did before. Compare with about 8 ms of CPU per screening
(docs/benchmarks.md).

    .venv/bin/python bench/ratelimit_overhead.py [iterations]
"""

from __future__ import annotations

import sys
import timeit
import uuid

from app.config import Settings
from app.ratelimit import AuthThrottle, RateLimiter


def per_call_us(function: object, number: int) -> float:
    return timeit.timeit(function, number=number) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    number = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    # A burst no run can exhaust: the measured path is the token take, not the refusal.
    settings = Settings(rate_limit_burst=10**9, rate_limit_routes={"GET /v1/reports": (5.0, 10**9)})
    limiter = RateLimiter(settings)
    client = uuid.uuid4()
    quota = limiter.check(client, "POST", "/v1/screenings")
    assert quota is not None
    throttle = AuthThrottle(settings)
    response_headers = [(b"content-type", b"application/json"), (b"content-length", b"512")]

    def add_headers() -> None:
        headers = list(response_headers)
        if not any(name == b"ratelimit-limit" for name, _ in headers):
            headers.extend((n.lower().encode(), v.encode()) for n, v in quota.headers().items())

    figures = {
        "client bucket (POST /v1/screenings)": lambda: limiter.check(
            client, "POST", "/v1/screenings"
        ),
        "client + route bucket (GET /v1/reports/themes)": lambda: limiter.check(
            client, "GET", "/v1/reports/themes"
        ),
        "RateLimit-* response headers": add_headers,
        "address throttle + negative cache check": lambda: (
            throttle.refuse_address("203.0.113.5"),
            throttle.known_bad("lfd_0123456789ab_" + "x" * 32),
        ),
    }
    for label, function in figures.items():
        print(f"{label}: {per_call_us(function, number):.2f} us per request")


if __name__ == "__main__":
    main()
