from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, utcnow


class ApiClient(IdMixin, Base):
    """A system that calls the API. Its key is shown once and stored only as a SHA-256 hash."""

    __tablename__ = "api_clients"

    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    pseudonymised: Mapped[bool] = mapped_column(default=False)
    # The organisation the client acts for (issue 16; app.organisations.scope): it sees that
    # organisation's deaths (and, pseudonymised, its members'), and what is shared with it.
    # None: a deployment-level client, which may manage organisations but reads no patient data.
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # After `expires_at` the client's key and tokens stop working (app.clients).
    expires_at: Mapped[datetime | None]
    # A rotated API key stays valid until `previous_key_expires_at` (the grace period).
    previous_key_prefix: Mapped[str | None] = mapped_column(String(32), unique=True)
    previous_key_hash: Mapped[str | None] = mapped_column(String(64))
    previous_key_expires_at: Mapped[datetime | None]
    # The identity provider whose signed user assertions the client sends (app.auth.oauth.users):
    # {"issuer", "audience", "jwks_url" | "pem", "user_claim", "role_claim"}; None: none.
    user_assertion: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Whether the free-text X-On-Behalf-Of is accepted (recorded as unverified in the audit).
    allow_unverified_on_behalf_of: Mapped[bool] = mapped_column(default=True, server_default=true())
