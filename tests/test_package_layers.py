"""minisched's packages import each other in one direction only: the imports a module runs when it is
loaded form no cycle between packages (settings -> db -> models -> ... -> cli, as README's "How it works"
lays them out)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import minisched

ROOT = Path(minisched.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _node(module: str) -> str:
    """A module's place in the graph: its package, or itself when it is a module of `minisched` itself."""
    if (ROOT.parent.joinpath(*module.split(".")) / "__init__.py").is_file():
        return module
    package = module.rpartition(".")[0]
    return module if package == "minisched" else package


def _type_checking_only(statement: ast.stmt) -> bool:
    test = statement.test if isinstance(statement, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _load_time_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """The minisched modules `module` imports when it is loaded: top-level imports, including those under
    a top-level `if` or `try` (but not `if TYPE_CHECKING:`), never those inside functions."""
    found: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, ast.If | ast.Try) and not _type_checking_only(statement):
            pending.extend(node for node in ast.iter_child_nodes(statement) if isinstance(node, ast.stmt))
        elif isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - statement.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in statement.names:
                name = f"{base}.{alias.name}"
                found.add(name if _is_module(name) else base)
    return {name for name in found if name == "minisched" or name.startswith("minisched.")}


def package_graph() -> dict[str, set[str]]:
    """Package -> the packages its modules import at load time (itself left out)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        source = _node(module)
        targets = {_node(name) for name in _load_time_imports(tree, module, path.name == "__init__.py")}
        graph.setdefault(source, set()).update(targets - {source})
    return graph


def test_the_graph_sees_the_layers() -> None:
    """The graph is read right: a few edges the layout is known to have, and none it must not have."""
    graph = package_graph()
    assert "minisched.models" in graph["minisched.scheduler"]
    assert "minisched.scheduler.executors" in graph["minisched.scheduler"]
    assert "minisched.settings" in graph["minisched.db"]
    assert "minisched.scheduler" not in graph["minisched.models"]
    assert "minisched.cli" not in graph["minisched.scheduler"]


def test_no_import_cycle_between_packages() -> None:
    try:
        order = list(TopologicalSorter(package_graph()).static_order())
    except CycleError as exc:
        # graphlib lists each package before the ones that import it.
        cycle = " imports ".join(reversed(exc.args[1]))
        raise AssertionError(f"packages import each other in a cycle: {cycle}") from None
    assert order.index("minisched.models") < order.index("minisched.scheduler")
