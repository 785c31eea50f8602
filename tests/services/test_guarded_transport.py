"""The connection-time SSRF guard: every TCP connection goes to an address it has just checked.

A real receiver listens on loopback. Names under ``.invalid`` never resolve through the
system, so a request that reaches the receiver by such a name can only have been sent to the
address the guard's resolver returned and the guard checked.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services.fulfilment_steps import transmit
from app.services.sources.base import SourceError
from app.services.ssrf import (
    GuardedTransport,
    Resolver,
    UnresolvableHost,
    refused_by_policy,
    resolve_addresses,
)
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


def client(*, allow_private: bool, resolve: Resolver = resolve_addresses) -> httpx.AsyncClient:
    # No keep-alive: each request opens (and so checks) a connection of its own.
    limits = httpx.Limits(max_keepalive_connections=0)
    transport = GuardedTransport(allow_private=allow_private, limits=limits, resolve=resolve)
    return httpx.AsyncClient(transport=transport, trust_env=False)


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
