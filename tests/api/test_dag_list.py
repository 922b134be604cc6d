"""GET /dags answers ready-made JSON (issue 13's 500 requests/s): it must still be exactly what the
declared response model gives, and cost the same statements whatever the page size."""

from __future__ import annotations

import textwrap
from typing import Any

from tests.api.conftest import Api

VARIED = textwrap.dedent(
    """
    from datetime import datetime, timedelta, timezone
    from minisched import DAG, BashOperator

    common = dict(start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False)
    with DAG("cron_dag", schedule="*/5 * * * *", tags=["b", "a"], description="every five minutes",
             default_args={"owner": "ann, bob"}, **common):
        BashOperator(task_id="t", bash_command="true")
    with DAG("delta_dag", schedule=timedelta(hours=1, microseconds=5), max_active_runs=3, **common):
        BashOperator(task_id="t", bash_command="true")
    with DAG("a_b", schedule=None, is_paused_upon_creation=True, **common):
        BashOperator(task_id="t", bash_command="true")
    with DAG("axb", schedule="@daily", max_active_tasks=4, **common):
        BashOperator(task_id="t", bash_command="true")
    """
)


def _as_model_serializes(document: dict[str, Any]) -> dict[str, Any]:
    """`document` validated by the declared model, then serialized as FastAPI would."""
    from minisched.api import schemas

    data = dict(document)
    if data["schedule_interval"] is not None:
        interval = dict(data["schedule_interval"])
        interval["type"] = interval.pop("__type")
        data["schedule_interval"] = interval
    return schemas.DAG.model_validate(data).model_dump(mode="json", by_alias=True)


def test_the_dag_list_is_what_the_response_model_serializes(api: Api) -> None:
    api.env.write_dag("varied.py", VARIED)
    assert api.env.run_cli("dags", "list").exit_code == 0
    response = api.get("/dags")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["total_entries"] == 4 and list(body) == ["dags", "total_entries"]
    for document in body["dags"]:
        expected = _as_model_serializes(document)
        assert list(document) == list(expected) and document == expected
    by_id = {d["dag_id"]: d for d in body["dags"]}
    cron, delta = by_id["cron_dag"], by_id["delta_dag"]
    assert cron["schedule_interval"] == {
        "__type": "CronExpression",
        "value": "*/5 * * * *",
        "days": None,
        "seconds": None,
        "microseconds": None,
    }
    assert cron["tags"] == [{"name": "b"}, {"name": "a"}] and cron["owners"] == ["ann", "bob"]
    assert cron["description"] == "every five minutes" and cron["next_dagrun"].endswith("Z")
    assert delta["schedule_interval"]["__type"] == "TimeDelta"
    assert (delta["schedule_interval"]["seconds"], delta["schedule_interval"]["microseconds"]) == (3600, 5)
    assert delta["max_active_runs"] == 3 and by_id["axb"]["max_active_tasks"] == 4
    assert by_id["a_b"]["is_paused"] is True and by_id["a_b"]["schedule_interval"] is None
    single = api.get("/dags/cron_dag").json()  # type: ignore[attr-defined]
    assert single == cron


def test_the_pattern_and_filters_match_literally(api: Api) -> None:
    api.env.write_dag("varied.py", VARIED)
    assert api.env.run_cli("dags", "list").exit_code == 0

    def ids(query: str) -> list[str]:
        body = api.get(f"/dags?{query}").json()  # type: ignore[attr-defined]
        return [d["dag_id"] for d in body["dags"]]

    assert ids("dag_id_pattern=a_b") == ["a_b"]
    assert ids("dag_id_pattern=%25") == []
    assert ids("dag_id_pattern=_dag&order_by=-dag_id") == ["delta_dag", "cron_dag"]
    assert ids("paused=true") == ["a_b"]
    assert ids("paused=false&limit=1&offset=1") == ["cron_dag"]


def test_a_page_of_dags_costs_the_same_statements_for_one_or_many(api: Api) -> None:
    from benchmarks.common import counting
    from benchmarks.web_seed import seed_dags
    from minisched.db.session import create_session, get_engine

    with create_session() as session:
        seed_dags(1, session=session)
    assert api.get("/dags").status_code == 200  # type: ignore[attr-defined]
    with counting(get_engine()) as few:
        assert api.get("/dags").status_code == 200  # type: ignore[attr-defined]
    with create_session() as session:
        seed_dags(150, session=session, prefix="more_")
    with counting(get_engine()) as many:
        body = api.get("/dags").json()  # type: ignore[attr-defined]
    assert len(body["dags"]) == 100 and body["total_entries"] == 151
    assert few.statements == many.statements


def test_the_list_shows_each_change_to_a_dag_at_once(api: Api) -> None:
    """The list keeps each row's JSON by the row's values: a changed row must never show its old JSON."""
    api.env.write_dag("varied.py", VARIED)
    assert api.env.run_cli("dags", "list").exit_code == 0

    def cron_dag() -> dict[str, Any]:
        body = api.get("/dags?dag_id_pattern=cron").json()  # type: ignore[attr-defined]
        return body["dags"][0]  # type: ignore[no-any-return]

    before = cron_dag()
    assert before["is_paused"] is False and before["owners"] == ["ann", "bob"]
    patched = api.client.patch("/api/v1/dags/cron_dag", json={"is_paused": True}, headers=api.headers("op"))
    assert patched.status_code == 200
    assert cron_dag() == {**before, "is_paused": True}
    api.env.write_dag("varied.py", VARIED.replace('tags=["b", "a"]', 'tags=["c"]').replace("ann, bob", "cy"))
    assert api.env.run_cli("dags", "list").exit_code == 0
    after = cron_dag()
    assert (after["tags"], after["owners"], after["is_paused"]) == ([{"name": "c"}], ["cy"], True)
