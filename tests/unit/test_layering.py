"""The README's layering rules, checked on the source: every `import` in the tree (also those inside functions,
which a fresh-interpreter probe never runs) against the forbidden arrows, the node side's libraries, and no
import cycle between modules."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTIONS = ("agent", "master", "stage1", "contrib/importers")  # each holds a piece of the `perceus` namespace
LAYERS = ("protocol", "agent", "stage1", "importers", "master", "lab", "web")  # perceus.<layer>; else "neutral"
_NOT_THE_NODE = {"master", "lab", "web", "stage1", "importers"}
# Importing layer → layers it must not import.  `neutral` is perceus.errors, perceus.logsetup, perceus.fsatomic:
# what node and master share beside the protocol.
FORBIDDEN: dict[str, set[str]] = {
    "protocol": {"agent", *_NOT_THE_NODE},
    "neutral": {"agent", *_NOT_THE_NODE},
    "agent": _NOT_THE_NODE,
    "importers": {"agent", "stage1", "master", "lab", "web"},  # pure parsers → records; the master stores them
    "stage1": {"agent", "master", "lab", "web", "importers"},  # copies the agent's files, never runs its code
    "master": {"lab", "web"},  # the lab (QEMU, namespaces) and the web service are clients of the master
}  # perceus.lab and perceus.web (their own processes, test and demo tooling) may import any layer
# The sanctioned exceptions, with their reasons: CLI verbs that are doors to the lab (imported lazily, only when run).
LAB_DOORS = {
    "perceus.master.cli.demo": "`perceus demo` boots QEMU nodes",
    "perceus.master.cli.lab": "`perceus lab fleet` runs the emulated fleet",
}
# Libraries only the master installs or needs: nothing a node carries may import them.
MASTER_ONLY_LIBS = {"psycopg", "psycopg_pool", "ClusterShell", "yaml", "argcomplete", "cryptography"}
# Node-side adapters: each library imported by exactly this one module (house style).
ADAPTERS = {
    "zmq": "perceus.agent.bus",
    "pyroute2": "perceus.agent.network",
    "cffi": "perceus.agent.kexec",
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (a perceus module resolved to its file's module, else the top-level name)
    line: int
    at_runtime: bool  # False under `if TYPE_CHECKING:` (annotations only: no cycle at import time)

    def __str__(self) -> str:
        return f"{self.source}:{self.line} → {self.target}"


def find_modules(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every portion of the namespace under `root`."""
    out: dict[str, Path] = {}
    for portion in PORTIONS:
        base = root / portion
        for path in sorted((base / "perceus").rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


class _Collector(ast.NodeVisitor):
    def __init__(self, name: str, is_package: bool, modules: dict[str, Path]) -> None:
        self.name, self.is_package, self.modules = name, is_package, modules
        self.found: list[Import] = []
        self._typing_only = 0

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        typing_only = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        self._typing_only += typing_only
        for child in node.body:
            self.visit(child)
        self._typing_only -= typing_only
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: resolve against this module's package
            package = self.name.split(".") if self.is_package else self.name.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            self._add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in self.modules else base, node.lineno)

    def _add(self, target: str, line: int) -> None:
        if target.split(".", maxsplit=1)[0] == "perceus":
            while target not in self.modules and "." in target:
                target = target.rsplit(".", 1)[0]  # `from perceus.agent import __version__` → perceus.agent
        self.found.append(Import(self.name, target, line, at_runtime=not self._typing_only))


def find_imports(modules: dict[str, Path]) -> Iterator[Import]:
    for name, path in modules.items():
        collector = _Collector(name, path.name == "__init__.py", modules)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        yield from (i for i in collector.found if i.target != name)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "neutral"


def violations(imports: list[Import], importing_layer: str) -> list[str]:
    return sorted(
        str(i)
        for i in imports
        if layer(i.source) == importing_layer
        and i.target.startswith("perceus.")
        and layer(i.target) in FORBIDDEN[importing_layer]
        and not (i.source in LAB_DOORS and layer(i.target) == "lab")
    )


def cycles(modules: dict[str, Path], imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over imports that run."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for i in imports:
        if i.at_runtime and i.target in modules:
            graph[i.source].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            component.append(v)
            if len(component) > 1:
                out.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


MODULES = find_modules(ROOT)
IMPORTS = list(find_imports(MODULES))  # parsed once for every test here


@pytest.mark.parametrize("importing_layer", sorted(FORBIDDEN))
def test_no_forbidden_arrow(importing_layer: str) -> None:
    assert violations(IMPORTS, importing_layer) == []


def test_the_node_side_imports_no_master_library() -> None:
    node_side = {"agent", "protocol", "neutral"}
    bad = sorted(str(i) for i in IMPORTS if layer(i.source) in node_side and i.target.split(".")[0] in MASTER_ONLY_LIBS)
    assert bad == []


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_each_node_library_has_one_adapter(library: str) -> None:
    users = {
        i.source
        for i in IMPORTS
        if layer(i.source) in ("agent", "protocol", "neutral") and i.target.split(".")[0] == library
    }
    assert users == {ADAPTERS[library]}


def test_no_import_cycle() -> None:
    assert cycles(MODULES, IMPORTS) == []


def test_the_checker_catches_a_wrong_arrow_and_a_cycle(tmp_path: Path) -> None:
    """On a small tree with known faults: a relative and a function-local import up from the agent, a cycle
    through a lazy import, and a cycle only under TYPE_CHECKING (allowed)."""
    files = {
        "agent/perceus/errors.py": "",
        "agent/perceus/agent/__init__.py": "",
        "agent/perceus/agent/a.py": "from . import b\ndef f():\n    from perceus.master.cli import x\n",
        "agent/perceus/agent/b.py": "def g():\n    import perceus.agent.a\n",
        "agent/perceus/agent/c.py": "import typing\nif typing.TYPE_CHECKING:\n    from perceus.agent import d\n",
        "agent/perceus/agent/d.py": "from perceus.agent.c import *\n",
        "master/perceus/master/__init__.py": "",
        "master/perceus/master/cli/__init__.py": "",
        "master/perceus/master/cli/x.py": "from perceus.errors import *\nfrom perceus.agent import __version__\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    modules = find_modules(tmp_path)
    imports = list(find_imports(modules))
    assert violations(imports, "agent") == ["perceus.agent.a:3 → perceus.master.cli.x"]
    assert violations(imports, "master") == []  # master → agent (its version) and → errors are fine
    assert cycles(modules, imports) == [["perceus.agent.a", "perceus.agent.b"]]


def test_the_checker_reads_the_real_tree() -> None:
    """Guards against a vacuous pass: the walk sees the portions, lazy imports and package-level targets."""
    edges = {(i.source, i.target) for i in IMPORTS}
    assert {layer(m) for m in MODULES} >= {"protocol", "agent", "stage1", "importers", "master", "lab", "neutral"}
    assert ("perceus.master.cli.main", "perceus.master.cli.node") in edges
    assert ("perceus.master.store", "perceus.master.store.postgres") in edges  # inside open_store()
    assert ("perceus.master.cli.demo", "perceus.lab.demo") in edges  # a lab door exists: the exception is real
