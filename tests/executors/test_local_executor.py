"""The local executor: warm workers, crash isolation, timeouts, parallelism, stop, parent death."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from minisched.scheduler.executors import executor_for
from minisched.scheduler.executors.local import STOPPED_ERROR, LocalExecutor
from minisched.scheduler.executors.sequential import SequentialExecutor
from tests.executors.helpers import (
    collect,
    log_text,
    out_dir,
    pid_alive,
    read_pid,
    request,
    run_all,
    wait_for,
)

MakeExecutor = Callable[..., LocalExecutor]
TIMEOUT_ERROR = "Task timed out after 1s (execution_timeout)"


def test_runs_tries_and_reports_each_outcome(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(2)
    reqs = {
        task_id: request(dag_file, task_id) for task_id in ["hello", "boom", "skip", "bash_skip", "bash_fail"]
    }
    results = run_all(executor, reqs.values())
    outcomes = {
        task_id: (results[req.ti_id].outcome, results[req.ti_id].error) for task_id, req in reqs.items()
    }
    assert outcomes == {
        "hello": ("success", None),
        "boom": ("failed", "ValueError: boom"),
        "skip": ("skipped", None),
        "bash_skip": ("skipped", None),
        "bash_fail": ("failed", "Bash command failed with exit code 3"),
    }
    assert "from a child process" in log_text(reqs["hello"])
    assert "Traceback" in log_text(reqs["boom"])
    assert {results[req.ti_id].pid for req in reqs.values()} <= set(executor.worker_pids)
    assert executor.running == 0 and executor.free_slots == executor.parallelism + executor.queue_depth


def test_poll_returns_as_soon_as_a_result_arrives(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(1)
    executor.submit([request(dag_file, "noop")])
    started = time.monotonic()
    results = executor.poll(timeout=30)
    assert len(results) == 1 and results[0].outcome == "success"
    assert time.monotonic() - started < 10


def test_workers_are_reused_and_import_the_dag_file_once(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(2)
    results = run_all(executor, [request(dag_file, "noop") for _ in range(40)])
    assert all(result.outcome == "success" for result in results.values())
    pids = {result.pid for result in results.values()}
    assert len(pids) <= 2
    imports = (out_dir(dag_file) / "imports.txt").read_text().split()
    assert sorted(imports) == sorted(set(imports))  # one import per worker
    assert {int(pid) for pid in imports} == pids


def test_parallelism_is_never_exceeded(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(2)
    reqs = [request(dag_file, "span", run_id=f"run{n}") for n in range(6)]
    executor.submit(reqs)  # more than free_slots: the rest waits in the executor
    assert executor.running == 6 and executor.free_slots == executor.parallelism + executor.queue_depth - 6
    results = collect(executor, 6)
    assert all(result.outcome == "success" for result in results)
    out = out_dir(dag_file)
    spans = [
        (float((out / f"start-{name}").read_text()), float((out / f"end-{name}").read_text()))
        for name in (path.name.removeprefix("start-") for path in out.glob("start-*"))
    ]
    assert len(spans) == 6
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running, peak = 0, 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2


def test_os_exit_in_a_task_fails_it_and_a_new_worker_takes_over(
    dag_file: Path, make_executor: MakeExecutor
) -> None:
    executor = make_executor(1)
    crash = request(dag_file, "hard_exit")
    [result] = run_all(executor, [crash]).values()
    assert (result.outcome, result.error) == ("failed", "Worker process died with exit code 3")
    assert "Worker process died with exit code 3" in log_text(crash)
    assert executor.running == 0 and executor.worker_pids == []

    [after] = run_all(executor, [request(dag_file, "noop")]).values()
    assert after.outcome == "success" and after.pid != result.pid


def test_sigkill_of_a_worker_mid_try_fails_the_try(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(2)
    executor.submit([request(dag_file, "sleepy")])
    pid = read_pid(out_dir(dag_file) / "sleepy.pid")
    assert pid in executor.worker_pids
    os.kill(pid, signal.SIGKILL)
    [result] = collect(executor)
    assert (result.outcome, result.error) == (
        "failed",
        "Worker process died with exit code -9 (signal SIGKILL)",
    )
    [after] = run_all(executor, [request(dag_file, "noop")]).values()
    assert after.outcome == "success"


def test_a_task_that_kills_its_parent_still_reports_its_outcome(
    dag_file: Path, make_executor: MakeExecutor
) -> None:
    executor = make_executor(1)
    waiting = request(dag_file, "wait_for_go")
    executor.submit([waiting, request(dag_file, "noop")])
    try_pid = read_pid(out_dir(dag_file) / "wait_for_go.pid")
    keeper = _parent_of(try_pid)
    assert keeper != os.getpid()
    os.kill(keeper, signal.SIGKILL)  # what `os.kill(os.getppid(), SIGKILL)` in the task does
    wait_for(lambda: not pid_alive(keeper), what="the keeper to die")
    assert executor.poll(timeout=0.2) == [] and pid_alive(try_pid)
    (out_dir(dag_file) / "go").write_text("")
    results = {result.ti_id: result for result in collect(executor, 2)}
    assert (results[waiting.ti_id].outcome, results[waiting.ti_id].pid) == ("success", try_pid)
    assert "went on after the worker died" in log_text(waiting)
    assert all(result.outcome == "success" for result in results.values())  # the worker serves on


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def test_an_idle_worker_that_dies_is_replaced(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(1)
    run_all(executor, [request(dag_file, "noop")])
    [pid] = executor.worker_pids
    keeper = _parent_of(pid)
    os.kill(pid, signal.SIGKILL)
    # The keeper exits once the worker is wholly gone: its main thread shows as a zombie while its
    # other threads still hold its pipe open, and a try sent then would be lost with it.
    wait_for(lambda: not pid_alive(keeper), what="the worker and its keeper to be gone")
    [result] = run_all(executor, [request(dag_file, "noop")]).values()
    assert result.outcome == "success" and result.pid != pid


def test_execution_timeout_fails_python_and_bash_tasks(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(2)
    started = time.monotonic()
    results = run_all(
        executor, [request(dag_file, "sleepy_1s", timeout=1), request(dag_file, "bash_sleep", timeout=1)]
    )
    assert time.monotonic() - started < 20
    assert [(r.outcome, r.error) for r in results.values()] == [("failed", TIMEOUT_ERROR)] * 2
    bash_pids = [int(pid) for pid in (out_dir(dag_file) / "bash.pids").read_text().split()]
    wait_for(lambda: not any(pid_alive(pid) for pid in bash_pids), 20, "the bash processes to exit")
    assert len(run_all(executor, [request(dag_file, "noop")])) == 1


def test_a_worker_stuck_past_its_deadline_is_killed(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(1)
    executor.deadline_grace = 0.5
    stuck = request(dag_file, "stuck", timeout=1)
    started = time.monotonic()
    [result] = run_all(executor, [stuck]).values()
    assert time.monotonic() - started < 20
    assert (result.outcome, result.error) == ("failed", TIMEOUT_ERROR)
    assert not pid_alive(result.pid)
    assert TIMEOUT_ERROR in log_text(stuck)
    [after] = run_all(executor, [request(dag_file, "noop")]).values()
    assert after.outcome == "success"


def test_unknown_dag_or_task_fails_and_the_worker_keeps_going(
    dag_file: Path, make_executor: MakeExecutor
) -> None:
    executor = make_executor(1)
    reqs = [request(dag_file, "hello", dag_id="gone"), request(dag_file, "gone"), request(dag_file, "noop")]
    results = run_all(executor, reqs)
    errors = [results[req.ti_id].error for req in reqs]
    assert errors[0] == f"DAG 'gone' is no longer defined in {dag_file}"
    assert errors[1] == f"Task 'gone' is no longer in DAG 'exec_test' ({dag_file})"
    assert errors[2] is None
    assert len(executor.worker_pids) == 1


def test_stop_waits_for_tries_that_finish_within_grace(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(2)
    executor.submit([request(dag_file, "span", run_id="a"), request(dag_file, "span", run_id="b")])
    pids = executor.worker_pids
    results = executor.stop(grace=30)
    assert [result.outcome for result in results] == ["success", "success"]
    assert not any(pid_alive(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="stopped"):
        executor.submit([request(dag_file, "noop")])


def test_stop_fails_tries_still_running_after_grace_and_kills_their_processes(
    dag_file: Path, make_executor: MakeExecutor
) -> None:
    executor = make_executor(2)
    sleeper, bash, queued = (request(dag_file, t) for t in ["sleepy", "bash_sleep_long", "noop"])
    executor.submit([sleeper, bash, queued])
    read_pid(out_dir(dag_file) / "sleepy.pid")
    bash_pids = [int(pid) for pid in read_pid_line(out_dir(dag_file) / "bash.pids")]
    workers = executor.worker_pids

    started = time.monotonic()
    results = executor.stop(grace=0.2)
    assert time.monotonic() - started < 15
    assert sorted(r.ti_id for r in results) == sorted([sleeper.ti_id, bash.ti_id])
    assert {(r.outcome, r.error) for r in results} == {("failed", STOPPED_ERROR)}
    assert executor.withdraw_pending() == [queued]  # it never started: handed back, not failed
    assert STOPPED_ERROR in log_text(sleeper)
    assert not any(pid_alive(pid) for pid in workers)
    wait_for(lambda: not any(pid_alive(pid) for pid in bash_pids), 20, "the bash processes to exit")
    assert executor.running == 0


def read_pid_line(path: Path) -> list[str]:
    wait_for(lambda: path.exists() and len(path.read_text().split()) == 2, what=f"{path.name}")
    return path.read_text().split()


PARENT_SCRIPT = """
import json, sys, time
from minisched.scheduler.executors.local import LocalExecutor
from tests.executors.helpers import request
from pathlib import Path

dag_file = Path(sys.argv[1])
executor = LocalExecutor(2)
executor.submit([request(dag_file, "sleepy"), request(dag_file, "noop")])
print(json.dumps(executor.worker_pids), flush=True)
time.sleep(120)
"""


def test_workers_die_when_the_scheduler_is_killed(dag_file: Path, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, str(script), str(dag_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert parent.stdout is not None
        worker_pids = json.loads(parent.stdout.readline())
        assert len(worker_pids) == 2
        read_pid(out_dir(dag_file) / "sleepy.pid")
        assert all(pid_alive(pid) for pid in worker_pids)
    finally:
        parent.kill()
        parent.wait()
    wait_for(lambda: not any(pid_alive(pid) for pid in worker_pids), 30, "the workers to die")


def test_a_worker_that_cannot_be_forked_fails_the_try(
    dag_file: Path, make_executor: MakeExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = make_executor(1)

    def no_fork(first: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(executor, "_spawn", no_fork)
    [result] = run_all(executor, [request(dag_file, "noop")]).values()
    assert result.outcome == "failed"
    assert result.error == "Could not start a worker process: [Errno 11] Resource temporarily unavailable"
    monkeypatch.undo()
    [after] = run_all(executor, [request(dag_file, "noop")]).values()
    assert after.outcome == "success"


def test_executor_for_knows_local_and_sequential() -> None:
    local = executor_for("local", 3)
    assert isinstance(local, LocalExecutor) and local.parallelism == 3
    sequential = executor_for("Sequential", 8)
    assert isinstance(sequential, SequentialExecutor) and sequential.parallelism == 1
    unknown = "unknown executor 'k8s'; valid executors: local, sequential, celery"
    with pytest.raises(ValueError, match=unknown):
        executor_for("k8s", 2)
    with pytest.raises(ValueError, match="parallelism"):
        LocalExecutor(0)
