"""What the coordinator knows about each member, and the records built from it.

Split from ``_coordinator.py`` to keep that module readable: the per-member
data the tracking machine carries (its state lives in ``_state.py``), how a
recovery record lists the members (draft §11), and why a recovery escalated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._events import (
    dump_facts,
    dump_reason,
    dump_ref,
    dump_residual,
    load_facts,
    load_reason,
    load_ref,
    load_residual,
)
from ._messages import Error, Escalation, Message, RecordMember, RollbackResult, Status
from ._model import Action, ExecRef, Facts, Outcome, Reason, ReasonKind, Residual
from ._registry import OUTCOMES
from ._scope import ScopeResult
from ._state import RecoveryInput, TrackAction, TrackState

__all__ = ["TrackData", "build_members", "dump_track", "escalation_for", "load_track"]

# draft §8.2: outcomes that leave effects behind disclose them.
_DISCLOSE = frozenset({Outcome.IRREVERSIBLE, Outcome.FAILED, Outcome.UNKNOWN, Outcome.REFUSED})
_ORIGIN = Reason(kind=ReasonKind.ORIGIN)


@dataclass(slots=True)
class TrackData:
    """One member as its coordinator sees it; ``state`` is a tracking state."""

    execution: ExecRef
    state: TrackState
    target: int = 0
    reason: Reason = _ORIGIN
    attempts: int = 0  # transmissions of the current request
    next_at: int | None = None  # retransmission or follow-up timer
    since: int = 0  # when the current request was first sent
    answered: bool = False  # ack or busy received for the current request
    asked: bool = False  # a rollback was sent
    facts: Facts | None = None
    outcome: str | None = None  # as reported (an unregistered value acts as unknown)
    checkpoint: int | None = None
    residual: tuple[Residual, ...] = ()
    code: str | None = None
    requests: dict[str, str] = field(default_factory=dict)  # id -> type of every request sent

    def settle(self, action: TrackAction, message: Message | None) -> bool:
        """Record an outcome; return whether it differs from the one recorded."""
        before = (self.outcome, self.checkpoint, self.residual)
        if isinstance(message, (RollbackResult, Status)) and action is TrackAction.RECORD:
            self.outcome = message.outcome
            self.checkpoint = message.checkpoint
            self.residual = message.residual
            if isinstance(message, RollbackResult):
                self.code = message.code
        elif action is TrackAction.RECORD_REFUSAL:
            code = message.code if isinstance(message, Error) else "internal"
            what = "rollback" if self.asked else "halt"
            self.outcome = Outcome.REFUSED.value
            self.code = code
            self.residual = (Residual(description=f"{what} refused ({code}); effects remain"),)
        else:
            self.outcome = Outcome.UNKNOWN.value
            self.residual = (Residual(description="the member holds no record of the rollback"),)
        return (self.outcome, self.checkpoint, self.residual) != before


def build_members(
    result: ScopeResult, tracks: dict[ExecRef, TrackData]
) -> tuple[RecordMember, ...]:
    """draft §11: every member with its reason, action, outcome and residual effects.

    A member that was never asked to roll back has no outcome, unless its halt
    was refused or never answered: then its effects after the target remain,
    and the record says so (``refused`` or ``unknown`` with residual effects).
    A member asked to roll back whose outcome is not known is ``unknown``.
    """
    members: list[RecordMember] = []
    for ref, track in sorted(tracks.items()):
        member = result.member(ref)
        target = track.target if member is None else member.target
        reason = track.reason if member is None else member.reason
        action = None if member is None else member.action
        outcome = track.outcome
        residual = track.residual
        if outcome is None and track.state is TrackState.UNREACHABLE:
            outcome = Outcome.UNKNOWN.value
            residual = (Residual(description="no answer to halt; effects and dependents unknown"),)
        elif outcome is None and track.asked:
            outcome = Outcome.UNKNOWN.value
            residual = (Residual(description="no outcome reported; effects may remain"),)
        if outcome is not None and not residual and OUTCOMES.effective(outcome) in _DISCLOSE:
            residual = (Residual(description=f"{outcome}: effects after the target remain"),)
        members.append(
            RecordMember(
                execution=ref,
                target=target,
                action=Action.UNDETERMINED if action is None else action,
                reason=reason,
                outcome=outcome,
                checkpoint=track.checkpoint,
                residual=residual,
            )
        )
    return tuple(members)


def escalation_for(
    result: ScopeResult, tracks: dict[ExecRef, TrackData], event: RecoveryInput
) -> Escalation:
    """Why the recovery escalated, and the frontier it could not enter (draft §7, §8.1)."""
    if result.escalation is not None:
        return Escalation(reason=result.escalation.reason, frontier=result.escalation.frontier)
    refused = [ref for ref, t in sorted(tracks.items()) if t.state is TrackState.REFUSED]
    unreachable = [ref for ref, t in sorted(tracks.items()) if t.state is TrackState.UNREACHABLE]
    if refused or unreachable:
        reason = "refused" if refused else "unreachable"
        return Escalation(reason=reason, frontier=tuple(sorted(refused + unreachable)))
    assert event is RecoveryInput.ESCALATE
    return Escalation(reason="appraisal")


def dump_track(t: TrackData) -> dict[str, Any]:
    return {
        "execution": dump_ref(t.execution),
        "state": t.state.value,
        "target": t.target,
        "reason": dump_reason(t.reason),
        "attempts": t.attempts,
        "next_at": t.next_at,
        "since": t.since,
        "answered": t.answered,
        "asked": t.asked,
        "facts": None if t.facts is None else dump_facts(t.facts),
        "outcome": t.outcome,
        "checkpoint": t.checkpoint,
        "residual": [dump_residual(r) for r in t.residual],
        "code": t.code,
        "requests": [[mid, kind] for mid, kind in sorted(t.requests.items())],
    }


def load_track(d: dict[str, Any]) -> TrackData:
    return TrackData(
        execution=load_ref(d["execution"]),
        state=TrackState(d["state"]),
        target=d["target"],
        reason=load_reason(d["reason"]),
        attempts=d["attempts"],
        next_at=d["next_at"],
        since=d["since"],
        answered=d["answered"],
        asked=d["asked"],
        facts=None if d["facts"] is None else load_facts(d["facts"]),
        outcome=d["outcome"],
        checkpoint=d["checkpoint"],
        residual=tuple(load_residual(r) for r in d["residual"]),
        code=d["code"],
        requests=dict(d["requests"]),
    )
