"""Helpers for the Celery tests: a Redis to use, workers as real processes, tokens that count tries."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import textwrap
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.scheduler.helpers import Proc, Procs, dag_source, wait_until

REDIS_ENV = "MINISCHED_TEST_REDIS_URL"
#: Read once at import: the `env` fixture clears every MINISCHED_* variable of the test process.
_REDIS_URL = os.environ.get(REDIS_ENV) or None
#: Fast failure detection: workers and schedulers beat twice a second, are dead after 5 s of silence.
FAST_ENV = {"MINISCHED_SCHEDULER_HEARTBEAT": "0.5", "MINISCHED_ZOMBIE_THRESHOLD": "5"}


def require_redis_url() -> str:
    url = _REDIS_URL
    if url is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {REDIS_ENV} is not set: the Celery tests must run in CI")
        pytest.skip(f"Redis not available: set {REDIS_ENV} (bash .ci/run starts one)")
    return url


def require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    return path


@dataclass
class OwnRedis:
    """A throwaway redis-server on a free loopback port, without persistence: stopping it loses
    every message, as a crashed broker without persistence does."""

    binary: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=30, message=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    """Names of queues and workers are unique per test, so tests sharing one Redis never meet."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def token_dag(dag_id: str, tokens: Path, body: str) -> str:
    """A DAG file whose `mark` appends `task_id try_number` to `tokens` (O_APPEND: one line per try)."""
    return dag_source(
        textwrap.dedent(
            f"""
            TOKENS = {str(tokens)!r}

            def mark(task_id, try_number):
                fd = os.open(TOKENS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                try:
                    os.write(fd, f"{{task_id}} {{try_number}}\\n".encode())
                finally:
                    os.close(fd)
                print("hello", task_id, "try", try_number)
            """
        )
        + textwrap.dedent(body)
    )


def token_counts(tokens: Path) -> Counter[str]:
    if not tokens.exists():
        return Counter()
    return Counter(line for line in tokens.read_text().splitlines() if line)


def start_worker(
    procs: Procs, name: str, logs_folder: Path, *args: str, extra_env: dict[str, str] | None = None
) -> Proc:
    return procs.start(
        "celery",
        "worker",
        "--hostname",
        name,
        *args,
        extra_env={**FAST_ENV, "MINISCHED_LOGS_FOLDER": str(logs_folder), **(extra_env or {})},
    )


def outputs(*procs: Proc) -> str:
    return "\n".join(f"--- {' '.join(p.args)}\n{p.output()}" for p in procs)


def wait_for(predicate, procs: list[Proc], message: str, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    try:
        return wait_until(predicate, timeout=timeout, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{outputs(*procs)}") from None


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
