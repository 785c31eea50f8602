"""The board (``/console``): its tabs, the traffic light, the people who own cases, and one page
of requests, most urgent first (``app.requests.service.list_by_urgency``)."""

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts.service import is_user_id
from app.auth.scopes import Principal
from app.console.deps import ConsoleUser, render
from app.core.config import Settings
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.enums import RequestStatus, RequestType
from app.models import DsrRequest, User
from app.requests import legal_clock, service

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50


# ---------------------------------------------------------------- the traffic light


class Light(StrEnum):
    """What the badge says (never colour alone); the value is also its CSS modifier."""

    OVERDUE = "Overdue"
    RED = "Red"
    AMBER = "Amber"
    GREEN = "Green"
    NO_CLOCK = "No clock"

    @property
    def css(self) -> str:
        return "light-" + self.name.lower().replace("_", "-")


RED_UNDER_DAYS = 5
AMBER_UNDER_DAYS = 10


def traffic_light(days_left: int | None, overdue: bool) -> Light:
    """Overdue when past due; Red under 5 days left, Amber under 10, else Green; No clock
    when the request has no running deadline (not verified yet, waiting for a fee, closed)."""
    if overdue:
        return Light.OVERDUE
    if days_left is None:
        return Light.NO_CLOCK
    if days_left < 0:
        return Light.OVERDUE
    if days_left < RED_UNDER_DAYS:
        return Light.RED
    if days_left < AMBER_UNDER_DAYS:
        return Light.AMBER
    return Light.GREEN


# ---------------------------------------------------------------- tabs and filters


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    filters: service.RequestFilters


TABS: tuple[Tab, ...] = (
    Tab("overdue", "Overdue", service.RequestFilters(overdue=True)),
    Tab("due-soon", "Due within 7 days", service.RequestFilters(due_soon=True)),
    Tab(
        "awaiting-verification",
        "Awaiting verification",
        service.RequestFilters(status=RequestStatus.AWAITING_VERIFICATION.value),
    ),
    Tab("paused", "Paused", service.RequestFilters(status=RequestStatus.PAUSED.value)),
    Tab("unassigned", "Unassigned", service.RequestFilters(unassigned=True, open_only=True)),
    Tab("mine", "Mine", service.RequestFilters(assignee="me", open_only=True)),
    Tab("open", "All open", service.RequestFilters(open_only=True)),
)
TABS_BY_KEY = {tab.key: tab for tab in TABS}
DEFAULT_TAB = "open"


@dataclass(frozen=True)
class BoardQuery:
    """The board as asked for in the query string, every value checked against its choices."""

    tab: str = DEFAULT_TAB
    type: str = ""
    status: str = ""
    assignee: str = ""
    duplicates: bool = False
    page: int = 1

    @classmethod
    def parse(
        cls,
        *,
        tab: str | None,
        type: str | None,
        status: str | None,
        assignee: str | None,
        duplicates: str | None,
        page: str | None,
    ) -> "BoardQuery":
        """Unknown values are ignored (a hand-edited URL shows the default, never an error)."""
        try:
            number = max(1, min(int(page or 1), 10_000))
        except ValueError:
            number = 1
        return cls(
            tab=tab if tab in TABS_BY_KEY else DEFAULT_TAB,
            type=type if type in set(RequestType) else "",
            status=status if status in set(RequestStatus) else "",
            assignee=(assignee or "")[:64],
            duplicates=duplicates in ("1", "true", "on"),
            page=number,
        )

    def filters(self, principal: Principal) -> service.RequestFilters:
        base = TABS_BY_KEY[self.tab].filters
        assignee = base.assignee
        if self.assignee:
            assignee = self.assignee
        if assignee == "me":
            assignee = principal.client_id
        status = base.status
        open_only = base.open_only
        if self.status:
            # A status chosen in the form narrows the tab (a closed status replaces "open").
            status = "__none__" if status and status != self.status else self.status
            open_only = None
        return replace(
            base,
            type=self.type or None,
            status=status,
            assignee=assignee,
            duplicates=True if self.duplicates else None,
            open_only=open_only,
        )

    def link(self, **changes: object) -> str:
        """This board's URL with ``changes`` (the page goes back to 1 unless given)."""
        values = {**self.__dict__, "page": 1, **changes}
        params = [("tab", values["tab"])]
        for name in ("type", "status", "assignee"):
            if values[name]:
                params.append((name, str(values[name])))
        if values["duplicates"]:
            params.append(("duplicates", "1"))
        if values["page"] != 1:
            params.append(("page", str(values["page"])))
        return "/console?" + urlencode(params)


# ---------------------------------------------------------------- people


async def people_names(session: AsyncSession) -> dict[str, str]:
    """Every console account's name by user id (to name owners and actors)."""
    rows = await session.execute(select(col(User.id), col(User.name)))
    return {user_id: name for user_id, name in rows.all()}


async def assignable_people(session: AsyncSession) -> list[tuple[str, str]]:
    """(user id, name) of the active officers and admins, by name: who may own a case."""
    rows = await session.execute(
        select(col(User.id), col(User.name), col(User.email))
        .where(col(User.disabled_at).is_(None))
        .order_by(col(User.name), col(User.email))
    )
    return [(user_id, name or email) for user_id, name, email in rows.all()]


def display_name(actor: str | None, names: dict[str, str]) -> str:
    """A person's name for a user id; other actors (API clients, "system") as they are."""
    if not actor:
        return "nobody"
    if is_user_id(actor):
        return names.get(actor, actor)
    return actor


# ---------------------------------------------------------------- rows


@dataclass(frozen=True)
class BoardRow:
    id: uuid.UUID
    short_id: str
    external_ref: str | None
    type: str
    status: str
    received_on: date
    due_date: date | None
    days_left: int | None
    light: Light
    owner: str
    duplicate_of: uuid.UUID | None


async def board_page(
    session: AsyncSession,
    *,
    principal: Principal,
    query: BoardQuery,
    settings: Settings,
    now: datetime,
) -> tuple[list[BoardRow], bool]:
    """One page of the board (``PAGE_SIZE`` rows) and whether another follows."""
    requests, more = await service.list_by_urgency(
        session,
        principal=principal,
        filters=query.filters(principal),
        settings=settings,
        now=now,
        limit=PAGE_SIZE,
        offset=(query.page - 1) * PAGE_SIZE,
    )
    names = await people_names(session)
    return [_row(dsr, settings, now, names) for dsr in requests], more


def _row(dsr: DsrRequest, settings: Settings, now: datetime, names: dict[str, str]) -> BoardRow:
    deadline = legal_clock.deadline_view(dsr, settings, now)
    return BoardRow(
        id=dsr.id,
        short_id=str(dsr.id)[:8],
        external_ref=dsr.external_ref,
        type=dsr.type,
        status=dsr.status,
        received_on=legal_clock.today(settings, dsr.received_at),
        due_date=deadline.due_date,
        days_left=deadline.days_left,
        light=traffic_light(deadline.days_left, deadline.overdue),
        owner=display_name(dsr.assignee, names) if dsr.assignee else "nobody",
        duplicate_of=dsr.possible_duplicate_of,
    )


# ---------------------------------------------------------------- the page


@router.get("")
async def board_view(
    request: Request,
    person: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    tab: str | None = None,
    type: str | None = None,
    status: str | None = None,
    assignee: str | None = None,
    duplicates: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """The board: requests by tab and filters, the most urgent first."""
    query = BoardQuery.parse(
        tab=tab, type=type, status=status, assignee=assignee, duplicates=duplicates, page=page
    )
    rows, more = await board_page(
        session, principal=person.principal, query=query, settings=settings, now=now
    )
    return render(
        request,
        "board.html",
        {
            "rows": rows,
            "more": more,
            "query": query,
            "tabs": TABS,
            "types": [value.value for value in RequestType],
            "statuses": [value.value for value in RequestStatus],
            "people": await assignable_people(session),
        },
        person=person,
    )
