"""What the API answers when something fails: never a 200 for a change that was not stored, never a
bare 500 text for input the service can judge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.api.conftest import Api, token_checker, write_dag


@contextmanager
def failing_commits() -> Iterator[None]:
    """Every commit from here on fails, as a locked or lost database makes it."""

    def refuse(session: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("database is locked"))

    event.listen(Session, "before_commit", refuse)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", refuse)


def test_a_change_whose_commit_fails_is_a_500_problem_not_a_200(api: Api) -> None:
    from minisched.api.app import create_app

    write_dag(api.env)
    with TestClient(create_app(token_checker(ttl=600)), raise_server_exceptions=False) as client:
        # The token is checked (and remembered) before commits start failing.
        assert client.get("/api/v1/dags/demo", headers=api.headers("op")).status_code == 200
        with failing_commits():
            response = client.patch("/api/v1/dags/demo", json={"is_paused": True}, headers=api.headers("op"))
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 500 and "log" in response.json()["detail"]
    assert api.get("/dags/demo").json()["is_paused"] is False  # type: ignore[attr-defined]


def test_a_logical_date_whose_interval_starts_before_year_1_is_a_400(api: Api) -> None:
    api.env.write_dag(
        "daily.py",
        "from datetime import datetime, timezone\n"
        "from minisched import DAG, EmptyOperator\n"
        "with DAG('daily', schedule='@daily', start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):\n"
        "    EmptyOperator(task_id='t')\n",
    )
    assert api.env.run_cli("dags", "list").exit_code == 0
    body = {"logical_date": "0001-01-01T00:00:00Z"}
    response = api.client.post("/api/v1/dags/daily/dagRuns", json=body, headers=api.headers("op"))
    assert response.status_code == 400, response.text
    assert "too early" in response.json()["detail"]
    assert api.get("/dags/daily/dagRuns").json()["total_entries"] == 0  # type: ignore[attr-defined]


def test_a_body_sent_as_another_content_type_is_a_400_that_says_to_send_json(api: Api) -> None:
    write_dag(api.env)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**api.headers("op"), **({"Content-Type": content_type} if content_type else {})}
        response = api.client.patch("/api/v1/dags/demo", content=b'{"is_paused": true}', headers=headers)
        assert response.status_code == 400, (content_type, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert "must be JSON" in detail and "Content-Type: application/json" in detail, detail
        assert (content_type or "without a Content-Type") in detail
    merge = {**api.headers("op"), "Content-Type": "application/merge-patch+json"}
    accepted = api.client.patch("/api/v1/dags/demo", content=b'{"is_paused": true}', headers=merge)
    assert accepted.status_code == 200, accepted.text
