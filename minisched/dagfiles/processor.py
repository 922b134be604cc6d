"""The client side of the DAG file processor: hand files to a parse server, collect their serialized DAGs.

The scheduler and the CLI never import a DAG file themselves. They give paths to `DagFileProcessor`,
which starts `parse_server` on first use (a session of its own, so a terminal's Ctrl-C or a file's
`os.kill(0, ...)` do not reach the caller) and reads its replies without blocking. What comes back is
JSON: dag ids and their serialized form, or one error line naming the file and the cause.

The server itself may die: a file can kill or stop its parent. Then every file the server had handed
to a child and not finished is a suspect (the server names them before it forks). A single suspect is
the culprit and gets the error. Several are imported again one at a time, so the next death names the
culprit. A server that is stopped (Linux: its state in /proc), or silent for longer than the timeout
plus a grace, is treated as dead. Three deaths in a row with no progress give every waiting file an
error rather than retrying forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seconds the server may stay silent beyond the import timeout before it is declared hung.
SILENCE_GRACE = 10.0
MAX_FRUITLESS_RESTARTS = 3
_READ_CHUNK = 65536


@dataclass(frozen=True)
class ParsedFile:
    """One file's outcome: its DAGs in serialized form (dag_id -> dict), or why it failed."""

    fileloc: str
    dags: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class _Server:
    popen: subprocess.Popen[bytes]
    stdin_fd: int
    stdout_fd: int
    outgoing: bytearray = field(default_factory=bytearray)
    incoming: bytearray = field(default_factory=bytearray)
    last_heard: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ProcessorLimits:
    timeout: float = 30.0
    memory_limit_mb: int = 2048
    processes: int = 2

    @classmethod
    def from_settings(cls) -> ProcessorLimits:
        from minisched.settings import get_settings

        settings = get_settings()
        return cls(
            timeout=settings.dag_file_processor_timeout,
            memory_limit_mb=settings.dag_file_processor_memory_limit_mb,
            processes=settings.dag_file_processor_processes,
        )


class DagFileProcessor:
    """Imports DAG files in a parse server's children; `submit`, then `collect` until not `busy`."""

    def __init__(self, limits: ProcessorLimits | None = None) -> None:
        self.limits = limits or ProcessorLimits.from_settings()
        self._pending: deque[tuple[str, str]] = deque()  # (path, folder) not yet sent
        self._suspects: deque[tuple[str, str]] = deque()  # imported again one at a time
        self._sent: dict[str, str] = {}  # path -> folder, sent and not done
        self._assigned: set[str] = set()  # assigned to a child of the server and not done
        self._solo = False
        self._done: list[ParsedFile] = []
        self._holder: list[_Server | None] = [None]  # shared with the finalizer
        self._fruitless_restarts = 0
        weakref.finalize(self, _stop_server, self._holder)

    @property
    def _server(self) -> _Server | None:
        return self._holder[0]

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._suspects or self._sent or self._done)

    def submit(self, paths: Iterable[str], folder: str) -> None:
        self._pending.extend((path, folder) for path in paths)

    def parse(self, paths: Iterable[str], folder: str) -> dict[str, ParsedFile]:
        """Blocking: every file's outcome (the CLI's way)."""
        self.submit(paths, folder)
        results: dict[str, ParsedFile] = {}
        while self.busy:
            results.update((parsed.fileloc, parsed) for parsed in self.collect(wait=0.5))
        return results

    def collect(self, wait: float = 0.0) -> list[ParsedFile]:
        """What finished since the last call; waits up to `wait` seconds for a reply (0: never blocks)."""
        self._dispatch()
        if self._server is not None:
            self._exchange(wait)
            self._check_server()
            self._dispatch()
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        _stop_server(self._holder)

    # -- sending ------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Normal files go all at once (the server queues them); a suspect goes alone."""
        if self._solo and self._sent:
            return
        self._solo = False
        batch: list[tuple[str, str]] = []
        if self._suspects:
            if not self._sent:
                batch, self._solo = [self._suspects.popleft()], True
        else:
            batch, self._pending = list(self._pending), deque()
        if not batch:
            return
        server = self._ensure_server()
        if not self._sent:
            server.last_heard = time.monotonic()  # its silence counts from now, not from its idle time
        for path, folder in batch:
            self._sent[path] = folder
            server.outgoing += (json.dumps({"path": path, "folder": folder}) + "\n").encode()

    def _ensure_server(self) -> _Server:
        server = self._holder[0]
        if server is None:
            server = self._holder[0] = _start_server(self.limits)
        return server

    # -- receiving ----------------------------------------------------------------------------------
    def _exchange(self, wait: float) -> None:
        """Send what is queued and read replies, until one file is done or `wait` has passed."""
        import select

        server = self._server
        assert server is not None
        deadline = time.monotonic() + wait
        while True:
            _flush(server)
            writing = [server.stdin_fd] if server.outgoing else []
            remaining = max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select(
                [server.stdout_fd], writing, [], min(remaining, 0.05) if writing else remaining
            )
            if readable and not self._read(server):
                return  # the server closed its end: `_check_server` sees why
            if self._done or time.monotonic() >= deadline:
                return

    def _read(self, server: _Server) -> bool:
        """Handle every complete reply there is; False once the server's stdout is closed."""
        while True:
            try:
                chunk = os.read(server.stdout_fd, _READ_CHUNK)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            server.last_heard = time.monotonic()
            server.incoming += chunk
            *lines, rest = server.incoming.split(b"\n")
            server.incoming = bytearray(rest)
            for line in lines:
                if line.strip():
                    self._handle(json.loads(line))

    def _handle(self, message: dict[str, Any]) -> None:
        if "assigned" in message:
            self._assigned.update(message["assigned"])
            return
        if "requeued" in message:
            self._assigned.discard(message["requeued"])
            return
        path = message["done"]
        self._sent.pop(path, None)
        self._assigned.discard(path)
        self._fruitless_restarts = 0
        output = message.get("output")
        if output:
            sys.stderr.write(output)
            sys.stderr.flush()
        self._done.append(ParsedFile(path, message.get("dags") or {}, message.get("error")))

    # -- server death -------------------------------------------------------------------------------
    def _check_server(self) -> None:
        server = self._server
        assert server is not None
        exit_code = server.popen.poll()
        silent_for = time.monotonic() - server.last_heard
        hung = bool(self._sent) and (silent_for > self.limits.timeout + SILENCE_GRACE or _stopped(server))
        if exit_code is None and not hung:
            return
        cause = _death_cause(exit_code) if exit_code is not None else "stopped answering"
        self._drain_before_death(server)
        _stop_server(self._holder, grace=0.0)  # it is dead or hung: no waiting for it
        self._after_death(cause)

    def _drain_before_death(self, server: _Server) -> None:
        """Replies already written before the server died still count."""
        with contextlib.suppress(OSError):
            while chunk := os.read(server.stdout_fd, _READ_CHUNK):
                server.incoming += chunk
        for line in bytes(server.incoming).split(b"\n"):
            with contextlib.suppress(ValueError):
                if line.strip():
                    self._handle(json.loads(line))

    def _after_death(self, cause: str) -> None:
        suspects = [(path, self._sent[path]) for path in self._sent if path in self._assigned]
        waiting = [(path, folder) for path, folder in self._sent.items() if path not in self._assigned]
        self._sent.clear()
        self._assigned.clear()
        self._solo = False
        self._pending.extendleft(reversed(waiting))
        if not suspects and not waiting:
            return  # it died idle: the next file starts a new one
        if len(suspects) == 1:
            path = suspects[0][0]
            message = f"{path}: the DAG file processor {cause} while importing this file"
            self._done.append(ParsedFile(path, error=message))
            return
        self._suspects.extend(suspects)
        self._fruitless_restarts += 1
        if self._fruitless_restarts >= MAX_FRUITLESS_RESTARTS:
            self._give_up(cause)

    def _give_up(self, cause: str) -> None:
        for path, _ in [*self._suspects, *self._pending]:
            message = f"{path}: not imported: the DAG file processor {cause} {MAX_FRUITLESS_RESTARTS} times"
            self._done.append(ParsedFile(path, error=message))
        self._suspects.clear()
        self._pending.clear()
        self._fruitless_restarts = 0


def _flush(server: _Server) -> None:
    while server.outgoing:
        try:
            written = os.write(server.stdin_fd, server.outgoing)
        except (BlockingIOError, BrokenPipeError):
            return
        del server.outgoing[:written]


def _stopped(server: _Server) -> bool:
    """Linux: the server is stopped (SIGSTOP, by a file or anyone); elsewhere the silence check covers it."""
    try:
        stat = Path(f"/proc/{server.popen.pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] in {"T", "t"}


def _death_cause(exit_code: int) -> str:
    if exit_code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-exit_code).name}"
        return f"was killed by signal {-exit_code}"
    return f"exited with code {exit_code}"


def _start_server(limits: ProcessorLimits) -> _Server:
    package_root = str(Path(__file__).resolve().parents[2])
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    popen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minisched.dagfiles.parse_server",
            f"--timeout={limits.timeout}",
            f"--memory-limit-mb={limits.memory_limit_mb}",
            f"--processes={limits.processes}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": python_path},
        start_new_session=True,
    )
    assert popen.stdin is not None and popen.stdout is not None
    stdin_fd, stdout_fd = popen.stdin.fileno(), popen.stdout.fileno()
    os.set_blocking(stdin_fd, False)
    os.set_blocking(stdout_fd, False)
    return _Server(popen, stdin_fd, stdout_fd)


def _stop_server(holder: list[_Server | None], grace: float = 2.0) -> None:
    """Close its stdin (it exits and kills its children); SIGKILL its group after `grace` seconds."""
    server = holder[0]
    if server is None:
        return
    holder[0] = None
    popen = server.popen
    for stream in (popen.stdin, popen.stdout):
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()
