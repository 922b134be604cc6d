"""A load generator that is not the bottleneck: several client processes, each with one keep-alive
connection, sending GETs back to back for a fixed time and counting the answers (a
closed loop: as fast as the server answers; `http_pace` offers a fixed rate instead).

Processes, not threads: one Python thread would saturate long before a server. Each request is
cheap to send and read (`http_wire`: a pre-built request, the status and Content-Length parsed, the
body read into a reused buffer), since the clients share the server's cores.
Run as `python -m benchmarks.http_load`, it is one client: the job as a JSON line on stdin, `ready`
on stdout once connected, then the start time on stdin, and the counts on stdout at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from benchmarks.http_wire import ResponseReader, connect, request_bytes

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Load:
    requests: int
    errors: int
    seconds: float
    server_cpu_seconds: float
    """CPU time the server process used meanwhile (user + system)."""
    client_cpu_seconds: float = 0.0
    """CPU time the client processes used sending and reading (their loop, not their start-up)."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        """Requests per second of server CPU: what one worker sustains on a core of its own."""
        return self.requests / self.server_cpu_seconds if self.server_cpu_seconds else 0.0

    @property
    def server_ms_per_request(self) -> float:
        total = self.requests + self.errors
        return 1000 * self.server_cpu_seconds / total if total else float("nan")

    @property
    def client_ms_per_request(self) -> float:
        """The load generator's CPU per request: taken from the cores the server shares with it."""
        total = self.requests + self.errors
        return 1000 * self.client_cpu_seconds / total if total else float("nan")


@dataclass(frozen=True)
class Server:
    port: int
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(job: Mapping[str, Any], started: Callable[[], float]) -> tuple[int, int, float]:
    """One client: connect, wait for the start time `started()` gives, then GET until `seconds` later.
    A response that is not whole (short read, bad head) is an error, and the connection is reopened."""
    request = request_bytes(job["path"], job["headers"])
    sock = connect(job["port"], blocking=True)
    reader = ResponseReader(sock)
    start = started()
    stop = start + job["seconds"]
    done = errors = 0
    time.sleep(max(0.0, start - time.time()))
    cpu = time.process_time()
    while time.time() < stop:
        try:
            sock.sendall(request)
            status = reader.read_response()
        except (OSError, ValueError):
            errors += 1
            sock.close()
            sock = connect(job["port"], blocking=True)
            reader = ResponseReader(sock)
            continue
        if status == 200:
            done += 1
        else:
            errors += 1
    cpu = time.process_time() - cpu
    sock.close()
    return done, errors, cpu


def hammer(
    server: Server,
    path: str,
    headers: Mapping[str, str],
    *,
    clients: int = 4,
    seconds: float = 5.0,
    on_start: Callable[[], None] | None = None,
) -> Load:
    """GET `path` from `clients` processes for `seconds`; all start at once, when all are connected
    (`on_start` is called then)."""
    job = {"port": server.port, "path": path, "headers": dict(headers), "seconds": seconds}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.http_load"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        for _ in range(clients)
    ]
    for process in processes:
        _send(process, json.dumps(job))
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("a load client failed to start")
    cpu = start_and_time(server, processes, seconds, on_start)
    outputs = [_output(process) for process in processes]
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a load client failed; its output: {outputs}")
    counts_each = [json.loads(output) for output in outputs]
    requests, errors = sum(p[0] for p in counts_each), sum(p[1] for p in counts_each)
    return Load(requests, errors, seconds, cpu, sum(p[2] for p in counts_each))


def start_and_time(
    server: Server,
    clients: list[subprocess.Popen[bytes]],
    seconds: float,
    on_start: Callable[[], None] | None,
) -> float:
    """Tell the ready `clients` when to start, wait out their `seconds`, and return the server's CPU
    seconds meanwhile."""
    start = time.time() + 0.2
    for process in clients:
        _send(process, str(start))
    time.sleep(max(0.0, start - time.time()))
    cpu_before = server.cpu_seconds()
    if on_start is not None:
        on_start()
    time.sleep(max(0.0, start + seconds - time.time()))
    return server.cpu_seconds() - cpu_before


def _send(process: subprocess.Popen[bytes], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line.encode() + b"\n")
    process.stdin.flush()


def _output(process: subprocess.Popen[bytes]) -> bytes:
    assert process.stdout is not None
    output = process.stdout.read()
    process.wait(120)
    return output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def webserver(environ: Mapping[str, str], ready_path: str, headers: Mapping[str, str]) -> Iterator[Server]:
    """`minisched webserver` (one uvicorn worker) in a subprocess; yields its port once it answers."""
    port = free_port()
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "minisched", "webserver", "--port", str(port)],
            env=dict(environ),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_served(server, port, ready_path, headers, output)
            yield Server(port, server.pid)
        finally:
            server.terminate()
            server.wait(30)


def _wait_until_served(
    server: subprocess.Popen[bytes], port: int, path: str, headers: Mapping[str, str], output: IO[bytes]
) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path, headers=dict(headers))
            status = connection.getresponse().status
            connection.close()
        except OSError:
            status = None
        if status == 200:
            return
        if server.poll() is not None or time.monotonic() > deadline:
            output.seek(0)
            detail = output.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"minisched webserver did not answer {path} (status {status}):\n{detail}")
        time.sleep(0.1)


def _started_by_parent() -> float:
    print("ready", flush=True)
    return float(sys.stdin.readline())


if __name__ == "__main__":
    print(json.dumps(_client(json.loads(sys.stdin.readline()), _started_by_parent)))
