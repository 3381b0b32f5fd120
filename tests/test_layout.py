"""The tree is the architecture: imports flow one way (pure core → adapters → app), each
third-party library stays in the module that adapts it, and nothing imports in a circle.

Read from the source with :mod:`ast`, so every import counts: module level, inside
functions (lazy), and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "bridge"

# What the pure core may import besides the standard library and itself: Tilt's decoded
# data model (pure), the error tree, and pydantic for the answer models.
CORE_MAY_IMPORT = ("bridge.core", "bridge.tilt.view", "bridge.errors")
CORE_THIRD_PARTY = {"pydantic", "pydantic_core"}
# The standard library modules that mean I/O, a clock or concurrency.
CORE_FORBIDDEN_STDLIB = {
    "asyncio",
    "socket",
    "threading",
    "time",
    "os",
    "subprocess",
    "select",
    "signal",
    "logging",
}

# Each third-party library, and where it may be imported.
CONFINED: dict[str, tuple[str, ...]] = {
    "websockets": ("bridge.tilt.stream", "bridge.testing"),
    "httpx2": (),  # fastmcp's; Tilt's API is spoken with h11 (bridge.tilt._http11)
    "fastmcp": ("bridge.mcp",),
    "mcp": ("bridge.mcp",),
    "mcp_types": ("bridge.mcp",),
    "uvicorn": ("bridge.mcp.http", "bridge.testing"),
    "starlette": ("bridge.mcp.http", "bridge.testing"),
    "h11": ("bridge.tilt._http11", "bridge.testing"),
    "regex": ("bridge.grep",),
    # bridge.log imports it without rich's traceback/pretty modules (see there)
    "structlog": ("bridge.log",),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str) -> Iterator[tuple[str, int]]:
    """Every module ``name`` imports (absolute names), with the line."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == "__future__":
                continue
            yield target, node.lineno
            for alias in node.names:  # `from bridge.core import state` imports a module
                if f"{target}.{alias.name}" in modules():
                    yield f"{target}.{alias.name}", node.lineno


def internal_edges() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m in mods:
        for target, _ in imports_of(m):
            if target in mods and target != m:
                edges[m].add(target)
    return edges


def in_package(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_import_cycles_not_even_lazy_or_type_checking() -> None:
    edges = internal_edges()
    # A package imports its own submodules to re-export them; that is not a cycle back.
    for m, targets in edges.items():
        edges[m] = {t for t in targets if not (t.startswith(m + ".") or m.startswith(t + "."))}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


PURE = ("bridge.core", "bridge.tilt.view")
"""The pure floor: the core, and the frame decoder it builds on."""
CLOCK_CALLS = {("time", "time"), ("time", "monotonic"), ("datetime", "now"), ("datetime", "utcnow")}


def test_the_core_is_pure() -> None:
    """bridge.core (and the decoder it reads) import no I/O, clock or concurrency, and
    nothing above them."""
    stdlib = sys.stdlib_module_names
    problems = []
    for m in modules():
        if not in_package(m, PURE):
            continue
        for target, line in imports_of(m):
            top = target.split(".")[0]
            if top == "bridge":
                ok = in_package(target, CORE_MAY_IMPORT)
            elif top in stdlib:
                ok = top not in CORE_FORBIDDEN_STDLIB
            else:
                ok = top in CORE_THIRD_PARTY
            if not ok:
                problems.append(f"{m}:{line} imports {target}")
    assert not problems, "\n".join(problems)


def test_the_core_reads_no_clock() -> None:
    """``now`` is an argument in the core: no ``time.time()`` or ``datetime.now()`` call."""
    problems = []
    for m, path in modules().items():
        if not in_package(m, PURE):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in CLOCK_CALLS
            ):
                problems.append(f"{m}:{node.lineno} calls {node.func.value.id}.{node.func.attr}()")
    assert not problems, "\n".join(problems)


def test_only_the_app_and_the_mcp_layer_import_the_mcp_layer() -> None:
    """The async shell and the adapters sit below bridge.mcp; only bridge.app wires it."""
    problems = [
        f"{m} imports {t}"
        for m, targets in internal_edges().items()
        for t in targets
        if in_package(t, ("bridge.mcp",)) and not in_package(m, ("bridge.mcp", "bridge.app"))
    ]
    assert not problems, "\n".join(problems)


def test_production_code_reaches_the_fake_tilt_only_through_the_demo() -> None:
    problems = [
        f"{m} imports {t}"
        for m, targets in internal_edges().items()
        for t in targets
        if in_package(t, ("bridge.testing",))
        and not in_package(m, ("bridge.testing", "bridge.demo"))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_third_party_libraries_stay_in_their_adapter(library: str) -> None:
    problems = [
        f"{m}:{line} imports {target}"
        for m in modules()
        for target, line in imports_of(m)
        if target.split(".")[0] == library and not in_package(m, CONFINED[library])
    ]
    assert not problems, "\n".join(problems)


REGISTERS = re.compile(r"^\s*@?mcp\.(tool|resource|prompt)\b", re.MULTILINE)


def test_registering_modules_keep_real_annotations() -> None:
    """fastmcp calls ``get_type_hints`` on every tool/resource/prompt function several
    times while registering it: string annotations (``from __future__ import
    annotations``) are evaluated each time, ~10 ms of start-up for our set."""
    problems = [
        m
        for m, p in modules().items()
        if m.startswith("bridge.mcp")
        and REGISTERS.search(p.read_text())
        and "from __future__ import annotations" in p.read_text()
    ]
    assert not problems, problems


def test_structlog_is_configured_in_one_place() -> None:
    where = [
        module_name(p)
        for p in modules().values()
        if "structlog.configure(" in p.read_text() or "structlog.configure_once(" in p.read_text()
    ]
    assert where == ["bridge.log"]


def test_nothing_below_the_app_imports_the_app() -> None:
    """bridge.app wires everything; no module it wires may import it (or the CLI)."""
    problems = [
        f"{m} imports {t}"
        for m, targets in internal_edges().items()
        for t in targets
        if t in ("bridge.app", "bridge.cli")
        and m not in ("bridge.app", "bridge.cli", "bridge.__main__")
    ]
    assert not problems, "\n".join(problems)


def test_private_sdk_access_only_in_the_seam_module() -> None:
    """Every ``obj._private`` access on someone else's object in bridge/mcp sits in
    bridge/mcp/_sdk.py (where each one names the public API that is missing)."""
    problems = []
    for m, path in modules().items():
        if not in_package(m, ("bridge.mcp",)) or m == "bridge.mcp._sdk":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                problems.append(f"{m}:{node.lineno} .{node.attr}")
    assert not problems, "\n".join(problems)
