"""`GET /api/v1/dags` without FastAPI's routing, dependency solving and parameter validation.

The API's busiest read (issue 13: 500 requests/s on one worker): FastAPI's share of it was ~30% of
the request's CPU. This layer answers the plain requests (a known token, each parameter given once
with a plainly valid value) with the route's own code (`routes_dags.dag_collection`, `deps.identify`);
anything else (no token, a refused token, a bad or unusual parameter, another method, an error)
goes on to the FastAPI route, the one place that words errors. The route stays declared, so the
OpenAPI spec is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from minisched.api.app import API_PREFIX
from minisched.api.deps import bearer_token_of, identify
from minisched.api.routes_dags import dag_collection
from minisched.service.dags import ORDER_COLUMNS
from minisched.service.paging import MAX_LIMIT, MAX_OFFSET, Page

PATH = f"{API_PREFIX}/dags"
#: The route's query parameters (`routes_dags.get_dags`).
PARAMETERS = frozenset({"limit", "offset", "order_by", "paused", "dag_id_pattern", "only_active"})
BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class DagListQuery:
    page: Page
    paused: bool | None
    dag_id_pattern: str | None
    only_active: bool


@dataclass
class ShortcutStats:
    """How many requests the shortcut answered (the rest went on to FastAPI)."""

    answered: int = 0


class DagListShortcut:
    """ASGI middleware (inside FastAPI's error handling) answering the plain `GET /api/v1/dags`."""

    def __init__(self, app: ASGIApp, stats: ShortcutStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            query = plain_query(scope["query_string"])
            if query is not None and await self._allowed(scope):
                try:
                    response = await dag_collection(
                        query.page, query.paused, query.dag_id_pattern, query.only_active
                    )
                except Exception:  # nothing was sent yet: the route answers, and words the error
                    pass
                else:
                    self.stats.answered += 1
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _allowed(scope: Scope) -> bool:
        """Whether the request's token may read DAGs (role viewer, as the route's `Viewer`)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = bearer_token_of(value.decode("latin-1"))
                break
        else:
            return False
        if token is None:
            return False
        actor = await identify(scope["app"].state.tokens, token)
        return actor is not None and actor.may("viewer")


def plain_query(query_string: bytes) -> DagListQuery | None:
    """The parameters of a `GET /dags` query string when each is known, given once, and read the
    same by FastAPI (digits in range, `true`/`false`, an order it accepts); None otherwise."""
    if not query_string:
        return DagListQuery(Page(), None, None, True)
    # As Starlette reads a query string (`QueryParams`).
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    given = dict(pairs)
    if len(given) != len(pairs) or not given.keys() <= PARAMETERS or "" in given.values():
        return None
    limit = _number(given.get("limit", "100"), 1, MAX_LIMIT)
    offset = _number(given.get("offset", "0"), 0, MAX_OFFSET)
    order_by = given.get("order_by")
    paused = BOOLEANS.get(given.get("paused", ""))
    only_active = BOOLEANS.get(given.get("only_active", "true"))
    if (
        limit is None
        or offset is None
        or (order_by is not None and order_by.removeprefix("-") not in ORDER_COLUMNS)
        or (paused is None and "paused" in given)
        or only_active is None
    ):
        return None
    return DagListQuery(Page(limit, offset, order_by), paused, given.get("dag_id_pattern"), only_active)


def _number(text: str, low: int, high: int) -> int | None:
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        return None
    value = int(text)
    return value if low <= value <= high else None
