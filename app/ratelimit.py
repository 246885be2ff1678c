"""Rate limits and the throttling of failed authentication (docs/security.md).

Token buckets held in each worker process's memory: no database round trip, a few dictionary
operations per request. A deployment of N uvicorn workers therefore allows up to N times each
figure (a client's requests are spread over the workers by the kernel); the settings are per
worker and docs/security.md states the bound.

- **Per client**: every authenticated request takes a token from its client's bucket, and
  from the client's bucket for the route when the route has its own limit
  (``rate_limit_routes``). An empty bucket is a 429 with ``Retry-After``; every answer to an
  authenticated request carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
  ``RateLimit-Reset`` for the tighter of the two buckets.
- **Failed authentication**: a well-formed key that the database did not accept takes a token
  from its source address's failure bucket and from its key prefix's. A source address whose
  bucket is empty gets 429 for any request carrying a key, before any lookup. A prefix whose
  bucket is empty answers further *failures* with 429 instead of 401: the real key, from any
  address, still works, so guessing at a client's prefix cannot lock that client out.
- **Negative cache**: a key found invalid is remembered (by its SHA-256) for a while, so the
  same bad key again costs no lookup (and no failure token: it is not a new guess).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from app.config import Settings
from app.errors import TooManyRequests


@dataclass(frozen=True)
class Quota:
    """What a bucket had left after a take: for the RateLimit headers."""

    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int  # 0 when the take succeeded

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class Buckets:
    """Token buckets by key, ``burst`` tokens each, refilled at ``per_second``. At most
    ``max_tracked`` keys are held: the least recently used are dropped first (a dropped key
    starts again with a full bucket, which only ever favours the client)."""

    def __init__(self, per_second: float, burst: int, max_tracked: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_tracked = max_tracked
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def _level(self, key: Hashable, moment: float) -> float:
        held = self._buckets.get(key)
        if held is None:
            return float(self.burst)
        tokens, stamp = held
        return min(float(self.burst), tokens + (moment - stamp) * self.per_second)

    def _store(self, key: Hashable, tokens: float, moment: float) -> None:
        self._buckets[key] = (tokens, moment)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_tracked:
            self._buckets.popitem(last=False)

    def take(self, key: Hashable, moment: float | None = None) -> Quota:
        moment = time.monotonic() if moment is None else moment
        tokens = self._level(key, moment)
        if tokens >= 1.0:
            tokens -= 1.0
            self._store(key, tokens, moment)
            return self._quota(tokens, 0)
        self._store(key, tokens, moment)
        return self._quota(tokens, max(1, math.ceil((1.0 - tokens) / self.per_second)))

    def empty(self, key: Hashable, moment: float | None = None) -> int:
        """Seconds until ``key`` has a token again; 0 when it has one now (nothing taken)."""
        moment = time.monotonic() if moment is None else moment
        tokens = self._level(key, moment)
        return 0 if tokens >= 1.0 else max(1, math.ceil((1.0 - tokens) / self.per_second))

    def _quota(self, tokens: float, retry_after: int) -> Quota:
        reset = math.ceil((self.burst - tokens) / self.per_second)
        return Quota(self.burst, int(tokens), reset, retry_after)


class RateLimiter:
    """The per-client and per-route limits of one worker process."""

    def __init__(self, settings: Settings) -> None:
        tracked = settings.rate_limit_max_tracked
        self.enabled = settings.rate_limit_per_second > 0
        self.clients = Buckets(settings.rate_limit_per_second, settings.rate_limit_burst, tracked)
        self.routes = {
            route: Buckets(per_second, burst, tracked)
            for route, (per_second, burst) in settings.rate_limit_routes.items()
        }
        self._route_of: dict[tuple[str, str], str | None] = {}

    def _route_limit(self, method: str, template: str) -> str | None:
        """The `rate_limit_routes` entry for a route (the longest matching prefix), cached."""
        cached = self._route_of.get((method, template), "")
        if cached != "":
            return cached
        found: str | None = None
        for entry in self.routes:
            entry_method, _, prefix = entry.partition(" ")
            longer = found is None or len(prefix) > len(found.partition(" ")[2])
            if entry_method in {method, "*"} and template.startswith(prefix) and longer:
                found = entry
        self._route_of[(method, template)] = found
        return found

    def check(self, client: Hashable, method: str, template: str) -> Quota | None:
        """Take a token for one request; raises 429 when a bucket is empty. Returns the
        quota for the headers (the tighter bucket's), None when limits are off."""
        quotas: list[Quota] = []
        if self.enabled:
            quotas.append(self.clients.take(client))
        route = self._route_limit(method, template)
        if route is not None:
            quotas.append(self.routes[route].take((client, route)))
        if not quotas:
            return None
        refused = [quota for quota in quotas if quota.retry_after]
        if refused:
            quota = max(refused, key=lambda q: q.retry_after)
            scope = "this route" if route is not None and quota is quotas[-1] else "this client"
            raise TooManyRequests(
                f"The rate limit for {scope} is {quota.limit} requests at once; retry after "
                f"{quota.retry_after} s.",
                headers=quota.headers(),
            )
        return min(quotas, key=lambda q: q.remaining)


class AuthThrottle:
    """Failed authentication per source address and per key prefix, and the negative cache."""

    def __init__(self, settings: Settings) -> None:
        per_second = settings.auth_failure_refill_per_minute / 60.0
        tracked = settings.rate_limit_max_tracked
        self.addresses = Buckets(per_second, settings.auth_failure_burst, tracked)
        self.prefixes = Buckets(per_second, settings.auth_failure_burst, tracked)
        self.cache_seconds = settings.auth_negative_cache_seconds
        self.cache_size = settings.auth_negative_cache_size
        self._bad: OrderedDict[bytes, float] = OrderedDict()

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def refuse_address(self, address: str) -> None:
        """429 before any lookup when this address has used up its failures."""
        wait = self.addresses.empty(address)
        if wait:
            raise TooManyRequests(
                f"Too many failed authentication attempts from this address; retry after {wait} s.",
                headers={"Retry-After": str(wait)},
            )

    def known_bad(self, key: str) -> bool:
        """Whether this exact key was found invalid within the cache's lifetime."""
        if not self._bad:
            return False
        digest = self._digest(key)
        until = self._bad.get(digest)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._bad[digest]
            return False
        return True

    def failed(self, address: str, prefix: str, key: str) -> None:
        """Record a failure of a key the database did not accept; raises 429 when its prefix
        has failed too often (the caller answers 401 otherwise)."""
        if self.cache_seconds and self.cache_size:
            digest = self._digest(key)
            self._bad[digest] = time.monotonic() + self.cache_seconds
            self._bad.move_to_end(digest)
            while len(self._bad) > self.cache_size:
                self._bad.popitem(last=False)
        self.addresses.take(address)
        quota = self.prefixes.take(prefix)
        if quota.retry_after:
            raise TooManyRequests(
                "Too many failed authentication attempts for this key; retry after "
                f"{quota.retry_after} s.",
                headers={"Retry-After": str(quota.retry_after)},
            )
