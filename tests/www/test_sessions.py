"""A UI session lasts only as long as the token it was opened with."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import make_tokens, token_checker
from tests.conftest import Env
from tests.www.conftest import ORIGIN


def test_a_session_ends_when_its_token_is_revoked_even_if_its_row_id_comes_back(env: Env) -> None:
    from minisched.api.app import create_app
    from minisched.db.session import create_session
    from minisched.service.tokens import create_token, list_tokens, revoke_token

    tokens = make_tokens()
    with TestClient(create_app(token_checker(ttl=0)), follow_redirects=False) as client:
        login = client.post("/login", data={"token": tokens["admin"], "next": "/"}, headers=ORIGIN)
        assert login.status_code == 303
        assert client.get("/").status_code == 200
        with create_session() as session:
            revoked_id = next(t.id for t in list_tokens(session=session) if t.name == "admin-user")
            revoke_token("admin-user", session=session)
        assert client.get("/").status_code == 303
        # A new token may get the revoked one's row id (SQLite reuses the highest): the old cookie
        # still names that id, but not the new token's hash.
        with create_session() as session:
            newcomer, _ = create_token("newcomer", "admin", session=session)
        if env.db.backend == "sqlite":
            assert newcomer.id == revoked_id
        client.cookies.set("minisched_session", login.cookies["minisched_session"])
        again = client.get("/variables")
        assert again.status_code == 303 and again.headers["location"].startswith("/login")
