"""What the UI answers to forms it refuses and to links it did not make: 400/403/404 pages that say
why, no change stored, and no text taken from a URL shown as if the server said it."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import write_dag
from tests.secrets.conftest import new_key, use_keys
from tests.www.conftest import ORIGIN, Browser, ui_forms, ui_post_routes


def _audit_rows() -> int:
    from sqlalchemy import func, select

    from minisched.db.session import create_session
    from minisched.models import Log

    with create_session() as session:
        return int(session.scalar(select(func.count()).select_from(Log)) or 0)


def test_every_form_refuses_a_post_without_csrf_from_elsewhere_or_below_its_role(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed from the routers like the audit test: a new form must be added here too."""
    use_keys(browser.env, monkeypatch, new_key())
    write_dag(browser.env)
    assert browser.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    run_id = "manual__2024-03-01T00:00:00+00:00"
    forms = ui_forms(run_id, pool="default_pool")
    posts = ui_post_routes()
    assert len(posts) == len(forms)
    browser.login("viewer")
    viewer_csrf = browser.csrf()
    browser.client.post("/logout", data={"csrf_token": viewer_csrf}, headers=ORIGIN)
    browser.login("admin")
    csrf = browser.csrf()
    before = _audit_rows()
    for path, data in forms:
        attempts = {
            "no CSRF token": browser.client.post(path, data=data, headers=ORIGIN),
            "a stale CSRF token": browser.client.post(
                path, data={**data, "csrf_token": viewer_csrf}, headers=ORIGIN
            ),
            "a foreign Origin": browser.client.post(
                path, data={**data, "csrf_token": csrf}, headers={"Origin": "http://evil.example"}
            ),
            "no Origin or Referer": browser.client.post(path, data={**data, "csrf_token": csrf}),
        }
        for what, response in attempts.items():
            assert response.status_code == 403, (path, what, response.status_code)
            assert "text/html" in response.headers["content-type"]
    assert _audit_rows() == before
    browser.client.post("/logout", data={"csrf_token": csrf}, headers=ORIGIN)
    browser.login("viewer")
    for path, data in forms:
        refused = browser.post(path, data)
        assert refused.status_code == 403 and "needs" in refused.text, (path, refused.status_code)
    assert _audit_rows() == before


def test_refused_forms_are_400_pages_that_store_nothing(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(browser.env, monkeypatch, new_key())
    write_dag(browser.env)
    browser.login("admin")
    refusals = [
        ("/pools", {"name": "p", "slots": "-3"}, "use 0 to 2147483647"),
        # Bigger than the column holds on PostgreSQL; SQLite stored it, and the API could not show it.
        ("/pools", {"name": "p", "slots": str(2**31)}, "use 0 to 2147483647"),
        ("/pools", {"name": "bad name!", "slots": "1"}, "invalid pool name"),
        ("/connections", {"conn_id": "c", "conn_type": "http", "extra": "{nope"}, "not valid JSON"),
    ]
    for path, data, message in refusals:
        refused = browser.post(path, data)
        assert refused.status_code == 400, (path, data, refused.status_code)
        assert message in refused.text and 'class="error-box"' in refused.text
    headers = {"Authorization": f"Bearer {browser.tokens['admin']}"}
    assert browser.client.get("/api/v1/pools/p", headers=headers).status_code == 404
    assert browser.client.get("/api/v1/connections/c", headers=headers).status_code == 404
    unknown = browser.post("/dags/nope/trigger", {"conf": "{}"})
    assert unknown.status_code == 404 and "nope" in unknown.text


@pytest.mark.parametrize("path", ["/pools", "/connections", "/variables"])
def test_no_page_shows_an_error_message_taken_from_its_url(
    browser: Browser, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """A link could otherwise make the page say anything ("your session expired, log in at ...")."""
    use_keys(browser.env, monkeypatch, new_key())
    browser.login("admin")
    page = browser.client.get(path, params={"error": "Session expired: log in at evil.example"})
    assert page.status_code == 200 and "evil.example" not in page.text


def test_the_audit_pager_keeps_filters_that_need_quoting(browser: Browser) -> None:
    write_dag(browser.env)
    headers = {"Authorization": f"Bearer {browser.tokens['op']}"}
    for paused in [True, False] * 26:
        response = browser.client.patch("/api/v1/dags/demo", json={"is_paused": paused}, headers=headers)
        assert response.status_code == 200
    browser.login()
    page = browser.client.get("/audit", params={"dag_id": "demo", "event": "api_pause&x=1"}).text
    assert "0 in all" in page
    page = browser.client.get("/audit", params={"dag_id": "demo"}).text
    older = re.findall(r'href="(/audit\?[^"]*offset=50)"', page)
    assert older, page
    # Past the end of a filter that matches nothing, the "newer" link still carries the filter whole.
    tricky = browser.client.get("/audit", params={"dag_id": "de&mo #1", "offset": "50"}).text
    assert 'href="/audit?dag_id=de%26mo%20%231&amp;event=&amp;offset=0"' in tricky, tricky


def test_a_refused_connection_form_comes_back_with_what_was_typed_but_not_the_password(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(browser.env, monkeypatch, new_key())
    browser.login("admin")
    typed = {
        "conn_id": "warehouse",
        "conn_type": "postgres",
        "host": "db.example",
        "login": "etl",
        "password": "s3cret-pw",
        "port": "5432",
        "schema": "sales",
        "extra": '{"sslmode": "require"',
    }
    refused = browser.post("/connections", typed)
    assert refused.status_code == 400 and 'class="error-box"' in refused.text
    for name in ("conn_id", "conn_type", "host", "login", "port", "schema"):
        assert re.search(rf'name="{name}" value="{re.escape(typed[name])}"', refused.text), name
    assert 'value="{&#34;sslmode&#34;: &#34;require&#34;"' in refused.text
    assert "s3cret-pw" not in refused.text
    assert 'id="password-note"' in refused.text
