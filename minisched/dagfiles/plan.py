"""Which DAG files changed since the last refresh: a stat of the folder, one SELECT, and no import.

A refresh speaks for its own folder only. A file known from another folder (`dags list --dags-folder
OTHER`, a second scheduler with another folder) is left alone while it exists on disk: it still counts
as a claimant of its dag ids, and it is forgotten only once it is deleted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.models import DagFile


@dataclass(frozen=True)
class FileStat:
    fileloc: str
    size: int
    mtime: float


@dataclass(frozen=True)
class KnownFile:
    """A `dag_file` row: the file as the previous refresh saw it, and the dag ids it defined."""

    content_hash: str
    size: int
    mtime: float
    dag_ids: tuple[str, ...]


@dataclass
class Plan:
    """What must happen to bring the DB in line with the folder."""

    present: dict[str, FileStat]  # the folder's DAG files, in walk order
    known: dict[str, KnownFile]
    to_import: dict[str, str] = field(default_factory=dict)  # fileloc -> content hash
    touched: list[FileStat] = field(default_factory=list)  # same content, new stat
    removed: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)  # known files of other folders, still on disk

    @property
    def unchanged(self) -> bool:
        return not (self.to_import or self.touched or self.removed)


def list_dag_files(dags_folder: Path) -> list[str]:
    """Every `.py` file under the folder (names starting with `_` or `.` are skipped, as in the README)."""
    folder = Path(os.path.abspath(dags_folder))
    if folder.is_file():
        return [str(folder)] if _is_dag_file_name(folder.name) else []
    found: list[str] = []
    seen_dirs: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen_dirs:  # a symlink loop
            dirs.clear()
            continue
        seen_dirs.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        found.extend(os.path.join(root, name) for name in sorted(files) if _is_dag_file_name(name))
    return sorted(found, key=lambda path: Path(path).relative_to(folder).parts)


def _is_dag_file_name(name: str) -> bool:
    return name.endswith(".py") and not name.startswith(("_", "."))


def plan_refresh(dags_folder: Path, *, session: Session) -> Plan:
    """Which files changed since the last refresh: a stat of the folder and one SELECT."""
    present = stat_files(list_dag_files(dags_folder))
    return make_plan(dags_folder, present, load_known(session=session))


def stat_files(paths: Iterable[str]) -> dict[str, FileStat]:
    stats: dict[str, FileStat] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:  # removed between listing and stat
            continue
        stats[path] = FileStat(path, st.st_size, st.st_mtime)
    return stats


def load_known(*, session: Session) -> dict[str, KnownFile]:
    rows = session.execute(
        select(DagFile.fileloc, DagFile.content_hash, DagFile.size, DagFile.mtime, DagFile.dag_ids)
    )
    return {
        fileloc: KnownFile(content_hash, size, mtime, tuple(dag_ids or ()))
        for fileloc, content_hash, size, mtime, dag_ids in rows
    }


def make_plan(
    dags_folder: Path,
    present: dict[str, FileStat],
    known: dict[str, KnownFile],
    hashes: Mapping[str, str] | None = None,
) -> Plan:
    """Compare stat first (cheap), then the content hash, so a `touch` of a good file costs no import.

    A touched file that defined no DAG (it failed, or it is a helper) is imported again: touching a
    file retries an import that failed for an outside reason (a package installed since, say).
    `hashes` are content hashes read moments ago (by the plan being checked again), not read twice.
    """
    plan = Plan(present=present, known=known)
    for fileloc, stat in present.items():
        previous = known.get(fileloc)
        if previous is not None and (previous.size, previous.mtime) == (stat.size, stat.mtime):
            continue
        content_hash = (hashes or {}).get(fileloc) or _content_hash(fileloc)
        if content_hash is None:
            continue
        if previous is not None and previous.content_hash == content_hash and previous.dag_ids:
            plan.touched.append(stat)
        else:
            plan.to_import[fileloc] = content_hash
    inside = _inside(dags_folder)
    for fileloc in known:
        if fileloc in present:
            continue
        if inside(fileloc) or not os.path.exists(fileloc):
            plan.removed.append(fileloc)
        else:
            plan.elsewhere.append(fileloc)
    return plan


def _inside(dags_folder: Path) -> Callable[[str], bool]:
    folder = os.path.abspath(dags_folder)
    prefix = folder.rstrip(os.sep) + os.sep
    return lambda fileloc: fileloc == folder or fileloc.startswith(prefix)


def _content_hash(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
