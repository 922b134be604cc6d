"""Server-side SVG: the task graph (layered, left to right) and a run's Gantt chart. No JavaScript."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

from minisched.authoring.serialize import SerializedDag
from minisched.models import TaskInstance
from minisched.www.colours import colour
from minisched.www.graph_layout import NODE_H, NODE_W, PAD, Box, layout

#: Task group boxes, darker the deeper they nest.
GROUP_FILLS = ("#eef3fb", "#e2eaf7", "#d5e1f3")


def graph_svg(
    dag: SerializedDag, states: Mapping[str, str | None], link: Callable[[str], str | None]
) -> Markup:
    """The DAG as boxes bordered in their task instance's state colour, each linking to `link(task_id)`;
    each task group a labelled box around its tasks."""
    placed = layout(dag)
    width, height, where = placed.width, placed.height, placed.tasks
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="task graph of {escape(dag.dag_id)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a6"/></marker></defs>',
    ]
    parts += [_group_box(box) for box in placed.boxes]
    for task_id, task in dag.tasks.items():
        x1, y1 = where[task_id]
        for downstream in task.downstream_task_ids:
            x2, y2 = where[downstream]
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            bend = (ex - sx) / 2
            parts.append(
                f'<path class="edge" d="M {sx} {sy} C {sx + bend} {sy}, {ex - bend} {ey}, {ex - 2} {ey}" '
                'fill="none" stroke="#8a94a6" stroke-width="1.4" marker-end="url(#arrow)"/>'
            )
    groups = sorted((group.group_id for group in dag.task_groups), key=len, reverse=True)
    for task_id in dag.topological_order:
        own = _own_label(task_id, groups)
        parts.append(
            _node(task_id, own, dag.tasks[task_id].operator, where[task_id], states.get(task_id), link)
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _group_box(box: Box) -> str:
    fill = GROUP_FILLS[min(box.depth, len(GROUP_FILLS)) - 1]
    return (
        f'<g class="group" data-group-id="{escape(box.group_id)}"><title>{escape(box.group_id)}</title>'
        f'<rect x="{box.x}" y="{box.y}" width="{box.width}" height="{box.height}" rx="8" '
        f'fill="{fill}" stroke="#9fb3d6" stroke-width="1"/>'
        f'<text x="{box.x + PAD}" y="{box.y + 15}" class="group-label">{escape(box.label)}</text></g>'
    )


def _own_label(task_id: str, groups: Sequence[str]) -> str:
    """Inside its group's box a task shows its own name: the box already says `group.`."""
    for group_id in groups:  # longest first: the innermost group
        if task_id.startswith(group_id + "."):
            return task_id[len(group_id) + 1 :]
    return task_id


def _node(  # noqa: PLR0917 -- one node's drawing
    task_id: str,
    own_label: str,
    operator: str,
    at: tuple[int, int],
    state: str | None,
    link: Callable[[str], str | None],
) -> str:
    x, y = at
    label = _short(own_label, 21)
    dashed = "" if state else ' stroke-dasharray="4 3"'
    box = (
        f'<g class="node" data-task-id="{escape(task_id)}" data-state="{escape(state or "none")}">'
        f"<title>{escape(task_id)} ({escape(operator)}): {escape(state or 'no status')}</title>"
        f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="#fff" '
        f'stroke="{colour(state)}" stroke-width="{3 if state else 1.2}"'
        f"{dashed}/>"
        f'<rect x="{x}" y="{y}" width="6" height="{NODE_H}" rx="3" fill="{colour(state)}"/>'
        f'<text x="{x + 14}" y="{y + 15}" class="task-label">{escape(label)}</text>'
        f'<text x="{x + 14}" y="{y + 28}" class="task-op">{escape(operator)}</text></g>'
    )
    href = link(task_id)
    return f'<a href="{escape(href)}">{box}</a>' if href else box


GANTT_LABEL_W, GANTT_W, ROW_H = 180, 640, 22


def gantt_svg(tis: Sequence[TaskInstance], now: datetime, link: Callable[[str], str]) -> Markup:
    """One bar per task instance that has started, from its start to its end (or now, while running)."""
    started = [ti for ti in tis if ti.start_date is not None]
    if not started:
        return Markup('<p class="muted">No task has started yet.</p>')
    begin = min(ti.start_date for ti in started if ti.start_date)
    finish = max((ti.end_date or now) for ti in started)
    span = max((finish - begin).total_seconds(), 1e-3)
    height = (len(started) + 1) * ROW_H + 10
    width = GANTT_LABEL_W + GANTT_W + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Gantt chart">'
    ]
    for tick in range(5):
        x = GANTT_LABEL_W + GANTT_W * tick / 4
        label = _seconds(span * tick / 4)
        parts.append(
            f'<line x1="{x}" y1="0" x2="{x}" y2="{height - ROW_H}" stroke="#e3e7ee"/>'
            f'<text x="{x}" y="{height - 8}" class="tick" text-anchor="middle">{label}</text>'
        )
    for row, ti in enumerate(started):
        assert ti.start_date is not None
        end = ti.end_date or now
        x = GANTT_LABEL_W + GANTT_W * (ti.start_date - begin).total_seconds() / span
        bar = max(GANTT_W * (end - ti.start_date).total_seconds() / span, 2)
        y = row * ROW_H + 4
        suffix = f" [{ti.map_index}]" if ti.map_index >= 0 else ""
        name = ti.task_id + suffix
        href = link(ti.task_id) + (f"?map_index={ti.map_index}" if ti.map_index >= 0 else "")
        tip = f"{name}: {ti.state or 'no status'}, {_seconds((end - ti.start_date).total_seconds())}"
        parts.append(
            f'<a href="{escape(href)}"><g class="bar" data-task-id="{escape(ti.task_id)}">'
            f"<title>{escape(tip)}</title>"
            f'<text x="{GANTT_LABEL_W - 8}" y="{y + 13}" text-anchor="end" class="task-label">'
            f"{escape(_short(ti.task_id, 26 - len(suffix)) + suffix)}</text>"
            f'<rect x="{x:.1f}" y="{y}" width="{bar:.1f}" height="{ROW_H - 8}" rx="3" '
            f'fill="{colour(ti.state)}" stroke="#00000022"/></g></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis (the full text is in the element's title)."""
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _seconds(value: float) -> str:
    if value == 0:
        return "0s"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
