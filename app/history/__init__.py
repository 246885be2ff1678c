"""Bulk history: a trust's past imported and exported with its own dates (docs/history.md)."""
