"""The sequential executor: one try at a time, each in its own forked child."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from minisched.scheduler.executors.local import STOPPED_ERROR, LocalExecutor
from tests.executors.helpers import collect, log_text, out_dir, pid_alive, read_pid, request, run_all

MakeExecutor = Callable[..., LocalExecutor]


def test_runs_each_try_in_a_fresh_child_one_at_a_time(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(sequential=True)
    assert executor.free_slots == 1
    reqs = [request(dag_file, t) for t in ["hello", "boom", "skip", "bash_fail", "noop", "noop"]]
    executor.submit(reqs[:1])
    assert executor.free_slots == 0
    [first] = collect(executor)
    results = {first.ti_id: first, **run_all(executor, reqs[1:])}
    outcomes = [results[req.ti_id].outcome for req in reqs]
    assert outcomes == ["success", "failed", "skipped", "failed", "success", "success"]
    assert results[reqs[1].ti_id].error == "ValueError: boom"
    pids = {result.pid for result in results.values()} | {os.getpid()}
    assert len(pids) == 7  # a new child per try, never the scheduler itself
    assert len((out_dir(dag_file) / "imports.txt").read_text().split()) == 6


def test_first_try_is_reported(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(sequential=True)
    req = request(dag_file, "hello")
    [result] = run_all(executor, [req]).values()
    assert result.outcome == "success"
    assert "hello ds=2024-01-02" in log_text(req)
    assert not executor.worker_pids


def test_a_crashing_try_does_not_take_the_executor_down(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(sequential=True)
    crash, after = request(dag_file, "hard_exit"), request(dag_file, "noop")
    results = run_all(executor, [crash, after])
    assert (results[crash.ti_id].outcome, results[crash.ti_id].error) == (
        "failed",
        "Worker process died with exit code 3",
    )
    assert results[after.ti_id].outcome == "success"


def test_timeout(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(sequential=True)
    started = time.monotonic()
    [result] = run_all(executor, [request(dag_file, "sleepy_1s", timeout=1)]).values()
    assert time.monotonic() - started < 20
    assert result.error == "Task timed out after 1s (execution_timeout)"


def test_stop_fails_the_running_try(dag_file: Path, make_executor: MakeExecutor) -> None:
    executor = make_executor(sequential=True)
    running, queued = request(dag_file, "sleepy"), request(dag_file, "noop")
    executor.submit([running, queued])
    pid = read_pid(out_dir(dag_file) / "sleepy.pid")
    results = executor.stop(grace=0.1)
    assert {(r.ti_id, r.outcome, r.error) for r in results} == {(running.ti_id, "failed", STOPPED_ERROR)}
    assert executor.withdraw_pending() == [queued]  # it never started: handed back, not failed
    assert not pid_alive(pid)
