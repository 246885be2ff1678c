"""Who is calling: the client a request authenticated as, with its scopes, and whom it acts for.

Services, the audit and the privacy filters take a Principal; only routers take it through the
FastAPI guard in app.auth.deps, so that nothing below the routers depends on FastAPI for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.auth.scopes import PSEUDONYMISED_SCOPES, Scope
from app.models import ApiClient


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
    # The organisation the client acts for (issue 16); None: the deployment's own (a
    # deployment-level client, or the service itself). Audit rows carry it.
    organisation_id: uuid.UUID | None = None

    def has(self, scope: Scope) -> bool:
        if self.pseudonymised:
            # Never more than a commissioner may hold, whatever the client's row says.
            return scope in PSEUDONYMISED_SCOPES and scope.value in self.scopes
        return Scope.admin.value in self.scopes or scope.value in self.scopes

    @classmethod
    def of_client(
        cls, client: ApiClient, on_behalf_of: str | None = None, request_id: str | None = None
    ) -> Principal:
        """The principal of a client the service acts as itself (the command line, the demo,
        the MLLP listener): its scopes and organisation as its row has them."""
        return cls(
            client_id=client.id,
            client_name=client.name,
            scopes=frozenset(client.scopes),
            pseudonymised=client.pseudonymised,
            on_behalf_of=on_behalf_of,
            request_id=request_id,
            organisation_id=client.organisation_id,
        )
