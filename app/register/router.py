"""The processing register (Art. 30 record) as configured."""

import logging

from fastapi import APIRouter

from app.auth.deps import Reader, TokenFirstRoute
from app.core.deps import SettingsDep
from app.core.errors import AUTH_ERRORS, ServiceUnavailable
from app.register.service import ProcessingRegister, load_register

logger = logging.getLogger("app.register")

router = APIRouter(
    prefix="/v1/processing-register", tags=["Processing register"], route_class=TokenFirstRoute
)


@router.get(
    "",
    response_model=ProcessingRegister,
    summary="Read the processing register",
    responses={
        **AUTH_ERRORS,
        503: {"description": "The configured register file cannot be loaded."},
    },
)
async def get_processing_register(_reader: Reader, settings: SettingsDep) -> ProcessingRegister:
    """The controller's record of processing activities (UK GDPR Art. 30): for each
    activity its purpose, lawful basis (and Art. 9 condition for special category data),
    data categories, recipients, retention, sources, automated decision-making and
    international transfers.

    Every access pack carries the part of it that concerns the subject as the Art. 15
    supplementary information. The register comes from `DSR_PROCESSING_REGISTER_PATH`
    (YAML or JSON), else the built-in example; see docs/processing-register.md.
    """
    try:
        return load_register(settings)
    except ValueError as exc:
        # Start-up refuses a bad register; this guards an app created without that check.
        logger.error("processing register unusable: %s", exc)
        raise ServiceUnavailable(
            "The processing register cannot be loaded; an administrator must fix it."
        ) from None
