"""DAG structures the scheduler decides with, read from `serialized_dag` and reloaded only when changed."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag, deserialize_dag
from minisched.scheduler import statements as sql


class DagStructureCache:
    """dag_id -> SerializedDag, keyed by `dag_hash`: one small query per call, data only for changed DAGs."""

    def __init__(self, recheck_interval: float = 0.0) -> None:
        self._entries: dict[str, tuple[str, SerializedDag]] = {}
        self._verified: set[str] | None = None
        self._recheck_interval = recheck_interval
        self._verified_at = 0.0

    def begin_step(self) -> None:
        """Check each DAG's hash at most once per step, and not again before `recheck_interval` passed.

        A changed DAG file reaches the scheduler that long after it was synced: fine for a structure
        that changes only when someone edits the file.
        """
        now = time.monotonic()
        if self._verified is None or now - self._verified_at >= self._recheck_interval:
            self._verified = set()
            self._verified_at = now

    def get_many(self, dag_ids: Iterable[str], *, session: Session) -> dict[str, SerializedDag]:
        wanted = set(dag_ids)
        if self._verified is not None:
            known = {d: self._entries[d][1] for d in wanted & self._verified if d in self._entries}
            missing = wanted - known.keys()
            if not missing:
                return known
            self._verified |= missing
            return known | self._check(missing, session=session)
        return self._check(wanted, session=session)

    def _check(self, wanted: set[str], *, session: Session) -> dict[str, SerializedDag]:
        if not wanted:
            return {}
        hashes = dict(session.execute(sql.DAG_HASHES, {"ids": sorted(wanted)}).all())
        stale = [dag_id for dag_id, digest in hashes.items() if self._entries.get(dag_id, ("",))[0] != digest]
        if stale:
            rows = session.execute(sql.SERIALIZED_DAGS, {"ids": stale})
            for dag_id, digest, data in rows:
                self._entries[dag_id] = (digest, deserialize_dag(data))
        return {dag_id: self._entries[dag_id][1] for dag_id in hashes}

    def cached(self, dag_id: str) -> SerializedDag | None:
        """The structure last loaded for `dag_id`, without asking the database."""
        entry = self._entries.get(dag_id)
        return entry[1] if entry else None

    def get(self, dag_id: str, *, session: Session) -> SerializedDag | None:
        return self.get_many([dag_id], session=session).get(dag_id)
