"""The attack suite: each module replays one class of attack found against the service
(docs/security.md) and holds the fix. Runs with the rest of the suite in CI."""
