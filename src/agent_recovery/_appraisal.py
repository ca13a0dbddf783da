"""The appraisal of a trigger: verdicts and the policy that gives them (draft §9.2).

The coordinator asks its policy once the rollback set is closed and before it
restores anything; the policy sees the verified failure signal and the set.
"""

from __future__ import annotations

import enum
from typing import Protocol

from ._messages import FailureSignal
from ._scope import ScopeResult

__all__ = ["AcceptAll", "AppraisalPolicy", "Verdict"]


class Verdict(enum.StrEnum):
    """The appraisal of a trigger (draft §9.2)."""

    ACCEPT = "accept"
    REJECT = "reject"
    ESCALATE = "escalate"


class AppraisalPolicy(Protocol):
    """Decides, from the trigger and the closed rollback set, whether to act.

    Must be pure: the same inputs give the same verdict, so a restarted
    coordinator decides as before. ``None`` defers the decision to
    :meth:`Coordinator.decide` (for example a human approval).
    """

    def appraise(self, signal: FailureSignal, scope: ScopeResult) -> Verdict | None: ...


class AcceptAll:
    """A policy that accepts every authorized trigger."""

    def appraise(self, signal: FailureSignal, scope: ScopeResult) -> Verdict | None:
        return Verdict.ACCEPT
