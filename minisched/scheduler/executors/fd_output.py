"""A try's fds 1 and 2: a pipe into its LogSink, so what child processes and C code write there is
masked and capped like everything written through Python.

One pipe and one reader thread per process, made on first use and kept: a warm worker pays for them
once, not per try. The thread only wakes when something was written to the fds. Writes through
Python (`Capture.write`) first drain what is already in the pipe, under the same lock as the thread,
so the log keeps the order in which output was produced (a child's lines before the `print` that
follows the child's exit). At the end of a try the pipe is drained into the try's sink; what a
leftover process writes later (it is about to be killed) is dropped, never given to the next try.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterator

from minisched.scheduler.executors.log_sink import LogSink

_CHUNK = 1 << 16


class Capture:
    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self._sink: LogSink | None = None
        self._thread = threading.Thread(target=self._serve, name="minisched-try-output", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def feeding(self, sink: LogSink) -> Iterator[None]:
        """Output that reaches the pipe goes to `sink` for the duration; all of it, when it ends."""
        with self.lock:
            self._drain()  # a previous try's leftovers wrote this: not ours
            self._sink = sink
        try:
            yield
        finally:
            with self.lock:
                self._drain()
                self._sink = None

    def write(self, data: bytes) -> None:
        """Python-level output of the try: after whatever reached the fds before it."""
        with self.lock:
            if self.pid == os.getpid():  # a forked child has no reader: the pipe is its parent's
                self._drain()
            if self._sink is not None:
                self._sink.feed(data)

    def _serve(self) -> None:
        while True:
            select.select([self.read_fd], [], [])
            with self.lock:
                self._drain()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_fd, _CHUNK)
            except BlockingIOError:
                return
            if not chunk:  # cannot happen while we hold the write end; never spin on it
                return
            if self._sink is not None:
                with contextlib.suppress(OSError):  # a full disk costs the output, not the try
                    self._sink.feed(chunk)


_current: Capture | None = None


def capture() -> Capture:
    """This process's capture (a forked child makes its own on first use)."""
    global _current
    if _current is None or _current.pid != os.getpid():
        _current = Capture()
    return _current


def _after_fork_in_child() -> None:
    # The lock may have been held by the reader thread, which does not exist in the child.
    if _current is not None:
        _current.lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
