"""The package's shape: no import loops, no import that runs up a floor, ``main()`` only in the command-line wing,
and the embedding path reaching the reranker wing only through ``config.TASK_ENTRY_POINTS``.

Read from the source with ``ast`` (imports inside functions count too), so no module is imported here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "st_qwen3emb"
ROOT = PACKAGE.name

# Floors from the ground up (docs: README "How it is built"). A module imports only from its own floor or below.
FLOORS: tuple[tuple[str, ...], ...] = (
    # facts and small safe primitives that import nothing of the package
    ("protocol", "runs", "figures", "booleans", "redaction", "card_markdown", "saved_config", "safe_replace",
     "hub_access", "scratch", "checkpoint_marker"),
    ("config", "model", "lora", "data", "losses", "distributed", "fixtures", "commands"),
    ("export_steps", "export", "model_card", "hub", "evaluation", "mining"),
    ("training", "reranker"),
    ("cli",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports, wherever in the file the import stands."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package itself
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _floor(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package's face (lazy names only)
    for level, tops in enumerate(FLOORS):
        if parts[1] in tops:
            return level
    return None


def test_every_module_has_a_floor():
    assert [m for m in MODULES if m != ROOT and _floor(m) is None] == []


def test_no_import_runs_up_a_floor():
    upward = [
        f"{a} -> {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if _floor(a) is not None and _floor(b) is not None and _floor(b) > _floor(a)
    ]
    assert upward == []


def test_no_import_loops():
    # Tarjan's strongly connected components; a component of more than one module is a loop.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert loops == []


def test_main_only_in_the_cli_wing():
    offenders = []
    for name, path in MODULES.items():
        if name == f"{ROOT}.cli" or name.startswith(f"{ROOT}.cli."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            offenders.append(name)
    assert offenders == []


def test_only_the_reranker_wing_and_cli_import_the_reranker_wing():
    wing = f"{ROOT}.reranker"
    outside = [
        f"{a} -> {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if (b == wing or b.startswith(wing + "."))
        and not (a == wing or a.startswith(wing + ".") or a.startswith(f"{ROOT}.cli"))
    ]
    assert outside == []


def test_task_entry_points_name_real_functions():
    from st_qwen3emb import config

    for task_type, steps in config.TASK_ENTRY_POINTS.items():
        assert task_type in config.TASK_TYPES
        for spec in steps.values():
            module, function = spec.split(":")
            assert module in MODULES, spec
            tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
            assert any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body), spec
