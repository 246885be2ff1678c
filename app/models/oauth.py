"""Signed-JWT client credentials (RFC 7523, docs/authentication.md): the public keys a client
registers, the assertion ids (`jti`) already used, and the service's own token signing keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, utcnow


class ClientPublicKey(IdMixin, Base):
    """A key a client signs its assertions with: a PEM public key, or a JWKS URL whose keys
    are fetched (and cached). Several at once for rotation; `expires_at` ends a retired key's
    grace period."""

    __tablename__ = "client_public_keys"
    __table_args__ = (Index("ix_client_public_keys_client_id", "client_id"),)

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"))
    kid: Mapped[str | None] = mapped_column(String(200))
    pem: Mapped[str | None] = mapped_column(Text)
    jwks_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class UsedAssertion(Base):
    """A client assertion's `jti`, kept until the assertion expires, so that it is accepted
    once only."""

    __tablename__ = "oauth_used_assertions"
    __table_args__ = (Index("ix_oauth_used_assertions_expires_at", "expires_at"),)

    client_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime]


class SigningKey(Base):
    """A key the service signs access tokens with. The newest unretired key signs; every key
    not yet past `retired_at` plus the longest token lifetime is published at
    /.well-known/jwks.json."""

    __tablename__ = "oauth_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
