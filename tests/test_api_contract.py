"""The OpenAPI document and the service agree: schemathesis, every check, every operation.

A real server (``dsr serve`` in a subprocess, SQLite) answers requests generated from the
document it serves: valid ones must be accepted as documented, invalid ones refused as
documented, every answer in its documented shape. It runs as an admin and as an integration.
Bounded and deterministic (derandomised, a fixed number of examples) so it fits in the suite.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from app.core.config import Settings
from app.main import create_app
from tests.live_server import live_service

ADMIN_ID = "contract-admin"
ADMIN_SECRET = "contract-admin-secret-0123456789abcdef"
EXAMPLES = 50

ROOT = Path(__file__).resolve().parent.parent
# The document says identities are "format: email" and "format: phone": valid cases send
# addresses and numbers a person can have (no reserved .test or .invalid domains, real
# numbering plans), as a client would.
schemathesis.openapi.format(
    "email",
    st.from_regex(
        r"[a-z][a-z0-9_+-]{0,15}@[a-z][a-z0-9]{0,15}\.(com|org|co\.uk|de)", fullmatch=True
    ),
)
schemathesis.openapi.format(
    "phone",
    st.sampled_from(["+441632960001", "+442079460456", "020 7946 0123", "+14155550123"]),
)
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi(),
    config=SchemathesisConfig.from_path(ROOT / "schemathesis.toml"),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a free loopback port, with its own SQLite database."""
    folder = tmp_path_factory.mktemp("contract")
    environment = {
        "DSR_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'dsr.db'}",
        "DSR_ADMIN_CLIENT_ID": ADMIN_ID,
        "DSR_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
        "DSR_EXPORT_DIR": str(folder / "exports"),
    }
    with live_service(folder, environment) as service:
        yield service.base


def _token(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{base}/v1/oauth/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture(scope="module", params=["admin", "integration"])
def headers(request: pytest.FixtureRequest, server: str) -> dict[str, str]:
    admin = _token(server, ADMIN_ID, ADMIN_SECRET)
    if request.param == "admin":
        return {"Authorization": f"Bearer {admin}"}
    created = httpx.post(
        f"{server}/v1/clients",
        headers={"Authorization": f"Bearer {admin}"},
        json={"name": "contract integration", "role": "integration"},
        timeout=10,
    ).json()
    token = _token(server, created["client_id"], created["client_secret"])
    return {"Authorization": f"Bearer {token}"}


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_service_answers_as_its_document_says(
    case: schemathesis.Case, server: str, headers: dict[str, str]
) -> None:
    # A cursor is opaque: a made-up one is refused (400) whatever the schema allows, so valid
    # cases go without one; cursors have a property test of their own (tests/core/
    # test_pagination.py). Invalid cases keep theirs: it may be what makes them invalid.
    # Likewise two facts of intake no schema can state, each tested on its own: received_at
    # must not be in the future (tests/requests), and an identity assertion must be a JWT the
    # client signed (tests/auth/test_identity_assertion.py).
    if case.meta is None or case.meta.generation.mode.is_positive:
        for part in (case.query, case.body):
            if isinstance(part, dict):
                part.pop("cursor", None)
                part.pop("identity_assertion", None)
                received = part.get("received_at")
                if isinstance(received, str) and not "2000" <= received[:4] <= "2025":
                    part["received_at"] = "2025-06-30T09:00:00Z"  # 2000 is the earliest taken
    # Every check schemathesis has (all are on unless schemathesis.toml says otherwise).
    case.call_and_validate(base_url=server, headers=headers)
