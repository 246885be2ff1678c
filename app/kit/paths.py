"""What the service repeats of a request's path: in logs, the route template only; in a
problem's `instance`, the template with the ids that parsed as ids.

A path segment is whatever the client typed: `GET /v1/deaths/9434765919` puts an NHS number
where an id belongs. The access log names the route (`/v1/deaths/{death_id}`), never the path,
and a problem's `instance` shows a path parameter only in the canonical form of the id it parsed
as (every path parameter of the API is a UUID); a segment that is not one stays `{name}`, and a
path that matched no route has no `instance` at all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The template of the route that took the request (`/v1/deaths/{death_id}`), None when
    no route did (a 404 of an unknown path, or an answer from before routing)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) and template.startswith("/") else None


def _shown(name: str, params: Mapping[str, Any]) -> str:
    raw = params.get(name)
    if isinstance(raw, str):
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            pass
    return "{" + name + "}"


def shown_path(scope: Mapping[str, Any]) -> str | None:
    """The path as a problem's `instance` may show it: the route's template with each
    parameter that is an id filled in (canonically), the others left as `{name}`."""
    template = route_template(scope)
    if template is None:
        return None
    params: Mapping[str, Any] = scope.get("path_params") or {}
    return _PARAMETER.sub(lambda match: _shown(match.group(1), params), template)
