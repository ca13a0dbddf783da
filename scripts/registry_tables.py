"""Rows of the draft's registry tables, read from the code's registries.

``scripts/sync_draft.py`` turns each into an RFCXML ``<table>``; the registries in
``agent_recovery._registry`` and ``agent_recovery._errors`` are the single source.
"""

from __future__ import annotations

from agent_recovery import _registry
from agent_recovery._errors import ErrorCode

Rows = tuple[str, str, tuple[str, ...], list[tuple[str, ...]]]


def _entries(registry: _registry.Registry) -> list[tuple[str, ...]]:  # type: ignore[type-arg]
    return [(entry.value, entry.fallback, entry.definition) for entry in registry.entries.values()]


def registry_rows(which: str) -> Rows:
    if which == "failure-types":
        return (
            "Failure Types: Initial Contents",
            "tab-failure-types",
            ("Value", "Fallback", "Definition"),
            _entries(_registry.FAILURE_TYPES),
        )
    if which == "outcomes":
        return (
            "Member Outcomes: Initial Contents",
            "tab-outcomes",
            ("Value", "Fallback", "Definition"),
            _entries(_registry.OUTCOMES),
        )
    if which == "actions":
        return (
            "Recommended Actions: Initial Contents",
            "tab-recommended-actions",
            ("Value", "Fallback", "Definition"),
            _entries(_registry.RECOMMENDED_ACTIONS),
        )
    if which == "errors":
        return (
            "Error Codes: Initial Contents",
            "tab-error-codes",
            ("Code", "Definition"),
            [(code.value, code.description) for code in ErrorCode],
        )
    if which == "jamjet":
        return (
            "Disposition of the JamJet Failure Variants",
            "tab-jamjet",
            ("JamJet variant", "Disposition", "Carried as"),
            [
                (
                    m.variant,
                    m.disposition.value
                    + (f": {m.failure_type.value}" if m.failure_type is not None else ""),
                    m.carried_as,
                )
                for m in _registry.JAMJET_MAPPING
            ],
        )
    raise KeyError(which)
