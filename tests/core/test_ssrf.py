"""The SSRF guard: literal addresses need no network; the only name resolved is localhost."""

import asyncio
import socket
from typing import Any

import pytest

from app.core.errors import UnprocessableEntity
from app.core.ssrf import check_address, ensure_deliverable_url

# Refused unless private addresses are allowed (development, DSR_WEBHOOK_ALLOW_PRIVATE=true).
PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "http://localhost:9000/hook",
    "http://[::1]/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.5/hook",
    "http://172.31.255.254/hook",
    "http://192.168.1.20/hook",
    "http://169.254.10.1/hook",
    "http://100.64.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[2002:7f00:1::]/hook",  # 6to4 wrapping 127.0.0.1
    "http://[fd12:3456::1]/hook",
    "http://[fe80::1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://127.1/hook",
    "http://198.18.0.1/hook",
]

# Refused whatever the setting: no webhook consumer lives there.
ALWAYS_REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://100.100.100.200/",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://255.255.255.255/hook",
    "ftp://93.184.216.34/hook",
    "file:///etc/passwd",
    "gopher://93.184.216.34/",
    "https://user:pass@93.184.216.34/hook",
    "https://token@93.184.216.34/hook",
    "https:///hook",
    "https://[::1/hook",
    "https://93.184.216.34:99999/hook",
    "https://93.184.216.34/ho ok",
    "https://93.184.216.34/hook\n",
    "not-a-url",
]

PUBLIC_URLS = [
    "https://93.184.216.34/hook",
    "https://93.184.216.34:8443/hook?tenant=acme",
    "http://93.184.216.34/hook",
    "https://[2606:4700:4700::1111]/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS + ALWAYS_REFUSED_URLS)
async def test_refused_without_private(url: str) -> None:
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(url, allow_private=False, require_https=False)
    # The detail names the problem, never the URL.
    assert url.strip() not in refused.value.detail
    assert refused.value.status == 422


async def test_detail_does_not_echo_the_address() -> None:
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(
            "http://10.1.2.3:8080/hook", allow_private=False, require_https=False
        )
    assert refused.value.detail == "The webhook URL points to a private address."


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_addresses_allowed_when_configured(url: str) -> None:
    await ensure_deliverable_url(url, allow_private=True, require_https=False)


@pytest.mark.parametrize("url", ALWAYS_REFUSED_URLS)
async def test_some_urls_refused_even_when_private_allowed(url: str) -> None:
    with pytest.raises(UnprocessableEntity):
        await ensure_deliverable_url(url, allow_private=True, require_https=False)


@pytest.mark.parametrize("url", PUBLIC_URLS)
async def test_public_literal_addresses_accepted(url: str) -> None:
    await ensure_deliverable_url(url, allow_private=False, require_https=False)


async def test_https_required_in_production() -> None:
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(
            "http://93.184.216.34/hook", allow_private=False, require_https=True
        )
    assert "https" in refused.value.detail
    await ensure_deliverable_url(
        "https://93.184.216.34/hook", allow_private=False, require_https=True
    )
    await ensure_deliverable_url(
        "HTTPS://93.184.216.34/hook", allow_private=False, require_https=True
    )


async def test_credentials_refused_with_a_clear_reason() -> None:
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(
            "https://admin:s3cret@93.184.216.34/hook", allow_private=True, require_https=False
        )
    assert "credentials" in refused.value.detail
    assert "s3cret" not in refused.value.detail


async def test_localhost_resolves_to_loopback() -> None:
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(
            "http://localhost/hook", allow_private=False, require_https=False
        )
    assert "resolves to a loopback address" in refused.value.detail


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, answer: list[str] | Exception) -> list[str]:
    """Replace the running loop's resolver: tests never send a DNS query."""
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_kwargs: Any) -> list[Any]:
        asked.append(host)
        if isinstance(answer, Exception):
            raise answer
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in answer
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return asked


async def test_unresolvable_name_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_resolver(monkeypatch, socket.gaierror(socket.EAI_NONAME, "Name unknown"))
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(
            "https://hooks.example.com/dsr", allow_private=True, require_https=True
        )
    assert refused.value.detail == "The webhook URL's host name does not resolve."
    assert asked == ["hooks.example.com"]


async def test_name_with_any_private_address_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A name answering with public and internal records must not reach the internal one.
    _fake_resolver(monkeypatch, ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(
            "https://hooks.example.com/dsr", allow_private=False, require_https=True
        )
    assert refused.value.detail == "The webhook URL's host name resolves to a private address."
    assert "10.0.0.7" not in refused.value.detail


async def test_name_with_public_addresses_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, ["93.184.216.34", "2606:4700:4700::1111"])
    await ensure_deliverable_url(
        "https://hooks.example.com/dsr", allow_private=False, require_https=True
    )


async def test_name_resolving_to_metadata_refused_even_with_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_resolver(monkeypatch, ["169.254.169.254"])
    with pytest.raises(UnprocessableEntity) as refused:
        await ensure_deliverable_url(
            "http://metadata.example.com/", allow_private=True, require_https=False
        )
    assert "cloud metadata" in refused.value.detail


@pytest.mark.parametrize(
    ("ip", "allow_private", "deliverable"),
    [
        ("93.184.216.34", False, True),
        ("2606:4700:4700::1111", False, True),
        ("127.0.0.1", False, False),
        ("127.0.0.1", True, True),
        ("::1", False, False),
        ("::1", True, True),
        ("::ffff:127.0.0.1", False, False),
        ("::ffff:127.0.0.1", True, True),
        ("::ffff:93.184.216.34", False, True),
        ("64:ff9b::a00:1", False, False),  # NAT64 of 10.0.0.1
        ("10.0.0.1", False, False),
        ("172.16.0.1", False, False),
        ("192.168.0.1", False, False),
        ("100.64.0.1", False, False),
        ("100.64.0.1", True, True),
        ("fe80::1%eth0", False, False),
        ("fe80::1%eth0", True, True),
        ("169.254.169.254", True, False),
        ("fd00:ec2::254", True, False),
        ("0.0.0.0", True, False),
        ("::", True, False),
        ("ff02::1", True, False),
        ("not-an-ip", True, False),
        ("", True, False),
    ],
)
def test_check_address(ip: str, allow_private: bool, deliverable: bool) -> None:
    assert check_address(ip, allow_private=allow_private) is deliverable
