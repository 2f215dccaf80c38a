"""The installer's imports run one way: cli -> runner -> phases -> engine -> context -> its parts -> leaves.

Every module of bootstrap/ is parsed (not imported) and every import in it counts: top-level,
function-local and under TYPE_CHECKING alike, since an import tucked into a function is still a
call upward, only a later one. The bootstrap/pki package counts as one leaf: importing it is an
edge to "pki", and its own modules may import only each other (test_pki_is_a_leaf).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from kubeproof.graphs import find_cycle

BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap"
PACKAGE = "kubeproof.bootstrap"
# python -m bootstrap puts the folder on sys.path: an import by that name is the same module
ALIASES = ("bootstrap",)
NOT_SCANNED = "pki"

# Module (dotted, under kubeproof.bootstrap) -> layer. A module imports only from lower layers.
LAYERS: dict[str, int] = {
    # leaves: nothing of the installer
    "__init__": 0,
    "errors": 0,
    "content": 0,
    "state": 0,
    "csr": 0,
    "pki": 0,
    # the parts a run is made of
    "artifacts": 1,  # errors, content, state
    "remote_digests": 1,  # state (JsonCache)
    "render": 2,  # artifacts (BinaryInfo), errors
    "render_nodes": 3,  # render (HEADER, Flag, component_unit), artifacts, errors
    "kubeapi": 3,  # render, errors, state
    "host_profile": 3,  # render
    "context": 4,  # artifacts, host_profile, kubeapi, state
    "engine": 5,  # context, content, errors
    "phases": 6,  # the helpers phases share: engine, context, errors
    "phases.environment": 7,
    "phases.pki": 7,
    "phases.etcd": 7,
    "phases.docker": 7,
    "phases.flannel": 7,
    "phases.master": 7,
    "phases.nodes": 7,
    "health": 8,  # the suites' rows as apply's gate, and the repairs: engine, phases.nodes, kubeproof.evaluate
    "runner": 9,
    "cli": 10,
    "__main__": 11,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(BOOTSTRAP).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


@cache
def scanned_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(BOOTSTRAP.rglob("*.py")):
        relative = path.relative_to(BOOTSTRAP)
        if "__pycache__" in relative.parts or relative.parts[0] in (NOT_SCANNED, NOT_SCANNED + ".py"):
            continue
        found[module_name(path)] = path
    return found


def _local(dotted: str) -> str | None:
    """kubeproof.bootstrap.x.y -> "x.y" (the package itself -> "__init__"); None outside the installer."""
    for prefix in (PACKAGE, *ALIASES):
        if dotted == prefix:
            return "__init__"
        if dotted.startswith(prefix + "."):
            name = dotted[len(prefix) + 1 :]
            return NOT_SCANNED if name.split(".")[0] == NOT_SCANNED else name
    return None


def _with_parents(name: str) -> list[str]:
    """Importing phases.nodes runs phases/__init__.py first: that is an import of phases too."""
    if name == "__init__":
        return [name]
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imports_of(source: str, importer: str, *, is_package: bool = False) -> Iterator[tuple[str, int]]:
    """(installer module, line) for every import statement anywhere in the source, nested ones too."""
    if importer == "__init__":
        package = PACKAGE
    else:
        package = f"{PACKAGE}.{importer}" if is_package else f"{PACKAGE}.{importer}".rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([node.module] if node.module else [])])
            # `from pkg import name`: pkg always, pkg.name too where it is a module of its own
            modules, names = [base], [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in modules + names:
            local = _local(target)
            if local is None or (target in names and local != NOT_SCANNED and local not in scanned_modules()):
                continue  # not the installer's, or a name a module defines (`from ...phases import Phase`)
            for name in _with_parents(local):
                if name != importer:
                    yield name, node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    """importer -> {imported: first line}."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in scanned_modules().items():
        edges: dict[str, int] = {}
        for target, line in imports_of(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def test_every_installer_module_has_a_layer() -> None:
    modules = set(scanned_modules())
    assert "engine" in modules and "phases.nodes" in modules  # the scan sees the tree
    assert sorted(modules - set(LAYERS)) == [], "a new module: give it a layer in LAYERS"
    assert sorted(set(LAYERS) - modules - {NOT_SCANNED}) == [], "LAYERS names a module that is gone"


def test_imports_only_go_down_the_layers() -> None:
    upward = [
        f"{importer}.py:{line} (layer {LAYERS[importer]}) imports {target} (layer {LAYERS.get(target, '?')})"
        for importer, edges in sorted(import_graph().items())
        for target, line in sorted(edges.items())
        if target not in LAYERS or LAYERS[target] >= LAYERS[importer]
    ]
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_scan_sees_function_local_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from kubeproof.bootstrap.context import RunContext\n"
        "def later():\n"
        "    from kubeproof.bootstrap.engine import Change\n"
        "    import kubeproof.bootstrap.phases.nodes\n"
        "from . import state\n"
        "from kubeproof.bootstrap.phases import Phase\n"
    )
    found = {name for name, _ in imports_of(source, "render")}
    assert found == {"__init__", "context", "engine", "phases", "phases.nodes", "state"}
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]


def test_pki_is_a_leaf() -> None:
    outside = []
    for path in sorted((BOOTSTRAP / NOT_SCANNED).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                targets = [node.module or ""]
            else:
                continue
            for target in targets:
                local = _local(target)
                if local is not None and local != NOT_SCANNED:
                    outside.append(f"{path.relative_to(BOOTSTRAP)}:{node.lineno} imports {target}")
    assert (BOOTSTRAP / NOT_SCANNED / "__init__.py").is_file()
    assert outside == []
