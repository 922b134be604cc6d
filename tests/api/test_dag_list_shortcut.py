"""`GET /api/v1/dags` is answered ahead of FastAPI (api/shortcut.py) for plain requests: the answer
must be the FastAPI route's, byte for byte, and anything unusual must go on to the route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import make_tokens, token_checker
from tests.api.test_dag_list import VARIED
from tests.conftest import Env

#: (query string, whether the shortcut answers it)
QUERIES = [
    ("", True),
    ("?limit=2", True),
    ("?limit=2&offset=1", True),
    ("?limit=1000&offset=0", True),
    ("?order_by=-dag_id", True),
    ("?order_by=next_dagrun&limit=3", True),
    ("?order_by=-last_parsed_time&offset=1", True),
    ("?order_by=is_paused", True),
    ("?paused=true", True),
    ("?paused=false&only_active=false", True),
    ("?only_active=false&order_by=fileloc", True),
    ("?dag_id_pattern=_dag", True),
    ("?dag_id_pattern=%25", True),
    ("?dag_id_pattern=a%20b", True),
    ("?offset=2", True),
    ("?offset=50", True),  # past the end: the count on its own
    ("?paused=true&offset=1", True),
    ("?tags=a", False),  # not a parameter of the route: FastAPI ignores it, the shortcut leaves it
    ("?limit=0", False),
    ("?limit=1001", False),
    ("?limit=abc", False),
    ("?limit=-1", False),
    ("?offset=99999999999", False),
    ("?order_by=colour", False),
    ("?order_by=--dag_id", False),
    ("?paused=yes", False),
    ("?paused=maybe", False),
    ("?limit=2&limit=3", False),
    ("?dag_id_pattern=", False),
]


@pytest.fixture
def clients(env: Env) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    """A client of the app with the shortcut, one without, on one database with the VARIED DAGs."""
    from minisched.api.app import create_app

    env.write_dag("varied.py", VARIED)
    assert env.run_cli("dags", "list").exit_code == 0
    tokens = make_tokens()
    with (
        TestClient(create_app(token_checker())) as fast,
        TestClient(create_app(token_checker(), shortcut=False)) as routed,
    ):
        yield fast, routed, tokens


def answered(client: TestClient) -> int:
    return int(client.app.state.dag_list_shortcut.answered)  # type: ignore[attr-defined]


def same_answer(
    fast: TestClient, routed: TestClient, path: str, headers: dict[str, str], method: str = "GET"
) -> tuple[int, bool]:
    """Both apps' answers to one request, compared whole; returns the status and whether the
    shortcut answered."""
    before = answered(fast)
    mine = fast.request(method, path, headers=headers, follow_redirects=False)
    theirs = routed.request(method, path, headers=headers, follow_redirects=False)
    assert (mine.status_code, mine.headers.items(), mine.content) == (
        theirs.status_code,
        theirs.headers.items(),
        theirs.content,
    ), path
    return mine.status_code, answered(fast) == before + 1


def test_the_shortcut_answers_what_the_route_answers(
    clients: tuple[TestClient, TestClient, dict[str, str]],
) -> None:
    fast, routed, tokens = clients
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    for query, taken in QUERIES:
        status, shortcut = same_answer(fast, routed, f"/api/v1/dags{query}", viewer)
        assert shortcut is taken, query
        assert (status == 200) if taken else True, query
    assert same_answer(fast, routed, "/api/v1/dags?order_by=colour", viewer)[0] == 400
    assert same_answer(fast, routed, "/api/v1/dags?limit=0", viewer)[0] == 400
    assert same_answer(fast, routed, "/api/v1/dags?paused=yes", viewer) == (200, False)


def test_who_asks_and_how(clients: tuple[TestClient, TestClient, dict[str, str]]) -> None:
    fast, routed, tokens = clients
    path = "/api/v1/dags?limit=3"
    cases = [
        ({}, 401, False),
        ({"Authorization": "Bearer msk_not-a-token"}, 401, False),
        ({"Authorization": f"Basic {tokens['viewer']}"}, 401, False),
        ({"Authorization": "Bearer "}, 401, False),
        ({"Authorization": f"Bearer {tokens['viewer']}"}, 200, True),
        ({"Authorization": f"bearer  {tokens['op']} "}, 200, True),
        ({"Authorization": f"Bearer {tokens['admin']}"}, 200, True),
    ]
    for headers, status, taken in cases:
        assert same_answer(fast, routed, path, headers) == (status, taken), headers
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    for method in ("POST", "HEAD", "DELETE"):
        assert same_answer(fast, routed, path, viewer, method)[1] is False
    assert same_answer(fast, routed, "/api/v1/dags/", viewer)[1] is False


def test_a_revoked_token_is_refused_by_the_shortcut_at_the_next_request(
    clients: tuple[TestClient, TestClient, dict[str, str]],
) -> None:
    """With a token checker that remembers nothing (ttl 0, as the API tests run; the server's
    remembers a token 2 s, `service.tokens.TokenChecker`)."""
    from minisched.db.session import create_session
    from minisched.service.tokens import revoke_token

    fast, _routed, tokens = clients
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert fast.get("/api/v1/dags", headers=headers).status_code == 200
    with create_session() as session:
        revoke_token("viewer-user", session=session)
    before = answered(fast)
    refused = fast.get("/api/v1/dags", headers=headers)
    assert refused.status_code == 401 and answered(fast) == before
