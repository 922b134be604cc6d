"""Where the graph view puts each task and each task group's box: a layered layout, left to right,
in which a task group is laid out inside its own box and then placed as one node of its parent.

Inside each container (the DAG, or a group), its direct members (tasks and child groups) are put in
columns by their longest path from a root, then ordered in a column by where their upstreams sit.
An edge that would go back to an earlier member (a task outside a group that sits between two of
the group's tasks) is drawn, but does not move anything.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from minisched.authoring.serialize import SerializedDag

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 170, 34, 70, 14, 16
#: Room inside a group's box: around its members, and above them for its label.
PAD, LABEL_H = 12, 22
#: Room one character of a group's label takes (12px bold sans-serif, wide glyphs included).
LABEL_CHAR_W = 8

#: A member of a container: ("task", task_id) or ("group", group_id).
Member = tuple[str, str]


@dataclass(frozen=True)
class Box:
    """A task group's rectangle; `depth` 1 for a top-level group, 2 inside it, ..."""

    group_id: str
    label: str
    x: int
    y: int
    width: int
    height: int
    depth: int


@dataclass
class GraphLayout:
    width: int
    height: int
    tasks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """task_id -> the top-left corner of its node."""
    boxes: list[Box] = field(default_factory=list)
    """Outer groups first, so inner boxes are drawn on top."""


@dataclass
class _Block:
    """A laid-out container, positions relative to its own top-left corner."""

    width: int
    height: int
    tasks: dict[str, tuple[int, int]]
    boxes: list[Box]


def layout(dag: SerializedDag) -> GraphLayout:
    tree = _Tree(dag)
    block = tree.lay_out(None, depth=0)
    placed = GraphLayout(block.width + 2 * MARGIN, block.height + 2 * MARGIN)
    placed.tasks = {task_id: (x + MARGIN, y + MARGIN) for task_id, (x, y) in block.tasks.items()}
    placed.boxes = [_moved(box, MARGIN, MARGIN) for box in block.boxes]
    return placed


class _Tree:
    """The DAG's groups as a tree, and each task's place in the topological order."""

    def __init__(self, dag: SerializedDag) -> None:
        self.dag = dag
        self.order = {task_id: index for index, task_id in enumerate(dag.topological_order)}
        self.labels = {group.group_id: group.label for group in dag.task_groups}
        self.parent: dict[str, str | None] = {g.group_id: g.parent_group_id for g in dag.task_groups}
        self.members: dict[str | None, list[Member]] = defaultdict(list)
        for group in dag.task_groups:
            self.members[group.parent_group_id].append(("group", group.group_id))
        for task_id, task in dag.tasks.items():
            group_id = task.task_group if task.task_group in self.parent else None
            self.members[group_id].append(("task", task_id))

    def member_of(self, task_id: str, container: str | None) -> Member | None:
        """The direct member of `container` that holds `task_id` (None: the task is not inside)."""
        group = self.dag.tasks[task_id].task_group
        group = group if group in self.parent else None
        if group == container:
            return ("task", task_id)
        while group is not None:
            if self.parent[group] == container:
                return ("group", group)
            group = self.parent[group]
        return None

    def first_index(self, member: Member) -> int:
        kind, name = member
        if kind == "task":
            return self.order[name]
        return min((self.first_index(m) for m in self.members[name]), default=len(self.order))

    def lay_out(self, container: str | None, depth: int) -> _Block:
        members = sorted(self.members[container], key=self.first_index)
        blocks = {m: self.lay_out(m[1], depth + 1) for m in members if m[0] == "group"}
        columns = self._columns(container, members)
        sizes = {m: (blocks[m].width, blocks[m].height) if m in blocks else (NODE_W, NODE_H) for m in members}
        heights = [sum(sizes[m][1] for m in column) + GAP_Y * (len(column) - 1) for column in columns]
        tallest = max(heights, default=0)
        block = _Block(0, tallest, {}, [])
        x = 0
        for column, height in zip(columns, heights, strict=True):
            y = (tallest - height) // 2
            for member in column:
                self._place(block, member, blocks.get(member), x, y, depth)
                y += sizes[member][1] + GAP_Y
            x += max(sizes[m][0] for m in column) + GAP_X
        block.width = max(x - GAP_X, 0)
        return block if container is None else _framed(block, self.labels[container])

    def _columns(self, container: str | None, members: list[Member]) -> list[list[Member]]:
        rank = {member: index for index, member in enumerate(members)}
        upstream: dict[Member, set[Member]] = defaultdict(set)
        for task_id, task in self.dag.tasks.items():
            target = self.member_of(task_id, container)
            for up in task.upstream_task_ids:
                source = self.member_of(up, container)
                if target and source and source != target and rank[source] < rank[target]:
                    upstream[target].add(source)
        column_of: dict[Member, int] = {}
        for member in members:
            column_of[member] = 1 + max((column_of[u] for u in upstream[member]), default=-1)
        columns: list[list[Member]] = [[] for _ in range(max(column_of.values(), default=-1) + 1)]
        position: dict[Member, float] = {}
        for member in members:
            columns[column_of[member]].append(member)
        for column in columns:
            column.sort(key=lambda m: (_mean([position[u] for u in upstream[m] if u in position]), rank[m]))
            position.update({member: index for index, member in enumerate(column)})
        return columns

    def _place(  # noqa: PLR0917 -- one member's coordinates
        self, block: _Block, member: Member, inner: _Block | None, x: int, y: int, depth: int
    ) -> None:
        name = member[1]
        if inner is None:
            block.tasks[name] = (x, y)
            return
        block.boxes.append(Box(name, self.labels[name], x, y, inner.width, inner.height, depth + 1))
        block.tasks.update({t: (x + tx, y + ty) for t, (tx, ty) in inner.tasks.items()})
        block.boxes.extend(_moved(box, x, y) for box in inner.boxes)


def _framed(block: _Block, label: str) -> _Block:
    """A group's content with room around it and its label above; wide enough for that label."""
    return _Block(
        max(block.width, NODE_W // 2, len(label) * LABEL_CHAR_W) + 2 * PAD,
        block.height + LABEL_H + PAD,
        {task_id: (x + PAD, y + LABEL_H) for task_id, (x, y) in block.tasks.items()},
        [_moved(box, PAD, LABEL_H) for box in block.boxes],
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _moved(box: Box, dx: int, dy: int) -> Box:
    return Box(box.group_id, box.label, box.x + dx, box.y + dy, box.width, box.height, box.depth)
