"""What a try prints, on its way into the log file: secrets masked, size capped.

Everything a try writes -- print, sys.stdout/stderr, logging, a BashOperator's command output, and
through `fd_output`'s pipe whatever child processes and C code write to fds 1/2 -- is fed here.
Masking works line by line (a URL written in two calls is still one line): the secrets registered at
run time (`masking`), then passwords in URLs; a line longer than MAX_LINE is masked in pieces. Past
`max_bytes` the file gets one truncation marker, and the rest is counted and discarded: the try goes
on, it just cannot fill the disk. A forked copy of the try's process that writes through its own copy
of the sink is capped once the try has ended.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

from minisched.masking import mask_registered
from minisched.scheduler.executors.logs import open_log_fd, stamped
from minisched.settings import mask_secrets

if TYPE_CHECKING:
    from minisched.scheduler.executors.fd_output import Capture

MAX_LINE = 64 * 1024


class LogSink:
    def __init__(self, log_path: str | os.PathLike[str], max_bytes: int) -> None:
        # A bare descriptor: every write goes straight to the file anyway (a running try's log is read
        # while it grows), and a buffered file object cost 4 system calls more to open.
        self._fd = open_log_fd(log_path)
        self._max_bytes = self._room = max_bytes
        self._partial = b""
        self.discarded = 0

    def fileno(self) -> int:
        return self._fd

    def feed(self, data: bytes) -> None:
        """Take the next bytes of output; complete lines are written now, a partial one waits."""
        buffered = self._partial + data
        end = buffered.rfind(b"\n") + 1
        if end == 0 and len(buffered) > MAX_LINE:
            end = len(buffered)
        self._partial = buffered[end:]
        if end:
            self._write(buffered[:end])

    def close(self) -> None:
        """Write what is left, and say how much was discarded."""
        try:
            if self._partial:
                self._write(self._partial + b"\n")
                self._partial = b""
            if self.discarded:
                note = f"{self.discarded} more bytes of output were discarded"
                self._write_all(stamped(note).encode())
            self._trim_direct_writes()
        finally:
            os.close(self._fd)

    def _trim_direct_writes(self) -> None:
        """Cap what forked copies of the try's process wrote through their own copy of the sink."""
        size = os.fstat(self._fd).st_size
        if size <= self._max_bytes:  # the usual case: no marker to build (a timestamp) for the slack
            return
        slack = 4 * len(self._marker()) + MAX_LINE
        if size > self._max_bytes + slack:
            os.ftruncate(self._fd, self._max_bytes)
            note = stamped(f"{size - self._max_bytes} bytes written by forked processes were discarded")
            self._write_all(b"\n" + self._marker() + note.encode())

    def _write(self, raw: bytes) -> None:
        if self.discarded:
            self.discarded += len(raw)
            return
        text = mask_secrets(mask_registered(raw.decode("utf-8", "surrogateescape")))
        masked = text.encode("utf-8", "surrogateescape")
        if len(masked) <= self._room:
            self._room -= len(masked)
            self._write_all(masked)
        else:
            kept = masked[: self._room]
            self.discarded = len(masked) - len(kept)
            self._write_all(kept + (b"\n" if kept and not kept.endswith(b"\n") else b"") + self._marker())

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _marker(self) -> bytes:
        message = (
            f"Log truncated: this try wrote more than {self._max_bytes} bytes "
            "(MINISCHED_TASK_LOG_MAX_BYTES); the rest of its output is discarded"
        )
        return stamped(message).encode()


class LogWriter(io.TextIOBase):
    """A text stream into a try's sink: what sys.stdout, sys.stderr and logging write to during a try.

    Its `fileno()` is the write end of the try's fd pipe, so a child process given `sys.stdout` writes
    where fds 1/2 go."""

    def __init__(self, capture: Capture) -> None:
        super().__init__()
        self._capture = capture
        self._fileno = capture.write_fd

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fileno

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._capture.write(text.encode("utf-8", "backslashreplace"))
        return len(text)
