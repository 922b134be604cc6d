"""Load a DAG folder into the metadata DB: import only the files that changed, record why bad ones fail.

`refresh_dag_folder` is what the scheduler runs every loop and what `dags` commands run first, so the
unchanged case is the hot path: one `stat` per file, one SELECT, no writes, no imports.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from minisched.dagfiles import importer, sync
from minisched.dagfiles.importer import ImportResult
from minisched.models import DagFile, DagModel, ImportError_, table_of
from minisched.models.types import utcnow

if TYPE_CHECKING:
    from minisched.authoring.dag import DAG

#: pg_advisory_xact_lock key of the DAG-folder refresh (any constant unique within minisched).
REFRESH_LOCK_KEY = 0x6D696E6973636864  # "minischd"


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did; all zero except `files_seen` when nothing changed."""

    files_seen: int = 0
    files_imported: int = 0
    dags_synced: int = 0
    dags_deactivated: int = 0
    errors: int = 0


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

    present: dict[str, FileStat]
    known: dict[str, KnownFile]
    to_import: dict[str, str] = field(default_factory=dict)  # fileloc -> content hash
    touched: list[FileStat] = field(default_factory=list)  # same content, new stat
    removed: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (self.to_import or self.touched or self.removed)


def list_dag_files(dags_folder: Path) -> list[str]:
    """Every `.py` file under the folder (CONTRACT §3: names starting with `_` or `.` are skipped)."""
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


def refresh_dag_folder(dags_folder: Path, *, session: Session, now: datetime | None = None) -> RefreshReport:
    """Bring `dag_file`, `dag`, `serialized_dag` and `import_error` in line with the folder's files.

    All in the caller's transaction. The scheduler instead runs the three steps below separately, so
    that no transaction (nor SQLite's write lock) stays open while DAG files are imported.
    """
    plan = plan_refresh(dags_folder, session=session)
    if not plan.unchanged and _serialize_refreshes(session):
        plan = make_plan(plan.present, _load_known(session=session))  # another process may have just done it
    if plan.unchanged:
        return RefreshReport(files_seen=len(plan.present))
    results = import_changed(plan, dags_folder)
    return apply_refresh(plan, results, dags_folder, session=session, now=now, locked=True)


def plan_refresh(dags_folder: Path, *, session: Session) -> Plan:
    """Which files changed since the last refresh: a stat of the folder and one SELECT."""
    return make_plan(_stat_files(list_dag_files(dags_folder)), _load_known(session=session))


def import_changed(plan: Plan, dags_folder: Path) -> dict[str, ImportResult]:
    """Import the changed files (no database access)."""
    results = _import_files(plan.to_import, dags_folder)
    if any(result.error is None and not result.dags for result in results.values()):
        # A helper module changed: files that import it may define other DAGs now.
        results.update(_import_files([f for f in plan.present if f not in results], dags_folder))
    return results


def apply_refresh(
    plan: Plan,
    results: dict[str, ImportResult],
    dags_folder: Path,
    *,
    session: Session,
    now: datetime | None = None,
    locked: bool = False,
) -> RefreshReport:
    """Write what `plan` and the import `results` say, in bulk (`locked`: the caller holds the lock)."""
    now = now or utcnow()
    if plan.unchanged:
        return RefreshReport(files_seen=len(plan.present))
    if not locked and _serialize_refreshes(session):
        # Another process may have written some of it meanwhile: plan again under the lock.
        plan = make_plan(plan.present, _load_known(session=session))
        if plan.unchanged:
            return RefreshReport(files_seen=len(plan.present))
        missing = [fileloc for fileloc in plan.to_import if fileloc not in results]
        results = {**results, **_import_files(missing, dags_folder)}
    outcome = _resolve_owners(
        plan, results, session=session, import_files=lambda paths: _import_files(paths, dags_folder)
    )
    synced = sync.sync_dags(outcome.owned_dags, session=session, now=now)
    deactivated = sync.deactivate_dags(outcome.released, session=session)
    _write_import_errors(outcome, plan, now, session=session)
    _write_dag_files(plan, outcome, now, session=session)
    return RefreshReport(
        files_seen=len(plan.present),
        files_imported=len(outcome.results),
        dags_synced=synced,
        dags_deactivated=deactivated,
        errors=len(outcome.errors),
    )


def _serialize_refreshes(session: Session) -> bool:
    """On PostgreSQL, one refresh at a time writes (a CLI next to schedulers); True when it waited.

    SQLite needs nothing: its transactions start with BEGIN IMMEDIATE, so writers already queue.
    """
    if session.get_bind().dialect.name != "postgresql":
        return False
    session.execute(select(func.pg_advisory_xact_lock(REFRESH_LOCK_KEY)))
    return True


def _stat_files(paths: Iterable[str]) -> dict[str, FileStat]:
    stats: dict[str, FileStat] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:  # removed between listing and stat
            continue
        stats[path] = FileStat(path, st.st_size, st.st_mtime)
    return stats


def _load_known(*, session: Session) -> dict[str, KnownFile]:
    rows = session.execute(
        select(DagFile.fileloc, DagFile.content_hash, DagFile.size, DagFile.mtime, DagFile.dag_ids)
    )
    return {
        fileloc: KnownFile(content_hash, size, mtime, tuple(dag_ids or ()))
        for fileloc, content_hash, size, mtime, dag_ids in rows
    }


def make_plan(present: dict[str, FileStat], known: dict[str, KnownFile]) -> Plan:
    """Compare stat first (cheap), then the content hash, so a `touch` of a good file costs no import.

    A touched file that defined no DAG (it failed, or it is a helper) is imported again: touching a
    file retries an import that failed for an outside reason (a package installed since, say).
    """
    plan = Plan(present=present, known=known)
    for fileloc, stat in present.items():
        previous = known.get(fileloc)
        if previous is not None and (previous.size, previous.mtime) == (stat.size, stat.mtime):
            continue
        content_hash = _content_hash(fileloc)
        if content_hash is None:
            continue
        if previous is not None and previous.content_hash == content_hash and previous.dag_ids:
            plan.touched.append(stat)
        else:
            plan.to_import[fileloc] = content_hash
    plan.removed = [fileloc for fileloc in known if fileloc not in present]
    return plan


def _content_hash(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _import_files(paths: Iterable[str], dags_folder: Path) -> dict[str, ImportResult]:
    """Import files in walk order; DAG files' prints go to stderr so `--output json` stays clean."""
    paths = list(paths)
    if not paths:
        return {}
    folder = os.path.abspath(dags_folder if dags_folder.is_dir() else dags_folder.parent)
    importer.ensure_on_sys_path(folder)
    importer.forget_helper_modules()
    timeout = importer.DEFAULT_IMPORT_TIMEOUT
    with contextlib.redirect_stdout(sys.stderr):
        return {path: importer.import_dag_file(path, timeout=timeout) for path in paths}


@dataclass
class Outcome:
    """Who owns each dag id after this refresh, which DAGs to sync, and which files failed."""

    results: dict[str, ImportResult]
    claims: dict[str, tuple[str, ...]]  # fileloc -> every dag id the file defines
    owned_dags: list[DAG] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


ImportFiles = Callable[[Iterable[str]], dict[str, ImportResult]]


def _resolve_owners(
    plan: Plan, results: dict[str, ImportResult], *, session: Session, import_files: ImportFiles
) -> Outcome:
    """Give each dag id to one file: its current owner if that still defines it, else the first in walk order.

    A file that loses a dag id gets an import error naming both files. A file that was not imported
    but now owns a dag id (its rival disappeared) is imported again, so its DAG can be synced.
    """
    current: dict[str, str] = {}
    looked_up: set[str] = set()
    while True:
        claims = _claims_after(plan, results)
        involved = _involved_ids(plan, results)
        current.update(_current_owners(involved - looked_up, session=session))
        looked_up |= involved
        owners = _choose_owners(involved, claims, current)
        stale = {f for dag_id, f in owners.items() if f not in results and current.get(dag_id) != f}
        if not stale:
            break
        results = {**results, **import_files(sorted(stale))}
    order = {fileloc: i for i, fileloc in enumerate(plan.present)}
    outcome = Outcome(results=dict(sorted(results.items(), key=lambda item: order[item[0]])), claims=claims)
    outcome.released = sorted(dag_id for dag_id in involved if dag_id not in owners)
    for fileloc, result in outcome.results.items():
        if result.error is not None:
            outcome.errors[fileloc] = result.error
            continue
        lost = {dag_id: owners[dag_id] for dag_id in result.dags if owners.get(dag_id) != fileloc}
        outcome.owned_dags.extend(dag for dag_id, dag in result.dags.items() if dag_id not in lost)
        if lost:
            outcome.errors[fileloc] = duplicate_dag_id_message(fileloc, lost)
    return outcome


def _claims_after(plan: Plan, results: Mapping[str, ImportResult]) -> dict[str, tuple[str, ...]]:
    claims = {fileloc: plan.known[fileloc].dag_ids for fileloc in plan.present if fileloc in plan.known}
    claims.update({fileloc: tuple(result.dags) for fileloc, result in results.items()})
    return {fileloc: claims[fileloc] for fileloc in plan.present if fileloc in claims}


def _involved_ids(plan: Plan, results: Mapping[str, ImportResult]) -> set[str]:
    """Dag ids whose owner may change: defined by imported files now, or by changed/removed files before."""
    involved = {dag_id for result in results.values() for dag_id in result.dags}
    for fileloc in (*results, *plan.removed):
        previous = plan.known.get(fileloc)
        if previous is not None:
            involved.update(previous.dag_ids)
    return involved


def _current_owners(dag_ids: Iterable[str], *, session: Session) -> dict[str, str]:
    ids = sorted(dag_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(DagModel.dag_id, DagModel.fileloc).where(DagModel.dag_id.in_(ids), DagModel.is_active)
    )
    return {dag_id: fileloc for dag_id, fileloc in rows}


def _choose_owners(
    involved: set[str], claims: Mapping[str, Sequence[str]], current: Mapping[str, str]
) -> dict[str, str]:
    claimants: dict[str, list[str]] = {}
    for fileloc, dag_ids in claims.items():  # walk order
        for dag_id in dag_ids:
            if dag_id in involved:
                claimants.setdefault(dag_id, []).append(fileloc)
    owners: dict[str, str] = {}
    for dag_id, files in claimants.items():
        incumbent = current.get(dag_id)
        owners[dag_id] = incumbent if incumbent in files else files[0]
    return owners


def duplicate_dag_id_message(fileloc: str, lost: Mapping[str, str]) -> str:
    """Name both files, so the user knows which two to reconcile."""
    lines = [
        f"{fileloc}: duplicate dag_id {dag_id!r}: already defined in {owner}; "
        "dag ids must be unique across the DAG folder, rename one of them"
        for dag_id, owner in sorted(lost.items())
    ]
    return "\n".join(lines)


def _write_import_errors(outcome: Outcome, plan: Plan, now: datetime, *, session: Session) -> None:
    """Replace the rows of every file looked at; a file that imported cleanly is left with none."""
    filenames = sorted({*outcome.results, *plan.removed})
    if filenames:
        session.execute(delete(ImportError_).where(ImportError_.filename.in_(filenames)))
    rows = [
        {"filename": fileloc, "stacktrace": error, "timestamp": now}
        for fileloc, error in outcome.errors.items()
    ]
    if rows:
        session.execute(insert(ImportError_), rows)


def _write_dag_files(plan: Plan, outcome: Outcome, now: datetime, *, session: Session) -> None:
    rows: list[dict[str, Any]] = []
    for fileloc in outcome.results:
        stat = plan.present[fileloc]
        content_hash = plan.to_import.get(fileloc) or plan.known[fileloc].content_hash
        rows.append(_dag_file_row(stat, content_hash, outcome.claims.get(fileloc, ()), now))
    sync.upsert(session, table_of(DagFile), rows, key=["fileloc"])
    if plan.touched:
        _update_stats(plan.touched, session=session)
    if plan.removed:
        session.execute(delete(DagFile).where(DagFile.fileloc.in_(plan.removed)))


def _dag_file_row(stat: FileStat, content_hash: str, dag_ids: Sequence[str], now: datetime) -> dict[str, Any]:
    return {
        "fileloc": stat.fileloc,
        "content_hash": content_hash,
        "size": stat.size,
        "mtime": stat.mtime,
        "dag_ids": list(dag_ids),
        "last_parsed_time": now,
    }


def _update_stats(stats: Sequence[FileStat], *, session: Session) -> None:
    """A touched file (same content, new mtime) keeps its parse result; only its stat is updated."""
    table = table_of(DagFile)
    statement = (
        update(table)
        .where(table.c.fileloc == bindparam("b_fileloc"))
        .values(size=bindparam("b_size"), mtime=bindparam("b_mtime"))
    )
    rows = [{"b_fileloc": s.fileloc, "b_size": s.size, "b_mtime": s.mtime} for s in stats]
    session.execute(statement, rows)
