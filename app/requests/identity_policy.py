"""Which identity proofs each request type accepts before it is acted on, and which subjects
can be identified at all.

Intake applies it to identity assertions and to the subject's identities; ``app.verification``
applies it to email codes, document checks and attestations. ``DSR_VERIFICATION_POLICY``
overrides the methods per type.
"""

from app.core.config import Settings
from app.core.errors import UnprocessableEntity
from app.enums import Channel, RequestType, VerificationMethod

_STRONG = (
    VerificationMethod.EMAIL_CODE,
    VerificationMethod.DOCUMENT,
    VerificationMethod.IDENTITY_ASSERTION,
)

_ANY = (*_STRONG, VerificationMethod.OFFICER_ATTESTATION)


# Disclosure, erasure and changes need proof; objection and restriction only stop processing,
# so an officer's word from context is enough.
DEFAULT_POLICY: dict[RequestType, tuple[VerificationMethod, ...]] = {
    RequestType.ACCESS: _STRONG,
    RequestType.PORTABILITY: _STRONG,
    RequestType.ERASURE: _STRONG,
    RequestType.RECTIFICATION: _STRONG,
    RequestType.OBJECTION: _ANY,
    RequestType.RESTRICTION: _ANY,
}


class MethodNotAllowed(UnprocessableEntity):
    title = "Verification method not allowed"
    slug = "verification-method-not-allowed"


def allowed_methods(settings: Settings, request_type: str) -> tuple[VerificationMethod, ...]:
    """The methods that may verify a request of this type (DSR_VERIFICATION_POLICY first)."""
    configured = settings.verification_policy.get(request_type)
    if configured:
        return tuple(VerificationMethod(method) for method in configured)
    return DEFAULT_POLICY[RequestType(request_type)]


def ensure_method_allowed(
    settings: Settings, request_type: str, method: VerificationMethod
) -> None:
    """Raise MethodNotAllowed (422, listing the allowed methods) unless ``method`` may be used."""
    allowed = allowed_methods(settings, request_type)
    if method not in allowed:
        names = [str(value) for value in allowed]
        raise MethodNotAllowed(
            f"Identity for {request_type} requests cannot be verified by {method}; "
            f"allowed methods: {', '.join(names)}.",
            extra={"allowed_methods": names},
        )


# What the data sources can find a subject by; a name alone matches too many people.
MATCHABLE_IDENTITIES = ("email", "phone", "customer_id")
# A letter or a call reaches an officer, who verifies the person and can answer by hand.
NAME_ONLY_CHANNELS = frozenset({Channel.POST, Channel.PHONE})


def ensure_identifiable(
    *, email: str | None, phone: str | None, customer_id: str | None, channel: Channel
) -> None:
    """Raise 422 (naming the identity fields, never their values) unless the subject has an
    email, phone or customer id, or came by post or phone, where an officer verifies them."""
    if email or phone or customer_id or channel in NAME_ONLY_CHANNELS:
        return
    message = (
        "give an email, phone or customer_id; a name alone is accepted only for requests "
        "received by post or phone"
    )
    raise UnprocessableEntity(
        "The subject has no email, phone or customer id to find them by.",
        extra={
            "errors": [
                {"loc": ["body", "subject", field], "msg": message, "type": "missing"}
                for field in MATCHABLE_IDENTITIES
            ]
        },
    )
