"""Settings, read once from the environment (prefix ``LFD_``).

Everything a trust may want to tune without a code change lives here: the referral rule lists,
the learning-sample percentage, the due-date and priority rules, limits, the database URL.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import pairwise
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.kit.enums import PlaceOfDeath, Route
from app.kit.ods import DEFAULT_ALIASES as DEFAULT_ORGANISATION_ALIASES

DEFAULT_DUE_DAYS: dict[Route, int] = {
    Route.sjr: 56,
    Route.mm: 56,
    Route.leder: 7,
    Route.cdr: 7,
    Route.pmrt: 7,
    Route.mnsi: 7,
    Route.psii: 7,
    Route.coroner: 2,
    Route.complaint: 25,
    Route.system_review: 56,
    Route.programme: 56,  # unless the programme sets its own reviews_due_on
}

# Lower is more urgent. Legal and safety routes first, then the national notifications, then
# the trust's own case record reviews.
DEFAULT_PRIORITIES: dict[Route, int] = {
    Route.coroner: 1,
    Route.psii: 1,
    Route.cdr: 2,
    Route.pmrt: 2,
    Route.mnsi: 2,
    Route.leder: 2,
    Route.sjr: 3,
    Route.complaint: 3,
    Route.mm: 4,
    Route.system_review: 4,
    Route.programme: 4,
}


# Routes that cost more than a lookup, with their own bucket per client: [per second, burst].
DEFAULT_ROUTE_LIMITS: dict[str, tuple[float, int]] = {
    "GET /v1/reports": (5.0, 100),
    "POST /v1/action-plans/import": (1.0, 30),
    "GET /v1/action-plans/{plan_id}/export": (2.0, 60),
}


def _csv(value: object) -> object:
    """Accept ``a,b,c`` from the environment as well as a JSON list."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            import json

            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LFD_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./lfd.db"
    # PostgreSQL: the tables' owner, for migrations (`lfd migrate`, `lfd serve`), when the
    # service itself connects as a role that does not own them and cannot bypass row-level
    # security (`lfd database service-role`; docs/organisations.md). Unset: database_url.
    migration_database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    # How long a request waits for a free pooled connection before its 503 (docs/security.md).
    database_pool_timeout_seconds: float = Field(default=3.0, gt=0, le=60)

    # PostgreSQL timeouts, in milliseconds (0 turns one off; docs/security.md). Request paths
    # get the first three as the connection's defaults (no round trip); reports, exports and
    # imports, and the background loop, set their own at the start of each transaction.
    database_statement_timeout_ms: int = Field(default=5_000, ge=0)
    database_lock_timeout_ms: int = Field(default=2_000, ge=0)
    database_idle_in_transaction_timeout_ms: int = Field(default=30_000, ge=0)
    database_report_statement_timeout_ms: int = Field(default=120_000, ge=0)
    database_report_lock_timeout_ms: int = Field(default=5_000, ge=0)
    database_report_idle_in_transaction_timeout_ms: int = Field(default=300_000, ge=0)
    database_worker_statement_timeout_ms: int = Field(default=60_000, ge=0)
    database_worker_lock_timeout_ms: int = Field(default=10_000, ge=0)
    database_worker_idle_in_transaction_timeout_ms: int = Field(default=120_000, ge=0)

    # A read replica (app.replica, docs/replica.md): a PostgreSQL hot standby of the primary,
    # reached as the same service role. The reports and the change feed read from it while its
    # lag is at most `read_replica_max_lag_seconds` (measured by each worker at most every
    # `read_replica_check_seconds`), otherwise from the primary. After a write, a client's reads
    # stay on the primary until the replica has replayed that write, for at most
    # `read_your_writes_seconds` (a client may also send the write's X-LFD-Read-After token).
    read_database_url: str | None = None
    read_replica_max_lag_seconds: float = Field(default=30.0, gt=0, le=3600)
    read_replica_check_seconds: float = Field(default=1.0, ge=0.05, le=60)
    read_replica_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    read_your_writes_seconds: float = Field(default=60.0, ge=0, le=3600)
    read_your_writes_max_clients: int = Field(default=100_000, ge=100)
    log_level: str = "INFO"
    log_json: bool = True

    # Referral rules (DESIGN.md section 4). Specialty names are compared case-insensitively.
    mortality_alert_specialties: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mortality_alert_diagnosis_groups: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mm_specialties: Annotated[list[str], NoDecode] = Field(default_factory=list)
    learning_sample_percent: float = Field(default=10.0, ge=0, le=100)
    due_days: dict[Route, int] = Field(default_factory=lambda: dict(DEFAULT_DUE_DAYS))
    priorities: dict[Route, int] = Field(default_factory=lambda: dict(DEFAULT_PRIORITIES))

    # Claims and leases.
    claim_max_count: int = Field(default=50, ge=1, le=500)
    lease_default_seconds: int = Field(default=1800, ge=60)
    lease_max_seconds: int = Field(default=86400, ge=60)
    # The medical examiner office's targets (GET /v1/me/worklist, the ME reports).
    me_mccd_target_days: int = Field(default=3, ge=1, le=30)
    leder_review_months: int = Field(default=6, ge=1, le=24)

    # Limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    upload_max_bytes: int = Field(default=20_971_520, ge=1024)  # spreadsheet imports
    # What one uploaded spreadsheet may make the service read (app.actions.limits,
    # docs/security.md "Spreadsheet uploads"): an XLSX's parts unzipped, the compression of a
    # part over 1 MiB, each XML part parsed whole (styles, workbook...), the ZIP's parts; and
    # for XLSX and CSV alike rows, columns read, cells (and shared strings), one cell's
    # characters, all the text's characters.
    spreadsheet_max_uncompressed_bytes: int = Field(default=104_857_600, ge=1_048_576)
    spreadsheet_max_compression_ratio: int = Field(default=100, ge=10)
    spreadsheet_max_part_bytes: int = Field(default=4_194_304, ge=65_536)
    spreadsheet_max_entries: int = Field(default=1_000, ge=10)
    spreadsheet_max_rows: int = Field(default=100_000, ge=10)
    spreadsheet_max_columns: int = Field(default=60, ge=10, le=16_384)
    spreadsheet_max_cells: int = Field(default=2_000_000, ge=100)
    spreadsheet_max_cell_chars: int = Field(default=32_767, ge=100)
    spreadsheet_max_text_chars: int = Field(default=20_000_000, ge=10_000)
    # Organisations written as names in imported plans (app.actions.organisations): name or
    # abbreviation -> [ODS code, full name], as JSON. Unset: a few common ones ("UHL" -> RWE).
    organisation_aliases: dict[str, list[str]] = Field(
        default_factory=lambda: {
            alias: list(pair) for alias, pair in DEFAULT_ORGANISATION_ALIASES.items()
        }
    )
    batch_max_items: int = Field(default=100, ge=1, le=1000)
    idempotency_lock_seconds: int = Field(default=60, ge=1)
    idempotency_retention_hours: int = Field(default=48, ge=1)

    # Rate limits (app.ratelimit, docs/security.md): token buckets held per worker process, so
    # the service-wide bound is the figure times the number of uvicorn workers. A client gets
    # `rate_limit_per_second` requests a second, up to `rate_limit_burst` at once; a route
    # listed in `rate_limit_routes` ("METHOD /path-template-prefix": [per second, burst]) has
    # its own bucket per client on top. 0 per second turns the client limit off.
    rate_limit_per_second: float = Field(default=200.0, ge=0)
    rate_limit_burst: int = Field(default=400, ge=1)
    rate_limit_routes: dict[str, tuple[float, int]] = Field(
        default_factory=lambda: dict(DEFAULT_ROUTE_LIMITS)
    )
    # Failed authentication: each source address and each key prefix may fail this many times
    # at once, refilled at so many a minute; a source address over it gets 429 without a
    # database lookup, a prefix over it answers its failures with 429 (the real key still
    # works). A key found invalid is remembered for `auth_negative_cache_seconds`.
    auth_failure_burst: int = Field(default=20, ge=1)
    auth_failure_refill_per_minute: float = Field(default=10.0, gt=0)
    auth_negative_cache_seconds: int = Field(default=300, ge=0)
    # API keys found valid, and organisations' reach, kept in each worker's memory for at most
    # this long (app.auth.cache): dropped at once, in every worker, when the database NOTIFYs
    # a change (migration 0026); 0 looks both up on every request. PostgreSQL only.
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    auth_negative_cache_size: int = Field(default=10_000, ge=0)
    rate_limit_max_tracked: int = Field(default=100_000, ge=100)

    # Slow clients (app.http_guard): the request line and headers must arrive within this many
    # seconds of the connection opening (or of the previous response), and at most this many
    # bytes of them; the body must arrive within `body_read_timeout_seconds`; an idle
    # keep-alive connection is closed after `keep_alive_timeout_seconds`.
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_header_bytes: int = Field(default=65_536, ge=4096)
    body_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=300)

    # History imports (app.history, docs/history.md): records per committed batch, where an
    # uploaded bundle waits while it is imported (empty: the system's temporary directory; a
    # shared directory when several hosts serve the API), and the largest bundle accepted.
    history_batch_size: int = Field(default=2000, ge=1, le=50_000)
    history_spool_dir: str | None = None
    history_max_bytes: int = Field(default=10 * 1024**3, ge=1024)
    # A bundle of this many records or more is checked and planned in this many worker
    # processes while the importing process writes; 0 (the default): always in the importing
    # process (on a 2-core machine that also runs the database, workers only compete with it:
    # docs/benchmarks.md).
    history_workers: int = Field(default=0, ge=0, le=32)
    history_parallel_from: int = Field(default=20_000, ge=1)

    # Background work (app.worker): run the loop inside each `lfd serve` process, or set this
    # false and run `lfd worker` on its own. Running both is safe.
    run_worker_in_serve: bool = True
    worker_interval_seconds: int = Field(default=300, ge=1)

    # Monthly partitions of the audit and event tables on PostgreSQL (app.partitions,
    # docs/operations.md): months made ahead by every pass of the background loop, and how long
    # after a month ends its events are closed (the change feed then skips it).
    partitions_ahead_months: int = Field(default=3, ge=1, le=24)
    event_month_close_hours: int = Field(default=24, ge=1, le=24 * 31)
    # `lfd retention` (app.retention, docs/operations.md, "Retention"): whole months older than
    # these are dropped. The audit trail 8 years (the Records Management Code of Practice's
    # minimum for an adult's health record after death: an access can be no older than the
    # death it was about), the change feed's events 2 years. On hold, nothing is dropped.
    retention_audit_months: int = Field(default=96, ge=12, le=1200)
    retention_event_months: int = Field(default=24, ge=3, le=1200)
    retention_hold: bool = False

    # Reports (app.reports, docs/reports.md). Deaths in scope of the LfD figures: those at these
    # places of death, plus (when set) deaths within 30 days of discharge (the SHMI cohort).
    report_in_scope_places: Annotated[list[PlaceOfDeath], NoDecode] = Field(
        default_factory=lambda: [PlaceOfDeath.inpatient, PlaceOfDeath.emergency_department]
    )
    report_include_discharged_within_30_days: bool = False
    # Age-band boundaries, ascending: [65, 80] gives "under 65", "65-80" (80 included), "over 80".
    report_age_bands: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [65, 80])

    # Pseudonymised clients (app.privacy): the key of the patient pseudonyms. Unset, the
    # deployment uses the key `lfd migrate` generated for it (service_secrets).
    pseudonym_key: str | None = Field(default=None, min_length=32)

    # The audit log's key (app.audit.integrity, docs/audit.md): the HMAC of every audit row and
    # of the NHS numbers searched for. Unset, the deployment uses the key migration 0012
    # generated (service_secrets); set it (outside the database) so that someone who can only
    # reach the database cannot forge rows. Changing it invalidates every existing row's hash.
    audit_key: str | None = Field(default=None, min_length=32)

    # Webhooks (app.webhooks, docs/webhooks.md): the URL prefixes endpoints may use, such as
    # `https://icb.example.nhs.uk/hooks/` (empty: no endpoint can be registered); checked at
    # registration and again before every delivery.
    webhook_allowed_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # The webhook worker runs far more often than the other jobs (worker_interval_seconds).
    webhook_worker_interval_seconds: float = Field(default=1.0, gt=0, le=300)
    webhook_concurrency: int = Field(default=10, ge=1, le=100)
    # Isolation (docs/webhooks.md "Isolation"): timeouts per phase within the total above,
    # requests in flight per endpoint and worker, and the circuit breaker per endpoint.
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_read_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_endpoint_concurrency: int = Field(default=4, ge=1, le=100)
    webhook_circuit_failures: int = Field(default=5, ge=1, le=100)
    webhook_circuit_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)
    webhook_circuit_max_cooldown_seconds: float = Field(default=600.0, gt=0, le=86400)

    # Credentials (app.auth.oauth, docs/authentication.md): API keys and OAuth 2.0 access tokens
    # (client credentials with a signed JWT, RFC 7523), each of which a deployment may turn off.
    auth_api_keys_enabled: bool = True
    auth_access_tokens_enabled: bool = True
    # The `aud` a client assertion must name: this service's token URL as the integrator calls
    # it (behind a proxy, its public address). Unset: the URL the request arrived at.
    oauth_token_url: str | None = None
    # `iss` and `aud` of the access tokens the service issues.
    oauth_issuer: str = "urn:nhs:lfd-service"
    oauth_access_token_seconds: int = Field(default=600, ge=60, le=3600)
    oauth_assertion_max_seconds: int = Field(default=300, ge=30, le=3600)
    oauth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # A PEM RSA private key to sign access tokens with (kid: its thumbprint); unset, the
    # service makes and keeps its keys in the database (`lfd signing-keys rotate`).
    oauth_signing_key_pem: str | None = None
    # How long fetched JWKS documents (clients' and identity providers' keys) are kept.
    oauth_jwks_cache_seconds: int = Field(default=300, ge=0, le=86400)
    oauth_jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=30)

    # Operations (app.metrics, app.tracing, docs/operations.md).
    metrics_enabled: bool = True
    # OpenTelemetry traces, exported over OTLP/HTTP to this endpoint; unset: no tracing.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "lfd-service"

    # Base URIs of the problem types (app.errors) and of the FHIR view's own code systems.
    problem_base_uri: str = "https://lfd.example.nhs.uk/problems/"
    fhir_system_base: str = "https://lfd.example.nhs.uk/fhir"

    @field_validator(
        "mortality_alert_specialties",
        "mortality_alert_diagnosis_groups",
        "mm_specialties",
        "report_in_scope_places",
        "report_age_bands",
        "webhook_allowed_urls",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _csv(value)

    @field_validator("organisation_aliases", mode="after")
    @classmethod
    def _aliases_are_code_and_name(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for alias, pair in value.items():
            if len(pair) != 2 or not all(part.strip() for part in pair):
                raise ValueError(f"alias {alias!r}: give [ODS code, full name]")
        return value

    @field_validator("webhook_allowed_urls", mode="after")
    @classmethod
    def _allowed_url_prefixes(cls, value: list[str]) -> list[str]:
        from urllib.parse import urlsplit

        for prefix in value:
            parts = urlsplit(prefix)
            if parts.scheme not in {"http", "https"} or not parts.hostname or "@" in parts.netloc:
                raise ValueError(f"webhook_allowed_urls: {prefix!r} is not an http(s) URL prefix")
        return value

    @field_validator("due_days", "priorities", mode="after")
    @classmethod
    def _complete_route_maps(cls, value: dict[Route, int], info: object) -> dict[Route, int]:
        # A partial map from the environment overrides the defaults route by route.
        field = getattr(info, "field_name", "due_days")
        defaults = DEFAULT_DUE_DAYS if field == "due_days" else DEFAULT_PRIORITIES
        merged = dict(defaults)
        merged.update(value)
        for route, days in merged.items():
            if days < 0:
                raise ValueError(f"{field} for {route.value} must not be negative")
        return merged

    @field_validator("rate_limit_routes", mode="after")
    @classmethod
    def _route_limits(cls, value: dict[str, tuple[float, int]]) -> dict[str, tuple[float, int]]:
        for route, (per_second, burst) in value.items():
            method, _, path = route.partition(" ")
            if not (method.isalpha() or method == "*") or not path.startswith("/"):
                raise ValueError(f"rate_limit_routes: {route!r} is not 'METHOD /path-prefix'")
            if per_second <= 0 or burst < 1:
                raise ValueError(f"rate_limit_routes: {route!r} needs a rate > 0 and a burst >= 1")
        return {f"{k.partition(' ')[0].upper()} {k.partition(' ')[2]}": v for k, v in value.items()}

    @field_validator("report_age_bands", mode="after")
    @classmethod
    def _ascending_bands(cls, value: list[int]) -> list[int]:
        if not value or any(b <= a for a, b in pairwise(value)):
            raise ValueError("report_age_bands must be ascending ages, at least one")
        if value[0] < 1 or value[-1] > 120:
            raise ValueError("report_age_bands must lie between 1 and 120")
        return value

    @field_validator("read_database_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _replica_of_postgresql(self) -> Settings:
        if self.read_database_url is None:
            return self
        if not self.read_database_url.startswith("postgresql"):
            raise ValueError("read_database_url: a read replica is a PostgreSQL hot standby")
        if self.is_sqlite:
            raise ValueError("read_database_url: the primary (database_url) must be PostgreSQL")
        return self

    @property
    def owner_database_url(self) -> str:
        return self.migration_database_url or self.database_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
