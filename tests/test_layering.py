"""The sans-I/O core imports nothing from bindings, security back-ends, storage,
the test kit, networking, clocks or randomness (CODE-STYLE, example 10)."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "agent_recovery"

# The core: every private module at the package root.
CORE = sorted(p for p in PACKAGE.glob("_*.py") if p.name != "__init__.py")

FORBIDDEN_STDLIB = {
    "socket",
    "ssl",
    "asyncio",
    "selectors",
    "http",
    "urllib",
    "time",
    "datetime",
    "random",
    "secrets",
    "os",
    "subprocess",
    "threading",
    "multiprocessing",
    "sqlite3",
    "uuid",
    "pathlib",
    "io",
    "tempfile",
    "shutil",
    "signal",
}
FORBIDDEN_THIRD_PARTY = {
    "httpx",
    "starlette",
    "uvicorn",
    "a2a",
    "cryptography",
    "joserfc",
    "networkx",
}
FORBIDDEN_INTERNAL = {"security", "store", "bindings", "testing", "_cli", "cli", "interop"}


def _imports(path: pathlib.Path) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {(0, alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.level, node.module or ""))
            if node.level and not node.module:
                found |= {(node.level, alias.name) for alias in node.names}
    return found


def test_there_is_a_core() -> None:
    assert CORE


def test_core_imports_no_io_clock_randomness_or_outer_layers() -> None:
    offences = []
    for path in CORE:
        for raw_level, name in _imports(path):
            top, level = name.split(".")[0], raw_level
            if level == 0 and name.startswith("agent_recovery."):
                top, level = name.split(".")[1], 1
            if level == 0 and top in FORBIDDEN_STDLIB | FORBIDDEN_THIRD_PARTY:
                offences.append(f"{path.name} imports {name}")
            if level >= 1 and top in FORBIDDEN_INTERNAL:
                offences.append(f"{path.name} imports .{name}")
    assert offences == []


def test_the_checker_notices_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "_bad.py"
    bad.write_text("import time\nfrom .security import jws\n", encoding="utf-8")
    assert (0, "time") in _imports(bad)
    assert (1, "security") in _imports(bad)
