"""One scheduler and Celery workers as real processes, on PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.celery.helpers import (
    OwnRedis,
    free_port,
    outputs,
    require_redis_server,
    start_worker,
    token_counts,
    token_dag,
    unique,
    wait_for,
)
from tests.conftest import Env
from tests.scheduler.helpers import (
    Procs,
    assert_try_1_ended_before_its_retry,
    dag_runs,
    dag_source,
    finished_runs,
    jobs,
    log_rows,
    probe_lines,
    probed_work,
    task_instances,
)
from tests.scheduler.test_retry_or_failure_callback import callback_kinds_dag, calls_made
from tests.secrets.conftest import new_key, use_keys

FAN_OUT = 20


def _trigger(env: Env, dag_id: str) -> str:
    assert env.run_cli("dags", "list").exit_code == 0  # parse the file so it can be triggered
    result = env.run_cli("dags", "trigger", dag_id)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def _consuming(env: Env) -> set[str]:
    """Workers whose consumer answers (their queues are known): they take messages from now on."""
    status = env.run_cli("celery", "status", "--output", "json")
    return (
        {row["worker"] for row in json.loads(status.output) if row["queues"]}
        if status.exit_code == 0
        else set()
    )


def test_fan_out_runs_on_both_workers_and_every_log_reads_back(
    celery_env: Env, procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = celery_env
    use_keys(env, monkeypatch, new_key())
    tokens = tmp_path / "tokens.txt"
    env.write_dag(
        "fan.py",
        token_dag(
            "fan",
            tokens,
            f"""
            import json
            from minisched import BaseHook, Variable

            def begin(task_id, try_number):
                mark(task_id, try_number)
                return {{"region": Variable.get("region"), "host": BaseHook.get_connection("dwh").host}}

            def work(task_id, try_number, ti):
                mark(task_id, try_number)
                settings = json.dumps(ti.xcom_pull(task_ids="start"), sort_keys=True)
                print("got", settings, "password", BaseHook.get_connection("dwh").password)
                time.sleep(0.3)  # long enough that one worker cannot take them all

            with DAG("fan", schedule=None, start_date=START):
                start = PythonOperator(task_id="start", python_callable=begin)
                for number in range({FAN_OUT}):
                    start >> PythonOperator(task_id=f"t{{number:02d}}", python_callable=work)
            """,
        ),
    )
    # Variables, connections and XCom are read in the Celery workers' tries as in the local ones.
    for args in (
        ("variables", "set", "region", "eu-west-1"),
        ("connections", "add", "dwh", "--conn-uri", "postgres://etl:s3cret-pw9@db.example:5432/dwh"),
    ):
        assert env.run_cli(*args).exit_code == 0
    run_id = _trigger(env, "fan")
    names = [unique("w1"), unique("w2")]
    workers = [start_worker(procs, name, tmp_path / f"logs-{name}") for name in names]
    wait_for(lambda: _consuming(env) >= set(names), workers, "both workers to consume their queue")
    scheduler = procs.scheduler()
    everyone = [scheduler, *workers]
    (run,) = wait_for(lambda: finished_runs("fan"), everyone, "the fan-out run to end")
    assert run.state == "success", outputs(*everyone)

    tis = task_instances("fan", run_id)
    assert len(tis) == FAN_OUT + 1
    assert {ti.state for ti in tis} == {"success"}
    assert {ti.hostname for ti in tis} == set(names), "both workers ran tries"
    assert set(token_counts(tokens).values()) == {1} and len(token_counts(tokens)) == FAN_OUT + 1
    # The logs are on the workers' disks only; `tasks logs` reads them from anywhere.
    assert not list(env.logs_folder.rglob("attempt=*.log"))
    for ti in tis:
        result = env.run_cli("tasks", "logs", "fan", run_id, ti.task_id)
        assert result.exit_code == 0, result.output
        assert f"hello {ti.task_id} try 1" in result.output
        assert "Try finished: outcome=success" in result.output
        if ti.task_id != "start":
            assert 'got {"host": "db.example", "region": "eu-west-1"} password ***' in result.output
            assert "s3cret-pw9" not in result.output

    status = env.run_cli("celery", "status", "--output", "json")
    assert status.exit_code == 0, status.output
    rows = {row["worker"]: row for row in json.loads(status.output)}
    assert set(names) <= rows.keys()
    assert rows[names[0]]["queues"] == env.vars["MINISCHED_DEFAULT_QUEUE"]

    stop = env.run_cli("celery", "stop", "--hostname", names[0])
    assert stop.exit_code == 0, stop.output
    assert workers[0].wait() == 0, workers[0].output()
    assert scheduler.stop() == 0, scheduler.output()
    assert {job.state for job in jobs("celery_worker") if job.hostname == names[0]} == {"success"}


def test_the_same_message_delivered_twice_runs_the_try_once(
    celery_env: Env, procs: Procs, tmp_path: Path
) -> None:
    import redis

    env = celery_env
    parked = unique("parked")  # no worker listens here until both copies are in place
    tokens = tmp_path / "tokens.txt"
    env.write_dag(
        "once.py",
        token_dag(
            "once",
            tokens,
            f"""
            with DAG("once", schedule=None, start_date=START):
                PythonOperator(task_id="only", python_callable=mark, queue={parked!r})
            """,
        ),
    )
    run_id = _trigger(env, "once")
    scheduler = procs.scheduler()
    client = redis.Redis.from_url(env.vars["MINISCHED_CELERY_BROKER_URL"])
    (raw,) = wait_for(lambda: client.lrange(parked, 0, -1), [scheduler], "the try's message on the broker")
    # The broker redelivers it: same body, same Celery task id, a new delivery tag.
    copy = json.loads(raw)
    copy["properties"]["delivery_tag"] = str(uuid.uuid4())
    client.lpush(parked, json.dumps(copy))
    assert client.llen(parked) == 2

    workers = [
        start_worker(procs, unique(f"w{n}"), tmp_path / f"logs{n}", "--queues", parked) for n in (1, 2)
    ]
    everyone = [scheduler, *workers]
    (run,) = wait_for(lambda: finished_runs("once"), everyone, "the run to end")
    assert run.state == "success"
    wait_for(lambda: client.llen(parked) == 0, everyone, "both copies consumed")
    wait_for(lambda: "message dropped" in outputs(*workers), everyone, "the second copy to be dropped")
    assert token_counts(tokens) == {"only 1": 1}, outputs(*everyone)
    (ti,) = task_instances("once", run_id)
    assert (ti.state, ti.try_number) == ("success", 1)
    assert len(log_rows("once", event="running")) == 1


def test_a_worker_killed_mid_try_is_retried_on_the_other(
    celery_env: Env, procs: Procs, tmp_path: Path
) -> None:
    env = celery_env
    tokens = tmp_path / "tokens.txt"
    env.write_dag(
        "victim.py",
        token_dag(
            "victim",
            tokens,
            """
            def slow(task_id, try_number):
                mark(task_id, try_number)
                if try_number == 1:
                    time.sleep(120)  # its worker is SIGKILLed meanwhile

            with DAG("victim", schedule=None, start_date=START):
                PythonOperator(task_id="slow", python_callable=slow, retries=1, retry_delay=0)
            """,
        ),
    )
    run_id = _trigger(env, "victim")
    first, second = unique("first"), unique("second")
    doomed = start_worker(procs, first, tmp_path / "logs1")
    scheduler = procs.scheduler()
    wait_for(
        lambda: token_counts(tokens)["slow 1"], [scheduler, doomed], "try 1 to start on the first worker"
    )
    # The running try's log is readable from here while it runs (the worker ships it as it goes).
    wait_for(
        lambda: "hello slow try 1" in env.run_cli("tasks", "logs", "victim", run_id, "slow").output,
        [scheduler, doomed],
        "the live log of try 1",
    )
    survivor = start_worker(procs, second, tmp_path / "logs2")
    os.kill(doomed.pid, signal.SIGKILL)

    everyone = [scheduler, doomed, survivor]
    (run,) = wait_for(lambda: finished_runs("victim"), everyone, "the run to end after the retry")
    assert run.state == "success", outputs(*everyone)
    (ti,) = task_instances("victim", run_id)
    assert (ti.try_number, ti.hostname) == (2, second)
    assert token_counts(tokens) == {"slow 1": 1, "slow 2": 1}
    assert [job.state for job in jobs("celery_worker") if job.hostname == first] == ["failed"]
    first_try = env.run_cli("tasks", "logs", "victim", run_id, "slow", "--try", "1")
    assert "hello slow try 1" in first_try.output and "died before it finished" in first_try.output


def test_one_of_two_schedulers_killed_the_other_finishes_its_work(
    celery_env: Env, procs: Procs, tmp_path: Path
) -> None:
    env = celery_env
    tokens = tmp_path / "tokens.txt"
    env.write_dag(
        "pair.py",
        token_dag(
            "pair",
            tokens,
            """
            def work(task_id, try_number):
                mark(task_id, try_number)
                time.sleep(0.5)

            with DAG("pair", schedule=None, start_date=START, default_args={"retries": 1, "retry_delay": 0}):
                start = PythonOperator(task_id="start", python_callable=mark)
                for number in range(8):
                    start >> PythonOperator(task_id=f"t{number}", python_callable=work)
            """,
        ),
    )
    run_id = _trigger(env, "pair")
    worker = start_worker(procs, unique("w"), tmp_path / "logs", "--concurrency", "2")
    doomed, survivor = procs.scheduler(), procs.scheduler()
    everyone = [doomed, survivor, worker]
    wait_for(lambda: len(token_counts(tokens)) >= 3, everyone, "some tries to run")
    os.kill(doomed.pid, signal.SIGKILL)

    (run,) = wait_for(lambda: finished_runs("pair"), everyone, "the run to end")
    assert run.state == "success", outputs(*everyone)
    assert {ti.state for ti in task_instances("pair", run_id)} == {"success"}
    counts = token_counts(tokens)
    assert set(counts.values()) == {1}, f"a try ran twice: {counts}"
    assert {line.split()[0] for line in counts} == {"start", *(f"t{n}" for n in range(8))}
    # The tries it had queued ran anyway (their messages outlive it); its job is recovered by the other.
    wait_for(
        lambda: [job.state for job in jobs("scheduler") if job.pid == doomed.pid] == ["failed"],
        everyone,
        "the killed scheduler's job to be declared dead",
    )
    assert survivor.stop() == 0, survivor.output()


def test_broker_restarted_empty_the_queued_timeout_retries_and_the_run_finishes(
    celery_env: Env, procs: Procs, tmp_path: Path
) -> None:
    env = celery_env
    own = OwnRedis(require_redis_server(), free_port())
    own.start()
    try:
        _broker_lost(env, procs, tmp_path, own)
    finally:
        own.stop()


def _broker_lost(env: Env, procs: Procs, tmp_path: Path, own: OwnRedis) -> None:
    tokens = tmp_path / "tokens.txt"
    env.write_dag(
        "lost.py",
        token_dag(
            "lost",
            tokens,
            """
            # Retries to spare: a try queued again before the new worker consumes may time out too.
            with DAG("lost", schedule=None, start_date=START, default_args={"retries": 4, "retry_delay": 0}):
                for number in range(3):
                    PythonOperator(task_id=f"t{number}", python_callable=mark)
            """,
        ),
    )
    run_id = _trigger(env, "lost")
    broker = {"MINISCHED_CELERY_BROKER_URL": own.url, "MINISCHED_TASK_QUEUED_TIMEOUT": "4"}
    scheduler = procs.scheduler(extra_env=broker)
    wait_for(
        lambda: [ti.state for ti in task_instances("lost", run_id)] == ["queued"] * 3,
        [scheduler],
        "3 tries queued (no worker yet)",
    )
    queue = env.vars["MINISCHED_DEFAULT_QUEUE"]
    wait_for(lambda: _messages_waiting(own.url, queue) == 3, [scheduler], "the 3 messages in the broker")
    own.stop()  # every message is lost with it
    own.start()
    worker = start_worker(procs, unique("w"), tmp_path / "logs", extra_env=broker)
    everyone = [scheduler, worker]
    (run,) = wait_for(lambda: finished_runs("lost"), everyone, "the run to end", timeout=120)
    assert run.state == "success", outputs(*everyone)
    tis = task_instances("lost", run_id)
    assert {ti.state for ti in tis} == {"success"} and all(ti.try_number >= 2 for ti in tis)
    # Each task ran once, under its last try number; every earlier try timed out in the queue.
    assert token_counts(tokens) == {f"{ti.task_id} {ti.try_number}": 1 for ti in tis}
    timeouts = [row for row in log_rows("lost", event="up_for_retry") if "queued longer" in (row.extra or "")]
    assert len(timeouts) == sum(ti.try_number - 1 for ti in tis)
    assert scheduler.stop() == 0, scheduler.output()


def _messages_waiting(url: str, queue: str) -> int:
    """Messages on `queue` no worker took yet (kombu's Redis transport keeps a queue as a list)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=False)
def test_the_celery_executor_refuses_sqlite(env: Env) -> None:
    env.vars["MINISCHED_CELERY_BROKER_URL"] = "redis://127.0.0.1:1/0"
    for args in (("scheduler", "--executor", "celery", "--num-runs", "1"), ("celery", "worker")):
        result = env.run_process(*args)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines() == [
            "Error: the celery executor needs PostgreSQL: workers on other machines cannot share a SQLite "
            "file; set MINISCHED_DB_URL=postgresql://... or use MINISCHED_EXECUTOR=local"
        ]
    assert dag_runs("anything") == []


def test_a_worker_calls_the_retry_callback_while_max_tries_allow_then_the_failure_one(
    celery_env: Env, procs: Procs, tmp_path: Path
) -> None:
    env = celery_env
    calls = tmp_path / "calls.txt"
    env.write_dag("kinds.py", callback_kinds_dag(calls))
    _trigger(env, "kinds")
    name = unique("w")
    worker = start_worker(procs, name, tmp_path / "logs")
    wait_for(lambda: _consuming(env) >= {name}, [worker], "the worker to consume its queue")
    scheduler = procs.scheduler()
    wait_for(lambda: finished_runs("kinds"), [scheduler, worker], "the run to end")
    assert calls_made(calls) == ["retry 1", "failure 2"]
    cleared = env.run_cli("tasks", "clear", "kinds", "-y")
    assert cleared.exit_code == 0, cleared.output
    wait_for(lambda: len(calls_made(calls)) == 4, [scheduler, worker], "the cleared tries")
    assert calls_made(calls) == ["retry 1", "failure 2", "retry 3", "failure 4"]
    assert scheduler.stop() == 0, scheduler.output()


def test_a_stopped_workers_running_try_is_killed_before_its_retry_runs(
    celery_env: Env, procs: Procs, tmp_path: Path
) -> None:
    """The keeper of a worker's try process kills the try once the worker's lease runs out (its main process,
    which heartbeats, is SIGSTOPped): the try never overlaps its retry on the other worker."""
    env = celery_env
    probe = tmp_path / "probe.txt"
    body = """
        with DAG("stopped", schedule=None, start_date=START):
            PythonOperator(task_id="loop", python_callable=work, retries=1, retry_delay=0)
        """
    env.write_dag("stopped.py", dag_source(probed_work(probe) + textwrap.dedent(body)))
    run_id = _trigger(env, "stopped")
    first, second = unique("first"), unique("second")
    doomed = start_worker(procs, first, tmp_path / "logs1")
    scheduler = procs.scheduler()
    wait_for(lambda: "alive 1" in probe_lines(probe), [scheduler, doomed], "try 1 to run on the first worker")
    survivor = start_worker(procs, second, tmp_path / "logs2")
    os.kill(doomed.pid, signal.SIGSTOP)
    everyone = [scheduler, doomed, survivor]
    try:
        (run,) = wait_for(lambda: finished_runs("stopped"), everyone, "the run to end after the retry")
    finally:
        os.kill(doomed.pid, signal.SIGCONT)
    assert_try_1_ended_before_its_retry(probe)
    (ti,) = task_instances("stopped", run_id)
    assert (run.state, ti.state, ti.try_number, ti.hostname) == ("success", "success", 2, second)
