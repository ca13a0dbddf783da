"""Scope vectors checked from outside: the target computes a rollback set it can be seen to use.

Each vector (``conformance/scope``) gives a dependency graph, a failed
execution with its restore checkpoint, and the expected members with their
targets and actions. The runner plays every execution of the graph: it
signals the failure of the origin and answers each halt with the facts and
the dependents the graph gives, so the target discovers the graph hop by hop
(draft §8.1); the set it halts and the rollbacks it sends are the observable
rollback set (draft §7). Vectors that depend on a target's local policy
(bounds) are reported as skipped.
"""

from __future__ import annotations

from pathlib import Path

from ._kit import Kit
from ._report import Level

__all__ = ["run_scope_vectors"]


async def run_scope_vectors(kit: Kit, directory: Path) -> None:
    g = "scope vectors"
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        kit.check(
            "scope.present",
            g,
            Level.SHOULD,
            "7",
            "scope vectors found",
            None,
            f"none under {directory}",
        )
        return
    kit.check(
        "scope.present",
        g,
        Level.SHOULD,
        "7",
        "scope vectors found",
        True,
        f"{len(files)} vector(s)",
    )
