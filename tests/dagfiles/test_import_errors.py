"""A folder full of broken DAG files next to good ones: every good DAG loads, every bad file has exactly
one import error naming the file and the cause (and the line, where there is one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from minisched import settings
from tests.conftest import Env
from tests.dagfiles.helpers import HEADER, dag_block, dag_rows, dag_source, import_errors, refresh

MARK = "# <-- error here"
WITH_DAG = "with DAG('{id}', schedule='@daily', start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):\n"


@dataclass(frozen=True)
class Bad:
    name: str
    source: str
    cause: str

    def expected_line(self) -> int | None:
        """The line marked in the source, which the message must name as `file:line`."""
        for number, line in enumerate(self.source.splitlines(), start=1):
            if MARK in line:
                return number
        return None


def _in_dag(dag_id: str, *body: str) -> str:
    return HEADER + WITH_DAG.format(id=dag_id) + "".join(f"    {line}\n" for line in body)


def _bash(task_id: str, extra: str = "") -> str:
    return f"BashOperator(task_id={task_id!r}, bash_command='echo'{extra})"


BAD_FILES = [
    Bad("syntax_error", HEADER + f"def broken(:  {MARK}\n    pass\n", "SyntaxError"),
    Bad("indentation_error", HEADER + f"if True:\nprint('x')  {MARK}\n", "IndentationError"),
    Bad("unclosed_bracket", HEADER + f"values = [1, 2,  {MARK}\n", "SyntaxError"),
    Bad("name_error", _in_dag("name_error", f"{_bash('a')} >> undefined_task  {MARK}"), "NameError"),
    Bad("missing_module", HEADER + f"import not_a_real_module_xyz  {MARK}\n", "ModuleNotFoundError"),
    Bad("missing_name", f"from minisched import NoSuchThing  {MARK}\n", "ImportError"),
    Bad("raise_at_top_level", HEADER + f"raise RuntimeError('boom at import')  {MARK}\n", "boom at import"),
    Bad(
        "raise_in_helper",
        HEADER + f"def helper():\n    return 1 / 0  {MARK}\nhelper()\n",
        "ZeroDivisionError",
    ),
    Bad("sys_exit", HEADER + f"import sys\nsys.exit(3)  {MARK}\n", "SystemExit"),
    Bad("sys_exit_zero", HEADER + f"raise SystemExit(0)  {MARK}\n", "SystemExit"),
    Bad("assert_at_top_level", HEADER + f"assert 1 == 2, 'config missing'  {MARK}\n", "config missing"),
    Bad("cycle", _in_dag("cycle", f"a = {_bash('a')}", f"b = {_bash('b')}", f"a >> b >> a  {MARK}"), "cycle"),
    Bad(
        "cycle_of_three",
        _in_dag(
            "cycle3",
            f"a = {_bash('a')}",
            f"b = {_bash('b')}",
            f"c = {_bash('c')}",
            "a >> b >> c",
            f"c >> a  {MARK}",
        ),
        "a -> b -> c",
    ),
    Bad(
        "duplicate_task_id", _in_dag("dup_task", _bash("a"), f"{_bash('a')}  {MARK}"), "duplicate task_id 'a'"
    ),
    Bad(
        "duplicate_dag_id_in_file",
        HEADER + dag_block("twice") + dag_block("twice"),
        "duplicate dag_id 'twice'",
    ),
    Bad(
        "invalid_cron",
        HEADER + dag_block("bad_cron", schedule="'61 * * * *'").replace("):", f"):  {MARK}", 1),
        "invalid cron",
    ),
    Bad("cron_with_three_fields", HEADER + dag_block("short_cron", schedule="'* * *'"), "expected 5 fields"),
    Bad("unknown_preset", HEADER + dag_block("preset", schedule="'@fortnightly'"), "unknown schedule preset"),
    Bad(
        "scheduled_with_a_required_param",
        "from minisched import Param\n"
        + HEADER
        + dag_block("needs_n", dag_args=", params={'n': Param(type='integer')}"),
        "param 'n' is required",
    ),
    Bad(
        "date_not_datetime",
        "from datetime import date\n" + HEADER + dag_block("day", start="date(2024, 1, 1)"),
        "must be a datetime",
    ),
    Bad(
        "schedule_without_start_date",
        HEADER + "DAG('nostart', schedule='@daily')  " + MARK + "\n",
        "no start_date",
    ),
    Bad(
        "end_before_start",
        HEADER + dag_block("ends_early", dag_args=", end_date=datetime(2023, 1, 1, tzinfo=timezone.utc)"),
        "end_date",
    ),
    Bad(
        "unknown_timezone", HEADER + dag_block("tz", dag_args=", timezone='Mars/Olympus'"), "unknown timezone"
    ),
    Bad("invalid_dag_id", HEADER + f"DAG('bad id!')  {MARK}\n", "invalid dag_id"),
    Bad("invalid_task_id", _in_dag("bad_task_id", f"{_bash('bad task')}  {MARK}"), "invalid task_id"),
    Bad(
        "unknown_trigger_rule",
        _in_dag("rule", f"{_bash('a', ', trigger_rule=' + repr('sometimes'))}  {MARK}"),
        "trigger_rule",
    ),
    Bad("negative_retries", _in_dag("neg", f"{_bash('a', ', retries=-1')}  {MARK}"), "retries"),
    Bad(
        "text_retries", _in_dag("text_retries", f"{_bash('a', ', retries=' + repr('3'))}  {MARK}"), "retries"
    ),
    Bad("zero_pool_slots", _in_dag("slots", f"{_bash('a', ', pool_slots=0')}  {MARK}"), "pool_slots"),
    Bad("negative_retry_delay", _in_dag("delay", f"{_bash('a', ', retry_delay=-5')}  {MARK}"), "retry_delay"),
    Bad("misspelt_argument", _in_dag("typo", f"{_bash('a', ', retires=3')}  {MARK}"), "unknown argument"),
    Bad("bad_max_active_runs", HEADER + dag_block("runs", dag_args=", max_active_runs=0"), "max_active_runs"),
    Bad(
        "default_args_not_a_dict",
        HEADER + dag_block("dflt", dag_args=", default_args='retries=1'"),
        "default_args",
    ),
    Bad(
        "not_callable",
        HEADER
        + "from minisched import PythonOperator\n"
        + WITH_DAG.format(id="call")
        + f"    PythonOperator(task_id='p', python_callable='print')  {MARK}\n",
        "python_callable",
    ),
    Bad(
        "tasks_of_two_dags",
        HEADER
        + "one, two = DAG('one'), DAG('two')\n"
        + f"a = {_bash('a', ', dag=one')}\nb = {_bash('b', ', dag=two')}\na >> b  {MARK}\n",
        "different DAGs",
    ),
    Bad(
        "task_outside_dag",
        HEADER + f"a = {_bash('a')}\nb = {_bash('b')}\na >> b  {MARK}\n",
        "not in a DAG",
    ),
    Bad(
        "taskflow_outside_dag",
        "from minisched import task\n@task\ndef f():\n    pass\n" + f"f()  {MARK}\n",
        "outside a DAG",
    ),
    Bad("not_utf8", "x = 'caf\udce9'\n", "SyntaxError"),
]

GOOD_FILES = {
    "good_simple.py": dag_source("good_simple"),
    "nested/deeper/good_nested.py": dag_source("good_nested", schedule="'*/5 * * * *'"),
    "good_manual.py": dag_source("good_manual", schedule="None"),
    "good_delta.py": dag_source("good_delta", schedule="timedelta(hours=2)"),
    "good_two.py": HEADER + dag_block("good_two_a") + dag_block("good_two_b"),
    "good_taskflow.py": (
        "from datetime import datetime, timezone\nfrom minisched import DAG, task\n"
        "@task\ndef hello():\n    print('hi')\n"
        "with DAG('good_taskflow', schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):\n"
        "    hello() >> hello()\n"
    ),
    "helper_without_dags.py": "VALUE = 1\n",
}


def _write_bad(env: Env, bad: Bad) -> Path:
    path = env.dags_folder / "bad" / f"{bad.name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    if bad.name == "not_utf8":
        path.write_bytes(b"x = 'caf\xe9'\n")
    else:
        path.write_text(bad.source)
    return path


def test_every_bad_file_gets_one_clear_error_and_every_good_dag_loads(env: Env) -> None:
    assert len(BAD_FILES) >= 30
    paths = {bad.name: _write_bad(env, bad) for bad in BAD_FILES}
    for name, source in GOOD_FILES.items():
        env.write_dag(name, source)
    report = refresh(env.dags_folder)

    errors = import_errors()
    problems = []
    for bad in BAD_FILES:
        path = str(paths[bad.name])
        message = errors.pop(path, None)
        line = bad.expected_line()
        if message is None:
            problems.append(f"{bad.name}: no import error")
        elif bad.cause not in message:
            problems.append(f"{bad.name}: {bad.cause!r} not in {message!r}")
        elif not message.startswith(path):
            problems.append(f"{bad.name}: message does not start with the file: {message!r}")
        elif line is not None and f"{path}:{line}:" not in message.splitlines()[0]:
            problems.append(f"{bad.name}: line {line} not named in {message.splitlines()[0]!r}")
    assert problems == []
    assert errors == {}, "import errors for good files"
    assert report.errors == len(BAD_FILES)
    good = {
        "good_simple",
        "good_nested",
        "good_manual",
        "good_delta",
        "good_two_a",
        "good_two_b",
        "good_taskflow",
    }
    assert {dag_id for dag_id, row in dag_rows().items() if row.is_active} == good


def test_duplicate_dag_id_across_files_names_both_files(env: Env) -> None:
    first = env.write_dag("first.py", dag_source("same"))
    second = env.write_dag("second.py", dag_source("same"))
    refresh(env.dags_folder)
    errors = import_errors()
    assert set(errors) == {str(second)}
    assert str(first) in errors[str(second)] and "duplicate dag_id 'same'" in errors[str(second)]


def test_fixing_a_file_clears_its_error_and_loads_its_dag(env: Env) -> None:
    path = env.write_dag("etl.py", HEADER + f"{WITH_DAG.format(id='etl')}    x = (\n")
    refresh(env.dags_folder)
    assert str(path) in import_errors()
    path.write_text(dag_source("etl"))
    refresh(env.dags_folder)
    assert import_errors() == {}
    assert dag_rows()["etl"].is_active


def test_a_still_broken_file_has_its_error_replaced(env: Env) -> None:
    path = env.write_dag("etl.py", "raise ValueError('first problem')\n")
    refresh(env.dags_folder)
    path.write_text("\n\nraise ValueError('second problem')\n")
    refresh(env.dags_folder)
    assert import_errors() == {str(path): import_errors()[str(path)]}
    message = import_errors()[str(path)]
    assert "second problem" in message and "first problem" not in message and f"{path}:3:" in message


def test_breaking_a_good_file_deactivates_its_dag_until_it_is_fixed(env: Env) -> None:
    path = env.write_dag("etl.py", dag_source("etl"))
    refresh(env.dags_folder)
    env.run_cli("dags", "pause", "etl")
    path.write_text(dag_source("etl") + "oops(\n")
    refresh(env.dags_folder)
    assert dag_rows()["etl"].is_active is False
    path.write_text(dag_source("etl"))
    refresh(env.dags_folder)
    row = dag_rows()["etl"]
    assert row.is_active and row.is_paused


def test_removing_a_broken_file_clears_its_error(env: Env) -> None:
    path = env.write_dag("broken.py", "raise RuntimeError('x')\n")
    refresh(env.dags_folder)
    path.unlink()
    refresh(env.dags_folder)
    assert import_errors() == {}


def test_a_file_that_never_finishes_importing_times_out(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINISCHED_DAG_FILE_PROCESSOR_TIMEOUT", "0.5")
    settings.configure()
    path = env.write_dag("forever.py", "while True:\n    pass\n")
    env.write_dag("fine.py", dag_source("fine"))
    refresh(env.dags_folder)
    assert import_errors()[str(path)].startswith(f"{path}: timed out after 0.5 s")
    assert dag_rows()["fine"].is_active
