"""The package's layers, read from its own imports: no cycles, nothing imports upward.

Bottom to top: ``crm`` → ``postgres`` (and ``backends``) → ``dataset`` → ``agents`` →
``runner`` → ``results`` → the pytest layer (``plugin``, ``fixtures``, ``options``,
``items``, ``session``, ``state``, ``inflight``, ``collect_cache``) and the CLI (``cli``, ``lint``,
``generate``, ``fakemodel``, ``reports``, ``gym``). A function-local import is allowed only
when it is lazy on purpose and says why in a ``# lazy:`` comment.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "pytest_crmbench"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

PYTEST_LAYER = (
    "plugin",
    "fixtures",
    "options",
    "items",
    "session",
    "state",
    "inflight",
    "collect_cache",
)
CLI = ("cli", "lint", "audit", "generate", "fakemodel", "reports", "gym")
LAYERS: tuple[tuple[str, ...], ...] = (
    ("", "locations"),  # the package root (its version) and where shipped data lives
    ("crm",),
    ("postgres", "backends"),
    ("dataset",),
    ("agents",),
    ("runner",),
    ("results",),
    (*PYTEST_LAYER, *CLI),
)
LAYER_OF = {part: n for n, parts in enumerate(LAYERS) for part in parts}
NO_PYTEST = {part for parts in LAYERS[:-1] for part in parts}  # below the pytest layer


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (or a name in it)
    line: int
    local: bool  # inside a function
    type_only: bool  # under ``if TYPE_CHECKING:``
    lazy_reason: bool  # a ``# lazy:`` comment on its line or the line above


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p) for p in ROOT.rglob("*.py")}


def _imports(path: Path) -> list[Import]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    tree = ast.parse(text)
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    local_ids: set[int] = set()
    type_ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            local_ids |= {id(n) for n in ast.walk(node)}
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_ids |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module_name = ".".join([*base, node.module] if node.module else base)
            else:
                module_name = node.module or ""
            # ``from pkg import submodule`` imports the submodule, not (only) the package.
            targets = [
                f"{module_name}.{a.name}" if f"{module_name}.{a.name}" in MODULES else module_name
                for a in node.names
            ]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for target in targets:
            comment = " ".join(lines[max(node.lineno - 2, 0) : node.lineno])
            out.append(
                Import(
                    module,
                    target,
                    node.lineno,
                    id(node) in local_ids,
                    id(node) in type_ids,
                    "# lazy:" in comment,
                )
            )
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


ALL = [imp for path in sorted(ROOT.rglob("*.py")) for imp in _imports(path)]
INTERNAL = [i for i in ALL if i.target == PACKAGE or i.target.startswith(PACKAGE + ".")]


def _resolve(target: str, modules: set[str]) -> str:
    """The module an import names (``from pkg.mod import name`` may name a name)."""
    while target not in modules and "." in target:
        target = target.rpartition(".")[0]
    return target


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(m) for m in MODULES}
    assert parts - set(LAYER_OF) == set(), "give the new part a layer in LAYERS"


def test_no_upward_imports() -> None:
    upward = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in INTERNAL
        if LAYER_OF[_part(i.target)] > LAYER_OF[_part(i.source)]
    ]
    assert upward == []


def test_lower_layers_know_nothing_of_pytest() -> None:
    found = [
        f"{i.source}:{i.line}"
        for i in ALL
        if _part(i.source) in NO_PYTEST and i.target.split(".")[0] in ("pytest", "_pytest")
    ]
    assert found == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _edges(by: str) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for i in INTERNAL:
        if i.type_only:
            continue
        source = i.source
        target = _resolve(i.target, MODULES)
        if by == "part":
            source, target = _part(source), _part(target)
        elif target == source.rpartition(".")[0]:
            continue  # a module importing from its own package's __init__ re-exports
        if source != target:
            edges.setdefault(source, set()).add(target)
    return edges


@pytest.mark.parametrize("by", ["part", "module"])
def test_no_import_cycles(by: str) -> None:
    assert _cycles(_edges(by)) == []


def test_function_local_imports_say_why_they_are_lazy() -> None:
    hidden = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in INTERNAL
        if i.local and not i.type_only and not i.lazy_reason
    ]
    assert hidden == []


def test_the_checks_catch_what_they_are_for() -> None:
    """The walk itself is not vacuous: a planted upward import and cycle are found."""
    planted = [
        Import(
            "pytest_crmbench.crm.service", "pytest_crmbench.runner.runner", 1, True, False, False
        ),
        Import(
            "pytest_crmbench.runner.runner", "pytest_crmbench.crm.service", 1, False, False, False
        ),
    ]
    assert LAYER_OF[_part(planted[0].target)] > LAYER_OF[_part(planted[0].source)]
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert len(INTERNAL) > 150  # the walk sees the package's imports
