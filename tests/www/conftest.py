"""A logged-in browser-like client for the UI (cookie session, CSRF token, same-origin posts)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import app_with, make_tokens, token_checker
from tests.conftest import Env

ORIGIN = {"Origin": "http://testserver"}


@dataclass
class Browser:
    client: TestClient
    tokens: dict[str, str]
    env: Env

    def login(self, role: str = "op") -> None:
        response = self.client.post("/login", data={"token": self.tokens[role], "next": "/"}, headers=ORIGIN)
        assert response.status_code == 303, response.text

    def csrf(self, path: str = "/") -> str:
        """The CSRF token the page's forms carry (every form on it must carry the same one)."""
        values = set(re.findall(r'name="csrf_token" value="([^"]*)"', self.client.get(path).text))
        assert len(values) == 1 and "" not in values, f"forms on {path} carry CSRF tokens {values}"
        return values.pop()

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.client.post(path, data={**data, "csrf_token": self.csrf()}, headers=ORIGIN, **kwargs)


@pytest.fixture
def browser(env: Env) -> Iterator[Browser]:
    """Token look-ups are remembered for the whole test, so counted statements are the page's own."""
    tokens = make_tokens()
    with TestClient(app_with(token_checker(ttl=3600)), follow_redirects=False) as client:
        yield Browser(client, tokens, env)


def ui_forms(run_id: str, *, pool: str) -> list[tuple[str, dict[str, str]]]:
    """Every UI form that changes something, with data it would accept (`pool` is the one deleted)."""
    run = "/dags/demo/runs/" + run_id.replace(":", "%3A").replace("+", "%2B")
    return [
        ("/dags/demo/pause", {"is_paused": "true"}),
        ("/dags/demo/trigger", {"conf": '{"a": 1}', "logical_date": ""}),
        ("/dags/demo/clear", {"run_id": run_id, "task_id": "load", "downstream": "true"}),
        ("/pools", {"name": "p1", "slots": "2"}),
        (f"/pools/{pool}/delete", {}),
        (f"{run}/tasks/load/mark", {"state": "success"}),
        (f"{run}/mark", {"state": "failed"}),
        ("/connections", {"conn_id": "c1", "conn_type": "http"}),
        ("/connections/c1/delete", {}),
        ("/variables", {"key": "v1", "value": "1"}),
        ("/variables/v1/delete", {}),
    ]


def ui_post_routes() -> list[Any]:
    """The app's form routes, listed from its routers: a new form must be added to `ui_forms`."""
    from minisched.www import pages_actions, pages_admin, pages_dags, pages_runs, pages_secrets

    modules = (pages_actions, pages_admin, pages_dags, pages_runs, pages_secrets)
    return [
        route
        for module in modules
        for route in module.router.routes
        if "POST" in (getattr(route, "methods", None) or ())
    ]
