"""Write what a parse of the DAG folder found: `dag`, `serialized_dag`, `import_error`, `dag_file`, in bulk.

Nothing here imports a DAG file: the results come from the DAG file processor, already serialized. The
write happens in one short transaction that checks the plan again first, under a lock (PostgreSQL:
an advisory lock; SQLite: the write lock BEGIN IMMEDIATE takes), so that two refreshes that parsed the
same change at the same time write it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from minisched.dagfiles import sync
from minisched.dagfiles.plan import FileStat, Plan, load_known, make_plan
from minisched.dagfiles.processor import ParsedFile
from minisched.models import DagFile, DagModel, ImportError_, table_of
from minisched.models.types import utcnow

#: pg_advisory_xact_lock key of the DAG-folder refresh (any constant unique within minisched).
REFRESH_LOCK_KEY = 0x6D696E6973636864  # "minischd"
#: A `dag_file` row with this mtime is parsed again by the next refresh, whatever its stat says.
PARSE_AGAIN_MTIME = -1.0


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did; all zero except `files_seen` when nothing changed."""

    files_seen: int = 0
    files_imported: int = 0
    dags_synced: int = 0
    dags_deactivated: int = 0
    errors: int = 0
    parse_again: int = 0  # files that must be parsed again before this refresh is complete

    def __add__(self, other: RefreshReport) -> RefreshReport:
        return RefreshReport(
            files_seen=max(self.files_seen, other.files_seen),
            files_imported=self.files_imported + other.files_imported,
            dags_synced=self.dags_synced + other.dags_synced,
            dags_deactivated=self.dags_deactivated + other.dags_deactivated,
            errors=other.errors,
            parse_again=other.parse_again,
        )


def apply_refresh(
    dags_folder: Path,
    plan: Plan,
    results: Mapping[str, ParsedFile],
    *,
    session: Session,
    now: datetime | None = None,
) -> RefreshReport:
    """Write the parse `results` of `plan`'s files, after checking the plan again under the lock."""
    now = now or utcnow()
    _serialize_refreshes(session)
    parsed_plan = plan
    plan = make_plan(dags_folder, plan.present, load_known(session=session), hashes=plan.to_import)
    if plan.unchanged:
        return RefreshReport(files_seen=len(plan.present))
    # A change another refresh wrote meanwhile is no longer in `to_import`: it is not written twice.
    # Files parsed beyond the plan (a helper module changed) are kept.
    results = {
        f: r
        for f, r in results.items()
        if f in plan.to_import or (f in plan.present and f not in parsed_plan.to_import)
    }
    parse_again = sorted(f for f in plan.to_import if f not in results)
    for fileloc in parse_again:
        del plan.to_import[fileloc]
    outcome = resolve_owners(plan, results, session=session)
    synced = sync.sync_dags(outcome.owned_dags, session=session, now=now)
    deactivated = sync.deactivate_dags(outcome.released, session=session)
    _write_import_errors(outcome, plan, now, session=session)
    _write_dag_files(plan, outcome, now, session=session)
    _mark_parse_again(outcome.parse_again, session=session)
    return RefreshReport(
        files_seen=len(plan.present),
        files_imported=len(outcome.results),
        dags_synced=synced,
        dags_deactivated=deactivated,
        errors=len(outcome.errors),
        parse_again=len(parse_again) + len(outcome.parse_again),
    )


def _serialize_refreshes(session: Session) -> None:
    """On PostgreSQL, one refresh at a time writes (a CLI next to schedulers).

    SQLite needs nothing: its transactions start with BEGIN IMMEDIATE, so writers already queue.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(REFRESH_LOCK_KEY)))


@dataclass
class Outcome:
    """Who owns each dag id after this refresh, which DAGs to sync, and which files failed."""

    results: dict[str, ParsedFile]
    claims: dict[str, tuple[str, ...]]  # fileloc -> every dag id the file defines
    owned_dags: list[dict[str, Any]] = field(default_factory=list)  # serialized
    released: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    parse_again: list[str] = field(default_factory=list)


def resolve_owners(plan: Plan, results: Mapping[str, ParsedFile], *, session: Session) -> Outcome:
    """Give each dag id to one file: its current owner if that still defines it, else the first in walk order.

    A file that loses a dag id gets an import error naming both files. A file that was not parsed
    but now owns a dag id (its rival disappeared) is marked to be parsed again: its serialized DAG
    is not at hand, and parsing is never done inside this transaction.
    """
    claims = _claims_after(plan, results)
    involved = _involved_ids(plan, results)
    current = _current_owners(involved, session=session)
    owners = _choose_owners(involved, claims, current)
    order = {fileloc: i for i, fileloc in enumerate(plan.present)}
    outcome = Outcome(results=dict(sorted(results.items(), key=lambda item: order[item[0]])), claims=claims)
    stale = {dag_id: f for dag_id, f in owners.items() if f not in results and current.get(dag_id) != f}
    outcome.parse_again = sorted(set(stale.values()) & set(plan.present))
    outcome.released = sorted(dag_id for dag_id in involved if dag_id not in owners)
    for fileloc, result in outcome.results.items():
        if result.error is not None:
            outcome.errors[fileloc] = result.error
            continue
        lost = {dag_id: owners[dag_id] for dag_id in result.dags if owners.get(dag_id) != fileloc}
        outcome.owned_dags.extend(data for dag_id, data in result.dags.items() if dag_id not in lost)
        if lost:
            outcome.errors[fileloc] = duplicate_dag_id_message(fileloc, lost)
    return outcome


def _claims_after(plan: Plan, results: Mapping[str, ParsedFile]) -> dict[str, tuple[str, ...]]:
    """Every file's dag ids in walk order; files of other folders come after this folder's."""
    files = [*plan.present, *plan.elsewhere]
    claims = {fileloc: plan.known[fileloc].dag_ids for fileloc in files if fileloc in plan.known}
    claims.update({fileloc: tuple(result.dags) for fileloc, result in results.items()})
    return {fileloc: claims[fileloc] for fileloc in files if fileloc in claims}


def _involved_ids(plan: Plan, results: Mapping[str, ParsedFile]) -> set[str]:
    """Dag ids whose owner may change: defined by parsed files now, or by changed/removed files before."""
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


def _mark_parse_again(filelocs: Sequence[str], *, session: Session) -> None:
    if filelocs:
        session.execute(
            update(DagFile)
            .where(DagFile.fileloc.in_(filelocs))
            .values(content_hash="", mtime=PARSE_AGAIN_MTIME)
            .execution_options(synchronize_session=False)
        )
