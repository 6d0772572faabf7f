"""The package's layering, checked from the source: what may import what.

- The CLI's entry module ``iranker.cli.main`` is imported by nothing but ``cli/__main__.py``
  (commands import the shared parts of the CLI from ``iranker.cli.errors``, ``.options``,
  ``.building``, ``.output``), as in castorini/rank_llm: an entry module that others import
  is how ``cli.py`` became a shared library that imported its own commands back.
- The two trainers never import each other (TRL's rule); what they share is ``train/common.py``.
- No cycle among module-level imports: a cycle makes import order matter and hides which
  module depends on which.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "iranker"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported (not in functions, not under
    ``if TYPE_CHECKING``)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for h in node.handlers:
                stack.extend(h.body)


def _all_imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _targets(name: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The ``iranker`` modules an import statement in module ``name`` loads."""
    out: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "iranker":
                out.add(alias.name)
        return {t for t in out if t in MODULES}
    is_package = MODULES[name].name == "__init__.py"
    if node.level:
        base = name.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    if mod.split(".")[0] != "iranker":
        return out
    for alias in node.names:
        sub = f"{mod}.{alias.name}"
        out.add(sub if sub in MODULES else mod)
    return {t for t in out if t in MODULES}


def _with_packages(targets: set[str]) -> set[str]:
    """Importing ``a.b.c`` first runs ``a/__init__`` and ``a/b/__init__``: edges to them too."""
    out = set(targets)
    for t in targets:
        parts = t.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _graph(imports) -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set().union(*[_targets(name, n) for n in imports(tree)])
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}  # loaded already
        graph[name] = (targets | (_with_packages(targets) - own)) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_module_table_is_real():
    assert "iranker.cli.main" in MODULES and "iranker.train.common" in MODULES
    graph = _graph(_module_level_imports)
    assert {"iranker.cli.errors", "iranker.cli.options"} <= graph["iranker.cli.rank_command"]
    assert "iranker.train.common" in graph["iranker.train.choice_trainer"]


def test_nothing_imports_the_cli_entry_module():
    importers = sorted(
        name
        for name, targets in _graph(_all_imports).items()
        if "iranker.cli.main" in targets and name != "iranker.cli.__main__"
    )
    assert importers == []


@pytest.mark.parametrize(
    "trainer, other",
    [
        ("iranker.train.choice_trainer", "iranker.train.grpo_trainer"),
        ("iranker.train.grpo_trainer", "iranker.train.choice_trainer"),
    ],
)
def test_trainers_never_import_each_other(trainer, other):
    assert other not in _graph(_all_imports)[trainer]


def test_no_cycles_among_module_level_imports():
    assert _cycles(_graph(_module_level_imports)) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
