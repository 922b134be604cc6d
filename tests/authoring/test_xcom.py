"""XCom in DAG files: task results as arguments, multiple_outputs, and the checks of pushed values."""

from __future__ import annotations

import math

import pytest

from minisched import DAG, PythonOperator, task
from minisched.authoring.xcom import TryXCom, XComArg
from minisched.exceptions import XComError


def test_results_and_keys_become_upstream_edges_and_cannot_be_iterated() -> None:
    with DAG("graph", schedule=None) as dag:

        @task
        def produce() -> dict[str, int]:
            return {"a": 1}

        @task
        def plain() -> int:
            return 1

        first, second = produce(), plain()
        python = PythonOperator(task_id="py", python_callable=print, op_args=[second.output])
        consume = task(lambda a, b, c: None).override(task_id="consume")(
            first["a"], [second], {"k": python.output}
        )
    assert dag.get_task("consume").upstream_task_ids == {"produce", "plain", "py"}
    assert python.upstream_task_ids == {"plain"}
    assert isinstance(first["a"], XComArg) and first["a"].key == "a"
    assert dag.get_task("produce").multiple_outputs is True  # from the dict return annotation
    assert dag.get_task("plain").multiple_outputs is False
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(consume)


def test_pushes_are_checked_at_once() -> None:
    ti = TryXCom("d", "r", "t", max_size=100)
    ti.xcom_push("ok", {"rows": [1, 2], "when": None})
    assert ti.pushed == {"ok": {"rows": [1, 2], "when": None}}
    assert ti.xcom_pull(key="ok") == {"rows": [1, 2], "when": None}  # its own push, no database
    with pytest.raises(XComError, match=r"not JSON-serializable \(type object\)"):
        ti.xcom_push("bad", object())
    with pytest.raises(XComError, match="NaN or infinity"):
        ti.xcom_push("nan", math.nan)
    with pytest.raises(XComError, match="over the 100-byte cap"):
        ti.xcom_push("big", "x" * 200)
    with pytest.raises(XComError, match="key '' is invalid"):
        ti.xcom_push("", 1)
    with pytest.raises(XComError, match="multiple_outputs=True but returned list"):
        ti.push_result([1], multiple_outputs=True)
    ti.push_result(None, multiple_outputs=False)
    assert "return_value" not in ti.pushed
    ti.push_result({"a": 1}, multiple_outputs=True)
    assert ti.pushed["a"] == 1 and ti.pushed["return_value"] == {"a": 1}


def test_a_retry_never_reads_its_own_earlier_trys_values_from_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scheduler deletes them when it records the retry's start, which may commit after the
    retry's code has begun: until then the table still holds them (here, every task's value is)."""
    from minisched.db import xcom as table

    asked: list[list[str]] = []

    def stale_table(dag_id: str, run_id: str, task_ids: list[str], key: str) -> dict[str, str]:
        asked.append(list(task_ids))
        return dict.fromkeys(task_ids, "old")

    monkeypatch.setattr(table, "read_values", stale_table)
    retry = TryXCom("d", "r", "t")
    assert retry.xcom_pull(key="partial") is None
    assert retry.xcom_pull(task_ids=["t", "up"], key="partial") == [None, "old"]
    retry.xcom_push("partial", "new")
    assert retry.xcom_pull(task_ids=["t", "up"], key="partial") == ["new", "old"]
    assert asked == [["up"], ["up"]]
    assert TryXCom("d", "r", "downstream").xcom_pull(task_ids="t", key="partial") == "old"
