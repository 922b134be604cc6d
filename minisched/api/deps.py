"""What every API route depends on: a session, the page asked for, and who is calling (Bearer token)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from minisched.service.actor import Actor
from minisched.service.paging import MAX_LIMIT, MAX_OFFSET, Page
from minisched.service.tokens import TokenInfo


class TokenVerifier(Protocol):
    """Checks API tokens (by value) and UI sessions (by the token's row id); `remembered` answers
    from memory only (None: not known lately), so it may run on the event loop."""

    def remembered(self, token: str) -> tuple[TokenInfo | None] | None: ...
    def check(self, token: str) -> TokenInfo | None: ...
    def by_id(self, token_id: int) -> TokenInfo | None: ...


READ_METHODS = frozenset({"GET", "HEAD"})


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back when it raises.

    A GET only reads: its session takes no write lock on SQLite, so reads never queue behind the
    scheduler's writes. `SessionDep` ends it before the response is sent (scope "function"): a 200
    means the change is committed, and a commit that fails is the caller's error, not a lost change.
    """
    from minisched.db.session import create_read_session, create_session

    opened = create_read_session() if request.method in READ_METHODS else create_session()
    with opened as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="The numbers of items to return.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="The number of items to skip.")] = 0,
    order_by: Annotated[
        str | None, Query(description="The name of the field to order by; prefix '-' to reverse.")
    ] = None,
) -> Page:
    return Page(limit=limit, offset=offset, order_by=order_by)


PageDep = Annotated[Page, Depends(get_page)]


def bearer_token(request: Request) -> str | None:
    return bearer_token_of(request.headers.get("authorization", ""))


def bearer_token_of(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value, or None."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def identify(verifier: TokenVerifier, token: str) -> Actor | None:
    """Who `token` belongs to, or None (unknown or revoked). A token seen in the last seconds is
    answered from memory, without a thread or a query."""
    known = verifier.remembered(token)
    info = known[0] if known is not None else await run_in_threadpool(verifier.check, token)
    return Actor(info.name, info.role, "api") if info is not None else None


def require(role: str) -> Callable[[Request], Awaitable[Actor]]:
    """A dependency that lets through callers whose token has `role` or above (viewer < op < admin)."""

    async def check(request: Request) -> Actor:
        token = bearer_token(request)
        if token is None:
            raise HTTPException(
                401,
                "missing token: send `Authorization: Bearer <token>` (`minisched tokens create` makes one)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        actor = await identify(request.app.state.tokens, token)
        if actor is None:
            raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
        if not actor.may(role):
            raise HTTPException(
                403, f"token {actor.name!r} has role {actor.role}; this needs {role} or above"
            )
        return actor

    return check


Viewer = Annotated[Actor, Depends(require("viewer"))]
Op = Annotated[Actor, Depends(require("op"))]
Admin = Annotated[Actor, Depends(require("admin"))]


#: A row id or try number in a path: a positive 32-bit integer (bigger ones cannot exist in the tables).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
