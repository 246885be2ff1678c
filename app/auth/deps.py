"""The guard: every route but health declares the scope it needs with ``Security``, so the
check cannot be skipped and the OpenAPI document lists the scope on the route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from app.auth.cache import AuthCache
from app.auth.keys import split_key
from app.auth.oauth.state import oauth_state
from app.auth.oauth.tokens import looks_like_jwt
from app.auth.oauth.users import resolve_on_behalf_of
from app.auth.principal import Principal
from app.auth.scopes import PSEUDONYMISED_SCOPES, Scope
from app.db import DatabaseDep
from app.errors import Forbidden, Unauthorized
from app.kit.etag import use_etag_key
from app.kit.json_body import refuse_duplicate_keys
from app.kit.query import refuse_unknown_query_parameters
from app.ratelimit import AuthThrottle, RateLimiter
from app.scoping import use_scope

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `lfd clients create`, or an access token from "
    "`POST /oauth2/token`, sent as `Authorization: Bearer <credential>`.",
)


async def authenticate(
    security_scopes: SecurityScopes,
    request: Request,
    database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    on_behalf_of: Annotated[
        str | None,
        Header(
            alias="X-On-Behalf-Of",
            max_length=200,
            description="The person the calling system acts for; kept in the audit log.",
        ),
    ] = None,
    user_assertion: Annotated[
        str | None,
        Header(
            alias="X-User-Assertion",
            description="A JWT from the trust's identity provider (e.g. NHS CIS2) naming the "
            "user the system acts for; verified, and its user and role kept in the audit log. "
            "Required for clients configured so (docs/authentication.md).",
        ),
    ] = None,
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or not credentials.credentials:
        raise Unauthorized(
            "Send an API key or an access token as 'Authorization: Bearer <credential>'.",
            headers=challenge,
        )
    credential = credentials.credentials
    # Failed authentication is throttled per source address and per key prefix, and an API
    # key already found invalid costs no lookup (app.ratelimit). Access tokens are verified
    # without the database (app.auth.oauth); a refused one counts against its address.
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else "-"
    throttle.refuse_address(address)
    token = looks_like_jwt(credential)
    prefix = "access-token" if token else split_key(credential)
    if prefix is None or throttle.known_bad(credential):
        raise Unauthorized("The API key is not valid or has been revoked.", headers=challenge)
    # The client and its organisation's reach come from this process's memory while the
    # database has not said they changed (app.auth.cache: LISTEN/NOTIFY, a short maximum age).
    cache: AuthCache = request.app.state.auth_cache
    try:
        resolved = await cache.credential(request, credential)
    except Unauthorized:
        throttle.failed(address, prefix, credential)
        raise
    client = resolved.client
    # The ETags this request makes are keyed by the deployment (app.kit.etag), with a key
    # derived from its cursor key (read once per process).
    use_etag_key(await cache.etag_key())
    # Whose data the rest of the request may see (app.scoping): every query from here on is
    # confined to it, and on PostgreSQL so is every row by row-level security.
    use_scope(await cache.reach(client.organisation_id, members=client.pseudonymised))
    user = await resolve_on_behalf_of(oauth_state(request), client, on_behalf_of, user_assertion)
    principal = Principal(
        client_id=client.id,
        client_name=client.name,
        scopes=resolved.scopes,
        pseudonymised=client.pseudonymised,
        on_behalf_of=user.name,
        request_id=getattr(request.state, "request_id", None),
        on_behalf_of_verified=user.verified,
        on_behalf_of_role=user.role,
        auth_method=resolved.method,
        organisation_id=client.organisation_id,
    )
    request.state.client_id = str(client.id)
    # Known from here on: a refusal (403) or a miss (404) is audited in its name (app.audit).
    request.state.principal = principal
    if not hasattr(request.state, "rate_limit"):  # once per request, however many guards
        limiter: RateLimiter = request.app.state.rate_limiter
        route = getattr(request.scope.get("route"), "path", request.url.path)
        request.state.rate_limit = limiter.check(client.id, request.method, route)
    missing = [scope for scope in security_scopes.scopes if not principal.has(Scope(scope))]
    if missing and principal.pseudonymised:
        refused = [scope for scope in missing if Scope(scope) not in PSEUDONYMISED_SCOPES]
        if refused:
            raise Forbidden(
                f"This endpoint needs the scope {', '.join(refused)}, which a pseudonymised "
                "client cannot hold."
            )
    if missing:
        raise Forbidden(f"This endpoint needs the scope {', '.join(missing)}.")
    # After the credential and scope checks, so an anonymous caller learns nothing of a route.
    refuse_unknown_query_parameters(request)
    await refuse_duplicate_keys(request)
    return principal


ScreeningsWriter = Annotated[
    Principal, Security(authenticate, scopes=[Scope.screenings_write.value])
]
NotificationsWriter = Annotated[
    Principal, Security(authenticate, scopes=[Scope.notifications_write.value])
]
WorklistClaimer = Annotated[Principal, Security(authenticate, scopes=[Scope.worklist_claim.value])]
DeathsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.deaths_read.value])]
DeathsWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.deaths_write.value])]
ReferralsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.referrals_read.value])]
ReferralsClaimer = Annotated[
    Principal, Security(authenticate, scopes=[Scope.referrals_claim.value])
]
ReviewsWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.reviews_write.value])]
FindingsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.findings_read.value])]
FindingsWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.findings_write.value])]
ActionsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.actions_read.value])]
ActionsWriter = Annotated[Principal, Security(authenticate, scopes=[Scope.actions_write.value])]
ReportsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.reports_read.value])]
ProgrammesReader = Annotated[
    Principal, Security(authenticate, scopes=[Scope.programmes_read.value])
]
ProgrammesWriter = Annotated[
    Principal, Security(authenticate, scopes=[Scope.programmes_write.value])
]
EventsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.events_read.value])]
WebhooksManager = Annotated[Principal, Security(authenticate, scopes=[Scope.webhooks_manage.value])]
AuditReader = Annotated[Principal, Security(authenticate, scopes=[Scope.audit_read.value])]
Administrator = Annotated[Principal, Security(authenticate, scopes=[Scope.admin.value])]
MetricsReader = Annotated[Principal, Security(authenticate, scopes=[Scope.metrics_read.value])]
