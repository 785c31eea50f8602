"""Shared by the casework tests: an officer whose client_id the test knows."""

from httpx import AsyncClient

from tests.conftest import get_token, new_client


async def officer(
    client: AsyncClient, admin_headers: dict[str, str], role: str = "officer"
) -> tuple[str, dict[str, str]]:
    """A new officer (or other role) client: its client_id and its bearer headers."""
    client_id, secret = await new_client(client, admin_headers, role)
    return client_id, {"Authorization": f"Bearer {await get_token(client, client_id, secret)}"}
