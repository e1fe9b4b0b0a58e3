"""The package's shape, measured from its source with `ast`: no import cycles, few top-level
modules, no huge modules, short core functions, and no UI library in the core.

The core is every module of tui_trainer/ outside its tui/ and cli/ packages. Nothing here is a
hard-coded list of modules: each check walks whatever tui_trainer/ holds today.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.support.paths import REPO

PACKAGE = REPO / "tui_trainer"
UI_PACKAGES = ("textual", "typer", "rich", "textual_plotext")
UI_LAYERS = ("tui", "cli")
MAX_TOP_LEVEL_MODULES = 8
MAX_MODULE_LINES = 400
MAX_CORE_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "tui_trainer.runs.store"; a package is named by its __init__
    path: Path
    tree: ast.Module
    lines: int

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def is_core(self) -> bool:
        parts = self.name.split(".")
        return len(parts) < 2 or parts[1] not in UI_LAYERS

    def imported_names(self) -> list[str]:
        """Every module name an import anywhere in the file names (inside functions and under
        `if TYPE_CHECKING:` too), relative imports resolved; `from a import b` gives a and a.b."""
        names = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = self.name.split(".")[: None if self.is_package else -1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                names += [base] + [f"{base}.{alias.name}" for alias in node.names]
        return names


@cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        source = path.read_text()
        found[name] = Module(name, path, ast.parse(source), len(source.splitlines()))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports. Importing one's own parent package is no
    edge (Python runs it first anyway), nor is a package's __init__ re-exporting its children."""
    mods = modules()
    graph = {}
    for mod in mods.values():
        deps = set()
        for name in mod.imported_names():
            while name and name not in mods:  # `from pkg.mod import func` -> pkg.mod
                name = name.rpartition(".")[0]
            if name and name != mod.name and not mod.name.startswith(name + "."):
                if not (mod.is_package and name.startswith(mod.name + ".")):
                    deps.add(name)
        graph[mod.name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_the_measurement_sees_the_package():
    mods = modules()
    assert "tui_trainer" in mods and "tui_trainer.config" in mods
    assert mods["tui_trainer.config"].is_core and not mods["tui_trainer.cli"].is_core
    # relative imports resolve; imports inside functions count
    source = "from . import store\nfrom ..config import RunConfig\ndef f():\n    import rich\n"
    mod = Module("tui_trainer.runs.x", PACKAGE / "runs/x.py", ast.parse(source), 4)
    assert set(mod.imported_names()) == {
        "tui_trainer.runs",
        "tui_trainer.runs.store",
        "tui_trainer.config",
        "tui_trainer.config.RunConfig",
        "rich",
    }
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles among tui_trainer's modules:\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


def test_few_modules_directly_in_the_package():
    top_level = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, (
        f"{len(top_level)} modules directly in tui_trainer/ (at most {MAX_TOP_LEVEL_MODULES}): "
        + ", ".join(top_level)
    )


def test_no_module_over_400_lines():
    big = sorted(
        (m.lines, str(m.path.relative_to(REPO)))
        for m in modules().values()
        if m.lines > MAX_MODULE_LINES
    )
    assert not big, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(
        f"{path}: {lines} lines" for lines, path in reversed(big)
    )


def test_no_core_function_over_60_lines():
    """Counted from the `def` line to its last line (ruff counts statements, not lines)."""
    long = []
    for mod in modules().values():
        if not mod.is_core:
            continue
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CORE_FUNCTION_LINES:
                    where = f"{mod.path.relative_to(REPO)}:{node.lineno}"
                    long.append((length, f"{where} {node.name}"))
    assert not long, f"core functions over {MAX_CORE_FUNCTION_LINES} lines:\n" + "\n".join(
        f"{name}: {length} lines" for length, name in sorted(long, reverse=True)
    )


def test_the_core_imports_no_ui_library():
    offenders = sorted(
        f"{mod.path.relative_to(REPO)} imports {name}"
        for mod in modules().values()
        if mod.is_core
        for name in set(mod.imported_names())
        if name.split(".")[0] in UI_PACKAGES
    )
    assert not offenders, "UI libraries imported by the core:\n" + "\n".join(offenders)


def test_tests_import_helpers_only_from_tests_support():
    """Tests share code through tests/support, never through conftest.py or another test."""
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                if name.startswith("tests.") and not name.startswith("tests.support"):
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "\n".join(offenders)
