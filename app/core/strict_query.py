"""Lists refuse query parameters they do not declare: a misspelt filter (``?overdu=true``)
would otherwise be ignored and the caller handed everything, as if it had matched.

Give a list route a parameter ``_strict: StrictQuery`` after its principal (so a caller
without a valid token still gets 401 first); the route's own query parameters, and its
dependencies', are the accepted names, so nothing is listed twice.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _declared(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


def accepted_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters ``route`` and its dependencies declare, by the name callers use
    (the alias). Walked per call: a handful of nodes, and routes are not hashable."""
    return frozenset(_declared(route.dependant))


async def refuse_unknown_query(request: Request) -> None:
    """422 naming each undeclared parameter; its value is never read back."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = accepted_query_names(route)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in accepted]
    if not unknown:
        return
    allowed = ", ".join(sorted(accepted)) or "none"
    raise RequestValidationError(
        [
            {
                "loc": ("query", name),
                "msg": f"unknown query parameter; this list accepts: {allowed}",
                "type": "extra_forbidden",
            }
            for name in unknown
        ]
    )


StrictQuery = Annotated[None, Depends(refuse_unknown_query)]
