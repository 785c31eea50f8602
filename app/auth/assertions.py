"""Identity assertions: an integration vouches for a person it has already authenticated.

An assertion is an HS256 JWT the integration signs with its own client secret, so checking
it is client authentication, done here beside the clients and their encrypted secrets.
"""

from datetime import UTC, datetime
from typing import Any

from jose import JWTError, jwt
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.clients import get_by_client_id
from app.core.config import Settings
from app.core.crypto import decrypt_secret
from app.core.errors import UnprocessableEntity

ASSERTION_ALGORITHMS = ["HS256"]
MAX_ASSERTION_LIFETIME_SECONDS = 600
CLOCK_SKEW_SECONDS = 60


class InvalidAssertion(UnprocessableEntity):
    title = "Invalid identity assertion"
    slug = "invalid-identity-assertion"


def assertion_replayed() -> InvalidAssertion:
    return InvalidAssertion("This assertion (jti) has already been used.")


async def verify_identity_assertion(
    session: AsyncSession,
    *,
    settings: Settings,
    token: str,
    caller_client_id: str,
    subject_email: str | None,
    subject_customer_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Check signature, issuer, subject and lifetime; raise InvalidAssertion.

    Returns the ``used_assertions`` row that spends the assertion: the caller inserts it with
    the request, and a uniqueness conflict on it means the assertion was replayed
    (``assertion_replayed``).
    """
    client = await get_by_client_id(session, caller_client_id)
    # Read from the row, not the token cache: a client disabled a moment ago vouches for no one.
    secret = None
    if client is not None and client.active:
        secret = decrypt_secret(client.secret_encrypted, secret_keys=settings.reading_keys)
    if not secret:
        raise InvalidAssertion("The assertion cannot be checked for this client.")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=ASSERTION_ALGORITHMS,
            issuer=caller_client_id,
            options={
                "verify_aud": False,
                # Expiry is judged below by the service's clock, like every other time rule
                # (python-jose's require_exp would judge it by the wall clock again).
                "verify_exp": False,
                "require_iat": True,
                "require_iss": True,
                "require_sub": True,
                "require_jti": True,
                "leeway": CLOCK_SKEW_SECONDS,
            },
        )
    except (JWTError, ValueError, TypeError):
        raise InvalidAssertion(
            "The assertion's signature, issuer or times are not valid; it must be an HS256 "
            "JWT signed with your client secret, with iss = your client_id."
        ) from None
    issued_at, expires_at = claims.get("iat"), claims.get("exp")
    if not isinstance(issued_at, int | float) or not isinstance(expires_at, int | float):
        raise InvalidAssertion("iat and exp must be numeric timestamps.")
    if expires_at - issued_at > MAX_ASSERTION_LIFETIME_SECONDS:
        raise InvalidAssertion("exp must be at most 10 minutes after iat.")
    if expires_at < now.timestamp() - CLOCK_SKEW_SECONDS:
        raise InvalidAssertion("The assertion has expired.")
    if issued_at > now.timestamp() + CLOCK_SKEW_SECONDS:
        raise InvalidAssertion("iat is in the future.")
    asserted = str(claims["sub"])
    identities = {subject_customer_id} if subject_customer_id else set()
    if subject_email:
        identities.add(subject_email)
        identities.add(subject_email.lower())
    if asserted not in identities and asserted.lower() not in identities:
        raise InvalidAssertion(
            "The assertion's sub matches neither the subject's email nor customer_id."
        )
    jti = str(claims["jti"])
    if not jti or len(jti) > 200:
        raise InvalidAssertion("jti must be a non-empty string of at most 200 characters.")
    return {
        "issuer": caller_client_id,
        "jti": jti,
        "expires_at": datetime.fromtimestamp(expires_at, UTC),
    }
