"""The web UI through HTTP: login, every page, and every action with its audit row."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.api.conftest import write_dag
from tests.secrets.conftest import new_key, use_keys
from tests.www.conftest import ORIGIN, Browser, ui_forms, ui_post_routes


def _events(event: str) -> list[tuple[str | None, str | None]]:
    from minisched.db.session import create_session
    from minisched.models import Log

    with create_session() as session:
        return [
            tuple(row) for row in session.execute(select(Log.owner, Log.dag_id).where(Log.event == event))
        ]


def _run(browser: Browser, fail_load: bool = False) -> str:
    write_dag(browser.env, load_command="echo bad; exit 1" if fail_load else "echo loading")
    assert browser.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0 or fail_load
    return "manual__2024-03-01T00:00:00+00:00"


def test_pages_need_a_login(browser: Browser) -> None:
    response = browser.client.get("/dags/demo?tab=graph")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdags%2Fdemo%3Ftab%3Dgraph"
    bad = browser.client.post("/login", data={"token": "msk_nope"}, headers=ORIGIN)
    assert bad.status_code == 401 and "unknown or was revoked" in bad.text
    cross_site = browser.client.post(
        "/login", data={"token": browser.tokens["op"]}, headers={"Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403
    good = browser.client.post(
        "/login", data={"token": browser.tokens["op"], "next": "/pools"}, headers=ORIGIN
    )
    assert good.status_code == 303 and good.headers["location"] == "/pools"
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and browser.tokens["op"] not in cookie
    assert browser.client.get("/").status_code == 200


def test_dag_list_toggles_pause_with_csrf_and_origin(browser: Browser) -> None:
    write_dag(browser.env)
    browser.env.write_dag("broken.py", "def broken(:\n")
    browser.env.run_cli("dags", "list")
    browser.login()
    page = browser.client.get("/").text
    assert 'data-dag-id="demo"' in page and "1 DAG file failed to import" in page
    assert page.count('name="csrf_token"') == 2
    no_token = browser.client.post("/dags/demo/pause", data={"is_paused": "true"}, headers=ORIGIN)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    csrf = browser.csrf()
    other_site = browser.client.post(
        "/dags/demo/pause",
        data={"is_paused": "true", "csrf_token": csrf},
        headers={"Origin": "http://evil.example"},
    )
    assert other_site.status_code == 403
    done = browser.post("/dags/demo/pause", {"is_paused": "true", "next": "/"})
    assert done.status_code == 303
    assert "unpause demo" in browser.client.get("/").text
    assert _events("ui_pause") == [("op-user", "demo")]


def test_viewer_sees_but_cannot_change(browser: Browser) -> None:
    write_dag(browser.env)
    browser.login("viewer")
    page = browser.client.get("/").text
    assert "Trigger" not in page
    refused = browser.post("/dags/demo/pause", {"is_paused": "true"})
    assert refused.status_code == 403 and "needs op" in refused.text


def test_trigger_form_validates_and_shows_errors(browser: Browser) -> None:
    write_dag(browser.env)
    browser.login()
    assert 'name="conf"' in browser.client.get("/dags/demo/trigger").text
    bad = browser.post("/dags/demo/trigger", {"conf": "{nope", "logical_date": "tomorrow"})
    assert bad.status_code == 400
    assert "conf is not valid JSON" in bad.text and "invalid logical date" in bad.text and "{nope" in bad.text
    not_object = browser.post("/dags/demo/trigger", {"conf": "[1, 2]"})
    assert not_object.status_code == 400 and "must be a JSON object" in not_object.text
    ok = browser.post("/dags/demo/trigger", {"conf": '{"table": "users"}', "logical_date": "2024-02-01"})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/dags/demo/runs/manual__2024-02-01T00%3A00%3A00%2B00%3A00"
    run_page = browser.client.get(ok.headers["location"]).text
    assert "&#34;table&#34;: &#34;users&#34;" in run_page and 'data-refresh="' in run_page
    again = browser.post("/dags/demo/trigger", {"conf": "{}", "logical_date": "2024-02-01"})
    assert again.status_code == 400 and "already has a run" in again.text
    assert _events("ui_trigger") == [("op-user", "demo")]


def test_grid_graph_details_code(browser: Browser) -> None:
    run_id = _run(browser, fail_load=True)
    browser.login()
    grid = browser.client.get("/dags/demo").text
    assert f'data-run-id="{run_id}" data-state="failed"' in grid
    assert re.search(r'data-task-id="load" data-run-id="[^"]+" data-state="failed"', grid)
    assert re.search(r'data-task-id="report" data-run-id="[^"]+" data-state="upstream_failed"', grid)
    assert "data-refresh" not in grid
    graph = browser.client.get("/dags/demo?tab=graph").text
    assert "<svg" in graph and 'data-task-id="extract" data-state="success"' in graph
    assert graph.index('data-task-id="extract"') < graph.index('data-task-id="report"')
    details = browser.client.get("/dags/demo?tab=details").text
    assert "BashOperator" in details and "all_success" in details
    code = browser.client.get("/dags/demo?tab=code").text
    assert "PythonOperator(task_id=&#34;extract&#34;" in code


def test_run_page_task_log_clear_and_mark(browser: Browser) -> None:
    run_id = _run(browser, fail_load=True)
    browser.login()
    run_path = "/dags/demo/runs/manual__2024-03-01T00%3A00%3A00%2B00%3A00"
    run_page = browser.client.get(run_path).text
    assert 'class="gantt"' in run_page and 'data-task-id="load" data-state="failed"' in run_page
    ti_page = browser.client.get(f"{run_path}/tasks/load").text
    assert 'data-chunk-url="' in ti_page
    chunk = browser.client.get(f"{run_path}/tasks/load/logs/1/chunk").json()
    assert "bad" in chunk["content"] and chunk["running"] is False and chunk["more"] is False
    raw = browser.client.get(f"{run_path}/tasks/load/logs/1/raw")
    assert "bad" in raw.text and "attachment" in raw.headers["content-disposition"]
    preview = browser.client.get(
        "/dags/demo/clear", params={"run_id": run_id, "task_id": "load", "downstream": "true"}
    ).text
    assert "Clear 2 task instances" in preview
    cleared = browser.post("/dags/demo/clear", {"run_id": run_id, "task_id": "load", "downstream": "true"})
    assert cleared.status_code == 303 and "Cleared%202%20task%20instances" in cleared.headers["location"]
    assert 'data-task-id="load" data-state="none"' in browser.client.get(run_path).text
    marked = browser.post(f"{run_path}/tasks/load/mark", {"state": "success"})
    assert marked.status_code == 303
    assert 'data-task-id="load" data-state="success"' in browser.client.get(run_path).text
    run_marked = browser.post(f"{run_path}/mark", {"state": "failed"})
    assert run_marked.status_code == 303
    assert _events("ui_clear") == [("op-user", "demo")]
    assert _events("ui_mark_success") == [("op-user", "demo")]
    assert _events("ui_mark_run_failed") == [("op-user", "demo")]


def test_pools_import_errors_audit(browser: Browser) -> None:
    browser.env.write_dag("broken.py", "import nothing_here\n")
    browser.env.run_cli("dags", "list")
    browser.login()
    assert browser.post("/pools", {"name": "db", "slots": "4", "description": "warehouse"}).status_code == 303
    pools = browser.client.get("/pools").text
    assert 'data-pool="db"' in pools and "warehouse" in pools
    refused = browser.post("/pools", {"name": "bad name!", "slots": "1"})
    assert "invalid pool name" in refused.text
    assert browser.post("/pools/db/delete", {}).status_code == 303
    assert 'data-pool="db"' not in browser.client.get("/pools").text
    errors = browser.client.get("/import-errors").text
    assert "broken.py" in errors and "line 1" in errors and "nothing_here" in errors
    audit = browser.client.get("/audit?event=ui_pool_set").text
    assert "op-user" in audit and "warehouse" in audit


def test_unknown_pages_are_html(browser: Browser) -> None:
    browser.login()
    missing = browser.client.get("/dags/nope")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "nope" in missing.text


def test_connections_and_variables_pages_are_for_admins(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(browser.env, monkeypatch, new_key())
    browser.login("op")
    assert browser.client.get("/connections").status_code == 403
    assert "Connections" not in browser.client.get("/").text
    browser.client.post("/logout", data={"csrf_token": browser.csrf()}, headers=ORIGIN)
    browser.login("admin")
    added = browser.post(
        "/connections",
        {"conn_id": "wh", "conn_type": "postgres", "host": "db", "password": "pw-123", "port": "5432"},
    )
    assert added.status_code == 303
    page = browser.client.get("/connections").text
    assert 'data-conn-id="wh"' in page and "pw-123" not in page
    assert browser.post("/variables", {"key": "api_key", "value": "k-999"}).status_code == 303
    assert browser.post("/variables", {"key": "region", "value": "eu"}).status_code == 303
    assert browser.post("/variables", {"key": "region", "value": "us"}).status_code == 303
    variables = browser.client.get("/variables").text
    assert "k-999" not in variables and "***" in variables and "<code>us</code>" in variables
    assert browser.post("/variables/region/delete", {}).status_code == 303
    assert browser.post("/connections/wh/delete", {}).status_code == 303
    assert 'data-conn-id="wh"' not in browser.client.get("/connections").text
    assert [owner for owner, _ in _events("ui_variable_set")] == ["admin-user"] * 3


def test_no_page_loads_anything_from_another_site(browser: Browser) -> None:
    """No CDN: every script, stylesheet and image comes from this server."""
    write_dag(browser.env)
    browser.login("admin")
    for path in ("/", "/dags/demo", "/pools", "/import-errors", "/audit", "/login", "/api/v1/openapi.json"):
        response = browser.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", response.text)
        assert not external, (path, external)
    for path in ("/api/v1/ui", "/docs", "/redoc", "/api/v1/docs"):
        assert browser.client.get(path).status_code == 404, path


@pytest.mark.parametrize("offset", ["-1", "2147483648", "9223372036854775808", "99999999999999999999", "x"])
def test_list_pages_refuse_an_offset_out_of_range_with_a_page(browser: Browser, offset: str) -> None:
    write_dag(browser.env)
    browser.login()
    for path in ("/", "/dags/demo", "/import-errors", "/audit"):
        response = browser.client.get(path, params={"offset": offset})
        assert response.status_code == 400, (path, response.status_code)
        assert "text/html" in response.headers["content-type"] and "offset" in response.text
    assert browser.client.get("/", params={"offset": "2147483647"}).status_code == 200


def test_the_log_view_opens_on_the_end_of_a_big_log(browser: Browser) -> None:
    """A log over 1 MB: the view's first page is its last lines, says how much comes before, and the
    API pages through it by byte offset."""
    line = "x" * 79
    write_dag(browser.env, load_command=f"yes {line} | head -n 20000; echo the-last-line")
    assert browser.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    browser.login()
    base = "/dags/demo/runs/manual__2024-03-01T00%3A00%3A00%2B00%3A00/tasks/load/logs/1"
    size = len(browser.client.get(f"{base}/raw").content)
    assert size > 1_600_000
    first = browser.client.get(f"{base}/chunk").json()
    assert "the-last-line" in first["content"] and first["more"] is False
    assert first["content"].startswith(line) and len(first["content"]) <= 512 * 1024
    assert first["skipped"] == size - len(first["content"].encode()) > 1_000_000
    after = browser.client.get(f"{base}/chunk", params={"token": first["continuation_token"]}).json()
    assert (after["content"], after["skipped"]) == ("", 0)
    api = "/api/v1/dags/demo/dagRuns/manual__2024-03-01T00:00:00+00:00/taskInstances/load/logs/1"
    headers = {"Authorization": f"Bearer {browser.tokens['viewer']}"}
    page = browser.client.get(api, params={"max_bytes": 100_000}, headers=headers).json()
    assert len(page["content"]) == 100_000
    following = browser.client.get(
        api, params={"token": page["continuation_token"], "max_bytes": 100_000}, headers=headers
    ).json()
    assert following["content"] == browser.client.get(f"{base}/raw").text[100_000:200_000]


def test_every_form_writes_an_audit_row_naming_the_token(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each UI form that changes something leaves an audit row owned by the logged-in token's name;
    a test lists the forms from the app's routes, so a new form without a row here fails."""
    from sqlalchemy import func

    from minisched.db.session import create_session
    from minisched.models import Log

    use_keys(browser.env, monkeypatch, new_key())
    run_id = _run(browser)
    forms = ui_forms(run_id, pool="p1")
    routes = [route.path for route in ui_post_routes()]
    assert len(routes) == len(forms), sorted(routes)

    def rows() -> int:
        with create_session() as session:
            return int(session.scalar(select(func.count()).where(Log.owner == "admin-user")) or 0)

    browser.login("admin")
    silent = []
    for path, data in forms:
        before = rows()
        response = browser.post(path, data)
        assert response.status_code == 303, (path, response.text[:300])
        if rows() <= before:
            silent.append(path)
    assert silent == []


def test_variables_form_creates_edits_and_deletes_any_key(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys may hold '/', '?', '%' or spaces: the Edit link and the Delete form still name that key."""
    use_keys(browser.env, monkeypatch, new_key())
    browser.login("admin")
    key = "team/a?b 50%#x"
    assert browser.post("/variables", {"key": key, "value": "one", "description": "first"}).status_code == 303
    listing = browser.client.get("/variables").text
    edit = re.search(r'href="(/variables\?edit=[^"]+)"', listing)
    delete = re.search(r'action="(/variables/[^"]+/delete)"', listing)
    assert edit and delete, listing
    form = browser.client.get(edit.group(1).replace("&amp;", "&")).text
    assert 'value="team/a?b 50%#x"' in form and ">one</textarea>" in form and 'value="first"' in form
    assert browser.post("/variables", {"key": key, "value": "two", "description": "first"}).status_code == 303
    assert "<code>two</code>" in browser.client.get("/variables").text
    # Changes need the session's CSRF token and our own Origin.
    no_csrf = browser.client.post(delete.group(1), data={}, headers=ORIGIN)
    foreign = browser.client.post(
        delete.group(1), data={"csrf_token": browser.csrf()}, headers={"Origin": "http://evil.example"}
    )
    assert (no_csrf.status_code, foreign.status_code) == (403, 403)
    assert browser.post(delete.group(1), {}).status_code == 303
    assert "No variables yet." in browser.client.get("/variables").text
    assert _events("ui_variable_delete") == [("admin-user", None)]


def test_the_grid_shows_25_runs_a_page_with_older(browser: Browser) -> None:
    write_dag(browser.env)
    headers = {"Authorization": f"Bearer {browser.tokens['op']}"}
    for day in range(1, 27):
        body = {"logical_date": f"2024-01-{day:02d}T00:00:00Z"}
        assert browser.client.post("/api/v1/dags/demo/dagRuns", json=body, headers=headers).status_code == 200
    browser.login("viewer")
    newest = browser.client.get("/dags/demo").text
    runs = set(re.findall(r'data-run-id="([^"]+)"', newest))
    assert len(runs) == 25 and "manual__2024-01-26T00:00:00+00:00" in runs
    assert "manual__2024-01-01T00:00:00+00:00" not in runs and "26 in all" in newest
    older = re.search(r'href="([^"]*offset=25)"[^>]*>older', newest)
    assert older, newest
    oldest = browser.client.get(older.group(1).replace("&amp;", "&")).text
    assert set(re.findall(r'data-run-id="([^"]+)"', oldest)) == {"manual__2024-01-01T00:00:00+00:00"}
    assert "newer" in oldest and ">older" not in oldest
