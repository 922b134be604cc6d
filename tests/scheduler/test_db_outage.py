"""PostgreSQL stopped and started under a running scheduler, on a throwaway server the test owns.

Every task appends `start <task>` and `end <task>` to a probe file, so the tests count executions.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.conftest import BACKENDS, Env
from tests.scheduler.helpers import Procs, probe_dag, tokens, wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param != "postgresql":
        pytest.skip("an outage of a database server: PostgreSQL only")
    return str(request.param)


@dataclass
class Server:
    url: str
    data_dir: Path

    def _pg_ctl(self, *args: str) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or [
            shutil.which("pg_ctl") or "pg_ctl"
        ]
        command = " ".join([candidates[-1], "-D", str(self.data_dir), *args])
        as_postgres = (
            ["su", "postgres", "-s", "/bin/bash", "-c", command]
            if os.getuid() == 0
            else ["bash", "-c", command]
        )
        subprocess.run(as_postgres, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1].split("/", 1)[0]
        options = f"-p {port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-w", "-t", "60", "-l", str(self.data_dir / "server.log"), "-o", f"'{options}'", "start")

    def query(self, sql: str) -> list[Any]:
        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(sql)))
        finally:
            engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server() -> Iterator[Server]:
    """A PostgreSQL server of the test's own (not the shared one), on a fresh data directory."""
    data_dir = Path(f"/tmp/minisched-outage-{uuid.uuid4().hex[:10]}")  # readable by the postgres user
    port = _free_port()
    environment = {**os.environ, "MINISCHED_PG_PORT": str(port), "MINISCHED_PG_DATA": str(data_dir)}
    url = subprocess.run(
        ["bash", str(REPO / ".ci" / "start-postgres")],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    running = Server(url, data_dir)
    try:
        yield running
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            running.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _run_state(server: Server) -> str | None:
    try:
        rows = server.query("SELECT state FROM dag_run WHERE dag_id = 'outage'")
    except OperationalError:
        return None
    return rows[0][0] if rows else None


def test_scheduler_rides_out_a_database_outage_and_records_everything(
    env: Env, procs: Procs, server: Server, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.txt"
    env.write_dag("outage.py", probe_dag("outage", probe, tasks=12, seconds=1.0, retries=0))
    on_server = {"MINISCHED_DB_URL": server.url, "MINISCHED_DB_OUTAGE_GRACE": "300"}
    assert procs.run("initdb", extra_env=on_server).popen.returncode == 0
    scheduler = procs.scheduler(extra_env=on_server)
    wait_until(lambda: tokens(probe, "start"), timeout=120, message="a task to start")

    server.stop()
    ended_before = sum(tokens(probe, "end").values())
    # Running tries go on while the database is down.
    wait_until(
        lambda: sum(tokens(probe, "end").values()) >= ended_before + 2, timeout=120, message="tries to end"
    )
    wait_until(lambda: "unreachable" in scheduler.output(), timeout=120, message="the outage to be noticed")
    assert scheduler.popen.poll() is None, scheduler.output()
    server.start()

    try:
        wait_until(lambda: _run_state(server) == "success", timeout=180, message="the run to succeed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; scheduler output:\n{scheduler.output()}") from None
    assert scheduler.stop() == 0, scheduler.output()
    assert "reachable again" in scheduler.output()
    starts = tokens(probe, "start")
    states = dict(server.query("SELECT task_id, state FROM task_instance WHERE dag_id = 'outage'"))
    assert set(starts) == set(states) and max(starts.values()) == 1, starts
    assert set(states.values()) == {"success"}


def test_past_the_grace_the_scheduler_stops_and_the_next_one_records_the_real_outcomes(
    env: Env, procs: Procs, server: Server, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.txt"
    # A try still running when the stopped scheduler's lease runs out (2.5 s after its last beat) is
    # killed, as the fence requires, and retried: hence one retry.
    env.write_dag("outage.py", probe_dag("outage", probe, tasks=12, seconds=1.0, retries=1))
    on_server = {"MINISCHED_DB_URL": server.url, "MINISCHED_DB_OUTAGE_GRACE": "2"}
    assert procs.run("initdb", extra_env=on_server).popen.returncode == 0
    first = procs.scheduler(extra_env={**on_server, "MINISCHED_ZOMBIE_THRESHOLD": "5"})
    wait_until(lambda: tokens(probe, "start"), timeout=120, message="a task to start")

    server.stop()
    assert first.wait(timeout=180) == 1
    output = first.output()
    assert "unreachable for more than 2s" in output and "Traceback" not in output, output
    server.start()

    second = procs.scheduler(extra_env={**on_server, "MINISCHED_ZOMBIE_THRESHOLD": "5"})
    wait_until(lambda: _run_state(server) == "success", timeout=180, message="the run to succeed")
    assert second.stop() == 0, second.output()
    starts = tokens(probe, "start")
    states = dict(server.query("SELECT task_id, state FROM task_instance WHERE dag_id = 'outage'"))
    # Tries that ended while nobody could record them were recorded from their records, not run again;
    # a task ran twice only if its first try was killed (no `end`) before its retry began.
    assert set(starts) == set(states) and set(tokens(probe, "end").values()) == {1}, starts
    lines = probe.read_text().splitlines()
    for task_id in [task_id for task_id, count in starts.items() if count > 1]:
        own = [line.split()[0] + line.split()[2] for line in lines if line.split()[1] == task_id]
        assert own == ["start1", "start2", "end2"], (task_id, own)
    assert set(states.values()) == {"success"}
