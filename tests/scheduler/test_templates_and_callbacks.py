"""What a try sees, through `dags test`, the scheduler and `tasks render`: Jinja-rendered template
fields with Airflow's context, get_current_context(), task callbacks, FailTask and template errors."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_runs, dag_source, run_to_end, task_instances

DAG_FILE = textwrap.dedent(
    """
    from minisched import EmptyOperator, FailTask, get_current_context

    def record(kind):
        def callback(context):
            ti = context["ti"]
            print(f"callback {kind} {ti.task_id} try={ti.try_number} ds={context['ds']} "
                  f"exception={context.get('exception')!r}")
        return callback

    def broken_callback(context):
        raise RuntimeError("callback broke")

    def show(label, templates_dict, **kwargs):
        current = get_current_context()
        print("label", label)
        print("templates_dict", templates_dict)
        print("logical", current["logical_date"], "interval end", current["data_interval_end"])
        print("same context", current["ti"] is kwargs["ti"])

    def fail_first(try_number):
        if try_number == 1:
            raise ValueError("first try fails")

    def hard():
        raise FailTask("retrying cannot help")

    def skip():
        raise SkipTask("nothing to do")

    with DAG(
        "templated",
        schedule=None,
        start_date=START,
        params={"who": "world"},
        user_defined_macros={"project": "apollo"},
        user_defined_filters={"shout": lambda text: text.upper() + "!"},
        default_args={
            "on_execute_callback": [record("execute"), broken_callback],
            "on_success_callback": record("success"),
        },
    ):
        BashOperator(
            task_id="bash",
            bash_command="echo {{ params.who | shout }} {{ macros.ds_add(ds, 1) }} {{ logical_date }} "
            "{{ project }} $GREETING ${HOME:-no-home}",
            env={"GREETING": "hi-{{ dag_run.run_id }}"},
        )
        BashOperator(task_id="script", bash_command="script.sh")
        PythonOperator(
            task_id="py",
            python_callable=show,
            op_args=["{{ ti.task_id }}-{{ ds_nodash }}"],
            templates_dict={"when": "{{ ts }}", "key": "{{ task_instance_key_str }}"},
        )
        PythonOperator(
            task_id="flaky",
            python_callable=fail_first,
            retries=1,
            retry_delay=timedelta(0),
            on_retry_callback=record("retry"),
        )
        PythonOperator(task_id="hard", python_callable=hard, retries=2, on_failure_callback=record("failure"))
        PythonOperator(task_id="skipper", python_callable=skip, on_skipped_callback=record("skipped"))
        BashOperator(task_id="broken_template", bash_command="echo {{ nope }}", retries=0)
    """
)
SCRIPT = 'echo "script for {{ ds }} in {{ dag.dag_id }}"\n'
STATES = {
    "bash": ("success", 1),
    "script": ("success", 1),
    "py": ("success", 1),
    "flaky": ("success", 2),
    "hard": ("failed", 1),
    "skipper": ("skipped", 1),
    "broken_template": ("failed", 1),
}


def _write(env: Env) -> None:
    env.write_dag("templated.py", dag_source(DAG_FILE))
    env.write_dag("script.sh", SCRIPT)
    assert env.run_cli("dags", "list").exit_code == 0


def _log(env: Env, run_id: str, task_id: str, attempt: int = 1) -> str:
    result = env.run_cli("tasks", "logs", "templated", run_id, task_id, "--try", str(attempt))
    assert result.exit_code == 0, result.output
    return result.stdout


def _check_logs(env: Env, run_id: str) -> None:
    bash = _log(env, run_id, "bash")
    assert f"WORLD! 2024-03-02 2024-03-01 00:00:00+00:00 apollo hi-{run_id} no-home" in bash
    assert "callback execute bash try=1 ds=2024-03-01" in bash
    assert "on_execute_callback broken_callback raised" in bash and "RuntimeError: callback broke" in bash
    assert "callback success bash try=1" in bash
    assert "script for 2024-03-01 in templated" in _log(env, run_id, "script")
    py = _log(env, run_id, "py")
    assert "label py-20240301" in py
    assert "templates_dict {'when': '2024-03-01T00:00:00+00:00', 'key': 'templated__py__20240301'}" in py
    assert "logical 2024-03-01 00:00:00+00:00 interval end 2024-03-01 00:00:00+00:00" in py
    assert "same context True" in py
    assert "callback retry flaky try=1 ds=2024-03-01 exception=ValueError('first try fails')" in _log(
        env, run_id, "flaky", 1
    )
    assert "callback success flaky try=2" in _log(env, run_id, "flaky", 2)
    hard = _log(env, run_id, "hard")
    assert "callback failure hard try=1" in hard and "FailTask('retrying cannot help')" in hard
    assert "callback skipped skipper try=1" in _log(env, run_id, "skipper")
    broken = _log(env, run_id, "broken_template")
    assert (
        "Could not render template field 'bash_command' of task 'broken_template': "
        "UndefinedError: 'nope' is undefined"
    ) in broken


def test_dags_test_renders_templates_and_runs_callbacks(env: Env) -> None:
    _write(env)
    result = env.run_process("dags", "test", "templated", "2024-03-01", "--output", "json")
    assert result.returncode == 1, result.stderr  # hard and broken_template failed
    states = {row["task_id"]: (row["state"], row["try_number"]) for row in json.loads(result.stdout)}
    assert states == STATES
    [run] = dag_runs("templated")
    _check_logs(env, run.run_id)


@pytest.mark.slow
def test_the_scheduler_runs_them_the_same_way(env: Env, procs: Procs) -> None:
    _write(env)
    trigger = env.run_cli("dags", "trigger", "templated", "--logical-date", "2024-03-01")
    assert trigger.exit_code == 0, trigger.output
    [run] = run_to_end(procs, "templated")
    assert run.state == "failed"
    assert {ti.task_id: (ti.state, ti.try_number) for ti in task_instances("templated")} == STATES
    _check_logs(env, run.run_id)


def test_tasks_render_prints_the_rendered_fields_without_running(env: Env) -> None:
    _write(env)
    assert env.run_cli("dags", "trigger", "templated", "--logical-date", "2024-03-01").exit_code == 0
    result = env.run_cli("tasks", "render", "templated", "bash", "2024-03-01")
    assert result.exit_code == 0, result.output
    rule = "# " + "-" * 58
    assert result.stdout.split("\n\n") == [
        f"{rule}\n# property: bash_command\n{rule}\n"
        "echo WORLD! 2024-03-02 2024-03-01 00:00:00+00:00 apollo $GREETING ${HOME:-no-home}",
        f"{rule}\n# property: env\n{rule}\n{{'GREETING': 'hi-manual__2024-03-01T00:00:00+00:00'}}",
        f"{rule}\n# property: cwd\n{rule}\nNone\n",
    ]
    assert task_instances("templated")[0].state is None  # nothing ran
    script = env.run_cli("tasks", "render", "templated", "script", "2024-04-01T00:00:00+00:00")
    assert "script for 2024-04-01 in templated" in script.stdout
    broken = env.run_cli("tasks", "render", "templated", "broken_template", "2024-03-01")
    assert broken.exit_code == 1
    assert broken.stderr.strip() == (
        "Error: Could not render template field 'bash_command' of task 'broken_template': "
        "UndefinedError: 'nope' is undefined"
    )


VAR_CONN_DAG = textwrap.dedent(
    """
    with DAG("lookups", schedule=None, start_date=START):
        BashOperator(
            task_id="lookups",
            bash_command=(
                "echo region={{ var.value.region }} limit={{ var.json.cfg.limit }} "
                "fallback={{ var.value.get('missing', 'none') }} host={{ conn.warehouse.host }} "
                "login={{ conn.get('warehouse').login }} secret={{ conn.warehouse.password }}"
            ),
        )
        BashOperator(task_id="missing", bash_command="echo {{ var.value.not_there }}")
    """
)


def test_templates_read_variables_and_connections_lazily(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from minisched import masking
    from tests.secrets.conftest import new_key, use_keys

    use_keys(env, monkeypatch, new_key())
    try:
        _run_lookups(env)
    finally:
        masking.forget_all()  # the connection's password was registered in this process too


def _run_lookups(env: Env) -> None:
    env.write_dag("lookups.py", dag_source(VAR_CONN_DAG))
    assert env.run_cli("variables", "set", "region", "eu-west").exit_code == 0
    assert env.run_cli("variables", "set", "cfg", '{"limit": 42}').exit_code == 0
    added = env.run_cli(
        "connections", "add", "warehouse", "--conn-uri", "postgres://loader:s3cr3t-pw@db.example:5432/dw"
    )
    assert added.exit_code == 0, added.output
    result = env.run_process("dags", "test", "lookups", "2024-03-01", "--output", "json")
    assert {row["task_id"]: row["state"] for row in json.loads(result.stdout)} == {
        "lookups": "success",
        "missing": "failed",
    }
    [run] = dag_runs("lookups")
    log = env.run_cli("tasks", "logs", "lookups", run.run_id, "lookups").stdout
    assert "region=eu-west limit=42 fallback=none host=db.example login=loader secret=***" in log
    assert "s3cr3t-pw" not in log
    missing = env.run_cli("tasks", "logs", "lookups", run.run_id, "missing").stdout
    assert "Could not render template field 'bash_command' of task 'missing': VariableNotFound: " in missing
    assert "variable 'not_there' is not set" in missing


NATIVE_DAG = textwrap.dedent(
    """
    def show(n, items):
        print("native", type(n).__name__, n + 1, type(items).__name__, items)

    with DAG("native", schedule=None, start_date=START, params={"n": 41},
             render_template_as_native_obj=True):
        PythonOperator(task_id="py", python_callable=show,
                       op_kwargs={"n": "{{ params.n }}", "items": "{{ [1, 2] + [params.n] }}"})
        BashOperator(task_id="env", bash_command='echo "A=$A home=${HOME:+set}"',
                     env={"A": "{{ params.n }}"}, append_env=True)
    """
)


def _check_native(env: Env, run_id: str) -> None:
    assert "native int 42 list [1, 2, 41]" in _native_log(env, run_id, "py")
    assert "A=41 home=set" in _native_log(env, run_id, "env")  # append_env keeps the inherited HOME


def _native_log(env: Env, run_id: str, task_id: str) -> str:
    result = env.run_cli("tasks", "logs", "native", run_id, task_id)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_dags_test_renders_native_objects_and_appends_env(env: Env) -> None:
    env.write_dag("native.py", dag_source(NATIVE_DAG))
    result = env.run_process("dags", "test", "native", "2024-03-01")
    assert result.returncode == 0, result.stderr
    [run] = dag_runs("native")
    _check_native(env, run.run_id)


@pytest.mark.slow
def test_the_scheduler_renders_native_objects_and_appends_env(env: Env, procs: Procs) -> None:
    env.write_dag("native.py", dag_source(NATIVE_DAG))
    assert env.run_cli("dags", "list").exit_code == 0
    assert env.run_cli("dags", "trigger", "native").exit_code == 0
    [run] = run_to_end(procs, "native")
    assert run.state == "success"
    _check_native(env, run.run_id)
