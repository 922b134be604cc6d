"""Running operators: context passing, bash processes, @task functions."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from minisched import DAG, BashOperator, PythonOperator, SkipTask, task
from minisched.authoring import EmptyOperator, build_context, chain, task_context
from minisched.authoring.context import CONTEXT_KEYS
from minisched.authoring.decorators import DecoratedPythonOperator
from minisched.authoring.templating import rendered_copy
from minisched.exceptions import DagDefinitionError, TaskFailure

LOGICAL = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)
END = datetime(2024, 3, 6, 6, 7, 8, tzinfo=UTC)


def context(**overrides: Any) -> dict[str, Any]:
    ctx = build_context(
        "etl", "t", "scheduled__2024-03-05T06:07:08+00:00", LOGICAL, LOGICAL, END, 2, {"k": "v"}
    )
    ctx.update(overrides)
    return ctx


# -- context -------------------------------------------------------------------------------


def test_build_context_has_the_contract_names_and_airflow_extras() -> None:
    ctx = context()
    assert set(CONTEXT_KEYS) <= set(ctx)
    assert ctx["ds"] == "2024-03-05"
    assert ctx["ds_nodash"] == "20240305"
    assert ctx["ts"] == "2024-03-05T06:07:08+00:00"
    assert ctx["ts_nodash"] == "20240305T060708"
    assert ctx["try_number"] == 2
    assert ctx["conf"] == {"k": "v"}
    assert ctx["data_interval_end"] == END
    assert ctx["execution_date"] == ctx["logical_date"] == LOGICAL


def test_ds_is_the_utc_date_of_the_logical_date() -> None:
    from zoneinfo import ZoneInfo

    late_in_tokyo = datetime(2024, 3, 6, 1, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2024-03-05 16:00 UTC
    ctx = build_context("d", "t", "r", late_in_tokyo, late_in_tokyo, late_in_tokyo, 1, None)
    assert ctx["ds"] == "2024-03-05"
    assert ctx["logical_date"].tzinfo is UTC
    assert ctx["conf"] == {}


def test_task_context_takes_dag_id_and_params_overridden_by_conf() -> None:
    with DAG("p", params={"table": "a", "limit": 5}):
        op = EmptyOperator(task_id="e")
    ctx = task_context(
        op,
        run_id="r",
        logical_date=LOGICAL,
        data_interval_start=LOGICAL,
        data_interval_end=END,
        try_number=1,
        conf={"table": "b"},
    )
    assert (ctx["dag_id"], ctx["task_id"]) == ("p", "e")
    assert ctx["params"] == {"table": "b", "limit": 5}


# -- PythonOperator ------------------------------------------------------------------------


def test_callable_gets_only_the_context_names_it_asks_for() -> None:
    calls: list[tuple[Any, ...]] = []

    def f(logical_date: datetime, ds: str, conf: dict[str, str]) -> str:
        calls.append((logical_date, ds, conf))
        return "done"

    op = PythonOperator(task_id="f", python_callable=f)
    assert op.execute(context()) == "done"
    assert calls == [(LOGICAL, "2024-03-05", {"k": "v"})]


def test_callable_with_var_kwargs_gets_the_whole_context() -> None:
    seen: dict[str, Any] = {}

    def f(**kwargs: Any) -> None:
        seen.update(kwargs)

    PythonOperator(task_id="f", python_callable=f).execute(context())
    assert set(CONTEXT_KEYS) <= set(seen)


def test_callable_without_parameters_gets_nothing() -> None:
    assert PythonOperator(task_id="f", python_callable=lambda: 7).execute(context()) == 7


def test_op_args_and_op_kwargs_are_passed_with_context() -> None:
    def f(a: int, b: int, *, scale: int, ds: str, **rest: Any) -> tuple[int, str, bool]:
        return (a + b) * scale, ds, "run_id" in rest

    op = PythonOperator(task_id="f", python_callable=f, op_args=[1, 2], op_kwargs={"scale": 10})
    assert op.execute(context()) == (30, "2024-03-05", True)


def test_positional_op_args_fill_a_parameter_named_like_a_context_key() -> None:
    def f(ds: str, run_id: str) -> tuple[str, str]:
        return ds, run_id

    op = PythonOperator(task_id="f", python_callable=f, op_args=["mine"])
    assert op.execute(context()) == ("mine", "scheduled__2024-03-05T06:07:08+00:00")

    def g(ds: str, **rest: Any) -> str:
        return ds

    assert PythonOperator(task_id="g", python_callable=g, op_args=["x"]).execute(context()) == "x"


def test_op_kwargs_override_context_values() -> None:
    def f(ds: str) -> str:
        return ds

    op = PythonOperator(task_id="f", python_callable=f, op_kwargs={"ds": "override"})
    assert op.execute(context()) == "override"


def test_builtin_callable_without_signature_still_runs() -> None:
    op = PythonOperator(task_id="f", python_callable=dict, op_kwargs={"a": 1})
    assert op.execute(context()) == {"a": 1}


def test_skip_task_propagates_from_the_callable() -> None:
    def skip() -> None:
        raise SkipTask("nothing to do")

    with pytest.raises(SkipTask, match="nothing to do"):
        PythonOperator(task_id="s", python_callable=skip).execute(context())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"python_callable": "print"}, "python_callable must be callable"),
        ({"python_callable": print, "op_args": "abc"}, "op_args must be a list"),
        ({"python_callable": print, "op_kwargs": [1]}, "op_kwargs must be a dict"),
    ],
)
def test_python_operator_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DagDefinitionError, match=f"task 'p': {message}"):
        PythonOperator(task_id="p", **kwargs)


def test_empty_operator_does_nothing() -> None:
    EmptyOperator(task_id="e").execute(context())


def test_base_operator_execute_must_be_implemented() -> None:
    from minisched import BaseOperator

    with pytest.raises(NotImplementedError, match="BaseOperator must implement execute"):
        BaseOperator(task_id="b").execute(context())


# -- BashOperator --------------------------------------------------------------------------


def test_bash_gets_context_env_and_streams_output(capsys: pytest.CaptureFixture[str]) -> None:
    op = BashOperator(
        task_id="b",
        bash_command=(
            "echo $MINISCHED_DAG_ID $MINISCHED_TASK_ID $MINISCHED_RUN_ID; "
            "echo $MINISCHED_LOGICAL_DATE $MINISCHED_DS $MINISCHED_TRY_NUMBER; "
            "echo $MINISCHED_DATA_INTERVAL_START $MINISCHED_DATA_INTERVAL_END; printf 'no newline'"
        ),
    )
    assert op.execute(context()) == "no newline"
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "etl t scheduled__2024-03-05T06:07:08+00:00",
        "2024-03-05T06:07:08+00:00 2024-03-05 2",
        "2024-03-05T06:07:08+00:00 2024-03-06T06:07:08+00:00",
        "no newline",
    ]


def test_bash_output_reaches_the_current_sys_stdout_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.writes: list[tuple[float, str]] = []

        def write(self, text: str) -> int:
            self.writes.append((time.monotonic(), text))
            return len(text)

        def flush(self) -> None:
            pass

    recorder = Recorder()
    monkeypatch.setattr(sys, "stdout", recorder)
    BashOperator(task_id="b", bash_command="echo first; sleep 0.3; echo second").execute(context())
    assert [text for _, text in recorder.writes] == ["first\n", "second\n"]
    assert recorder.writes[1][0] - recorder.writes[0][0] > 0.2  # streamed, not buffered to the end


def test_bash_stderr_is_captured_too(capsys: pytest.CaptureFixture[str]) -> None:
    BashOperator(task_id="b", bash_command="echo oops >&2").execute(context())
    assert capsys.readouterr().out == "oops\n"


def test_bash_templates_are_rendered(capsys: pytest.CaptureFixture[str]) -> None:
    op = BashOperator(task_id="b", bash_command="echo {{ ds }} $X", env={"X": "{{ run_id }}"})
    rendered_copy(op, context()).execute(context())
    assert capsys.readouterr().out == "2024-03-05 scheduled__2024-03-05T06:07:08+00:00\n"


def test_bash_env_replaces_the_environment_unless_append_env_is_true(
    capsys: pytest.CaptureFixture[str],
) -> None:
    os.environ["MINISCHED_TEST_INHERITED"] = "inherited"
    command = "echo ${MINISCHED_TEST_INHERITED:-none} $Y $MINISCHED_DS $AIRFLOW_CTX_DAG_ID"
    try:
        BashOperator(task_id="a", bash_command=command, env={"Y": "y"}, append_env=True).execute(context())
        BashOperator(task_id="b", bash_command=command, env={"Y": "y"}).execute(context())
        BashOperator(task_id="c", bash_command=command).execute(context())
    finally:
        del os.environ["MINISCHED_TEST_INHERITED"]
    assert capsys.readouterr().out.splitlines() == [
        "inherited y 2024-03-05 etl",
        "none y 2024-03-05 etl",
        "inherited 2024-03-05 etl",
    ]


def test_bash_cwd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    BashOperator(task_id="b", bash_command="pwd", cwd=str(tmp_path)).execute(context())
    assert capsys.readouterr().out.strip() == str(tmp_path)


def test_bash_exit_99_skips() -> None:
    with pytest.raises(SkipTask):
        BashOperator(task_id="b", bash_command="exit 99").execute(context())


def test_bash_skip_exit_code_is_configurable() -> None:
    with pytest.raises(SkipTask):
        BashOperator(task_id="b", bash_command="exit 3", skip_on_exit_code=[3, 4]).execute(context())
    with pytest.raises(TaskFailure, match="exit code 99"):
        BashOperator(task_id="c", bash_command="exit 99", skip_on_exit_code=None).execute(context())


def test_bash_non_zero_exit_fails_with_the_code() -> None:
    with pytest.raises(TaskFailure, match=r"^Bash command failed with exit code 3$"):
        BashOperator(task_id="b", bash_command="echo x; exit 3").execute(context())


def test_bash_command_validation() -> None:
    with pytest.raises(DagDefinitionError, match="bash_command must be a non-empty string"):
        BashOperator(task_id="b", bash_command="  ")
    with pytest.raises(DagDefinitionError, match="env must be a dict"):
        BashOperator(task_id="b", bash_command="true", env=["A=1"])  # type: ignore[arg-type]


class Timeout(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[None]:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.usefixtures("alarm")
def test_interrupted_bash_task_kills_its_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    # A child that ignores SIGTERM proves the SIGKILL follow-up reaches the whole group.
    command = f"(trap '' TERM; sleep 60) & echo $! > {pid_file}; echo $$ >> {pid_file}; wait"
    op = BashOperator(task_id="b", bash_command=command)
    op.kill_grace_seconds = 0.5
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.monotonic()
    with pytest.raises(Timeout):
        op.execute(context())
    assert time.monotonic() - started < 5
    pids = [int(p) for p in pid_file.read_text().split()]
    deadline = time.monotonic() + 3
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def test_on_kill_stops_a_running_bash_task_from_another_thread() -> None:
    import threading

    op = BashOperator(task_id="b", bash_command="echo started; sleep 30")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    while op._process is None and time.monotonic() - started < 5:
        time.sleep(0.01)
    op.on_kill()
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert isinstance(errors[0], TaskFailure)
    assert op._process is None
    EmptyOperator(task_id="e").on_kill()  # a no-op for operators without external work


# -- @task ---------------------------------------------------------------------------------


def test_task_decorator_creates_tasks_that_chain() -> None:
    with DAG("flow") as dag:
        a = EmptyOperator(task_id="a")

        @task
        def transform() -> None: ...

        @task(retries=3, pool="db", priority_weight=10)
        def report() -> None: ...

        result = a >> transform() >> report()
    assert isinstance(result, DecoratedPythonOperator)
    assert dag.task_ids == ["a", "transform", "report"]
    assert dag.get_task("report").upstream_task_ids == {"transform"}
    rep = dag.get_task("report")
    assert (rep.retries, rep.pool, rep.priority_weight) == (3, "db", 10)


def test_task_decorator_with_empty_parentheses_and_explicit_task_id() -> None:
    with DAG("ids") as dag:

        @task()
        def one() -> None: ...

        @task(task_id="custom")
        def two() -> None: ...

        one()
        two()
    assert dag.task_ids == ["one", "custom"]


def test_reusing_a_task_function_gets_airflow_suffixes() -> None:
    with DAG("reuse") as dag:

        @task
        def step() -> None: ...

        step()
        step()
        step()
        step.override(task_id="step__7")()
        step()
    assert dag.task_ids == ["step", "step__1", "step__2", "step__7", "step__8"]


def test_task_call_arguments_become_op_args_and_operator_arguments_dependencies() -> None:
    received: list[tuple[Any, ...]] = []

    with DAG("args") as dag:

        @task
        def produce() -> int:
            return 1

        @task
        def consume(value: Any, factor: int, *, ds: str, label: Any = "x") -> None:
            received.append((value, factor, ds, label))

        upstream = produce()
        consumer = consume(upstream, 3, label=upstream["part"])
    assert consumer.upstream_task_ids == {"produce"}

    class PulledValues:
        def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
            return {("produce", "return_value"): 1, ("produce", "part"): "p"}[(task_ids, key)]

    dag.get_task("consume").execute({**context(), "ti": PulledValues()})
    assert received == [(1, 3, "2024-03-05", "p")]


def test_task_function_keeps_the_plain_function() -> None:
    @task
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    assert add.function(1, 2) == 3
    assert add.__name__ == "add" and add.__doc__ == "Adds."


def test_task_called_outside_a_dag_says_how_to_fix_it() -> None:
    @task
    def orphan() -> None: ...

    with pytest.raises(DagDefinitionError, match=r"orphan\(\) was called outside a DAG.*with DAG"):
        orphan()


def test_task_decorator_validates_its_arguments() -> None:
    with pytest.raises(DagDefinitionError, match="@task must decorate a function"):
        task(42)  # type: ignore[call-overload]

    @task(retries=-1)
    def bad() -> None: ...

    with DAG("bad"), pytest.raises(DagDefinitionError, match="retries must be an int from 0 to"):
        bad()


def test_chain_helper() -> None:
    with DAG("chained"):
        a, b, c, d, e = (EmptyOperator(task_id=x) for x in "abcde")
        chain(a, [b, c], [d, e])
    assert b.upstream_task_ids == c.upstream_task_ids == {"a"}
    assert d.upstream_task_ids == {"b"} and e.upstream_task_ids == {"c"}
    with DAG("uneven"):
        x, y, z = (EmptyOperator(task_id=i) for i in "xyz")
        with pytest.raises(DagDefinitionError, match="different lengths 1 and 2"):
            chain([x], [y, z])


def test_the_callables_signature_is_read_once_for_all_the_copies_tries_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inspect

    reads: list[object] = []
    real = inspect.signature

    def counting(func: Any, **kwargs: Any) -> inspect.Signature:
        reads.append(func)
        return real(func, **kwargs)

    def f(ds: str, extra: int = 0) -> tuple[str, int]:
        return ds, extra

    monkeypatch.setattr(inspect, "signature", counting)
    with DAG("sig", schedule=None, start_date=LOGICAL):
        op = PythonOperator(task_id="f", python_callable=f)
        other = PythonOperator(task_id="g", python_callable=f, op_args=["mine"])
    for _ in range(3):  # each try runs a fresh copy, as a worker does
        assert rendered_copy(op, context()).execute(context()) == ("2024-03-05", 0)
    assert rendered_copy(other, context()).execute(context()) == ("mine", 0)  # one positional: other plan
    assert reads == [f, f]
