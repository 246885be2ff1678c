"""Settings, read once from the environment (prefix ``LFD_``).

Everything a trust may want to tune without a code change lives here: the referral rule lists,
the learning-sample percentage, the due-date and priority rules, limits, the database URL.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import pairwise
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.kit.enums import PlaceOfDeath, Route

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
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
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
    leder_review_months: int = Field(default=6, ge=1, le=24)

    # Limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    upload_max_bytes: int = Field(default=20_971_520, ge=1024)  # spreadsheet imports
    batch_max_items: int = Field(default=100, ge=1, le=1000)
    idempotency_lock_seconds: int = Field(default=60, ge=1)
    idempotency_retention_hours: int = Field(default=48, ge=1)

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

    # Webhooks (app.webhooks, docs/webhooks.md): the URL prefixes endpoints may use, such as
    # `https://icb.example.nhs.uk/hooks/` (empty: no endpoint can be registered); checked at
    # registration and again before every delivery.
    webhook_allowed_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # The webhook worker runs far more often than the other jobs (worker_interval_seconds).
    webhook_worker_interval_seconds: float = Field(default=1.0, gt=0, le=300)
    webhook_concurrency: int = Field(default=10, ge=1, le=100)

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

    @field_validator("report_age_bands", mode="after")
    @classmethod
    def _ascending_bands(cls, value: list[int]) -> list[int]:
        if not value or any(b <= a for a, b in pairwise(value)):
            raise ValueError("report_age_bands must be ascending ages, at least one")
        if value[0] < 1 or value[-1] > 120:
            raise ValueError("report_age_bands must lie between 1 and 120")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
