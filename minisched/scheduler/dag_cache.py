"""DAG structures the scheduler decides with, read from `serialized_dag` and reloaded only when changed."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag, deserialize_dag
from minisched.models import SerializedDagModel


class DagStructureCache:
    """dag_id -> SerializedDag, keyed by `dag_hash`: one small query per call, data only for changed DAGs."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, SerializedDag]] = {}

    def get_many(self, dag_ids: Iterable[str], *, session: Session) -> dict[str, SerializedDag]:
        wanted = set(dag_ids)
        if not wanted:
            return {}
        hashes = dict(
            session.execute(
                select(SerializedDagModel.dag_id, SerializedDagModel.dag_hash).where(
                    SerializedDagModel.dag_id.in_(wanted)
                )
            )
            .tuples()
            .all()
        )
        stale = [dag_id for dag_id, digest in hashes.items() if self._entries.get(dag_id, ("",))[0] != digest]
        if stale:
            rows = session.execute(
                select(SerializedDagModel.dag_id, SerializedDagModel.dag_hash, SerializedDagModel.data).where(
                    SerializedDagModel.dag_id.in_(stale)
                )
            ).tuples()
            for dag_id, digest, data in rows:
                self._entries[dag_id] = (digest, deserialize_dag(data))
        return {dag_id: self._entries[dag_id][1] for dag_id in hashes}

    def cached(self, dag_id: str) -> SerializedDag | None:
        """The structure last loaded for `dag_id`, without asking the database."""
        entry = self._entries.get(dag_id)
        return entry[1] if entry else None

    def get(self, dag_id: str, *, session: Session) -> SerializedDag | None:
        return self.get_many([dag_id], session=session).get(dag_id)
