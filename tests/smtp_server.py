"""A real SMTP server (aiosmtpd) on loopback that records what it receives.

It runs in aiosmtpd's own thread and event loop, so the code under test talks to it over a
real TCP connection exactly as it would to a production relay.
"""

import email
import email.policy
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Captured:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: str | None

    def part(self, content_type: str) -> str:
        """The decoded body of the first part of this content type."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return str(part.get_content())  # type: ignore[attr-defined]
        raise AssertionError(f"no {content_type} part")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Handler:
    def __init__(self, server: "SmtpServer") -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.server.refuse_recipients_with:
            # Real servers quote the address back: the client must not store this text.
            return f"{self.server.refuse_recipients_with} <{address}>"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        self.server.messages.append(
            Captured(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=parsed,
                raw=raw,
                login=login,
            )
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """``with SmtpServer() as smtp``: listens on 127.0.0.1:``smtp.port``.

    ``stop()`` and ``start()`` again keep the port, to stand in for an outage;
    ``refuse_recipients_with = "451 4.3.0 Try again later"`` makes it refuse every RCPT.
    With ``credentials`` it offers AUTH (over plain TCP: loopback only) and checks them.
    """

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.messages: list[Captured] = []
        self.refuse_recipients_with: str | None = None
        self.credentials = credentials
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = self.credentials
        accepted = auth_data.login.decode() == login and auth_data.password.decode() == password
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)

    def start(self) -> None:
        assert self._controller is None, "already running"
        options: dict[str, Any] = {}
        if self.credentials is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        # A fresh controller each time: a stopped one has closed its event loop.
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **options
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpServer":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
