"""Idempotency-Key: a retried POST replays its first response instead of acting twice."""
