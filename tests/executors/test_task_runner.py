"""run_try: one try in this process, its output in the try's log file, its outcome in one line."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minisched.scheduler.executors.logs import (
    log_path_for,
    read_try_record,
    record_path_for,
    write_try_record,
)
from minisched.scheduler.executors.task_runner import DagFileCache, run_try
from tests.executors.helpers import DAG_ID, RUN_ID, log_text, out_dir, pid_alive, request, wait_for


def test_log_path_layout_keeps_the_run_id_readable(tmp_path: Path) -> None:
    path = log_path_for(tmp_path, "etl", "manual__2024-01-01T00:00:00+00:00", "load", 2)
    assert path == tmp_path / "dag_id=etl/run_id=manual__2024-01-01T00:00:00+00:00/task_id=load/attempt=2.log"
    assert log_path_for(tmp_path, "etl", "odd/run", "load", 1).parent.parent.name == "run_id=odd_run"


def test_success_captures_print_stderr_logging_and_child_processes(dag_file: Path) -> None:
    req = request(dag_file, "hello", try_number=3, conf={"table": "x"})
    before = time.time()
    result = run_try(req)

    assert (result.outcome, result.error) == ("success", None)
    assert (result.ti_id, result.try_number, result.pid) == (req.ti_id, 3, os.getpid())
    assert result.hostname
    assert before - 1 <= result.start_date.timestamp() <= result.end_date.timestamp() <= time.time() + 1
    log = log_text(req)
    assert f"dag_id={DAG_ID} task_id=hello run_id={RUN_ID} try_number=3 pid={os.getpid()}" in log
    assert "hello ds=2024-01-02 try_number=3 conf={'table': 'x'}" in log
    assert "to stderr" in log
    assert "INFO - info through logging" in log
    assert "from a child process" in log
    assert "Try finished: outcome=success" in log.splitlines()[-1]


def test_output_streams_and_logging_are_restored_afterwards(dag_file: Path) -> None:
    stdout, stderr, root = sys.stdout, sys.stderr, logging.getLogger()
    handlers, level = root.handlers[:], root.level
    fd1 = os.fstat(1)

    run_try(request(dag_file, "hello"))

    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    assert (root.handlers, root.level) == (handlers, level)
    assert (os.fstat(1).st_ino, os.fstat(1).st_dev) == (fd1.st_ino, fd1.st_dev)


def test_exception_fails_with_one_line_and_the_traceback_in_the_log(dag_file: Path) -> None:
    req = request(dag_file, "boom")
    result = run_try(req)
    assert (result.outcome, result.error) == ("failed", "ValueError: boom")
    log = log_text(req)
    assert "Traceback (most recent call last)" in log
    assert 'raise ValueError("boom")' in log
    assert "outcome=failed" in log and "error=ValueError: boom" in log


def test_sys_exit_in_a_task_fails_the_try(dag_file: Path) -> None:
    result = run_try(request(dag_file, "exits"))
    assert (result.outcome, result.error) == ("failed", "SystemExit: 2")


def test_skip_task_skips(dag_file: Path) -> None:
    req = request(dag_file, "skip")
    result = run_try(req)
    assert (result.outcome, result.error) == ("skipped", None)
    assert "Task skipped: not today" in log_text(req)


def test_bash_gets_the_context_as_environment(dag_file: Path) -> None:
    req = request(dag_file, "bash_ok", try_number=2)
    assert run_try(req).outcome == "success"
    assert "bash says 2024-01-02 try 2" in log_text(req)


def test_bash_exit_99_skips(dag_file: Path) -> None:
    assert run_try(request(dag_file, "bash_skip")).outcome == "skipped"


def test_bash_non_zero_exit_fails_with_the_exit_code(dag_file: Path) -> None:
    req = request(dag_file, "bash_fail")
    result = run_try(req)
    assert (result.outcome, result.error) == ("failed", "Bash command failed with exit code 3")
    assert "failing" in log_text(req)


def test_python_task_over_execution_timeout_fails(dag_file: Path) -> None:
    started = time.monotonic()
    req = request(dag_file, "sleepy_1s")
    result = run_try(req)
    assert time.monotonic() - started < 10
    assert (result.outcome, result.error) == ("failed", "Task timed out after 1s (execution_timeout)")
    assert "TaskTimeout" in log_text(req)


def test_a_task_that_swallows_the_timeout_still_fails(dag_file: Path) -> None:
    result = run_try(request(dag_file, "swallow"))
    assert (result.outcome, result.error) == ("failed", "Task timed out after 1s (execution_timeout)")


def test_bash_task_over_execution_timeout_fails_and_its_processes_are_gone(dag_file: Path) -> None:
    started = time.monotonic()
    result = run_try(request(dag_file, "bash_sleep"))
    assert time.monotonic() - started < 15
    assert (result.outcome, result.error) == ("failed", "Task timed out after 1s (execution_timeout)")
    pids = [int(pid) for pid in (out_dir(dag_file) / "bash.pids").read_text().split()]
    assert len(pids) == 2  # bash and its `sleep 30`
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 20, "the bash processes to exit")


def test_request_timeout_applies_when_the_task_sets_none(dag_file: Path) -> None:
    result = run_try(request(dag_file, "sleepy", timeout=1))
    assert (result.outcome, result.error) == ("failed", "Task timed out after 1s (execution_timeout)")


def test_unknown_dag_or_task_fails_clearly(dag_file: Path) -> None:
    no_dag = run_try(request(dag_file, "hello", dag_id="gone"))
    assert no_dag.outcome == "failed"
    assert no_dag.error == f"DAG 'gone' is no longer defined in {dag_file}"
    no_task = run_try(request(dag_file, "gone"))
    assert no_task.error == f"Task 'gone' is no longer in DAG '{DAG_ID}' ({dag_file})"


def test_broken_or_missing_dag_file_fails_clearly(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\nraise RuntimeError('bad file')\n")
    req = request(broken, "hello")
    result = run_try(req, dag_cache=DagFileCache())
    assert result.outcome == "failed"
    assert result.error == f"DAG file failed to import: {broken}:2: RuntimeError: bad file"
    assert "bad file" in log_text(req)

    missing = run_try(request(tmp_path / "missing.py", "hello"), dag_cache=DagFileCache())
    assert missing.outcome == "failed"
    assert missing.error is not None and "missing.py cannot be read" in missing.error


def test_dag_cache_imports_a_file_once_until_it_changes(dag_file: Path) -> None:
    cache = DagFileCache()
    for _ in range(5):
        assert run_try(request(dag_file, "noop"), dag_cache=cache).outcome == "success"
    assert cache.imports == 1
    assert len((out_dir(dag_file) / "imports.txt").read_text().split()) == 1

    dag_file.write_text(dag_file.read_text() + "\n# changed\n")
    assert run_try(request(dag_file, "noop"), dag_cache=cache).outcome == "success"
    assert cache.imports == 2


def test_never_raises_when_the_log_cannot_be_written(dag_file: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    req = request(dag_file, "noop")
    req = dataclasses.replace(req, log_path=str(blocker / "attempt=1.log"))
    result = run_try(req)
    assert result.outcome == "failed"
    assert result.error is not None and result.error.startswith("Could not run the try:")


def test_executor_layer_does_not_import_the_database_layer() -> None:
    code = (
        "import sys\n"
        "import minisched.scheduler.executors, minisched.scheduler.executors.local\n"
        "import minisched.scheduler.executors.sequential, minisched.scheduler.executors.task_runner\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'\n"
        "       or m.startswith(('minisched.db', 'minisched.models', 'minisched.cli'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("task_id", ["hello", "boom", "skip"])
def test_each_try_gets_a_header_and_a_footer(dag_file: Path, task_id: str) -> None:
    req = request(dag_file, task_id)
    run_try(req)
    lines = log_text(req).splitlines()
    assert "minisched: Running dag_id=" in lines[0]
    assert "minisched: Try finished: outcome=" in lines[-1]


def test_the_try_record_is_a_begin_line_then_an_end_line(dag_file: Path) -> None:
    req = request(dag_file, "hello", try_number=2)
    record_file = record_path_for(req.log_path)
    write_try_record(req.log_path, {"outcome": "failed", "start_date": "2000-01-01T00:00"})  # a past life

    result = run_try(req)

    begin, end = (json.loads(line) for line in record_file.read_text().splitlines())
    assert begin == {"start_date": begin["start_date"], "pid": os.getpid()}
    assert (end["outcome"], end["pid"], end["start_date"]) == (
        "success",
        os.getpid(),
        result.start_date.isoformat(),
    )
    assert read_try_record(req.log_path) == end
    assert record_file.stat().st_mode & 0o777 == 0o600
    assert not [p for p in record_file.parent.iterdir() if p.name.startswith(".")]  # no temporary files


def test_a_record_being_written_reads_as_its_begin_line_and_an_old_record_still_reads(tmp_path: Path) -> None:
    log_path = tmp_path / "attempt=1.log"
    write_try_record(log_path, {"start_date": "s", "pid": 1}, begin=True)
    with record_path_for(log_path).open("a") as out:
        out.write('{"outcome": "succ')  # the end line, half written
    assert read_try_record(log_path) == {"start_date": "s", "pid": 1}

    record_path_for(log_path).write_text('{"outcome": "success", "pid": 2}')  # an older worker's file
    assert read_try_record(log_path) == {"outcome": "success", "pid": 2}
    record_path_for(log_path).write_text("not json")
    assert read_try_record(log_path) is None


def test_a_try_that_fails_before_its_task_began_records_its_end_only(dag_file: Path) -> None:
    req = request(dag_file, "no_such_task")
    assert run_try(req).outcome == "failed"
    (line,) = record_path_for(req.log_path).read_text().splitlines()
    assert json.loads(line)["outcome"] == "failed"
