"""Print every import cycle among the `tui` package's modules; exit 1 if there is one.

    python scripts/import_cycles.py [PACKAGE_DIR]

Only imports that run when a module is imported count: statements at module level,
including those inside a module-level `if`/`try` (but not `if TYPE_CHECKING:`, which
never runs). An import inside a function runs later, when the function is called; a
cycle held together by one would still be a circle in the design, but it cannot fail
at start-up, and CloudRig keeps function-level imports only for start-up-heavy
packages (the `# deferred: start-up (PACKAGE)` tags), so they are not followed here.
import-linter's contracts in pyproject.toml check the layers; this script checks for circles, which
its contracts cannot express for a whole package.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "tui"


def module_name(path: Path, top: Path) -> str:
    parts = list(path.relative_to(top.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime(node: ast.AST, in_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements under NODE that can run: not in an `if TYPE_CHECKING:` block,
    and (unless IN_FUNCTIONS) not in a function body."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _runtime(ast.Module(body=[other], type_ignores=[]), in_functions)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            if in_functions:
                yield from _runtime(child, in_functions)
        else:
            yield from _runtime(child, in_functions)


def imports_of(path: Path, name: str, known: set[str], in_functions: bool = True
               ) -> set[str]:
    """The package's modules that module NAME (file PATH) imports at import time. `from
    P import M` counts as importing P.M when that is a module, else P."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in _runtime(tree, in_functions):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known
                       else source for alias in node.names]
        for target in targets:  # the most specific module named, as grimp does
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    if candidate != name:
                        found.add(candidate)
                    break
    return found


def graph(top: Path, in_functions: bool = True) -> dict[str, set[str]]:
    files = {module_name(path, top): path for path in sorted(top.rglob("*.py"))}
    known = set(files)
    return {name: imports_of(path, name, known, in_functions) for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan),
    shown as a path that returns to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_path_through(component, edges) for component in components]


def _path_through(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from the component's first module back to itself."""
    start = component[0]
    members = set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return component


def main(argv: list[str]) -> int:
    top = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / PACKAGE
    edges = graph(top)
    found = cycles(edges)
    for cycle in found:
        print("import cycle: " + " -> ".join(cycle))
    if not found:
        print(f"no import cycle among {len(edges)} modules of {top.name}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
