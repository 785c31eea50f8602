"""Roles, the scopes each grants, and the authenticated caller (``Principal``)."""

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    INTEGRATION = "integration"
    OFFICER = "officer"
    ADMIN = "admin"


class Scope(StrEnum):
    REQUESTS_SUBMIT = "requests:submit"
    REQUESTS_READ = "requests:read"
    REQUESTS_READ_ALL = "requests:read_all"
    REQUESTS_MANAGE = "requests:manage"
    CLIENTS_MANAGE = "clients:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    SUPPRESSIONS_CHECK = "suppressions:check"
    SUPPRESSIONS_MANAGE = "suppressions:manage"
    SOURCES_MANAGE = "sources:manage"


SCOPE_DESCRIPTIONS = {
    Scope.REQUESTS_SUBMIT: "Submit and cancel requests",
    Scope.REQUESTS_READ: "Read requests (integrations: only their own)",
    Scope.REQUESTS_READ_ALL: "Read every request",
    Scope.REQUESTS_MANAGE: "Act on requests: verify, pause, extend, reject, complete",
    Scope.CLIENTS_MANAGE: "Manage API clients",
    Scope.WEBHOOKS_MANAGE: "Manage webhook subscriptions (admins: every client's)",
    Scope.SUPPRESSIONS_CHECK: "Check whether a person is on the suppression list",
    Scope.SUPPRESSIONS_MANAGE: "List, add and remove suppression list entries",
    Scope.SOURCES_MANAGE: "Register, test and remove data sources (admins)",
}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.INTEGRATION: frozenset(
        {
            Scope.REQUESTS_SUBMIT,
            Scope.REQUESTS_READ,
            Scope.WEBHOOKS_MANAGE,
            Scope.SUPPRESSIONS_CHECK,
        }
    ),
    Role.OFFICER: frozenset(
        {
            Scope.REQUESTS_SUBMIT,
            Scope.REQUESTS_READ,
            Scope.REQUESTS_READ_ALL,
            Scope.REQUESTS_MANAGE,
            Scope.WEBHOOKS_MANAGE,
            Scope.SUPPRESSIONS_CHECK,
            Scope.SUPPRESSIONS_MANAGE,
        }
    ),
    Role.ADMIN: frozenset(Scope),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    client_id: str
    role: Role
    scopes: frozenset[str]
    # The client's revocation mark when the token was issued (see tokens.revocation_mark).
    revocation_mark: int = 0

    @property
    def sees_all_requests(self) -> bool:
        return Scope.REQUESTS_READ_ALL in self.scopes
