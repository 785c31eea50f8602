"""The connection-time SSRF guard: every TCP connection goes to an address it has just checked.

A real receiver listens on loopback. Names under ``.invalid`` never resolve through the
system, so a request that reaches the receiver by such a name can only have been sent to the
address the guard's resolver returned and the guard checked.
"""

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core.ssrf import (
    GuardedTransport,
    Resolver,
    UnresolvableHost,
    refused_by_policy,
    resolve_addresses,
)
from app.data_sources.connectors.base import SourceError
from app.fulfilment.steps import transmit
from tests.conftest import make_settings
from tests.webhook_receiver import Receiver

NAME = "hooks.example.invalid"
METADATA = "169.254.169.254"


class Answers:
    """A resolver that gives the next of its answers on each lookup (a name being re-pointed)."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers: Iterator[list[str]] = iter(answers)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return next(self._answers)


def by_name(receiver: Receiver) -> str:
    return receiver.url.replace("127.0.0.1", NAME)


def client(
    *,
    allow_private: bool,
    resolve: Resolver = resolve_addresses,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    # No keep-alive: each request opens (and so checks) a connection of its own.
    limits = httpx.Limits(max_keepalive_connections=0)
    transport = GuardedTransport(
        allow_private=allow_private, limits=limits, resolve=resolve, verify=verify
    )
    return httpx.AsyncClient(transport=transport, trust_env=False)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for NAME only, as (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_the_connection_goes_to_the_checked_address_and_keeps_the_name() -> None:
    async with Receiver() as receiver:
        answers = Answers(["127.0.0.1"])
        async with client(allow_private=True, resolve=answers) as http:
            response = await http.post(by_name(receiver), content=b"{}")
    assert response.status_code == 200
    (received,) = receiver.received
    port = int(receiver.url.split(":")[2].split("/")[0])
    assert received.headers["host"] == f"{NAME}:{port}"
    assert answers.lookups == [(NAME, port)]


async def test_a_name_that_resolves_to_loopback_is_refused_when_private_is_not_allowed() -> None:
    async with (
        Receiver() as receiver,
        client(allow_private=False, resolve=Answers(["127.0.0.1"])) as http,
    ):
        with pytest.raises(httpx.ConnectError) as raised:
            await http.post(by_name(receiver), content=b"{}")
    assert refused_by_policy(raised.value)
    assert "loopback" in str(raised.value) and "127.0.0.1" not in str(raised.value)
    assert receiver.received == []


async def test_a_name_re_pointed_at_a_metadata_address_is_refused_on_the_next_connection() -> None:
    async with Receiver() as receiver:
        answers = Answers(["127.0.0.1"], [METADATA])
        async with client(allow_private=True, resolve=answers) as http:
            first = await http.post(by_name(receiver), content=b"{}")
            with pytest.raises(httpx.ConnectError) as raised:
                await http.post(by_name(receiver), content=b"{}")
    assert first.status_code == 200
    assert refused_by_policy(raised.value)
    assert len(receiver.received) == 1


async def test_one_forbidden_answer_refuses_the_name_even_beside_allowed_ones() -> None:
    async with Receiver() as receiver:
        answers = Answers(["127.0.0.1", METADATA])
        async with client(allow_private=True, resolve=answers) as http:
            with pytest.raises(httpx.ConnectError) as raised:
                await http.post(by_name(receiver), content=b"{}")
    assert refused_by_policy(raised.value)
    assert receiver.received == []


async def test_a_name_that_does_not_resolve_is_a_retryable_connect_error() -> None:
    async with client(allow_private=True) as http:
        with pytest.raises(httpx.ConnectError) as raised:
            await http.get(f"http://{NAME}/")
    assert isinstance(raised.value.__cause__, UnresolvableHost)
    assert not refused_by_policy(raised.value)


@pytest.mark.parametrize(
    ("url", "allow_private"),
    [
        (f"http://{METADATA}/latest/meta-data/", True),
        ("http://[fd00:ec2::254]/", True),
        ("http://0.0.0.0:9/", True),
        ("http://localhost:9/", False),
        ("http://[::ffff:127.0.0.1]:9/", False),
    ],
)
async def test_the_system_resolver_path_refuses_forbidden_destinations(
    url: str, allow_private: bool
) -> None:
    async with client(allow_private=allow_private) as http:
        with pytest.raises(httpx.ConnectError) as raised:
            await http.get(url)
    assert refused_by_policy(raised.value)


async def test_transmit_stops_at_once_when_the_connection_is_refused(tmp_path: Path) -> None:
    pack = tmp_path / "pack.json"
    pack.write_text("{}")
    # The URL check passes (private addresses allowed); the client's own policy refuses.
    lenient = make_settings("sqlite+aiosqlite:///unused.db", webhook_allow_private=True)
    async with Receiver() as receiver, client(allow_private=False) as http:
        with pytest.raises(SourceError) as raised:
            await transmit(http, pack, url=receiver.url, settings=lenient, request_id="r-1")
    assert raised.value.retryable is False
    assert "not allowed" in str(raised.value) and "127.0.0.1" not in str(raised.value)
    assert receiver.received == []


async def test_tls_is_checked_against_the_name_while_connecting_to_the_checked_address(
    certificate: tuple[Path, Path],
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    async with Receiver(tls=certificate) as receiver:
        url = by_name(receiver)
        assert url.startswith("https://")
        answers = Answers(["127.0.0.1"], ["127.0.0.1"])
        async with client(allow_private=True, resolve=answers, verify=trusted) as http:
            response = await http.post(url, content=b"{}")
            # The same address under a name the certificate does not cover: refused by TLS.
            with pytest.raises(httpx.ConnectError) as raised:
                await http.post(url.replace(NAME, "other.example.invalid"), content=b"{}")
    assert response.status_code == 200
    assert len(receiver.received) == 1
    assert not refused_by_policy(raised.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value) or "hostname" in str(raised.value)
