"""A task cannot hurt the scheduler, and cannot read its credentials; `tasks logs` streams a try."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

from tests.conftest import Env
from tests.scheduler.helpers import (
    Procs,
    dag_source,
    finished_runs,
    run_to_end,
    task_instances,
    ti_states,
    wait_until,
)

KILLER = textwrap.dedent(
    """
    PROBE = Path(__file__).parent.parent / "probe.txt"

    def record(name):
        with open(PROBE, "a") as probe:
            probe.write(f"{name} {os.getpid()} {os.getppid()}\\n")

    def kill_parent():
        record("killer")
        os.kill(os.getppid(), signal.SIGKILL)
        print("still here after killing my parent")

    with DAG("killer", schedule=None, start_date=START):
        PythonOperator(task_id="kill_parent", python_callable=kill_parent) >> PythonOperator(
            task_id="after", python_callable=lambda: record("after"))
    """
)

FERNET_KEY = "x8yuvrIRODeaq0u7oGV5ItLe5-WS9Hsxo6u58pGqpNI="  # a valid key; tasks must not see it


def test_a_task_that_kills_its_parent_leaves_the_scheduler_running(env: Env, procs: Procs) -> None:
    env.write_dag("killer.py", dag_source(KILLER, imports="import signal"))
    assert env.run_cli("dags", "list").exit_code == 0
    assert env.run_cli("dags", "trigger", "killer").exit_code == 0
    scheduler = procs.scheduler()
    [run] = wait_until(lambda: finished_runs("killer", 1), message="the run to end")
    scheduler.stop()
    scheduler.assert_clean_exit()  # it never noticed
    assert run.state == "success"
    assert ti_states("killer") == {"kill_parent": "success", "after": "success"}
    assert all(ti.try_number == 1 for ti in task_instances("killer"))
    probe = (env.home / "probe.txt").read_text().split("\n")
    rows = [line.split() for line in probe if line]
    assert sorted(name for name, _, _ in rows) == ["after", "killer"]  # each ran exactly once
    assert all(int(parent) != scheduler.pid for _, _, parent in rows)
    logs = env.run_cli("tasks", "logs", "killer", run.run_id, "kill_parent")
    assert "still here after killing my parent" in logs.stdout


ENV_DAG = textwrap.dedent(
    """
    with DAG("show_env", schedule=None, start_date=START):
        BashOperator(task_id="env", bash_command="env | sort")
        PythonOperator(task_id="py_env", python_callable=lambda: print(sorted(os.environ)))
    """
)


def test_a_bash_task_running_env_shows_no_database_url_and_its_log_is_private(env: Env, procs: Procs) -> None:
    env.write_dag("env.py", dag_source(ENV_DAG))
    assert env.run_cli("dags", "list").exit_code == 0
    run_id = env.run_cli("dags", "trigger", "show_env").stdout.strip()
    previous = os.umask(0)
    try:
        [run] = run_to_end(procs, "show_env", extra_env={"MINISCHED_FERNET_KEY": FERNET_KEY})
    finally:
        os.umask(previous)
    assert run.state == "success"
    for task_id, visible in (("env", "MINISCHED_DAG_ID=show_env"), ("py_env", "MINISCHED_LOGS_FOLDER")):
        text = env.run_cli("tasks", "logs", "show_env", run_id, task_id).stdout
        assert visible in text
        assert "MINISCHED_DB_URL" not in text and env.db_url not in text
        assert "MINISCHED_FERNET_KEY" not in text and FERNET_KEY not in text
    log = next(env.logs_folder.glob("dag_id=show_env/run_id=*/task_id=env/attempt=1.log"))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    for folder in (log.parent, log.parent.parent, log.parent.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


TALKER = textwrap.dedent(
    """
    GO = Path(__file__).parent.parent / "go"

    def talk():
        for n in range(1, 6):
            print(f"line {n}", flush=True)
        while not GO.exists():
            time.sleep(0.05)
        print("the end", flush=True)

    with DAG("talker", schedule=None, start_date=START):
        PythonOperator(task_id="talk", python_callable=talk)
    """
)


def test_tasks_logs_follows_a_running_try_and_tails_a_finished_one(env: Env, procs: Procs) -> None:
    env.write_dag("talker.py", dag_source(TALKER))
    assert env.run_cli("dags", "list").exit_code == 0
    run_id = env.run_cli("dags", "trigger", "talker").stdout.strip()
    scheduler = procs.scheduler()
    wait_until(lambda: ti_states("talker", run_id).get("talk") == "running", message="the try to run")
    follower = procs.start("tasks", "logs", "talker", run_id, "talk", "--follow")
    wait_until(lambda: "line 5" in follower.output(), message="--follow to print line 5")
    assert follower.popen.poll() is None  # the try still runs: it keeps following
    (env.home / "go").write_text("")
    assert follower.wait() == 0  # ends by itself once the try is over
    assert "line 1" in follower.output() and "the end" in follower.output()
    wait_until(lambda: ti_states("talker", run_id).get("talk") == "success", message="the try to succeed")
    scheduler.stop()
    scheduler.assert_clean_exit()

    tail = env.run_cli("tasks", "logs", "talker", run_id, "talk", "--tail", "2")
    lines = tail.stdout.splitlines()
    assert len(lines) == 2 and lines[0] == "the end" and "Try finished" in lines[1]
    assert env.run_cli("tasks", "logs", "talker", run_id, "talk", "--tail", "0").stdout == ""
    whole = env.run_cli("tasks", "logs", "talker", run_id, "talk").stdout
    assert env.run_cli("tasks", "logs", "talker", run_id, "talk", "--tail", "1000").stdout == whole
    assert Path(env.logs_folder).is_dir()
