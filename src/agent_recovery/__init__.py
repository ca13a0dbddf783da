"""Failure signaling and coordinated rollback for cooperating agents.

The reference implementation of draft-agent-recovery-rollback. The package root
re-exports the sans-I/O core only; security back-ends, storage and bindings live
in subpackages and are imported explicitly.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
]
