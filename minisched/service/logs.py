"""A try's log read in pages by byte offset, so a 100 MB log is never loaded whole.

The continuation token is the next offset, base64url-encoded JSON: a client passes it back to read on
(or to follow a try that is still writing). Tampering with it can only move the offset.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from minisched.service.errors import InvalidInput, NotFound
from minisched.service.task_instances import get_task_instance

DEFAULT_PAGE_BYTES = 256 * 1024
MAX_PAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class LogPage:
    content: str
    offset: int
    next_offset: int
    size: int
    continuation_token: str

    @property
    def at_end(self) -> bool:
        return self.next_offset >= self.size


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInput(
            "invalid continuation token: pass back the one the previous page returned"
        ) from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("invalid continuation token: pass back the one the previous page returned")
    return offset


def log_file(
    dag_id: str, run_id: str, task_id: str, try_number: int, *, session: Session, map_index: int = -1
) -> Path:
    """The path of a try's log; NotFound when the task instance has had no such try."""
    from minisched.scheduler.executors.logs import log_path_for
    from minisched.settings import get_settings

    ti, _ = get_task_instance(dag_id, run_id, task_id, session=session, map_index=map_index)
    if try_number < 1 or try_number > ti.try_number:
        tries = f"has had {ti.try_number} tries" if ti.try_number else "has not run yet"
        raise NotFound(f"task {task_id!r} of run {run_id!r} {tries}; there is no try {try_number}")
    return log_path_for(get_settings().logs_folder, dag_id, run_id, task_id, try_number, map_index=map_index)


def read_page(path: Path, *, offset: int = 0, max_bytes: int = DEFAULT_PAGE_BYTES) -> LogPage:
    """Up to `max_bytes` from `offset`, cut at a whole UTF-8 character; an absent file reads as empty
    (the try has not written anything yet)."""
    if max_bytes < 1 or max_bytes > MAX_PAGE_BYTES:
        raise InvalidInput(f"max_bytes must be between 1 and {MAX_PAGE_BYTES}, got {max_bytes}")
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = min(offset, size)
            handle.seek(start)
            chunk = handle.read(max_bytes)
    except FileNotFoundError:
        size, start, chunk = 0, 0, b""
    text, used = _decode_whole_chars(chunk)
    end = start + used
    return LogPage(
        content=text, offset=start, next_offset=end, size=size, continuation_token=encode_token(end)
    )


def read_tail(path: Path, *, max_bytes: int = DEFAULT_PAGE_BYTES) -> LogPage:
    """The last `max_bytes` at most, from the start of a line when the page holds one: what a log view
    opens on. Its `offset` says how much comes before; nothing before it is read."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return read_page(path, offset=0, max_bytes=max_bytes)
    start = max(0, size - max_bytes)
    if start > 0:
        base = start - 1  # one byte back: a page that starts right after a newline keeps that line
        with path.open("rb") as handle:
            handle.seek(base)
            chunk = handle.read(max_bytes + 1)
        newline = chunk.find(b"\n")
        if newline != -1 and base + newline + 1 < size:
            start = base + newline + 1
        else:  # one long line: start at a whole UTF-8 character
            cut = 1
            while cut < len(chunk) and 0x80 <= chunk[cut] < 0xC0:
                cut += 1
            start = base + cut
    return read_page(path, offset=start, max_bytes=max_bytes)


def _decode_whole_chars(chunk: bytes) -> tuple[str, int]:
    """Decode, leaving out a character cut in two at the end (the next page starts with it)."""
    for cut in range(min(3, len(chunk)) + 1):
        head = chunk[: len(chunk) - cut]
        try:
            return head.decode("utf-8"), len(head)
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:
                return chunk.decode("utf-8", errors="replace"), len(chunk)
    return chunk.decode("utf-8", errors="replace"), len(chunk)
