"""Where a webhook connection may go once the URL is allowed: never to an internal address
reached through a host name.

The allow-list (app.webhooks.urls) compares host names. A name is resolved when the worker
connects, here, in the HTTP client's network backend: if any of its addresses is loopback,
private, link-local, shared (100.64.0.0/10), multicast, unspecified or otherwise not global
(or an IPv6 form of one), nothing is connected and the attempt fails as `internal_address`.
Otherwise the connection goes to the addresses just checked, in the resolver's order, and to
no other: the name is not resolved again, so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot redirect it. TLS still verifies the certificate against
the host name (httpcore passes the URL's host as the server name).

A host written as an IP address is connected to as it is: the allow-list matched it literally,
so an administrator who lists `http://10.1.2.3/hooks/` (or the tests' `http://127.0.0.1:...`)
allows that address on purpose.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """A host name resolved to an internal address: no connection was made. Says nothing
    about the address (the attempt log keeps only the kind)."""


def is_internal(address: Address) -> bool:
    """Whether a webhook must not be sent to this address when a host name led to it."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address carried inside IPv6 counts as that IPv4 address.
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address.is_site_local or any(
            inner is not None and is_internal(inner) for inner in embedded
        ):
            return True
    return address.is_multicast or not address.is_global


def _parse(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


async def checked_addresses(host: str, port: int) -> list[str]:
    """The addresses to connect to for ``host``: the host itself when it is an IP address;
    otherwise what it resolves to, or AddressRefused if any of that is internal."""
    if _parse(host) is not None:
        return [host]
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise httpcore.ConnectError("the host name did not resolve") from error
    addresses: list[str] = []
    for *_, sockaddr in answers:
        text = str(sockaddr[0])
        # A scoped IPv6 address (fe80::1%eth0) does not parse: internal by definition.
        parsed = _parse(text)
        if parsed is None or is_internal(parsed):
            raise AddressRefused("the host name resolves to an internal address")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise httpcore.ConnectError("the host name did not resolve")
    return addresses


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked addresses."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface names it)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        options = list(socket_options or ())
        *others, last = await checked_addresses(host, port)
        for address in others:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # the next address the name gave
        return await self._inner.connect_tcp(last, port, timeout, local_address, options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface names it)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("webhooks are never sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool whose network backend is CheckedBackend.
    httpx (0.27, 0.28) has no parameter for a network backend, so the pool it made is
    replaced by one made the same way with the backend; every webhook test sends through it."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False)
        assert isinstance(self._pool, httpcore.AsyncConnectionPool)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(),
        )
