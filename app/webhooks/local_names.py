"""Host names that always lead to this machine (`localhost`, `*.localhost`): the worker
refuses to connect to a name that resolves to an internal address (app.webhooks.addresses), so
an endpoint registered as `http://localhost:9000/` would be accepted and then never delivered.
Registration refuses such a name at once and says to write the address instead
(`http://127.0.0.1:9000/`, which the allow-list must name as written, so it is allowed on
purpose)."""

from __future__ import annotations

from urllib.parse import urlsplit

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def local_name_problem(url: str) -> str | None:
    """Why the URL's host can never receive webhooks, or None."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return (
            f"{host} always resolves to this machine, and the worker never connects to a host "
            "name that leads to an internal address: write the address itself (for example "
            "http://127.0.0.1:PORT/...), with that prefix in LFD_WEBHOOK_ALLOWED_URLS"
        )
    return None
