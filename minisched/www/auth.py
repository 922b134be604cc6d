"""UI sessions: log in with an API token, get a signed HttpOnly SameSite=Strict cookie; every form
post carries the session's CSRF token and must come from our own origin.

The cookie holds the token's row id and a fingerprint of its stored hash (never the token), checked
against the `api_token` table on each request so a revoked token's session ends, and a CSRF value,
signed with HMAC-SHA256 under MINISCHED_WEBSERVER_SECRET_KEY (a random key per process when unset: a
restart logs everyone out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from minisched.exceptions import MinischedError
from minisched.service.actor import Actor
from minisched.service.tokens import TokenInfo

COOKIE = "minisched_session"
MAX_AGE_SECONDS = 12 * 3600
SECRET_ENV = "MINISCHED_WEBSERVER_SECRET_KEY"


class LoginRequired(MinischedError):
    """No valid session cookie: the UI sends the browser to the login page."""


class Forbidden(MinischedError):
    """Logged in, but the role or the request's origin does not allow this."""


@dataclass(frozen=True)
class UiSession:
    token_id: int
    fingerprint: str
    csrf: str
    issued_at: int


def secret_key() -> bytes:
    configured = os.environ.get(SECRET_ENV)
    return configured.encode() if configured else _PROCESS_KEY


_PROCESS_KEY = secrets.token_bytes(32)


def sign(session: UiSession, key: bytes) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps(
            {
                "tid": session.token_id,
                "fp": session.fingerprint,
                "csrf": session.csrf,
                "iat": session.issued_at,
            }
        ).encode()
    ).decode()
    mac = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def unsign(value: str, key: bytes, *, now: float | None = None) -> UiSession | None:
    payload, _, mac = value.rpartition(".")
    expected = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    if not payload or not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        session = UiSession(int(data["tid"]), str(data["fp"]), str(data["csrf"]), int(data["iat"]))
    except (ValueError, KeyError, TypeError):
        return None
    if (now if now is not None else time.time()) - session.issued_at > MAX_AGE_SECONDS:
        return None
    return session


def new_session(token: TokenInfo) -> UiSession:
    return UiSession(token.id, token.fingerprint, secrets.token_urlsafe(24), int(time.time()))


def current_session(request: Request) -> UiSession | None:
    value = request.cookies.get(COOKIE)
    return unsign(value, secret_key()) if value else None


def check_origin(request: Request) -> None:
    """A form post must come from a page of this server (Origin, else Referer, names our host)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        raise Forbidden("the request does not say where it comes from (no Origin or Referer header)")
    parts = urlsplit(source)
    if parts.netloc != request.headers.get("host", ""):
        raise Forbidden(f"form posts from {parts.scheme}://{parts.netloc} are not accepted")


def check_csrf(request: Request, session: UiSession, submitted: str | None) -> None:
    check_origin(request)
    if not submitted or not hmac.compare_digest(submitted, session.csrf):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and try again")


def actor_of(request: Request) -> tuple[Actor, UiSession]:
    """The logged-in user, or LoginRequired (also when the token was revoked meanwhile)."""
    session = current_session(request)
    if session is None:
        raise LoginRequired("log in with an API token")
    info = request.app.state.tokens.by_id(session.token_id)
    # The row id alone is not enough: a token created after a revocation may get the same id.
    if (
        info is None
        or not session.fingerprint
        or not hmac.compare_digest(info.fingerprint, session.fingerprint)
    ):
        raise LoginRequired("your token was revoked or your session expired; log in again")
    return Actor(info.name, info.role, "ui"), session
