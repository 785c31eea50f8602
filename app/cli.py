"""The ``dsr`` command: serve, migrate, and manage clients and people's console accounts."""

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.auth import client_admin, clients
from app.auth.clients import new_client_secret
from app.auth.scopes import Role
from app.core.config import Settings, get_settings, settings_problems
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import AppError, NotFound
from app.core.logs import configure_logging, logging_config
from app.core.time import utcnow
from app.demo import JANE_DOE, create_demo_crm
from app.demo.source import ensure_demo_database
from app.keys import rotation
from app.models import Client, User
from app.worker import run_worker

cli = typer.Typer(help="Data subject rights service.", no_args_is_help=True)
clients_cli = typer.Typer(help="Manage API clients.", no_args_is_help=True)
cli.add_typer(clients_cli, name="clients")
demo_cli = typer.Typer(help="The demo CRM (fictional customers).", no_args_is_help=True)
cli.add_typer(demo_cli, name="demo")
users_cli = typer.Typer(help="Manage people's console accounts.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
keys_cli = typer.Typer(help="Rotate DSR_SECRET_KEY.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_ADMIN_ID = "dev-admin"
DEV_ADMIN_EMAIL = "dev-admin@example.com"
# The CLI acts for whoever runs it on the server; the audit log names it so.
CLI_ACTOR = "cli"


def load_settings() -> Settings:
    """The settings; on a configuration error, one line per problem and exit code 2."""
    try:
        return get_settings()
    except ValidationError as error:
        for line in settings_problems(error):
            typer.echo(f"dsr: {line}", err=True)
        raise typer.Exit(code=2) from None


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    # Keep the caller's logging: alembic.ini's config would silence the service's loggers.
    config.attributes["configure_logging"] = False
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def migrate_database(settings: Settings) -> None:
    command.upgrade(alembic_config(settings.database_url), "head")


async def _rotate_keys(settings: Settings, batch_size: int) -> rotation.RotationReport:
    engine = create_engine(settings)
    try:
        return await rotation.rotate(
            create_sessionmaker(engine), settings=settings, batch_size=batch_size
        )
    finally:
        await engine.dispose()


@keys_cli.command("rotate")
def rotate_keys(
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="rows per commit")] = 500,
) -> None:
    """Re-encrypt and re-hash everything under DSR_SECRET_KEY; then DSR_SECRET_KEY_PREVIOUS
    can be removed. Safe while the service runs, and to run again."""
    settings = load_settings()
    if not settings.secret_key_previous:
        typer.echo("dsr: DSR_SECRET_KEY_PREVIOUS is empty: nothing was retired", err=True)
    report = asyncio.run(_rotate_keys(settings, batch_size))
    for line in report.lines():
        typer.echo(line)
    if report.unreadable:
        typer.echo("some values open under no key: keep the previous keys until explained")
        raise typer.Exit(code=1)
    typer.echo("done: every value is under DSR_SECRET_KEY; DSR_SECRET_KEY_PREVIOUS may go")


@cli.command()
def migrate() -> None:
    """Apply all database migrations to DSR_DATABASE_URL."""
    migrate_database(load_settings())
    typer.echo("database is at the latest migration")


async def _create_client(settings: Settings, name: str, role: Role) -> tuple[str, str]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            client, plain = await clients.create_client(
                session, settings=settings, name=name, role=role, now=utcnow()
            )
            await session.commit()
            return client.client_id, plain
    finally:
        await engine.dispose()


async def _rekey_development_admin(settings: Settings, secret: str) -> bool:
    """Create the development admin with ``secret``, or give it ``secret``; False, and no
    change, if it was disabled or deleted: that decision outlives restarts."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            existing = await clients.get_by_client_id(session, DEV_ADMIN_ID)
            if existing is None:
                await clients.create_client(
                    session,
                    settings=settings,
                    name="Development admin",
                    role=Role.ADMIN,
                    now=utcnow(),
                    client_id=DEV_ADMIN_ID,
                    client_secret=secret,
                )
            elif not existing.active:
                return False
            else:
                await clients.set_secret(session, settings=settings, client=existing, secret=secret)
            await session.commit()
            return True
    finally:
        await engine.dispose()


T = TypeVar("T")


async def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one session and commit; an AppError (a refusal) propagates."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _run_change(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run ``work``; a refusal (unknown client or person, last admin...) is
    printed and exits with 1."""
    migrate_database(settings)
    try:
        return asyncio.run(_in_transaction(settings, work))
    except AppError as refused:
        typer.echo(f"error: {refused.detail}", err=True)
        raise typer.Exit(1) from None


def _change_client(
    settings: Settings, client_id: str, change: Callable[[AsyncSession, Client], Awaitable[T]]
) -> T:
    """Run ``change`` on the client named ``client_id``."""

    async def work(session: AsyncSession) -> T:
        return await change(session, await client_admin.get_client(session, client_id=client_id))

    return _run_change(settings, work)


async def _all_clients(settings: Settings, *, include_deleted: bool) -> list[Client]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            rows: list[Client] = []
            cursor = None
            while True:
                page, cursor = await client_admin.list_clients(
                    session, limit=200, cursor=cursor, include_deleted=include_deleted
                )
                rows.extend(page)
                if cursor is None:
                    return rows
    finally:
        await engine.dispose()


def _status(client: Client) -> str:
    if client.deleted_at is not None:
        return "deleted"
    return "active" if client.active else "disabled"


ClientIdArgument = Annotated[
    str, typer.Argument(help="The client's client_id.", metavar="CLIENT_ID")
]
# The CLI has no caller: only the last-active-admin rule applies to it.
NO_CALLER = None


@clients_cli.command("list")
def list_clients(
    include_deleted: Annotated[
        bool, typer.Option("--all", help="Also list deleted clients.")
    ] = False,
) -> None:
    """List API clients, newest first (never their secrets)."""
    settings = get_settings()
    migrate_database(settings)
    rows = asyncio.run(_all_clients(settings, include_deleted=include_deleted))
    typer.echo(f"{'client_id':<40} {'role':<12} {'status':<9} {'created':<20} name")
    for client in rows:
        created = client.created_at.strftime("%Y-%m-%d %H:%M")
        typer.echo(
            f"{client.client_id:<40} {client.role:<12} {_status(client):<9} {created:<20} "
            f"{client.name}"
        )


@clients_cli.command("disable")
def disable_client(client_id: ClientIdArgument) -> None:
    """Refuse a client's secret and tokens (API processes within DSR_CLIENT_REFRESH_INTERVAL)."""

    async def change(session: AsyncSession, client: Client) -> None:
        await client_admin.disable_client(
            session, client=client, caller_client_id=NO_CALLER, now=utcnow()
        )

    _change_client(get_settings(), client_id, change)
    typer.echo(f"{client_id} disabled: its secret and tokens are refused")


@clients_cli.command("enable")
def enable_client(client_id: ClientIdArgument) -> None:
    """Accept a disabled client's secret again (its older tokens stay refused)."""

    async def change(session: AsyncSession, client: Client) -> None:
        await client_admin.enable_client(session, client=client)

    _change_client(get_settings(), client_id, change)
    typer.echo(f"{client_id} enabled")


@clients_cli.command("rotate-secret")
def rotate_client_secret(client_id: ClientIdArgument) -> None:
    """Give a client a new secret and print it (shown only once); the old one stops working."""

    settings = get_settings()

    async def change(session: AsyncSession, client: Client) -> str:
        return await client_admin.rotate_secret(
            session, settings=settings, client=client, now=utcnow()
        )

    secret = _change_client(settings, client_id, change)
    typer.echo(f"client_id={client_id}\nclient_secret={secret}")


@clients_cli.command("delete")
def delete_client(
    client_id: ClientIdArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a client for good (its requests and audit trail are kept)."""
    if not yes:
        typer.confirm(f"Delete {client_id} for good?", abort=True)

    async def change(session: AsyncSession, client: Client) -> None:
        await client_admin.delete_client(
            session, client=client, caller_client_id=NO_CALLER, now=utcnow()
        )

    _change_client(get_settings(), client_id, change)
    typer.echo(f"{client_id} deleted")


@clients_cli.command("create")
def create_client(
    name: Annotated[str, typer.Option(help="Who the client is for, e.g. 'Acme CRM'.")],
    role: Annotated[Role, typer.Option(help="integration, officer or admin.")],
) -> None:
    """Create an API client and print its secret (shown only once)."""
    settings = load_settings()
    migrate_database(settings)
    client_id, secret = asyncio.run(_create_client(settings, name, role))
    typer.echo(f"client_id={client_id}\nclient_secret={secret}")


def _run_for_person(
    settings: Settings, email: str, change: Callable[[AsyncSession, User], Awaitable[T]]
) -> T:
    """Run ``change`` on the person with this email address."""

    async def work(session: AsyncSession) -> T:
        user = await accounts.find_by_email(session, email)
        if user is None:
            raise NotFound("No user with this email address.")
        return await change(session, user)

    return _run_change(settings, work)


EmailOption = Annotated[str, typer.Option("--email", help="The person's email address.")]


@users_cli.command("create")
def create_person(
    email: EmailOption,
    role: Annotated[Role, typer.Option(help="officer or admin.")],
    name: Annotated[str | None, typer.Option(help="Shown in the console.")] = None,
) -> None:
    """Create a person's console account and print a temporary password (shown only once)."""
    settings = load_settings()
    if role not in accounts.PERSON_ROLES:
        typer.echo("error: a person's role is officer or admin", err=True)
        raise typer.Exit(2)
    user, temporary = _run_change(
        settings,
        lambda session: accounts.create_user(
            session, email=email, name=name, role=role, actor=CLI_ACTOR, now=utcnow()
        ),
    )
    typer.echo(f"user_id={user.id}\nemail={user.email}\ntemporary_password={temporary}")
    typer.echo("Log in at /console; the temporary password must be changed at first login.")


@users_cli.command("disable")
def disable_person(email: EmailOption) -> None:
    """Stop a person logging in to the console; their open sessions end at once."""

    async def change(session: AsyncSession, user: User) -> None:
        await accounts.disable_user(session, user=user, actor=CLI_ACTOR, now=utcnow())

    _run_for_person(load_settings(), email, change)
    typer.echo(f"{email} disabled: their sessions have ended")


@users_cli.command("enable")
def enable_person(email: EmailOption) -> None:
    """Let a disabled person log in again."""

    async def change(session: AsyncSession, user: User) -> None:
        await accounts.enable_user(session, user=user, actor=CLI_ACTOR)

    _run_for_person(load_settings(), email, change)
    typer.echo(f"{email} enabled")


@users_cli.command("reset-password")
def reset_person_password(email: EmailOption) -> None:
    """Give a person a new temporary password (printed once); their sessions end."""

    async def change(session: AsyncSession, user: User) -> str:
        return await accounts.reset_password(session, user=user, actor=CLI_ACTOR, now=utcnow())

    temporary = _run_for_person(load_settings(), email, change)
    typer.echo(f"email={email}\ntemporary_password={temporary}")


async def _rekey_development_person(settings: Settings) -> str | None:
    """Create the development admin person, or give it a new password; None, and no change,
    if it was disabled (that decision outlives restarts). Development only."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await accounts.find_by_email(session, DEV_ADMIN_EMAIL)
            now = utcnow()
            if user is None:
                user, password = await accounts.create_user(
                    session,
                    email=DEV_ADMIN_EMAIL,
                    name="Development admin",
                    role=Role.ADMIN,
                    actor=CLI_ACTOR,
                    now=now,
                )
            elif user.disabled_at is not None:
                return None
            else:
                password = await accounts.reset_password(
                    session, user=user, actor=CLI_ACTOR, now=now
                )
            # A new password at every start, printed: asking to change it would only slow
            # a developer down.
            user.must_change_password = False
            session.add(user)
            await session.commit()
            return password
    finally:
        await engine.dispose()


@demo_cli.command("create")
def create_demo(
    path: Annotated[Path, typer.Option(help="Where to write the SQLite file.")] = Path(
        "./demo_crm.db"
    ),
    contacts: Annotated[
        int, typer.Option(min=1, max=1000, help="Number of contacts, Jane Doe included.")
    ] = 300,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 42,
) -> None:
    """Build the demo CRM database, replacing any file already at PATH."""
    created = create_demo_crm(path, contacts=contacts, seed=seed)
    typer.echo(f"demo CRM with {contacts} contacts at {created} (try {JANE_DOE['email']})")


@cli.command()
def worker() -> None:
    """Run the background worker (stop with SIGTERM; run several against PostgreSQL).

    It delivers webhooks and mail to data subjects, runs fulfilment jobs, and sweeps:
    due-soon and overdue notices, expiry of unverified requests, and expired or orphaned
    export files. With SQLite the API process runs it itself.
    """
    settings = load_settings()
    configure_logging(settings.log_format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    asyncio.run(main())


def local_url(host: str, port: int) -> str:
    """The address to reach a server listening on ``host``:``port`` from this machine."""
    if host in ("0.0.0.0", "", "::"):
        # Listening everywhere: loopback reaches it; the wildcard itself is not an address.
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only).")] = 1,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """Run the API with uvicorn (migrating the database first).

    In development, links in mail to data subjects point at this --host and --port unless
    DSR_PUBLIC_URL says otherwise; production requires DSR_PUBLIC_URL.
    """
    if not os.environ.get("DSR_PUBLIC_URL") and os.environ.get("DSR_ENV", "development") != (
        "production"
    ):
        # Set in the environment, so uvicorn's workers (new processes) read it too.
        os.environ["DSR_PUBLIC_URL"] = local_url(host, port)
        get_settings.cache_clear()
    settings = load_settings()
    configure_logging(settings.log_format)
    if migrate_first:
        migrate_database(settings)
    if settings.demo:
        demo_path = Path(settings.demo_crm_path)
        if demo_path.exists():
            typer.echo(f"Demo CRM: {demo_path} (kept; `dsr demo create` rebuilds it)")
        else:
            ensure_demo_database(settings)
            typer.echo(f"Demo CRM created at {demo_path} (try {JANE_DOE['email']})")
    base = local_url(host, port)
    if settings.env == "development" and not settings.admin_client_id:
        # A fresh secret each start: the development admin is printed, never stored in clear.
        secret = new_client_secret()
        if asyncio.run(_rekey_development_admin(settings, secret)):
            typer.echo(
                f"\nDSR service on {base}  (API docs: {base}/docs)\n"
                f"Development admin client: client_id={DEV_ADMIN_ID} client_secret={secret}\n"
                f"Get a token:\n  curl -s -X POST {base}/v1/oauth/token "
                f"-u {DEV_ADMIN_ID}:{secret} -d grant_type=client_credentials\n"
            )
        else:
            typer.echo(
                f"\nDSR service on {base}  (API docs: {base}/docs)\n"
                f"The development admin client {DEV_ADMIN_ID} was disabled or deleted and stays "
                "so; use another admin (`dsr clients create --role admin`, `dsr clients enable`)."
                "\n"
            )
        password = asyncio.run(_rekey_development_person(settings))
        if password is not None:
            typer.echo(
                f"Console: {base}/console  person: email={DEV_ADMIN_EMAIL} password={password}\n"
            )
        else:
            typer.echo(
                f"Console: {base}/console  (the development person {DEV_ADMIN_EMAIL} was "
                "disabled and stays so; `dsr users create --email ... --role admin`)\n"
            )
    else:
        typer.echo(f"\nDSR service on {base}  (API docs: {base}/docs, console: {base}/console)\n")
    with metrics_folder(workers):
        uvicorn.run(
            "app.main:app",
            host=host,
            port=port,
            workers=workers,
            # The service's access line (app.access) carries the request id; uvicorn's would not.
            access_log=False,
            proxy_headers=False,
            log_level="info",
            # Applied in every worker process: uvicorn's own lines in the service's format.
            log_config=logging_config(settings.log_format),
        )


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_folder(workers: int) -> Iterator[None]:
    """With several workers, a fresh folder for prometheus-client's multiprocess files (so
    /metrics adds up every worker's), removed when the server stops. Set before uvicorn
    starts its workers: each reads it when it imports prometheus-client."""
    if workers <= 1:
        yield
        return
    # Inside the operator's folder if they chose one, never reusing an earlier run's files.
    folder = tempfile.mkdtemp(prefix="dsr-metrics-", dir=os.environ.get(MULTIPROC_ENV) or None)
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous


if __name__ == "__main__":
    cli()
