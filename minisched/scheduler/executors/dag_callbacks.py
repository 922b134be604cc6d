"""The DAG callback process: calls `on_success_callback` / `on_failure_callback` of ended runs.

As Airflow's DAG processor runs DAG callbacks, this process (started by a scheduler, see
`dag_callback_requests`; `dags test` calls `run_requests` itself) claims `dag_callback_request` rows,
imports each DAG file, calls the callbacks with the run's context (`dag_run`, `reason`, ...) outside
any transaction, then deletes the rows. A callback that raises is logged and changes no state.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, select, tuple_, update

from minisched.authoring.context import RunView, build_context
from minisched.dagfiles.importer import import_dag_file
from minisched.db.session import create_session
from minisched.host import hostname
from minisched.models import DagCallbackRequest, DagModel, DagRun
from minisched.models.dag_callback_request import claimable

log = logging.getLogger("minisched.dag_callbacks")
BATCH = 100


class Request(NamedTuple):
    id: int
    dag_id: str
    run_id: str
    kind: str
    reason: str


def run_requests(*, only_run: tuple[str, str] | None = None) -> int:
    """Claim and run requests until none is left (or only those of one run); returns how many ran."""
    done = 0
    while batch := _claim(only_run):
        for request, run, fileloc in batch:
            _call(request, run, fileloc)
            with create_session() as session:
                session.execute(delete(DagCallbackRequest).where(DagCallbackRequest.id == request.id))
            done += 1
    return done


def _claim(only_run: tuple[str, str] | None) -> list[tuple[Request, DagRun, str | None]]:
    """Take up to BATCH claimable requests (compare-and-set on the claim), with their runs and files."""
    now = datetime.now(UTC)
    with create_session() as session:
        ids = select(DagCallbackRequest.id).where(claimable(now))
        if only_run is not None:
            ids = ids.where(
                DagCallbackRequest.dag_id == only_run[0], DagCallbackRequest.run_id == only_run[1]
            )
        claimed = [
            Request(*row)
            for row in session.execute(
                update(DagCallbackRequest)
                .where(DagCallbackRequest.id.in_(ids.order_by(DagCallbackRequest.id).limit(BATCH)))
                .where(claimable(now))
                .values(claimed_at=now, claimed_by=f"{hostname()}:{os.getpid()}")
                .returning(
                    DagCallbackRequest.id,
                    DagCallbackRequest.dag_id,
                    DagCallbackRequest.run_id,
                    DagCallbackRequest.kind,
                    DagCallbackRequest.reason,
                )
                .execution_options(synchronize_session=False)
            )
        ]
        if not claimed:
            return []
        runs = {
            (run.dag_id, run.run_id): (run, fileloc)
            for run, fileloc in session.execute(
                select(DagRun, DagModel.fileloc)
                .join(DagModel, DagModel.dag_id == DagRun.dag_id)
                .where(tuple_(DagRun.dag_id, DagRun.run_id).in_({(r.dag_id, r.run_id) for r in claimed}))
            )
        }
        session.expunge_all()
    return [(request, *runs[(request.dag_id, request.run_id)]) for request in claimed]


def _call(request: Request, run: DagRun, fileloc: str | None) -> None:
    """Import the DAG and call its callbacks of `request.kind`; nothing here can change a state."""
    where = f"DAG {request.dag_id!r}, run {request.run_id!r}"
    callbacks = _callbacks(request, fileloc, where)
    if not callbacks:
        return
    context = _context(request, run, callbacks[0])
    for callback in callbacks[1]:
        name = getattr(callback, "__qualname__", repr(callback))
        log.info("Running on_%s_callback %s of %s", request.kind, name, where)
        try:
            callback(context)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            log.error(
                "on_%s_callback %s of %s raised; no state is changed:\n%s",
                request.kind,
                name,
                where,
                "".join(traceback.format_exception(exc)).rstrip(),
            )


def _callbacks(
    request: Request, fileloc: str | None, where: str
) -> tuple[Any, list[Callable[[dict[str, Any]], Any]]] | None:
    if fileloc is None:
        log.error("%s: the DAG has no file any more; its on_%s_callback is not called", where, request.kind)
        return None
    imported = import_dag_file(fileloc)
    dag = imported.dags.get(request.dag_id)
    if dag is None:
        cause = imported.error.splitlines()[0] if imported.error else f"the DAG is no longer in {fileloc}"
        log.error("%s: on_%s_callback not called: %s", where, request.kind, cause)
        return None
    return dag, dag.callbacks.get(request.kind, [])


def _context(request: Request, run: DagRun, dag: Any) -> dict[str, Any]:
    """Airflow's DAG callback context: the run's template context, `dag`, `dag_run` and `reason`."""
    start = run.data_interval_start or run.logical_date
    end = run.data_interval_end or run.logical_date
    context = build_context(
        dag_id=run.dag_id,
        task_id="",
        run_id=run.run_id,
        logical_date=run.logical_date,
        data_interval_start=start,
        data_interval_end=end,
        try_number=0,
        conf=run.conf,
        params=dag.params,
    )
    del context["task_id"], context["try_number"]
    dag_run = RunView(
        dag_id=run.dag_id,
        run_id=run.run_id,
        run_type=run.run_type,
        logical_date=context["logical_date"],
        data_interval_start=context["data_interval_start"],
        data_interval_end=context["data_interval_end"],
        conf=context["conf"],
        state=run.state,
        start_date=run.start_date,
        end_date=run.end_date,
    )
    context.update(dag=dag, dag_run=dag_run, reason=request.reason)
    return context


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="[%(asctime)s] %(levelname)s - %(message)s"
    )
    ran = run_requests()
    log.info("DAG callback process done: %d request(s)", ran)
    return 0


if __name__ == "__main__":
    sys.exit(main())
