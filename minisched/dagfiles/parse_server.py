"""The DAG file processor's server: imports minisched once, then forks children that import DAG files.

`DagFileProcessor` (processor.py) starts it as `python -m minisched.dagfiles.parse_server`, in a session
of its own. It warms up on a DAG of its own, then forks from that warm, single-threaded state (a
forkserver), so a child's `os.getppid()` names this server, never the scheduler.

A child imports a batch of up to BATCH_MAX files of one folder, one after the other: the first import in
a fresh fork pays for copying hundreds of pages, the next ones do not, so 100 changed files cost a few
forks rather than 100. Files of one batch share an interpreter, as Airflow's DagBag does; so that no file
carries the blame for another, a file that fails after others ran in the same child is imported again
in a child of its own before its error is recorded, and a child stops at the first failure.

Protocol: requests on stdin, one JSON object per line, `{"path": ..., "folder": ...}`. Replies on the
original stdout, one JSON object per line: `{"assigned": [paths]}` before a child is forked for them, then
`{"done": path, "dags": {...}}` or `{"done": path, "error": "..."}`, with `"output"` holding what the
file printed (capped); `{"requeued": path}` when an assigned file goes back to the queue. Anything
else that writes to fd 1 here lands on stderr, never in the protocol.

The server enforces the timeout per file (SIGKILL of the child's process group) and turns every way a
child can end into one error naming the file and the cause. It exits when stdin closes or its parent
goes away.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from minisched.dagfiles.parse_worker import FORK_COPY_EXIT, run_child

#: What the file printed is kept up to this many bytes per file; the rest is counted and dropped.
OUTPUT_CAP = 64 * 1024
_READ_CHUNK = 65536
#: Files one child imports at most, one after the other: a fork per file would cost more than the import.
BATCH_MAX = 32
_PARENT_CHECK_INTERVAL = 1.0


@dataclass
class Child:
    """One forked child and the batch of files it imports, one after the other."""

    pid: int
    paths: list[str]
    folder: str
    started: int = 0  # how many of `paths` it has started
    current: str | None = None  # started and not done
    deadline: float = float("inf")  # of the current file
    result: bytearray = field(default_factory=bytearray)  # an incomplete message line
    output: bytearray = field(default_factory=bytearray)  # printed since the last file was done
    output_dropped: int = 0
    timed_out: bool = False


class ParseServer:
    def __init__(self, *, timeout: float, memory_limit_mb: int, processes: int, reply_fd: int) -> None:
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.processes = processes
        self.reply_fd = reply_fd
        self.parent = os.getppid()
        self.queue: deque[dict[str, Any]] = deque()
        self.queue_folder = ""
        self.children: dict[int, Child] = {}
        self.by_fd: dict[int, tuple[Child, str]] = {}
        self.selector = selectors.DefaultSelector()
        self.requests = bytearray()
        self.stdin_open = True
        self._wake_r, wake_w = os.pipe()
        for fd in (self._wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up fd makes select() return on exit
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ)
        self.selector.register(self._wake_r, selectors.EVENT_READ)

    def serve(self) -> None:
        try:
            while self.stdin_open and os.getppid() == self.parent:
                self._start_children()
                self._wait_for_events()
                self._end_children()
        finally:
            self._kill_all()

    # -- children -------------------------------------------------------------------------------------
    def _start_children(self) -> None:
        while self.queue and len(self.children) < self.processes:
            batch = self._next_batch()
            # Told before the fork: if a file of the batch kills this server, the client knows the suspects.
            self._reply({"assigned": batch})
            child = self._fork(batch, self.queue_folder)
            self.children[child.pid] = child

    def _next_batch(self) -> list[str]:
        """Up to BATCH_MAX files of one folder, shared fairly among the processes; `alone` ones alone."""
        first = self.queue.popleft()
        self.queue_folder = first["folder"]
        batch = [first["path"]]
        if first.get("alone"):
            return batch
        size = min(BATCH_MAX, -(-(len(self.queue) + 1) // self.processes))
        while self.queue and len(batch) < size:
            following = self.queue[0]
            if following.get("alone") or following["folder"] != first["folder"]:
                break
            batch.append(self.queue.popleft()["path"])
        return batch

    def _fork(self, paths: list[str], folder: str) -> Child:
        result_r, result_w = os.pipe()
        output_r, output_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                self._become_child(result_w, output_w)
                run_child(paths, folder, result_fd=3, memory_limit_mb=self.memory_limit_mb)
            finally:
                os._exit(70)
        with contextlib.suppress(OSError):  # the child sets it too; whoever is first wins the race
            os.setpgid(pid, pid)
        os.close(result_w)
        os.close(output_w)
        child = Child(pid, paths, folder)
        for fd, kind in ((result_r, "result"), (output_r, "output")):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
            self.by_fd[fd] = (child, kind)
        return child

    def _become_child(self, result_w: int, output_w: int) -> None:
        """Only the two pipes survive: stdin is /dev/null, stdout and stderr go to the output pipe."""
        signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output_w, 1)
        os.dup2(output_w, 2)
        os.dup2(result_w, 3, inheritable=False)
        os.closerange(4, _max_fd())

    def _wait_for_events(self) -> None:
        deadlines = [child.deadline for child in self.children.values() if not child.timed_out]
        wait = _PARENT_CHECK_INTERVAL
        if deadlines:
            wait = max(0.0, min(wait, min(deadlines) - time.monotonic()))
        for key, _ in self.selector.select(wait):
            fd = int(key.fd)
            if fd == 0:
                self._read_requests()
            elif fd == self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(fd, 4096)
            elif fd in self.by_fd:  # not closed meanwhile: a result line drains its child's output first
                self._read_child(fd)

    def _read_requests(self) -> None:
        try:
            chunk = os.read(0, _READ_CHUNK)
        except BlockingIOError:
            return
        if not chunk:  # the client is gone: nobody would read the results
            self.stdin_open = False
            return
        self.requests += chunk
        *lines, rest = self.requests.split(b"\n")
        self.requests = bytearray(rest)
        self.queue.extend(json.loads(line) for line in lines if line.strip())

    def _read_child(self, fd: int) -> None:
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        self._take(fd, chunk)

    def _take(self, fd: int, chunk: bytes) -> None:
        child, kind = self.by_fd[fd]
        if not chunk:
            self._close_fd(fd)
        elif kind == "result":
            child.result += chunk
            *lines, rest = child.result.split(b"\n")
            child.result = bytearray(rest)
            for line in lines:
                if line.strip():
                    self._on_line(child, bytes(line))
        else:
            room = max(0, OUTPUT_CAP - len(child.output))
            child.output += chunk[:room]
            child.output_dropped += max(0, len(chunk) - room)

    def _on_line(self, child: Child, line: bytes) -> None:
        """A file's result goes on as the child wrote it (no decoding here) unless output must join it."""
        if line.startswith(b'{"done"'):
            self._read_output_now(child)  # flushed before the result was written: it is in the pipe
        if line.startswith(b'{"done"') and not child.output and not child.output_dropped:
            child.current, child.deadline = None, float("inf")
            self._write(line + b"\n")
            return
        self._on_message(child, json.loads(line))

    def _read_output_now(self, child: Child) -> None:
        for fd in [fd for fd, (owner, kind) in self.by_fd.items() if owner is child and kind == "output"]:
            while fd in self.by_fd:
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    break
                self._take(fd, chunk)

    def _on_message(self, child: Child, message: dict[str, Any]) -> None:
        if "started" in message:
            child.started += 1
            child.current = message["started"]
            child.deadline = time.monotonic() + self.timeout
        elif "again" in message:  # it failed after other files: import it again, alone
            child.current, child.deadline = None, float("inf")
            self._requeue([message["again"]], child.folder, alone=True)
            child.output.clear()
        else:
            child.current, child.deadline = None, float("inf")
            self._reply(self._with_output(child, message))

    def _with_output(self, child: Child, message: dict[str, Any]) -> dict[str, Any]:
        """What the file printed goes with its reply (capped)."""
        output = child.output.decode("utf-8", errors="replace")
        if child.output_dropped:
            output += f"\n[{child.output_dropped} more bytes of output from {message['done']} dropped]\n"
        child.output.clear()
        child.output_dropped = 0
        return {**message, "output": output} if output else message

    def _end_children(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if not child.timed_out and child.current is not None and now >= child.deadline:
                child.timed_out = True
                _kill_group(child.pid)
            if _has_exited(child.pid):
                self._finish(child)

    def _finish(self, child: Child) -> None:
        _kill_group(child.pid)  # leftovers in its group; the unreaped child still holds the group id
        _, status = os.waitpid(child.pid, 0)
        for fd in [fd for fd, (owner, _) in self.by_fd.items() if owner is child]:
            self._drain(fd)  # only its own: a number it closed before may belong to a newer child now
        del self.children[child.pid]
        self._requeue(child.paths[child.started :], child.folder)
        path = child.current
        if path is None:
            return
        if child.started > 1 and not child.timed_out:  # an earlier file may have caused it: alone again
            self._requeue([path], child.folder, alone=True)
            return
        error = self._ending_error(child, path, status)
        self._reply(self._with_output(child, {"done": path, "error": error}))

    def _requeue(self, paths: list[str], folder: str, *, alone: bool = False) -> None:
        """Back to the front of the queue; the client hears that they are not being imported now."""
        self.queue.extendleft({"path": path, "folder": folder, "alone": alone} for path in reversed(paths))
        for path in paths:
            self._reply({"requeued": path})

    def _ending_error(self, child: Child, path: str, status: int) -> str:
        if child.timed_out:
            return timeout_message(path, self.timeout)
        return exit_message(path, status, self.memory_limit_mb)

    def _drain(self, fd: int) -> None:
        """Read what the exited child left; a pipe still held open by something it started is cut."""
        while fd in self.by_fd:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                self._close_fd(fd)
                return
            self._take(fd, chunk)

    def _close_fd(self, fd: int) -> None:
        self.selector.unregister(fd)
        del self.by_fd[fd]
        os.close(fd)

    def _kill_all(self) -> None:
        for child in self.children.values():
            _kill_group(child.pid)
        for child in self.children.values():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)

    def _reply(self, message: dict[str, Any]) -> None:
        self._write((json.dumps(message) + "\n").encode())

    def _write(self, line: bytes) -> None:
        data = memoryview(line)
        while data:
            data = data[os.write(self.reply_fd, data) :]


def timeout_message(path: str, timeout: float) -> str:
    return (
        f"{path}: timed out after {timeout:g} s: the import did not finish and was killed; "
        "move slow work out of the top level, or raise MINISCHED_DAG_FILE_PROCESSOR_TIMEOUT"
    )


def exit_message(path: str, status: int, memory_limit_mb: int) -> str:
    """Why a child ended without a result: an exit code, a fork copy, or a signal."""
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code == FORK_COPY_EXIT:
            return f"{path}: exited with code {code} during import (the exit code of a stopped fork copy)"
        return f"{path}: exited with code {code} during import (os._exit or exit in native code)"
    signum = os.WTERMSIG(status)
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    hint = (
        f"; the memory limit is {memory_limit_mb} MiB" if signum in (signal.SIGSEGV, signal.SIGABRT) else ""
    )
    return f"{path}: killed by {name} during import{hint}"


def _has_exited(pid: int) -> bool:
    """Without reaping it: the group id stays reserved until `_finish` has killed the leftovers."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the file may have left its group; then the child alone
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _max_fd() -> int:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536


_WARM_UP_DAG = """\
from datetime import datetime, timedelta, timezone
from minisched import DAG, BashOperator, PythonOperator, task

with DAG("warm_up", schedule="0 * * * *", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
         default_args={"retries": 1, "retry_delay": timedelta(seconds=1)}):
    @task
    def report():
        pass

    BashOperator(task_id="a", bash_command="echo") >> PythonOperator(task_id="b", python_callable=print)
    report()
"""


def _warm_up() -> None:
    """Parse a small DAG of our own here, once: every fork then starts with the imports, caches and
    lazily built state a DAG file needs, instead of paying for them per file. Then freeze what exists,
    so that a child's garbage collector does not copy those pages."""
    import gc
    import tempfile

    from minisched.dagfiles.parse_worker import load_libc, parse_file

    load_libc()
    with tempfile.TemporaryDirectory(prefix="minisched-warm-up-") as folder:
        path = os.path.join(folder, "warm_up.py")
        with open(path, "w", encoding="utf-8") as file:
            file.write(_WARM_UP_DAG)
        json.dumps(parse_file(path, folder, memory_limit_mb=0))
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="minisched.dagfiles.parse_server")
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--memory-limit-mb", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    args = parser.parse_args(argv)
    _warm_up()
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # a stray print can never corrupt the replies
    sys.stdout = sys.stderr
    server = ParseServer(
        timeout=args.timeout,
        memory_limit_mb=args.memory_limit_mb,
        processes=args.processes,
        reply_fd=reply_fd,
    )
    with contextlib.suppress(OSError, KeyboardInterrupt):  # its client went away: nothing left to answer
        server.serve()


if __name__ == "__main__":
    main()
