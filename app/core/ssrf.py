"""Server-side request forgery guard for every outbound HTTP call (webhooks, sources, transfers).

A webhook URL is checked when it is registered, to refuse it early with a clear reason. The
guarantee comes at connection time: ``GuardedTransport`` resolves the name itself, refuses
the connection if any resolved address is forbidden, and connects to the address it checked.
Checking a name and then letting the HTTP client resolve it again would leave a window in
which the name can be re-pointed at an internal address (DNS rebinding).

Cloud metadata, unspecified, multicast and reserved addresses are refused even when private
addresses are allowed (``DSR_WEBHOOK_ALLOW_PRIVATE``): no webhook consumer lives there, and
metadata endpoints hand out credentials.
"""

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from app.core.errors import UnprocessableEntity

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
RESOLVE_TIMEOUT_SECONDS = 5.0

# Instance metadata and credential endpoints of the major clouds (AWS, GCP, Azure, OCI,
# Alibaba, ECS task roles, Azure's wire server).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
# Special-purpose ranges that this Python's ``is_global`` still calls global.
SPECIAL_PURPOSE_NETWORKS = (ipaddress.ip_network("192.0.0.0/24"),)
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 target hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not receive webhooks (a category, never the address), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _refusal(embedded, allow_private=allow_private)
        # Compare without a zone id ("fe80::1%eth0").
        address = ipaddress.IPv6Address(int(address))
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return None if allow_private else "a loopback address"
    if address.is_link_local:
        return None if allow_private else "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE:
        return None if allow_private else "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return None if allow_private else "a private address"
    if any(address in network for network in SPECIAL_PURPOSE_NETWORKS):
        return None if allow_private else "a special-purpose address"
    return None


def refusal_reason(ip: str, *, allow_private: bool) -> str | None:
    """Why we may not connect to ``ip`` (a resolved address), as a category; None if we may.

    Handles IPv4, IPv6 (with or without a zone id) and IPv4-mapped/6to4/NAT64 IPv6.
    Anything that is not an IP address is refused.
    """
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return "not an IP address"
    return _refusal(address, allow_private=allow_private)


def check_address(ip: str, *, allow_private: bool) -> bool:
    """True when we may connect to ``ip`` (a resolved address)."""
    return refusal_reason(ip, allow_private=allow_private) is None


def _refuse(detail: str) -> UnprocessableEntity:
    return UnprocessableEntity(detail, title="Webhook URL not allowed")


def _host_and_port(url: str, *, require_https: bool) -> tuple[str, int]:
    if any(character.isspace() or ord(character) < 32 for character in url):
        raise _refuse("The webhook URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("The webhook URL is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _refuse("The webhook URL must use https (or http outside production).")
    if require_https and scheme != "https":
        raise _refuse("The webhook URL must use https in production.")
    if "@" in parts.netloc:
        raise _refuse(
            "The webhook URL must not contain credentials (user:password@); "
            "verify our signature instead."
        )
    host = parts.hostname
    if not host:
        raise _refuse("The webhook URL has no host.")
    return host, port or (443 if scheme == "https" else 80)


async def ensure_deliverable_url(url: str, *, allow_private: bool, require_https: bool) -> None:
    """Refuse (422) a URL we must not send webhooks to.

    Checks the scheme (https when ``require_https``), refuses credentials in the URL, and
    refuses hosts that are, or resolve to, loopback, private, link-local, shared, reserved,
    multicast, unspecified or cloud metadata addresses (the first four are allowed when
    ``allow_private``). Errors name the category, never the URL or the resolved address.
    """
    host, port = _host_and_port(url, require_https=require_https)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        reason = _refusal(literal, allow_private=allow_private)
        if reason is not None:
            raise _refuse(f"The webhook URL points to {reason}.")
        return
    try:
        addresses = await resolve_addresses(host, port)
    except UnresolvableHost:
        addresses = []
    if not addresses:
        raise _refuse("The webhook URL's host name does not resolve.")
    for resolved in sorted(addresses):
        try:
            address = ipaddress.ip_address(resolved)
        except ValueError:
            raise _refuse(
                "The webhook URL's host name does not resolve to an IP address."
            ) from None
        reason = _refusal(address, allow_private=allow_private)
        if reason is not None:
            raise _refuse(f"The webhook URL's host name resolves to {reason}.")


# ---------------------------------------------------------------- enforcement at connection


class DestinationRefused(httpcore.ConnectError):
    """A connection the policy forbids; the message names the category, never the address."""


class UnresolvableHost(httpcore.ConnectError):
    """The host name has no address (retryable: DNS may recover)."""


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_addresses(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order of preference."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
            timeout=RESOLVE_TIMEOUT_SECONDS,
        )
    except (OSError, UnicodeError, TimeoutError):
        raise UnresolvableHost("the host name does not resolve") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to allowed addresses, and to the very address it checked.

    The HTTP layer above keeps the host name, so the Host header, TLS SNI and certificate
    checks, and connection reuse all stay per name.
    """

    def __init__(self, *, allow_private: bool, resolve: Resolver = resolve_addresses) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        if not addresses:
            raise UnresolvableHost("the host name does not resolve")
        for address in addresses:
            # One forbidden answer refuses them all: a rebinding name mixes good and bad ones.
            reason = refusal_reason(address, allow_private=self._allow_private)
            if reason is not None:
                raise DestinationRefused(f"the destination is {reason}")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("the destination is a local socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with every connection made through ``GuardedNetworkBackend``."""

    def __init__(
        self,
        *,
        allow_private: bool,
        limits: httpx.Limits | None = None,
        resolve: Resolver = resolve_addresses,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        limits = limits or httpx.Limits()
        super().__init__(limits=limits, trust_env=False)
        # httpx takes no network backend, so its pool is rebuilt with ours (same settings).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(allow_private=allow_private, resolve=resolve),
        )


def refused_by_policy(exc: BaseException) -> bool:
    """True when an httpx error comes from ``GuardedNetworkBackend`` refusing the address."""
    return isinstance(exc.__cause__, DestinationRefused)
