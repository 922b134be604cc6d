"""An open-loop load at a fixed rate: request k is due at start + k / rate, whether or not the earlier
ones were answered. A slow server cannot lower the load it is offered, as it does with a closed loop
(`http_load.hammer`), and latency is counted from when a request was due, so a request that waited
in the client for a connection counts its wait (no coordinated omission).

Each request takes an idle keep-alive connection, or opens one (up to `MAX_CONNECTIONS`; past that, a
due request is counted as missed, not sent late). One client process, one thread on epoll, with a
request built once and responses read as `http_wire` does: it shares the server's cores, so it must
cost little per request (benchmarks 8 and 10 report its CPU per request). Run as
`python -m benchmarks.http_pace`, it is that client, driven over stdin/stdout as `http_load`'s
clients are.
"""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.http_load import REPO, Server, _output, _send, start_and_time
from benchmarks.http_wire import ResponseReader, connect, request_bytes

MAX_CONNECTIONS = 64


@dataclass(frozen=True)
class Paced:
    offered_per_second: float
    answered: int
    errors: int
    missed: int
    """Requests not sent: every connection was busy when they were due."""
    seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float
    client_cpu_seconds: float
    """CPU time the client process used in its paced loop (not its start-up)."""
    answered_at: list[float]
    """Wall time (`time.time()`) of each status-200 answer."""

    @property
    def per_second(self) -> float:
        """Answers (status 200) per second: equals the offered rate when the server keeps up."""
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile_ms(self, share: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def server_cpu_share(self) -> float:
        """The server's CPU seconds per second: 1.0 is one core busy."""
        return self.server_cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def server_ms_per_request(self) -> float:
        sent = self.answered + self.errors
        return 1000 * self.server_cpu_seconds / sent if sent else float("nan")

    @property
    def client_ms_per_request(self) -> float:
        """The load generator's CPU per request sent: taken from the cores the server shares with it."""
        sent = self.answered + self.errors
        return 1000 * self.client_cpu_seconds / sent if sent else float("nan")

    def answered_between(self, start: float, end: float) -> float:
        """Answers per second between two wall times (`time.time()`): the load during a sub-window."""
        inside = sum(1 for at in self.answered_at if start <= at <= end)
        return inside / (end - start) if end > start else 0.0

    def summary(self) -> str:
        p95, p99 = self.percentile_ms(0.95), self.percentile_ms(0.99)
        return (
            f"{self.per_second:.0f}/{self.offered_per_second:.0f} req/s answered, latency p50 "
            f"{self.median_ms:.1f} ms p95 {p95:.1f} ms p99 {p99:.1f} ms, {self.errors} errors, "
            f"{self.missed} missed, server {self.server_cpu_share:.2f} cores "
            f"({self.server_ms_per_request:.2f} ms/request), "
            f"client {self.client_ms_per_request:.3f} ms/request"
        )


def pace(
    server: Server,
    path: str,
    headers: Mapping[str, str],
    *,
    rate: float,
    seconds: float,
    on_start: Callable[[], None] | None = None,
) -> Paced:
    """GET `path` at `rate` per second for `seconds` from one client process; `on_start` is called
    when the first request is due."""
    job = {"port": server.port, "path": path, "headers": dict(headers), "rate": rate, "seconds": seconds}
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.http_pace"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    _send(process, json.dumps(job))
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        raise RuntimeError("the paced load client failed to start")
    cpu = start_and_time(server, [process], seconds, on_start)
    output = _output(process)
    if process.returncode:
        raise RuntimeError(f"the paced load client failed; its output: {output!r}")
    counts = json.loads(output)
    return Paced(
        rate,
        counts["answered"],
        counts["errors"],
        counts["missed"],
        seconds,
        counts["latencies_ms"],
        cpu,
        counts["cpu_seconds"],
        [counts["start"] + ms / 1000 for ms in counts["answered_at_ms"]],
    )


class _Connection:
    __slots__ = ("due", "reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = ResponseReader(sock)
        self.due = -1.0
        """When its request in flight was due (`perf_counter`); -1 while idle."""


class _Client:
    """Keep-alive connections to one server, and the counts of one paced run: one thread, epoll."""

    def __init__(self, job: Mapping[str, Any]) -> None:
        self.request = request_bytes(job["path"], job["headers"])
        self.port = int(job["port"])
        self.selector = selectors.DefaultSelector()
        self.idle: list[_Connection] = []
        self.open = self.busy = 0
        self.answered = self.errors = self.missed = 0
        self.latencies_ms: list[float] = []
        self.answered_at: list[float] = []

    def connect(self) -> None:
        connection = _Connection(connect(self.port, blocking=False))
        self.selector.register(connection.sock, selectors.EVENT_READ, connection)
        self.idle.append(connection)
        self.open += 1

    def close(self, connection: _Connection) -> None:
        self.selector.unregister(connection.sock)
        connection.sock.close()
        self.open -= 1

    def send(self, due: float) -> None:
        """Send the request due at `due` on an idle connection, opening one if none is idle."""
        if not self.idle:
            if self.open >= MAX_CONNECTIONS:
                self.missed += 1
                return
            self.connect()
        connection = self.idle.pop()
        try:
            sent = connection.sock.send(self.request)
        except OSError:
            sent = 0
        if sent != len(self.request):
            self.errors += 1
            self.close(connection)
            return
        connection.due = due
        self.busy += 1

    def receive(self, timeout: float) -> None:
        """Read what arrived within `timeout` seconds, and count the responses it completed."""
        for key, _ in self.selector.select(timeout):
            connection: _Connection = key.data
            try:
                status = connection.reader.feed()
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                if connection.due < 0:  # an idle connection the server closed: not a request's error
                    self.idle.remove(connection)
                else:
                    self.errors += 1
                    self.busy -= 1
                self.close(connection)
                continue
            if status is None:
                continue
            self.latencies_ms.append((time.perf_counter() - connection.due) * 1000)
            if status == 200:
                self.answered += 1
                self.answered_at.append(time.time())
            else:
                self.errors += 1
            connection.due = -1.0
            self.busy -= 1
            self.idle.append(connection)


def _paced(job: Mapping[str, Any], started: Callable[[], float]) -> dict[str, Any]:
    client = _Client(job)
    for _ in range(4):
        client.connect()
    start_wall = started()
    time.sleep(max(0.0, start_wall - time.time()))
    start = time.perf_counter()
    cpu = time.process_time()
    interval = 1.0 / float(job["rate"])
    total = int(float(job["rate"]) * float(job["seconds"]))
    k = 0
    while k < total:
        now = time.perf_counter()
        while k < total and start + k * interval <= now:
            client.send(start + k * interval)
            k += 1
        client.receive(max(0.0, start + k * interval - time.perf_counter()) if k < total else 0.0)
    drain_until = time.perf_counter() + 30
    while client.busy and time.perf_counter() < drain_until:
        client.receive(drain_until - time.perf_counter())
    return {
        "start": start_wall,
        "cpu_seconds": time.process_time() - cpu,
        "answered_at_ms": [round((at - start_wall) * 1000, 1) for at in client.answered_at],
        "answered": client.answered,
        "errors": client.errors + client.busy,
        "missed": client.missed,
        "latencies_ms": [round(ms, 3) for ms in client.latencies_ms],
    }


def _started_by_parent() -> float:
    print("ready", flush=True)
    return float(sys.stdin.readline())


if __name__ == "__main__":
    print(json.dumps(_paced(json.loads(sys.stdin.readline()), _started_by_parent)))
