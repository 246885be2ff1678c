"""Where webhooks may go: http(s) URLs under a prefix the administrator allowed
(``LFD_WEBHOOK_ALLOWED_URLS``), so that no client can make the service call an arbitrary
internal address. Checked when an endpoint is registered or changed, and again before every
delivery (a prefix removed later stops deliveries at once). Where a host name leads when the
worker connects is checked there (app.webhooks.addresses).

A prefix is compared by its parts, not as a string: scheme, host and port must be equal and
the path must lie under the prefix's path at a segment boundary, so that
`https://icb.example.nhs.uk` never admits `https://icb.example.nhs.uk.evil.example/`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# A dot segment, plain or percent-encoded: a receiver would resolve it out of the allowed path.
DOT_SEGMENT = re.compile(r"(^|/)(\.|%2e){1,2}(/|$)", re.IGNORECASE)
# A separator a server may decode or treat as '/' before routing ('..%2f' climbs out of the
# allowed path that way): '\' and the encoded '/' and '\'.
SEPARATOR_IN_DISGUISE = re.compile(r"\\|%2f|%5c", re.IGNORECASE)


class UrlRefused(ValueError):
    """Why a URL may not receive webhooks (safe to show: it says nothing about the data)."""


@dataclass(frozen=True)
class UrlParts:
    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> UrlParts:
    """The parts of an http(s) URL that may receive webhooks, or UrlRefused."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UrlRefused("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused("the URL cannot be parsed") from error
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused("only http and https URLs can receive webhooks")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("the URL must not contain a user name or password")
    if not parts.hostname:
        raise UrlRefused("the URL needs a host")
    if parts.fragment:
        raise UrlRefused("the URL must not have a fragment (#...)")
    if DOT_SEGMENT.search(parts.path):
        raise UrlRefused("the URL's path must not contain '.' or '..' segments")
    if SEPARATOR_IN_DISGUISE.search(parts.path):
        raise UrlRefused("the URL's path must not contain '\\', '%2F' or '%5C'")
    return UrlParts(scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme], parts.path)


def _under(path: str, prefix: str) -> bool:
    if prefix in ("", "/") or path == prefix:
        return True
    return path.startswith(prefix if prefix.endswith("/") else prefix + "/")


def is_allowed(url: str, allowed_prefixes: Sequence[str]) -> bool:
    try:
        target = parse_url(url)
    except UrlRefused:
        return False
    for prefix in allowed_prefixes:
        try:
            allowed = parse_url(prefix)
        except UrlRefused:
            continue
        if (target.scheme, target.host, target.port) == (
            allowed.scheme,
            allowed.host,
            allowed.port,
        ) and _under(target.path or "/", allowed.path or "/"):
            return True
    return False


def check_url(url: str, allowed_prefixes: Sequence[str]) -> None:
    """UrlRefused unless ``url`` may receive webhooks under this deployment's allow-list."""
    parse_url(url)
    if not allowed_prefixes:
        raise UrlRefused(
            "this service allows no webhook URLs yet: an administrator lists the allowed URL "
            "prefixes in LFD_WEBHOOK_ALLOWED_URLS"
        )
    if not is_allowed(url, allowed_prefixes):
        raise UrlRefused("the URL is not under a prefix in this service's webhook allow-list")
