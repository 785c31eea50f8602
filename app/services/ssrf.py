"""Server-side request forgery guard for webhook URLs.

A webhook URL is checked when it is registered and again by the worker at delivery, after
DNS resolution (a name may be re-pointed at an internal address after registration).
Cloud metadata, unspecified, multicast and reserved addresses are refused even when
private addresses are allowed (``DSR_WEBHOOK_ALLOW_PRIVATE``): no webhook consumer lives
there, and metadata endpoints hand out credentials.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import UnprocessableEntity

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


def check_address(ip: str, *, allow_private: bool) -> bool:
    """True when the worker may connect to ``ip`` (a resolved address) to deliver a webhook.

    Handles IPv4, IPv6 (with or without a zone id) and IPv4-mapped/6to4/NAT64 IPv6.
    Anything that is not an IP address is refused.
    """
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return False
    return _refusal(address, allow_private=allow_private) is None


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


async def _resolve(host: str, port: int) -> set[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
            timeout=RESOLVE_TIMEOUT_SECONDS,
        )
    except (OSError, UnicodeError, TimeoutError):
        raise _refuse("The webhook URL's host name does not resolve.") from None
    return {str(info[4][0]) for info in infos}


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
    addresses = await _resolve(host, port)
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
