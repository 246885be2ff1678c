"""The programme's sample: the deaths of its cohort are reviewed in the order of a seeded key,
so that the same seed and the same cohort always choose the same deaths, and anyone can check
the choice (docs/programmes.md, "Sampling").

The key of a death is a hash of its case number (the number in its case reference,
D-2026-000123 is 123) and the programme's seed, in integer arithmetic modulo the prime
2^31 - 1 that SQLite and PostgreSQL compute alike (every intermediate stays below 2^62), so
the database orders a cohort of any size itself. ``sample_key`` is the same formula in Python,
for the documentation and the tests.

    x  = case_number mod P
    h1 = (x * 48271 + seed) mod P
    h2 = (h1 * h1 + x) mod P
    h3 = (h2 * 69621 + seed) mod P
    key = (h3 * h3 + h1) mod P

The deaths are chosen lowest key first (ties, which are rare, by the death's id). How many:
every death (`all`), `size` of them (`number`), or `percent` % of the cohort rounded up
(`percent`). When the cohort grows (a death recorded late), the sample is topped up to its new
size from the deaths not yet chosen, in the same order; a death once chosen stays chosen.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, literal

P = 2_147_483_647
A = 48_271
B = 69_621


def sample_key(case_number: int, seed: int) -> int:
    x = case_number % P
    h1 = (x * A + seed) % P
    h2 = (h1 * h1 + x) % P
    h3 = (h2 * B + seed) % P
    return (h3 * h3 + h1) % P


def sample_key_sql(case_number: Any, seed: int) -> ColumnElement[int]:
    """``sample_key`` as an expression the database evaluates (bigint on PostgreSQL)."""

    def big(value: int) -> Any:
        return literal(value, BigInteger)

    x = case_number % big(P)
    h1 = (x * big(A) + big(seed)) % big(P)
    h2 = (h1 * h1 + x) % big(P)
    h3 = (h2 * big(B) + big(seed)) % big(P)
    key: ColumnElement[int] = (h3 * h3 + h1) % big(P)
    return key


def target(mode: str, in_cohort: int, size: int | None, percent: int | None) -> int:
    """How many of a cohort of ``in_cohort`` deaths are to be reviewed."""
    if mode == "number":
        return min(size or 0, in_cohort)
    if mode == "percent":
        return (in_cohort * (percent or 0) + 99) // 100
    return in_cohort
