"""The architecture's boundaries hold: esb never imports an adapter, adapters use only the public contract,
and no package imports another that imports it back."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What adapters may not import: the engine's internals (they get its services through the context).
ENGINE_INTERNALS = ("esb.journal", "esb.runtime", "esb.ops", "esb.services", "esb.cli", "esb.lint")


def modules(package: str) -> Iterator[tuple[str, Path]]:
    """Every module of ``package`` (dotted name, path)."""
    for path in sorted((ROOT / package).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def imported(tree: ast.AST) -> Iterator[str]:
    """Every module name an import statement anywhere in ``tree`` names (``from a import b``: a and a.b)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_level(tree: ast.Module) -> ast.Module:
    """The imports a module runs when it is loaded: its top-level ones, outside ``if TYPE_CHECKING``.

    Imports inside functions are deliberate late binding (a capability's implementation, a command's
    module) and type-only imports are not run: neither can form a cycle at import time.
    """
    kept: list[ast.stmt] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            continue
        if isinstance(stmt, ast.Try):
            kept.extend(stmt.body)
        else:
            kept.append(stmt)
    return ast.Module(body=[s for s in kept if isinstance(s, ast.Import | ast.ImportFrom)], type_ignores=[])


def unit(name: str) -> str | None:
    """The architectural unit of a module: an esb sub-package, a top-level esb module, an adapter, or
    the simulators; None outside the project."""
    parts = name.split(".")
    if parts[0] == "esb" and len(parts) > 1:
        return f"esb.{parts[1]}"
    if parts[0] == "adapters" and len(parts) > 1:
        return f"adapters.{parts[1]}"
    if parts[0] in ("esb", "adapters", "simulators"):
        return parts[0]
    return None


def test_the_engine_never_imports_an_adapter() -> None:
    """No module under esb/ imports adapters/ (adapters are found through esb/registry.py by name)."""
    found = [
        f"{name} imports {target}"
        for name, path in modules("esb")
        for target in imported(ast.parse(path.read_text(encoding="utf-8")))
        if target == "adapters" or target.startswith("adapters.")
    ]
    assert found == []


def test_the_engine_never_names_an_adapter() -> None:
    """No engine module outside the registry compares an endpoint's adapter with a name."""
    pattern = re.compile(r"""\.adapter\s*(==|!=|in)\s|["'](queue|soap|batch|direct)["']""")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for name, path in modules("esb")
        if name not in ("esb.registry",)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_adapters_use_only_the_public_contract() -> None:
    """No module under adapters/ imports the journal, the runtime, ops, the CLI or the engine services."""
    found = [
        f"{name} imports {target}"
        for name, path in modules("adapters")
        for target in imported(ast.parse(path.read_text(encoding="utf-8")))
        if any(target == banned or target.startswith(banned + ".") for banned in ENGINE_INTERNALS)
    ]
    assert found == []


def import_graph() -> dict[str, set[str]]:
    """Unit -> the units its modules import when loaded."""
    graph: dict[str, set[str]] = {}
    for package in ("esb", "adapters", "simulators"):
        for name, path in modules(package):
            source = unit(name)
            assert source is not None
            for target in imported(module_level(ast.parse(path.read_text(encoding="utf-8")))):
                dest = unit(target)
                if dest is not None and dest != source and _exists(target):
                    graph.setdefault(source, set()).add(dest)
    return graph


def _exists(target: str) -> bool:
    """True when ``target`` (or its module, for ``from m import name``) is a file or package of ours."""
    parts = target.split(".")
    for end in (len(parts), len(parts) - 1):
        base = ROOT.joinpath(*parts[:end])
        if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
            return True
    return False


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_packages() -> None:
    """The esb sub-packages, top-level modules, adapters and simulators form no import cycle."""
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b"]], id="two"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]], id="three"),
        pytest.param({"a": {"b"}, "b": {"c"}}, [], id="none"),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    """The cycle check itself finds a cycle of two or three units and none where there is none."""
    assert cycles(graph) == expected


def test_no_adapter_imports_another() -> None:
    """An adapter folder imports no other adapter; what HTTP adapters share is in adapters/http/."""
    found = []
    for name, path in modules("adapters"):
        own = unit(name)
        for target in imported(ast.parse(path.read_text(encoding="utf-8"))):
            other = unit(target)
            if other and other.startswith("adapters.") and other not in (own, "adapters.http"):
                found.append(f"{name} imports {target}")
    assert found == []
