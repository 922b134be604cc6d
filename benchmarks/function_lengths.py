"""Function lengths of a source tree: median, p90, max and how many run past 50 lines.

`python -m benchmarks.function_lengths [FOLDER] [--longest N]` (default: minisched/). A function's length
counts from its `def` line to its last line, decorators left out; methods and nested functions count
as functions of their own (a nested function's lines also count in its parent's). Meant for
before/after figures of a refactoring: run it on two checkouts (`git worktree add`).
"""

from __future__ import annotations

import argparse
import ast
import statistics
from dataclasses import dataclass
from pathlib import Path

LONG = 50


@dataclass(frozen=True)
class Function:
    where: str
    name: str
    lines: int


def functions(folder: Path) -> list[Function]:
    found: list[Function] = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(folder.parent)}:{node.lineno}"
                found.append(Function(where, node.name, node.end_lineno - node.lineno + 1))
    return found


def percentile(sorted_values: list[int], fraction: float) -> int:
    """The nearest-rank percentile: the smallest value at or above `fraction` of the values."""
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


def summary(found: list[Function]) -> dict[str, int]:
    lengths = sorted(f.lines for f in found)
    return {
        "functions": len(lengths),
        "median": int(statistics.median(lengths)),
        "p90": percentile(lengths, 0.9),
        "max": lengths[-1],
        f"over_{LONG}": sum(n > LONG for n in lengths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("minisched"))
    parser.add_argument("--longest", type=int, default=10, help="list the N longest functions")
    args = parser.parse_args()
    found = functions(args.folder.resolve())
    print("  ".join(f"{key} {value}" for key, value in summary(found).items()))
    for function in sorted(found, key=lambda f: -f.lines)[: args.longest]:
        print(f"{function.lines:5d}  {function.name}  {function.where}")


if __name__ == "__main__":
    main()
