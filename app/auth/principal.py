"""Who is calling: the client a request authenticated as, with its scopes, and whom it acts for.

Services, the audit and the privacy filters take a Principal; only routers take it through the
FastAPI guard in app.auth.deps, so that nothing below the routers depends on FastAPI for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.auth.scopes import PSEUDONYMISED_SCOPES, Scope


@dataclass(frozen=True)
class Principal:
    client_id: uuid.UUID
    client_name: str
    scopes: frozenset[str]
    pseudonymised: bool
    on_behalf_of: str | None
    request_id: str | None
    # Whether on_behalf_of came from a verified user assertion (None: no one named), and the
    # user's role from it (app.auth.oauth.users); how the client authenticated.
    on_behalf_of_verified: bool | None = None
    on_behalf_of_role: str | None = None
    auth_method: str = "api_key"

    def has(self, scope: Scope) -> bool:
        if self.pseudonymised:
            # Never more than a commissioner may hold, whatever the client's row says.
            return scope in PSEUDONYMISED_SCOPES and scope.value in self.scopes
        return Scope.admin.value in self.scopes or scope.value in self.scopes
