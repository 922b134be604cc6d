"""Reading a try's log back for `tasks logs`: in chunks (never the whole file in memory), from the
last N lines, and following it while the try runs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import BinaryIO

CHUNK = 64 * 1024
#: How often `follow` looks for new output and asks whether the try still runs (seconds).
FOLLOW_INTERVAL = 0.5

Write = Callable[[bytes], object]


def tail_offset(log: BinaryIO, lines: int) -> int:
    """Where the last `lines` lines of `log` start, found by reading backwards chunk by chunk."""
    end = log.seek(0, os.SEEK_END)
    if lines <= 0:
        return end
    # A newline that ends the file closes the last line; it does not start another one.
    log.seek(max(0, end - 1))
    last = end - 1 if log.read(1) == b"\n" else end
    seen = 0
    position = last
    while position > 0:
        start = max(0, position - CHUNK)
        log.seek(start)
        block = log.read(position - start)
        index = len(block)
        while (index := block.rfind(b"\n", 0, index)) != -1:
            seen += 1
            if seen == lines:
                return start + index + 1
        position = start
    return 0


def copy_from(log: BinaryIO, offset: int, write: Write) -> int:
    """Write what `log` holds from `offset` on; returns the offset reached."""
    log.seek(offset)
    while chunk := log.read(CHUNK):
        write(chunk)
    return log.tell()


def follow(log: BinaryIO, offset: int, write: Write, running: Callable[[], bool]) -> None:
    """Write `log` from `offset`, then what is appended, until `running()` says the try ended."""
    offset = copy_from(log, offset, write)
    while running():
        time.sleep(FOLLOW_INTERVAL)
        offset = copy_from(log, offset, write)
    copy_from(log, offset, write)  # what the try wrote before it ended
