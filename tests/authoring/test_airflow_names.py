"""Airflow's everyday names, importable from minisched: @dag, chain, cross_downstream, Param, ..."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

import minisched
from minisched import DAG, EmptyOperator, Param, TriggerRule, cross_downstream, dag, get_current_context, task
from minisched.authoring.params import NO_DEFAULT
from minisched.exceptions import DagDefinitionError, ParamValidationError

START = datetime(2024, 1, 1, tzinfo=UTC)
AIRFLOW_NAMES = [
    "DAG",
    "dag",
    "task",
    "task_group",
    "TaskGroup",
    "BaseOperator",
    "PythonOperator",
    "BashOperator",
    "EmptyOperator",
    "BranchPythonOperator",
    "ShortCircuitOperator",
    "chain",
    "cross_downstream",
    "get_current_context",
    "TriggerRule",
    "Param",
    "SkipTask",
    "FailTask",
    "Variable",
    "Connection",
    "BaseHook",
]


def test_every_airflow_name_is_exported_without_importing_sqlalchemy() -> None:
    names = ", ".join(AIRFLOW_NAMES)
    code = f"import sys; from minisched import {names}; print('sqlalchemy' in sys.modules)"
    code += "; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert set(AIRFLOW_NAMES) <= set(minisched.__all__)


def test_dag_decorator_builds_the_dag_when_called() -> None:
    @dag(schedule="@daily", start_date=START, tags=["x"])
    def nightly() -> None:
        """Loads the night's files."""

        @task
        def load() -> None: ...

        EmptyOperator(task_id="start") >> load()

    built = nightly()
    assert isinstance(built, DAG) and built.dag_id == "nightly"
    assert built.doc_md == "Loads the night's files."
    assert built.get_task("start").downstream_task_ids == {"load"}
    assert dag("named", schedule=None)(lambda: None)().dag_id == "named"


def test_dag_function_parameters_become_params_resolved_in_the_run() -> None:
    from minisched.authoring import task_context
    from minisched.authoring.templating import rendered_copy

    @dag(schedule=None, start_date=START, params={"other": 1})
    def with_params(rows: int = 10, region: object = Param("eu", enum=["eu", "us"])) -> None:
        @task
        def report(rows: int, region: str) -> None: ...

        report(rows, region=region)

    built = with_params(rows=20)
    assert built.params == {"other": 1, "rows": 20, "region": "eu"}
    op = built.get_task("report")

    def rendered(conf: dict[str, object] | None) -> tuple[object, object]:
        context = task_context(
            op,
            run_id="r",
            logical_date=START,
            data_interval_start=START,
            data_interval_end=START,
            try_number=1,
            conf=conf,
        )
        copy = rendered_copy(op, context)
        return copy.op_args[0], copy.op_kwargs["region"]  # type: ignore[attr-defined]

    assert rendered(None) == (20, "eu")
    assert rendered({"rows": 5, "region": "us"}) == (5, "us")
    with pytest.raises(DagDefinitionError, match=r"missing a required argument: 'email'.*give the parameter"):

        @dag(schedule=None, start_date=START)
        def needs_email(email: str) -> None: ...

        needs_email()


def test_cross_downstream_wires_every_pair() -> None:
    with DAG("cross", schedule=None, start_date=START) as built:
        a, b, c, d = (EmptyOperator(task_id=n) for n in "abcd")
        cross_downstream([a, b], [c, d])
    assert {(t.task_id, x) for t in built.tasks for x in t.downstream_task_ids} == {
        ("a", "c"),
        ("a", "d"),
        ("b", "c"),
        ("b", "d"),
    }


def test_trigger_rule_enum_is_accepted_as_an_argument() -> None:
    with DAG("rules", schedule=None, start_date=START):
        join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED)
    assert join.trigger_rule == TriggerRule.NONE_FAILED == "none_failed"


def test_get_current_context_outside_a_task_says_so() -> None:
    with pytest.raises(RuntimeError, match="outside a running task"):
        get_current_context()


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        (Param(5, type="integer", minimum=3), 2, "less than the minimum of 3"),
        (Param(5, type="integer"), "five", "'five' is not of type 'integer'"),
        (Param("a", enum=["a", "b"]), "c", "'c' is not one of \\['a', 'b'\\]"),
        (Param("ab", type="string", minLength=2, maxLength=3), "abcd", "longer than 3 characters"),
        (Param("x", type="string", pattern="^[a-z]+$"), "X1", "does not match"),
        (Param(None, type=["null", "integer"]), 1.5, "not of type 'null' or 'integer'"),
        (Param([1], type="array", items={"type": "integer"}), [1, "2"], r"param 'param'\[1\]: '2' is not"),
        (Param({}, type="object", required=["k"]), {"j": 1}, "required key\\(s\\) 'k' missing"),
        (Param("2024-01-01", type="string", format="date"), "2024-13-01", "not a valid 'date'"),
        (Param(type="integer"), NO_DEFAULT, "param 'param' is required"),
    ],
)
def test_param_schema_violations_name_the_param_and_the_rule(
    param: Param, value: object, message: str
) -> None:
    with pytest.raises(ParamValidationError, match=message):
        param.resolve(value)


def test_param_values_that_fit_resolve_to_themselves() -> None:
    assert Param(5, type="integer", minimum=3).resolve(3) == 3
    assert Param(None, type=["null", "string"]).resolve() is None
    assert Param(1.0, type="number", exclusiveMaximum=2).resolve(1.5) == 1.5
    assert Param({"k": 1}, type="object", properties={"k": {"type": "integer"}}).resolve() == {"k": 1}


def test_dag_params_hold_defaults_and_a_scheduled_dag_needs_valid_ones() -> None:
    params = {"n": Param(5, type="integer"), "plain": "x"}
    built = DAG("p", schedule=None, start_date=START, params=params)
    assert built.params == {"n": 5, "plain": "x"}
    with pytest.raises(
        DagDefinitionError, match=r"param 'n': 'five' is not of type 'integer'.*schedule=None"
    ):
        DAG("bad", schedule="@daily", start_date=START, params={"n": Param("five", type="integer")})
    manual = DAG("manual", schedule=None, start_date=START, params={"n": Param(type="integer")})
    assert manual.params == {}
