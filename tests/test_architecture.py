"""The code flows the way the data does: datasets -> judges -> annotation (audits) -> analysis.

Every module of the apps and of `config` is parsed (no import runs), and each import is
read, including those inside functions; only imports under `if TYPE_CHECKING:` are left out
(they never run). Two rules:

- an app imports only itself, the apps before it, and the project's plumbing in `config`
  (settings, roles, the API helpers, the task queue, job leases, the admin base, lazy views);
  `config`'s plumbing imports no app, while the project level (urls, its commands) may
  import any;
- no module imports a module that imports it back, directly or through others.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("corpus", "judges", "annotation", "analysis")  # in the order data flows
PACKAGES = ("config", *APPS)
# What every app may use of the project level; these modules import no app.
PLUMBING = {
    "config",
    "config.admin",
    "config.api",
    "config.celery",
    "config.env",
    "config.jobs",
    "config.lazy",
    "config.leases",
    "config.model_rows",
    "config.roles",
    "config.settings",
    "config.tasks",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of `if TYPE_CHECKING:` blocks (their `else` counts)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str) -> str | None:
    """The module of ours that `import name` runs last: the longest known prefix."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports_in(source: str, module: str, *, is_package: bool = False) -> set[tuple[str, int]]:
    """(module of ours imported, line) for every import statement in `source` (`module`)."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: set[tuple[str, int]] = set()
    for node in _nodes(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from judges import selectors` imports the module judges.selectors.
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
            names = [n if _resolve(n) and _resolve(n) != _resolve(base) else base for n in names]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                found.add((target, node.lineno))
    return found


def imports_of(module: str) -> set[tuple[str, int]]:
    path = MODULES[module]
    return imports_in(path.read_text(), module, is_package=path.name == "__init__.py")


@functools.cache
def graph() -> dict[str, set[tuple[str, int]]]:
    """Each module's imports of ours (parsed on first use, not when the tests are collected)."""
    return {module: imports_of(module) for module in MODULES}


def _app(module: str) -> str:
    return module.split(".")[0]


def _allowed(source: str, target: str) -> bool:
    source_app, target_app = _app(source), _app(target)
    if source_app == "config":
        return source not in PLUMBING or target_app == "config"
    if target_app == "config":
        return target in PLUMBING
    return APPS.index(target_app) <= APPS.index(source_app)


def test_it_reads_every_import_but_those_only_for_type_checking() -> None:
    source = """
from typing import TYPE_CHECKING
import judges.models
from judges import selectors, core
from . import forms

if TYPE_CHECKING:
    from analysis.models import MetricSnapshot

def view():
    from analysis import services as analysis_services
"""
    found = imports_in(source, "annotation.views")

    assert found == {
        ("judges.models", 3),
        ("judges.selectors", 4),
        ("judges.core", 4),
        ("annotation.forms", 5),
        ("analysis.services", 11),
    }
    assert {_app(m) for m in MODULES} == set(PACKAGES)


def test_the_apps_import_only_the_apps_before_them() -> None:
    wrong = sorted(
        f"{MODULES[source].relative_to(ROOT)}:{line}: {source} imports {target}"
        for source, targets in graph().items()
        for target, line in targets
        if not _allowed(source, target)
    )
    assert wrong == [], "imports against the flow " + " -> ".join(APPS) + ":\n" + "\n".join(wrong)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    edges = {m: sorted({t for t, _ in targets}) for m, targets in graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    assert _cycles() == []


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("judges.services", "corpus.models", True),
        ("corpus.importers.writer", "judges.models", False),
        ("annotation.views", "analysis.selectors", False),
        ("analysis.views", "annotation.selectors", True),
        ("judges.api", "config.api", True),
        ("judges.api", "config.urls", False),
        ("config.roles", "annotation.models", False),
        ("config.management.commands.seed_demo", "analysis.services", True),
    ],
)
def test_the_rule_reads_as_written(source: str, target: str, allowed: bool) -> None:
    assert _allowed(source, target) is allowed


# The statistics and the figures built from them run without Django: a vote table in, plain
# data out. What they import of ours must be pure too (checked transitively through graph()).
PURE = (
    "analysis.metrics",
    "analysis.figures",
    "analysis.vote_table",
    "analysis.studies",
    "analysis.snapshot",  # the snapshot's shape: pydantic only
    "judges.core",
)


def _is_pure(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PURE)


def _third_party(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_statistics_and_figures_import_no_django_and_nothing_impure() -> None:
    pure = [m for m in MODULES if _is_pure(m)]
    assert "analysis.metrics.engine" in pure and "analysis.figures" in pure
    wrong = sorted(
        f"{MODULES[m].relative_to(ROOT)}: imports {target}"
        for m in pure
        for target in (
            {t for t, _ in graph()[m] if not _is_pure(t)}
            | ({"django", "rest_framework", "celery"} & _third_party(m))
        )
    )
    assert not wrong, "\n".join(wrong)
