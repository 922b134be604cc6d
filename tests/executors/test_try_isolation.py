"""A task cannot hurt the scheduler: its parent is a keeper, what it leaves behind is killed, its log
is private, masked and capped, and its environment has none of minisched's credentials."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minisched import settings
from minisched.scheduler.executors.local import LocalExecutor
from tests.executors.helpers import log_text, out_dir, pid_alive, read_pid, request, run_all, wait_for

MakeExecutor = Callable[..., LocalExecutor]

FERNET_KEY = "x8yuvrIRODeaq0u7oGV5ItLe5-WS9Hsxo6u58pGqpNI="  # a valid key; tasks must not see it


def _parent_of(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2 :].split()[1])


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set MINISCHED_ variables that the workers (forked after this) resolve their settings from."""

    def configure(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(settings, "_current", None)

    yield configure
    settings._current = None


def test_a_task_parent_is_its_workers_keeper_never_the_scheduler(
    dag_file: Path, make_executor: MakeExecutor
) -> None:
    executor = make_executor(1)
    [result] = run_all(executor, [request(dag_file, "whose_parent")]).values()
    assert result.outcome == "success"
    parent = read_pid(out_dir(dag_file) / "parent.pid")
    assert parent != os.getpid()
    assert _parent_of(parent) == os.getpid()  # the keeper is the executor's child
    assert executor.worker_pids == [result.pid] and _parent_of(result.pid) == parent


def test_a_task_that_kills_its_parent_is_recorded_with_its_real_outcome(
    dag_file: Path, make_executor: MakeExecutor
) -> None:
    executor = make_executor(1)
    killer, after = request(dag_file, "kill_parent"), request(dag_file, "noop")
    results = run_all(executor, [killer, after])
    assert (results[killer.ti_id].outcome, results[killer.ti_id].error) == ("success", None)
    assert "the task goes on" in log_text(killer)
    assert results[after.ti_id].outcome == "success"
    parent = read_pid(out_dir(dag_file) / "parent.pid")
    assert parent != os.getpid()
    # SIGKILL is sent, but a loaded machine may take a moment to tear the keeper down.
    wait_for(lambda: not pid_alive(parent), what="the killed keeper to be gone")


@pytest.mark.parametrize(
    ("task_id", "pid_file"), [("bash_daemon", "daemon.pid"), ("bash_double_fork", "orphan.pid")]
)
def test_what_a_try_started_is_gone_after_it(
    dag_file: Path, make_executor: MakeExecutor, task_id: str, pid_file: str
) -> None:
    executor = make_executor(1)
    [result] = run_all(executor, [request(dag_file, task_id)]).values()
    assert result.outcome == "success"
    leftover = read_pid(out_dir(dag_file) / pid_file)
    wait_for(lambda: not pid_alive(leftover), 10, f"{pid_file} to be gone")
    [again] = run_all(executor, [request(dag_file, "noop")]).values()
    assert again.outcome == "success" and again.pid == result.pid  # the same worker goes on


def test_a_try_log_is_capped_and_masked(
    dag_file: Path, make_executor: MakeExecutor, configured: Callable[..., None]
) -> None:
    configured(MINISCHED_TASK_LOG_MAX_BYTES="200000")
    executor = make_executor(1)
    chatty, failing = request(dag_file, "chatty"), request(dag_file, "secret_error")
    results = run_all(executor, [chatty, failing])
    assert results[chatty.ti_id].outcome == "success"
    log = Path(chatty.log_path)
    assert 200_000 <= log.stat().st_size < 200_000 + 4096
    text = log.read_text()
    assert "Log truncated" in text and "discarded" in text and "the end" not in text
    assert "early: postgresql://admin:***@db.internal/prod" in text and "hunter2" not in text

    error = results[failing.ti_id].error
    assert error == "ValueError: cannot reach postgresql://admin:***@db.internal/prod"
    assert "hunter2" not in log_text(failing) and "admin:***@db.internal" in log_text(failing)


def test_a_task_environment_has_no_minisched_credentials(
    dag_file: Path, make_executor: MakeExecutor, configured: Callable[..., None]
) -> None:
    configured(
        MINISCHED_DB_URL="postgresql://minisched:s3cret@db.internal/meta",
        MINISCHED_FERNET_KEY=FERNET_KEY,
        MINISCHED_CELERY_BROKER_URL="redis://:broker-pw@cache/0",
        MINISCHED_VAR_GREETING="hello",
        MINISCHED_CONN_WAREHOUSE="postgresql://wh@warehouse/db",
    )
    executor = make_executor(1)
    env_try = request(dag_file, "bash_env")
    [result] = run_all(executor, [env_try]).values()
    assert result.outcome == "success"
    text = log_text(env_try)
    for hidden in ("MINISCHED_DB_URL", "s3cret", "MINISCHED_FERNET_KEY", FERNET_KEY, "broker-pw"):
        assert hidden not in text
    assert "MINISCHED_VAR_GREETING=hello" in text and "MINISCHED_CONN_WAREHOUSE=" in text
    assert "MINISCHED_DAG_ID=exec_test" in text


def test_logs_are_private_whatever_the_umask(dag_file: Path, make_executor: MakeExecutor) -> None:
    previous = os.umask(0)
    try:
        executor = make_executor(1)
        req = request(dag_file, "hello")
        [result] = run_all(executor, [req]).values()
    finally:
        os.umask(previous)
    assert result.outcome == "success"
    log = Path(req.log_path)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    logs_root = dag_file.parent / "logs"
    folder = log.parent
    while True:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        if folder == logs_root:
            break
        folder = folder.parent
