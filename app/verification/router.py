"""Identity verification routes: ask for or record proof, and confirm an emailed code."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response

from app.auth.deps import Submitter, TokenFirstRoute
from app.auth.scopes import Scope
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import ACTION_ERRORS, Forbidden, problem, problem_response
from app.requests.deps import LockedRequest, RequestId, visible_request
from app.requests.schemas import RequestPublic
from app.requests.service import request_public
from app.verification import service
from app.verification.schemas import (
    VERIFICATION_EXAMPLES,
    CodeConfirmBody,
    DocumentVerification,
    EmailCodeVerification,
    VerificationBody,
)

router = APIRouter(prefix="/v1/requests", tags=["Request actions"], route_class=TokenFirstRoute)

VERIFICATION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ACTION_ERRORS,
    403: problem_response(
        "Your role does not allow this; `document` and `officer_attestation` are for officers."
    ),
    422: problem_response(
        "Invalid body; the method is not allowed for this request type (`allowed_methods` "
        "lists those that are); or, for `email_code`, the subject has no email address."
    ),
    429: problem_response(
        "`email_code`: a code was sent less than a minute ago or five times in the last "
        "hour; retry after the `Retry-After` seconds."
    ),
}


@router.post(
    "/{request_id:uuid}/verification",
    response_model=RequestPublic,
    summary="Verify the subject's identity",
    responses=VERIFICATION_ERRORS,
)
async def verify(
    principal: Submitter,
    request_id: RequestId,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[VerificationBody, Body(openapi_examples=VERIFICATION_EXAMPLES)],
) -> RequestPublic:
    """Ask for, or record, proof of the subject's identity.

    * `email_code` (officers, and the integration that submitted the request, since CRMs
      drive this flow): emails the subject a 6-digit code, valid for 15 minutes by default
      (`DSR_VERIFICATION_CODE_TTL`), which they give you or your CRM to send to
      `…/verification/confirm`. Sending again makes earlier codes useless; a code can be
      resent after 60 seconds, at most 5 times in any hour (else 429 with `Retry-After`).
    * `document` (officers): the result of a document check you performed. A fail keeps the
      request waiting and tells the subject what they could send instead.
    * `officer_attestation` (officers): you confirm identity from context, e.g. the request
      came from the address on file; the `note` saying how is kept in the audit trail.

    Which methods a request type accepts is configurable (`DSR_VERIFICATION_POLICY`); by
    default access, portability, erasure and rectification need an email code, a document
    check or an identity assertion, while objection and restriction accept any method.
    Confirmed identity moves the request to `in_progress`; when the service had asked for
    it (a code or a document), the clock starts **today**. The document itself is never
    stored, and no code appears in any answer or in the audit trail.
    """
    # Officer-only methods are refused before the request is looked up, as for officer actions.
    if not isinstance(body, EmailCodeVerification) and Scope.REQUESTS_MANAGE not in (
        principal.scopes
    ):
        raise Forbidden(f"The {body.method} method needs the `{Scope.REQUESTS_MANAGE}` scope.")
    dsr = await visible_request(session, principal, request_id, for_update=True)
    actor = principal.client_id
    if isinstance(body, EmailCodeVerification):
        await service.send_code(session, settings=settings, dsr=dsr, actor=actor, now=now)
    elif isinstance(body, DocumentVerification):
        await service.record_document_check(
            session, settings=settings, dsr=dsr, check=body, actor=actor, now=now
        )
    else:
        await service.attest(
            session, settings=settings, dsr=dsr, note=body.note, actor=actor, now=now
        )
    return request_public(dsr, settings, now, viewer=principal)


@router.post(
    "/{request_id:uuid}/verification/confirm",
    response_model=RequestPublic,
    summary="Confirm an emailed code",
    responses={
        **ACTION_ERRORS,
        422: problem_response(
            "Invalid body; `Invalid or expired code` (wrong, expired or superseded); or "
            "`Too many attempts` (the code is dead: send a new one)."
        ),
    },
)
async def confirm_code(
    principal: Submitter,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: CodeConfirmBody,
) -> RequestPublic | Response:
    """Check the code the subject received by email (officers, and the submitting integration).

    Right: the request moves to `in_progress` and its clock starts today. Wrong, expired or
    superseded: 422 `invalid or expired code`. After 5 wrong attempts (by default) the code
    is dead and every attempt answers 422 `too many attempts` until a new code is sent (422,
    not 429: waiting does not help, a new code does). Answers never say how close a code
    was. Every attempt is in the audit trail (with the reason, for officers helping the
    subject), never the code itself.
    """
    outcome = await service.confirm_code(
        session, settings=settings, dsr=dsr, code=body.code, actor=principal.client_id, now=now
    )
    if outcome is not service.CodeCheck.VERIFIED:
        error = service.CODE_ERRORS[outcome]()
        # Answered, not raised: raising would roll back the attempt count and its audit entry.
        return problem(error.status, error.title, error.detail, slug=error.slug)
    return request_public(dsr, settings, now, viewer=principal)
