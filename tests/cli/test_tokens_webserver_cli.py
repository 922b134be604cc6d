"""`tokens create|list|revoke` and `webserver`: the token is printed once, only its hash is stored,
and the server refuses a non-loopback address while no token exists."""

from __future__ import annotations

import json
import socket
import time

import httpx
from sqlalchemy import select

from tests.conftest import Env


def test_tokens_create_list_revoke(env: Env) -> None:
    from minisched.db.session import create_session
    from minisched.models import ApiToken

    created = env.run_cli("tokens", "create", "--name", "ci-bot", "--role", "op")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert token.startswith("msk_") and len(token) > 40
    with create_session() as session:
        stored = session.execute(select(ApiToken.name, ApiToken.role, ApiToken.token_hash)).all()
    assert [(name, role) for name, role, _ in stored] == [("ci-bot", "op")]
    assert token not in stored[0][2]
    listed = json.loads(env.run_cli("tokens", "list", "--output", "json").stdout)
    assert [(row["name"], row["role"]) for row in listed] == [("ci-bot", "op")]
    assert token not in env.run_cli("tokens", "list").stdout
    twice = env.run_cli("tokens", "create", "--name", "ci-bot", "--role", "op")
    assert twice.exit_code == 1 and "exists" in twice.stderr
    bad_role = env.run_cli("tokens", "create", "--name", "x", "--role", "root")
    assert bad_role.exit_code == 2
    assert env.run_cli("tokens", "revoke", "ci-bot").exit_code == 0
    missing = env.run_cli("tokens", "revoke", "ci-bot")
    assert missing.exit_code == 1 and "no token named 'ci-bot'" in missing.stderr


def test_webserver_refuses_a_public_address_without_tokens(env: Env) -> None:
    result = env.run_cli("webserver", "--host", "0.0.0.0", "--port", "1")
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0 while no API token exists" in result.stderr
    assert "minisched tokens create" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_webserver_serves_the_api_and_the_ui(env: Env) -> None:
    token = env.run_cli("tokens", "create", "--name", "me", "--role", "viewer").stdout.split()[0]
    port = _free_port()
    server = env.popen("webserver", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/api/v1/health", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "the webserver did not start within 60 s"
                time.sleep(0.2)
        assert health.json()["metadatabase"]["status"] == "healthy"
        assert httpx.get(f"{base}/api/v1/dags").status_code == 401
        dags = httpx.get(f"{base}/api/v1/dags", headers={"Authorization": f"Bearer {token}"})
        assert dags.json() == {"dags": [], "total_entries": 0}
        assert httpx.get(f"{base}/").status_code == 303
        assert ".toggle" in httpx.get(f"{base}/static/style.css").text
    finally:
        server.terminate()
        server.wait(30)
