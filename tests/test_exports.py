"""The public API is curated: every public package lists its names in a sorted
``__all__`` and every listed name exists (CODE-STYLE, example 10)."""

from __future__ import annotations

import importlib
import pkgutil

import agent_recovery

PUBLIC = [agent_recovery.__name__] + [
    info.name
    for info in pkgutil.walk_packages(agent_recovery.__path__, agent_recovery.__name__ + ".")
    if not any(part.startswith("_") for part in info.name.split(".")[1:])
    and info.name != "agent_recovery.cli"
]


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 enforces: SCREAMING_CASE, then CamelCase, then the rest.
    if len(name) > 1 and name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_public_modules_have_sorted_complete_all() -> None:
    for name in PUBLIC:
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{name} has no __all__"
        assert list(exported) == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
        assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
        for attr in exported:
            assert hasattr(module, attr), f"{name}.__all__ lists missing {attr}"


def test_root_reexports_are_the_core_objects() -> None:
    import inspect

    for attr in agent_recovery.__all__:
        value = getattr(agent_recovery, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            # Classes and functions come from the core, never from a dependency.
            assert value.__module__.startswith("agent_recovery._"), attr
