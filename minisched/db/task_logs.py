"""Try logs kept in the metadata database, for tries that ran on another machine's disk.

A remote worker ships its try's log file here while the try runs (complete lines, about once a
second) and the rest in the same transaction that records the try's result. `tasks logs` (and the
web UI) read it from here wherever the try ran; the worker's disk is never reached over the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from minisched.models import TaskLog, table_of

_LOG = table_of(TaskLog)
_SHIP = insert(_LOG)
#: The most read from the log file per shipment while the try runs; the rest goes next time.
MAX_CHUNK = 1 << 20


@dataclass(frozen=True)
class TryKey:
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    map_index: int = -1


def ship_log(
    path: str | Path,
    key: TryKey,
    *,
    offset: int,
    hostname: str,
    session: Session,
    now: datetime,
    final: bool,
) -> int:
    """Store what the file holds beyond `offset`; returns the new offset. Until `final`, only whole
    lines are shipped, so a line (or a UTF-8 character) is never split between two pieces."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            data = log.read() if final else log.read(MAX_CHUNK)
    except OSError:
        return offset
    if not final:
        data = data[: data.rfind(b"\n") + 1]
    if not data:
        return offset
    session.execute(
        _SHIP,
        {
            "dag_id": key.dag_id,
            "run_id": key.run_id,
            "task_id": key.task_id,
            "map_index": key.map_index,
            "try_number": key.try_number,
            "chunk_offset": offset,
            "content": data.decode("utf-8", errors="replace"),
            "hostname": hostname,
            "timestamp": now,
        },
    )
    return offset + len(data)


def shipped_log(key: TryKey, *, session: Session) -> str | None:
    """The log shipped so far for this try, or None when no worker shipped any (it ran locally)."""
    pieces = session.scalars(
        select(_LOG.c.content)
        .where(
            _LOG.c.dag_id == key.dag_id,
            _LOG.c.run_id == key.run_id,
            _LOG.c.task_id == key.task_id,
            _LOG.c.map_index == key.map_index,
            _LOG.c.try_number == key.try_number,
        )
        .order_by(_LOG.c.chunk_offset)
    ).all()
    return "".join(pieces) if pieces else None


def read_try_log(
    key: TryKey, *, local_file: Path, session: Session, shipped_only: bool = False
) -> str | None:
    """A try's log wherever it ran: what its worker shipped, and the local file (which, on the machine
    that ran the try, is the same log, perhaps a little further along). None if there is neither, or
    (`shipped_only`) if no worker shipped any."""
    shipped = shipped_log(key, session=session)
    if shipped is None and shipped_only:
        return None
    try:
        local: str | None = local_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        local = None
    if shipped is None or local is None:
        return shipped if local is None else local
    # Lines a scheduler added after the try (e.g. "the worker died") sit only in its own copy.
    return local if local.startswith(shipped) else shipped + local
