"""What every UI handler needs: who is logged in, the checks before a change, the base context."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import RedirectResponse

from minisched.service.actor import Actor
from minisched.service.paging import MAX_OFFSET
from minisched.www.auth import Forbidden, UiSession, actor_of, check_csrf

#: A list page's `offset`: out of range is a 400 page, not a value the database cannot take.
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def viewer(request: Request) -> dict[str, Any]:
    """The context every page template gets (who is logged in, the CSRF token); LoginRequired if nobody."""
    actor, session = actor_of(request)
    return context(actor, session)


def context(actor: Actor, session: UiSession) -> dict[str, Any]:
    return {"actor": actor, "csrf": session.csrf}


def for_change(request: Request, csrf_token: str | None, role: str = "op") -> Actor:
    """A form post that changes something: a session, our own origin, its CSRF token, and the role."""
    actor, session = actor_of(request)
    check_csrf(request, session, csrf_token)
    if not actor.may(role):
        raise Forbidden(f"{actor.name} has role {actor.role}; this needs {role} or above")
    return actor


def back_to(target: str | None, fallback: str) -> RedirectResponse:
    """303 to a local path only (never to another site, whatever the form said)."""
    path = target if target and target.startswith("/") and not target.startswith("//") else fallback
    return RedirectResponse(path, status_code=303)
