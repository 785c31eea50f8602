"""The signed link to the subject's status page that every mail to a subject carries.

A token is ``<request id, 32 hex>.<expiry, unix seconds>.<MAC>``: the MAC is HMAC-SHA256
(truncated to 128 bits, base64url) of the first two parts under a key derived from
DSR_SECRET_KEY for the purpose "status-page" alone, so no other token of the service (access
tokens, download links) can serve as one, and changing the request id or the expiry breaks
it. No login: whoever holds the mail holds the link, for DSR_STATUS_LINK_DAYS.

It lives here, beside the mail that issues it, because mail is the bottom layer: the status
page (``app.status_page``, top layer) reads it back with ``verify_status_token``.
"""

import base64
import hashlib
import hmac
import re
import uuid
from datetime import datetime, timedelta

from app.core.config import Settings
from app.core.crypto import derived_key, derived_keys, mac_matches

TOKEN_PURPOSE = "status-page"
# The hidden token in each form of the page: bound to the status token, another purpose.
FORM_PURPOSE = "status-page-form"
_MAC_BYTES = 16
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$")


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue_status_token(request_id: uuid.UUID, expires_at: datetime, settings: Settings) -> str:
    """A token opening the page of this request until ``expires_at``."""
    payload = f"{request_id.hex}.{int(expires_at.timestamp())}"
    return f"{payload}.{_mac(derived_key(settings.secret_key, TOKEN_PURPOSE), payload)}"


def status_url(request_id: uuid.UUID, *, settings: Settings, now: datetime) -> str:
    """``DSR_PUBLIC_URL/status/<token>``, valid for DSR_STATUS_LINK_DAYS from ``now``."""
    expires_at = now + timedelta(days=settings.status_link_days)
    token = issue_status_token(request_id, expires_at, settings)
    return f"{settings.public_url.rstrip('/')}/status/{token}"


def verify_status_token(token: str, settings: Settings, *, now: datetime) -> uuid.UUID | None:
    """The request id of a genuine, unexpired token; None for anything else.

    Forged, garbled, tampered and expired tokens are all the same None: the page a caller
    sees must not tell them apart.
    """
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    request_hex, expires, mac = match.groups()
    expected = [
        _mac(key, f"{request_hex}.{expires}")
        for key in derived_keys(settings.reading_keys, TOKEN_PURPOSE)
    ]
    if not mac_matches(expected, mac):
        return None
    if int(expires) <= now.timestamp():
        return None
    return uuid.UUID(hex=request_hex)


def form_token(token: str, settings: Settings) -> str:
    """The hidden field each form of the page carries: proves the post came from the page."""
    return _mac(derived_key(settings.secret_key, FORM_PURPOSE), token)


def form_token_valid(token: str, submitted: str, settings: Settings) -> bool:
    # A page rendered just before a key rotation still posts: any reading key is accepted.
    expected = [_mac(key, token) for key in derived_keys(settings.reading_keys, FORM_PURPOSE)]
    return mac_matches(expected, submitted)
