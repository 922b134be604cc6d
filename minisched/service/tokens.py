"""API tokens: created once (the token is shown once, its SHA-256 stored), listed, revoked, checked.

Tokens are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from minisched.models.api_token import ApiToken
from minisched.models.types import utcnow
from minisched.service.actor import ROLES
from minisched.service.errors import Conflict, InvalidInput, NotFound

PREFIX = "msk_"
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,250}$")
#: last_used_at is written at most this often per token, so checking a token is a read.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    #: Part of the stored hash: a UI session names it with the row id, so a revoked token's row id,
    #: reused by a later token (SQLite reuses the highest row id), lets no old cookie in.
    fingerprint: str = ""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, role: str, *, session: Session) -> tuple[TokenInfo, str]:
    """A new token for `name` with `role`; returns it in clear text (the only time it exists)."""
    if not NAME.match(name):
        raise InvalidInput(f"invalid token name {name!r}: use letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise InvalidInput(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"a token named {name!r} exists; revoke it first or pick another name")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, role=role, token_hash=hash_token(token), created_at=utcnow())
    session.add(row)
    session.flush()
    return _info(row), token


def list_tokens(*, session: Session) -> list[TokenInfo]:
    return [_info(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.name))]


def revoke_token(name: str, *, session: Session) -> None:
    result = session.execute(delete(ApiToken).where(ApiToken.name == name))
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"no token named {name!r}; `minisched tokens list` shows them")


def any_token_exists(*, session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(ApiToken)))


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.id, row.name, row.role, row.created_at, row.last_used_at, fingerprint=row.token_hash[:32]
    )


class TokenChecker:
    """Token -> its row for each request, remembered a few seconds so a busy API reads the table rarely.

    A revoked token stops working within `ttl` seconds.
    """

    def __init__(self, open_session: Callable[[], Session], ttl: float = 2.0) -> None:
        self._open_session = open_session
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str | int, tuple[float, TokenInfo | None]] = {}

    def check(self, token: str) -> TokenInfo | None:
        """The token's row, looked up by its hash."""
        digest = hash_token(token)
        return self._cached(digest, lambda: self._load(ApiToken.token_hash == digest))

    def remembered(self, token: str) -> tuple[TokenInfo | None] | None:
        """What `check` answered for `token` within the last `ttl` seconds, without a query; None
        when it has to be looked up."""
        cached = self._cache.get(hash_token(token))
        if cached is None or time.monotonic() - cached[0] >= self._ttl:
            return None
        return (cached[1],)

    def by_id(self, token_id: int) -> TokenInfo | None:
        """The row of a UI session's token (gone once the token is revoked)."""
        return self._cached(token_id, lambda: self._load(ApiToken.id == token_id))

    def _cached(self, key: str | int, load: Callable[[], TokenInfo | None]) -> TokenInfo | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        info = load()
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, info)
        return info

    def _load(self, condition: ColumnElement[bool]) -> TokenInfo | None:
        session = self._open_session()
        try:
            row = session.scalar(select(ApiToken).where(condition))
            if row is None:
                return None
            now = utcnow()
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
                session.execute(
                    update(ApiToken)
                    .where(ApiToken.id == row.id)
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
            info = _info(row)
            session.commit()
            return info
        finally:
            session.close()
