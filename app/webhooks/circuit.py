"""The circuit breaker of one endpoint, kept on its row (webhook_endpoints.circuit_*) so that
every worker sees the same state.

- **Closed** (fewer than ``webhook_circuit_failures`` failed attempts in a row): deliveries are
  claimed and sent, at most ``webhook_endpoint_concurrency`` at once per worker.
- **Open** (that many failures in a row; ``circuit_open_until`` in the future): nothing is
  claimed for the endpoint, and what a worker had already claimed for it is not sent (the
  opening bumps ``circuit_trips``, and a claim made under an older count is released at its
  start). Its deliveries keep their place and their retry count: nothing is spent on an
  endpoint known to be failing.
- **Half-open** (the cool-down is over): one claim takes one delivery as the probe and moves
  ``circuit_open_until`` past that claim's lease, so no other worker probes at once. The probe
  answered closes the circuit; the probe failed opens it again, for twice the cool-down
  (up to ``webhook_circuit_max_cooldown_seconds``).

What counts: a timeout, a connection or protocol error, a 5xx or a 429 is a failure; any other
answer (2xx, and also 3xx or 4xx: the endpoint is up and answers promptly) closes the circuit;
an attempt that made no request (not allowed, an internal address) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.config import Settings

MAX_DOUBLINGS = 16  # a cool-down doubles at most this many times (it is capped anyway)


@dataclass(frozen=True)
class Breaker:
    """The breaker's settings."""

    failures: int
    cooldown: timedelta
    max_cooldown: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Breaker:
        return cls(
            failures=settings.webhook_circuit_failures,
            cooldown=timedelta(seconds=settings.webhook_circuit_cooldown_seconds),
            max_cooldown=timedelta(seconds=settings.webhook_circuit_max_cooldown_seconds),
        )

    def cooldown_after(self, failures: int) -> timedelta:
        """The cool-down once ``failures`` attempts in a row have failed (at least the
        threshold): the base, doubled for each failure beyond the threshold, capped."""
        doublings = min(max(failures - self.failures, 0), MAX_DOUBLINGS)
        return min(self.cooldown * (1 << doublings), self.max_cooldown)


@dataclass(frozen=True)
class Circuit:
    """One endpoint's breaker state, as stored on its row."""

    failures: int
    open_until: datetime | None
    trips: int

    def is_tripped(self, breaker: Breaker) -> bool:
        """Open or half-open: the last ``breaker.failures`` attempts or more all failed."""
        return self.failures >= breaker.failures

    def may_probe(self, breaker: Breaker, at: datetime) -> bool:
        """Half-open: tripped, its cool-down over and no probe in flight."""
        return self.is_tripped(breaker) and (self.open_until is None or self.open_until <= at)


def verdict(status_code: int | None, error_kind: str | None) -> bool | None:
    """True: the endpoint answered (closes the circuit); False: a failure that counts; None:
    no request was made (the URL is no longer allowed, or resolves to an internal address)."""
    if status_code is not None:
        return not (status_code >= 500 or status_code == 429)
    if error_kind in {"timeout", "connect", "protocol"}:
        return False
    return None


def after(
    circuit: Circuit, verdicts: Iterable[bool | None], at: datetime, breaker: Breaker
) -> Circuit:
    """The state after attempts that ended (in the order they ended), recorded at ``at``.
    Every failure at or beyond the threshold (re)opens the circuit from ``at`` and counts a
    trip, so that claims made before it are not sent."""
    failures, open_until, trips = circuit.failures, circuit.open_until, circuit.trips
    for healthy in verdicts:
        if healthy is None:
            continue
        if healthy:
            failures, open_until = 0, None
            continue
        failures += 1
        if failures >= breaker.failures:
            open_until = at + breaker.cooldown_after(failures)
            trips += 1
    return Circuit(failures, open_until, trips)
