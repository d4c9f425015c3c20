"""The engine's rooms: imports go one way (docs/architecture.md), no module cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import bkind_model

ROOT = Path(bkind_model.__file__).parent

#: What each room may import of ours (besides itself); top-level modules are rooms too.
ALLOWED = {
    "errors": set(),
    "jsonfile": {"errors"},
    "config": {"errors", "jsonfile"},
    "devices": {"errors", "config"},
    "pose": {"errors"},
    "io": {"errors", "jsonfile", "config", "pose"},
    "frames": {"errors", "config", "io", "pose"},
    "model": {"errors", "config"},
    "train": {"errors", "config", "devices", "io", "frames", "model", "pose"},
    "infer": {"errors", "config", "devices", "io", "frames", "model", "pose"},
    "synthetic": {"errors", "jsonfile", "io", "pose"},
    "evaluate": {"errors", "config", "io", "frames", "synthetic", "pose"},
    "multiview": {"errors", "config", "devices", "io", "frames", "model", "train", "infer"}
    | {"evaluate", "synthetic", "pose"},
    "naming": {"errors", "jsonfile", "config", "io", "frames", "evaluate", "synthetic", "pose"},
    "behaviour": {"errors", "config", "io", "frames", "evaluate", "synthetic", "pose"}
    | {"naming"},
    "cli": {"errors", "config", "devices", "io", "frames", "model", "train", "infer"}
    | {"evaluate", "synthetic", "multiview", "pose", "naming", "behaviour"},
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """``{module: modules of bkind_model it imports}``, at any depth of the file."""
    graph = {}
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("bkind_model"):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("bkind_model")}
        graph[_module_name(path)] = found
    return graph


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_rooms_import_only_what_the_map_allows():
    wrong = []
    for module, imported in _imports().items():
        room = _room(module)
        for target in imported:
            other = _room(target)
            if other and other != room and other not in ALLOWED.get(room, set()):
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong
    assert set(ALLOWED) >= {_room(m) for m in _imports() if _room(m)}


def test_no_module_imports_itself_back():
    graph = _imports()
    modules = set(graph)

    def resolve(name: str) -> str | None:
        return name if name in modules else None

    edges = {m: {t for t in map(resolve, targets) if t and t != m} for m, targets in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    # A package's __init__ re-exporting its own modules is not a cycle between rooms.
    cycles = [c for c in cycles if not all(m.startswith(c[0]) or c[0].startswith(m) for m in c)]
    assert not cycles, cycles
