"""ASGI application factory (``app.main:app``): each capability's router, the error handlers,
the OpenAPI document, and the lifespan that starts the in-process worker."""

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import ValidationError

from app.accounts import router as accounts_api
from app.auth import router as auth_api
from app.auth.clients import ensure_bootstrap_admin
from app.auth.revocation import ActiveClients
from app.casework import router as casework_api
from app.console import pages as console_reports
from app.console import router as console_pages
from app.core.api_docs import install_api_docs
from app.core.config import Settings, get_settings, settings_problems
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import install_error_handlers
from app.core.group_commit import GroupCommitter
from app.core.middleware import (
    AccessLogMiddleware,
    BodyHygieneMiddleware,
    UnexpectedErrorMiddleware,
)
from app.core.openapi import install_complete_openapi
from app.core.time import utcnow
from app.correspondence import router as correspondence_api
from app.data_sources import router as data_sources_api
from app.demo.source import ensure_demo_source
from app.exports import router as exports_api
from app.fulfilment import router as fulfilment_api
from app.health import router as health_api
from app.metrics import router as metrics_api
from app.metrics.exposition import mark_process_dead
from app.metrics.middleware import HttpMetricsMiddleware
from app.register import router as register_api
from app.register.service import load_register
from app.reports import router as reports_api
from app.requests import router as requests_api
from app.requests.schemas import RequestWebhookEvent
from app.status_page import router as status_page
from app.suppression import router as suppression_api
from app.verification import router as verification_api
from app.webhooks import router as webhooks_api
from app.webhooks.docs import register_webhook_docs
from app.worker import Worker

logger = logging.getLogger("app")

API_DESCRIPTION = """
Receive, verify, time and answer **data subject rights requests** under UK GDPR (default),
EU GDPR and CCPA.

## Getting a token
Create a client (`dsr clients create` or `POST /v1/clients` as admin), then, in `/docs`,
press **Authorize** and enter its client id and secret (client credentials flow).
Roles: **integration** (submits requests, sees only its own), **officer** (sees and acts on
every request), **admin** (also manages clients). A `401` with `invalid_token` means the token
expired or its client was disabled, deleted or given a new secret since: get a new token.

## Lifecycle
`awaiting_verification` → `in_progress` ⇄ `paused` → `completed` | `rejected` | `cancelled`.

A request waits for identity verification unless the submitting integration vouched for the
person with an identity assertion. Officers record document checks, pause (stop the clock),
resume, extend once, reject (with the subject's remedies) or complete. Any action not allowed
in the current status answers **409**. Every change is written to the audit trail
(`/events`) and announced to webhook subscribers in the same transaction.

## Identity verification
Before disclosing or erasing anything we must be reasonably sure the requester is the person.
Methods: an emailed 6-digit **code** (`POST /v1/requests/{id}/verification` with
`{"method": "email_code"}`, then `/verification/confirm`), an officer's **document** check,
an integration's signed **identity assertion** at intake, or (objection and restriction
only, by default) an officer's **attestation** with a note. Which methods each request type
accepts is configurable (`DSR_VERIFICATION_POLICY`). When we asked for identity, the clock
starts on the day it is confirmed.

## Deadlines
All dates are local dates in the controller's time zone (default Europe/London).

* **Clock start**: the latest of the day of receipt, the day identity was confirmed (when we
  asked for it) and the day a requested fee was received.
* **UK/EU GDPR**: one calendar month: the same day number next month, or that month's last day
  if it has no such day (31 Jan → 28/29 Feb). If that day is a weekend or public holiday
  (England by default; Wales, Scotland, Northern Ireland configurable) the deadline moves to
  the next working day.
* **Extension**: once, on or before the original due date: three calendar months from the
  clock start (never +1 then +2), rolled the same way.
* **Stop the clock**: pausing for clarification does not count the days from the pause to the
  resume, both included; they are added before rolling. A clarification sent from the case
  (`POST /v1/requests/{id}/messages`) pauses on the day it is sent, and recording the
  subject's reply resumes as of the day the reply arrived. Pausing for a fee restarts the
  clock on the day the fee arrives (the resume day).
* **CCPA**: 45 calendar days (+45 on extension), rolled to a California business day.
* `due_at` is the last second of the due date in the controller's time zone, in UTC.

## Fulfilment
Register the systems that hold personal data as **data sources** (admins:
`/v1/data-sources`): `sql` databases described by a dataset map, `http` services speaking
our REST contract, and `task` sources whose owners do the work and report back. An officer
then calls `POST /v1/requests/{id}/fulfil`; the worker finds, exports, erases, rectifies,
restricts or suppresses, shows its progress on the request (`fulfilment`), and completes the
request. Access and portability produce a JSON file and a CSV zip, downloadable by the
integration (`/export`) and by the subject through an expiring signed link emailed to them.

## Casework and reporting
Officers own cases (`/assign`, board filter `assignee=me`), keep internal notes (`/notes`,
never shown to the subject), write to the subject (`/messages`: a clarification stops the
clock; `/messages/reply` restarts it on the day the answer arrived), look at what fulfilment
would change before it changes anything (`/plan`; with `DSR_APPROVAL_REQUIRED`, `/approve`
first), see possible duplicates and the subject's history, refuse or cancel in bulk, and report
to the regulator (`/v1/reports/summary`, the register CSV, calendar feeds of due dates).

## Errors
Every error is RFC 9457 `application/problem+json` and never contains personal data.
"""

TAGS = [
    {"name": "Requests", "description": "Log requests and follow their deadlines."},
    {"name": "Request actions", "description": "What officers do to move a request along."},
    {
        "name": "Casework",
        "description": "Who owns a case, the officers' internal notes, and refusing or "
        "cancelling many requests at once.",
    },
    {
        "name": "Correspondence",
        "description": "Write to the subject from the case (a clarification stops the clock), "
        "record their replies (the clock restarts on the day a reply arrived) and read the "
        "thread with each mail's delivery status. Officers only.",
    },
    {"name": "Auth", "description": "OAuth2 client credentials."},
    {
        "name": "Clients",
        "description": "API clients (admin): create, list, disable, enable, rotate a secret, "
        "delete. A disabled, deleted or rotated client's tokens are refused within "
        "`DSR_CLIENT_REFRESH_INTERVAL` (5 s) in every process.",
    },
    {
        "name": "Users",
        "description": "People's console accounts (admin): officers and admins who log in at "
        "`/console` with a password (and optionally a code from an authenticator app). Not API "
        "clients: what they do is recorded under their `usr_...` id.",
    },
    {
        "name": "Webhooks",
        "description": "Subscribe endpoints to signed event notifications; read and replay "
        "their deliveries.",
    },
    {
        "name": "Suppression",
        "description": "Who must not be contacted, and on which channels: CRMs check before "
        "importing contacts; officers list, add and remove entries. Only keyed hashes of "
        "identities are stored.",
    },
    {
        "name": "Fulfilment tasks",
        "description": "For `task` data sources: read the task you were sent (`task.created`) "
        "and report its result.",
    },
    {
        "name": "Data sources",
        "description": "The systems holding personal data that fulfilment searches and "
        "changes (admin): SQL databases with a dataset map, HTTP services, and tasks for "
        "people or systems the service cannot reach. Credentials are stored encrypted.",
    },
    {
        "name": "Processing register",
        "description": "The record of processing activities (Art. 30) whose relevant part "
        "every access pack carries as the Art. 15 supplementary information.",
    },
    {
        "name": "Exports",
        "description": "Access and portability files (JSON, and CSV zipped per data "
        "category), downloadable until they expire, and the subject's signed download link.",
    },
    {
        "name": "Reports",
        "description": "Figures and the accountability register (CSV) for the regulator and "
        "audits (officers).",
    },
    {
        "name": "Calendar feeds",
        "description": "Subscribable iCalendar feeds of open requests' due dates (officers "
        "create and revoke them; the feed's secret URL needs no login).",
    },
    {"name": "Health", "description": "Liveness and readiness."},
    {"name": "Webhook events", "description": "What your webhook endpoint receives."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A broken processing register must stop start-up, not the first access request.
        load_register(settings)
        async with app.state.sessionmaker() as session:
            if await ensure_bootstrap_admin(session, settings=settings, now=utcnow()):
                logger.info("created the bootstrap admin client")
            if settings.demo and await ensure_demo_source(session, settings=settings, now=utcnow()):
                logger.info("the demo CRM is registered as data source demo_crm")
            await session.commit()
        # Start-up objects (modules, schemas, templates) live for the whole process: keep them
        # out of the cyclic collector, so full collections stay short and tail latency low.
        gc.freeze()
        stop = asyncio.Event()
        worker_task = None
        if settings.worker_in_process:
            # The embedded default delivers webhooks without a separate `dsr worker`.
            worker = Worker(settings, app.state.sessionmaker)
            worker_task = asyncio.create_task(worker.run_forever(stop))
        try:
            yield
        finally:
            stop.set()
            if worker_task is not None:
                await worker_task
                await worker.close()
            await app.state.engine.dispose()
            # Under `dsr serve --workers N`: this worker's live gauges leave the sum.
            mark_process_dead()

    app = FastAPI(
        title="Data Subject Rights service",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # Served by install_api_docs from the service itself, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = utcnow
    app.state.engine = create_engine(settings)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    app.state.committer = GroupCommitter(app.state.engine)
    app.state.active_clients = ActiveClients(
        app.state.engine, refresh_interval=settings.client_refresh_interval
    )
    install_error_handlers(app)
    install_api_docs(app)
    register_webhook_docs(app, request_event=RequestWebhookEvent)
    app.add_middleware(BodyHygieneMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, routes=app.router.routes)
    # Whatever fails below becomes a 500 whose message is never logged.
    app.add_middleware(UnexpectedErrorMiddleware)
    # Outermost of ours: every answer, that 500 included, carries X-Request-ID and is logged.
    app.add_middleware(AccessLogMiddleware, routes=app.router.routes)
    # In this order, so the OpenAPI document lists paths as officers read them.
    for router in (
        auth_api.router,
        auth_api.clients_router,
        accounts_api.router,
        requests_api.router,
        verification_api.router,
        requests_api.actions,
        casework_api.router,
        correspondence_api.router,
        fulfilment_api.actions,
        fulfilment_api.router,
        webhooks_api.router,
        suppression_api.router,
        data_sources_api.router,
        exports_api.router,
        register_api.router,
        reports_api.reports,
        reports_api.feeds,
        reports_api.public,
        health_api.router,
        status_page.router,
    ):
        app.include_router(router)
    if settings.metrics_token is not None:
        # Without a token the route does not exist: a scraper's guess finds a plain 404.
        app.include_router(metrics_api.router)
    # The officers' console: HTML pages, not in the OpenAPI document.
    console_pages.install(app)
    app.include_router(console_reports.router)
    install_complete_openapi(app)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` builds the app on first use so importing this module needs no settings.
    if name == "app":
        try:
            settings = get_settings()
        except ValidationError as error:
            # What to fix, not a traceback: `uvicorn app.main:app` exits with these lines.
            for line in settings_problems(error):
                print(f"dsr: {line}", file=sys.stderr)
            raise SystemExit(2) from None
        application = create_app(settings)
        globals()["app"] = application
        return application
    raise AttributeError(name)
