"""`dsr keys rotate` as an operator runs it: the command, its environment, its exit codes."""

import asyncio
import re
from pathlib import Path

from click.testing import Result
from httpx import ASGITransport, AsyncClient
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import get_settings
from app.main import create_app
from tests.conftest import get_token, make_settings
from tests.factories import create_request

OLD_KEY = "old-operator-key-" * 3
NEW_KEY = "new-operator-key-" * 3


def _dsr(database_url: str, *args: str, key: str, previous: str = "") -> Result:
    get_settings.cache_clear()
    try:
        env = {
            "DSR_DATABASE_URL": database_url,
            "DSR_SECRET_KEY": key,
            "DSR_SECRET_KEY_PREVIOUS": previous,
        }
        return CliRunner().invoke(cli, list(args), env=env)
    finally:
        get_settings.cache_clear()


def _client(database_url: str, key: str) -> tuple[str, str]:
    created = _dsr(database_url, "clients", "create", "--name", "crm", "--role", "admin", key=key)
    assert created.exit_code == 0, created.output
    pairs = dict(
        line.split("=", 1) for line in created.output.splitlines() if line.startswith("client_")
    )
    return pairs["client_id"], pairs["client_secret"]


async def _log_request(database_url: str, key: str, client_id: str, secret: str) -> None:
    app = create_app(make_settings(database_url, secret_key=key))
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://t") as http:
            token = await get_token(http, client_id, secret)
            await create_request(http, {"Authorization": f"Bearer {token}"})


def _database_under_old_key(tmp_path: Path) -> str:
    """A migrated database holding one client and one request, all under OLD_KEY."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    assert _dsr(url, "migrate", key=OLD_KEY).exit_code == 0
    asyncio.run(_log_request(url, OLD_KEY, *_client(url, OLD_KEY)))
    return url


def test_rotate_moves_everything_and_a_second_run_finds_nothing(tmp_path: Path) -> None:
    url = _database_under_old_key(tmp_path)

    rotated = _dsr(url, "keys", "rotate", "--batch-size", "1", key=NEW_KEY, previous=OLD_KEY)
    assert rotated.exit_code == 0, rotated.output
    # Every client (the one made here and the bootstrap admin) and the queued acknowledgement.
    assert re.search(r"^re-encrypted 2 in clients.secret_encrypted$", rotated.output, re.M)
    assert "re-encrypted 1 in mail_outbox.recipient_encrypted" in rotated.output
    assert "re-hashed 1 in requests.subject_email_hash" in rotated.output
    assert rotated.output.rstrip().endswith("DSR_SECRET_KEY_PREVIOUS may go")
    assert "jane" not in rotated.output.lower()  # counts, never the subject (jane.doe@...)

    again = _dsr(url, "keys", "rotate", key=NEW_KEY, previous=OLD_KEY)
    assert again.exit_code == 0, again.output
    assert "re-encrypted" not in again.output and "re-hashed" not in again.output


def test_values_under_a_key_it_was_not_given_fail_the_command(tmp_path: Path) -> None:
    url = _database_under_old_key(tmp_path)

    # The operator forgot DSR_SECRET_KEY_PREVIOUS: what is encrypted stays as it was.
    forgot = _dsr(url, "keys", "rotate", key=NEW_KEY)
    assert forgot.exit_code == 1, forgot.output
    assert "DSR_SECRET_KEY_PREVIOUS is empty" in forgot.output
    assert re.search(
        r"^UNREADABLE under every key: 2 in clients.secret_encrypted", forgot.output, re.M
    )
    assert "UNREADABLE under every key: 1 in mail_outbox.recipient_encrypted" in forgot.output
    assert "keep the previous keys" in forgot.output

    # With the old key given afterwards, the rotation still succeeds: nothing was lost.
    fixed = _dsr(url, "keys", "rotate", key=NEW_KEY, previous=OLD_KEY)
    assert fixed.exit_code == 0, fixed.output
    assert "UNREADABLE" not in fixed.output
