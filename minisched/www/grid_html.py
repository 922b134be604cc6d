"""The grid's task rows as HTML, built in Python: at 25 runs x 100 tasks that is 2,500 cells, and a
Jinja loop with its per-cell escaping and URL quoting took most of a second; this takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from markupsafe import Markup

from minisched.models import DagRun
from minisched.service.grid import Cell
from minisched.www.colours import colour


def grid_rows(
    dag_id: str, task_ids: Sequence[str], runs: Sequence[DagRun], cells: dict[tuple[str, str], Cell]
) -> Markup:
    """One `<tr>` per task: its id, then a cell per run (oldest first) coloured by the state."""
    columns = [
        (
            run.run_id,
            escape(run.run_id),
            escape(f"/dags/{quote(dag_id, safe='')}/runs/{quote(run.run_id, safe='')}"),
        )
        for run in runs
    ]
    rows = []
    for task_id in task_ids:
        shown = escape(task_id)
        link = escape(quote(task_id, safe=""))
        parts = [f'<tr><th class="task">{shown}</th>']
        for run_id, run_shown, base in columns:
            cell = cells.get((run_id, task_id))
            state = cell.state if cell else None
            instances = cell.instances if cell else 0
            style = f' style="background: {colour(state)}"' if state else ""
            # A mapped task's cell opens the run page, which lists its instances.
            href = base if instances else f"{base}/tasks/{link}"
            mapped = f" ({instances} mapped instances)" if instances else ""
            parts.append(
                f'<td><a class="cell{"" if state else " none"}" href="{href}"{style} '
                f'title="{shown} in {run_shown}: {state or "no status"}{mapped}" '
                f'data-instances="{instances}" data-task-id="{shown}" data-run-id="{run_shown}" '
                f'data-state="{state or "none"}"></a></td>'
            )
        parts.append("</tr>")
        rows.append("".join(parts))
    return Markup("\n".join(rows))
