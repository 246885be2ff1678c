"""The service's Prometheus instruments (counters and histograms), at the foundation so that
the generic background loop (app.worker) and the HTTP middleware can count without importing
the /metrics endpoint (app.metrics), which reads the domains for its gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "lfd_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "lfd_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "lfd_job_runs", "Background job runs (app.worker, webhooks).", ["job"], registry=REGISTRY
)
JOB_ERRORS = Counter(
    "lfd_job_errors", "Background job runs that failed.", ["job"], registry=REGISTRY
)
REPLICA_READS = Counter(
    "lfd_replica_reads",
    "Reads that may come from the read replica (reports, change feed), by the database that "
    "served them and why (app.replica).",
    ["source", "reason"],
    registry=REGISTRY,
)
