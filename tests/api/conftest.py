"""An API client per test, on both backends, with a token of each role."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Env
from tests.secrets.conftest import new_key, use_keys

if TYPE_CHECKING:
    from fastapi import FastAPI

    from minisched.service.tokens import TokenChecker

DAG_SOURCE = textwrap.dedent(
    """
    from datetime import datetime, timezone
    from minisched import DAG, BashOperator, PythonOperator

    def print_conf(conf, **_):
        print("extracting", conf)
        return {{"rows": 3}}

    with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
             tags=["demo"], default_args={{"owner": "data"}}) as dag:
        extract = PythonOperator(task_id="extract", python_callable=print_conf)
        load = BashOperator(task_id="load", bash_command="{load_command}")
        report = BashOperator(task_id="report", bash_command="echo done")
        extract >> load >> report
    """
)


def write_dag(env: Env, dag_id: str = "demo", load_command: str = "echo loading") -> None:
    env.write_dag(f"{dag_id}.py", DAG_SOURCE.format(dag_id=dag_id, load_command=load_command))
    result = env.run_cli("dags", "list")
    assert result.exit_code == 0, result.output


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]
    env: Env

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str = "viewer", **kwargs: object) -> object:
        return self.client.get(f"/api/v1{path}", headers=self.headers(role), **kwargs)


def make_tokens() -> dict[str, str]:
    from minisched.db.session import create_session
    from minisched.service.tokens import create_token

    with create_session() as session:
        return {
            role: create_token(f"{role}-user", role, session=session)[1] for role in ("viewer", "op", "admin")
        }


def token_checker(ttl: float = 0.0) -> TokenChecker:
    """The table-backed token checker; ttl 0 makes a revocation visible at once."""
    from minisched.db.session import new_session
    from minisched.service.tokens import TokenChecker

    return TokenChecker(new_session, ttl=ttl)


@cache
def _shared_app() -> FastAPI:
    from minisched.api.app import create_app

    return create_app()


def app_with(tokens: TokenChecker) -> FastAPI:
    """The app of this test process, answering with `tokens`: building one costs about a second
    (FastAPI copies every route into it), and it keeps no state but its token checker."""
    app = _shared_app()
    app.state.tokens = tokens
    return app


@pytest.fixture
def api(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """A client of the API alone, with a Fernet key configured (connections and variables need one)."""
    from minisched import masking

    use_keys(env, monkeypatch, new_key())
    tokens = make_tokens()
    with TestClient(app_with(token_checker()), raise_server_exceptions=True) as client:
        yield Api(client, tokens, env)
    masking.forget_all()
