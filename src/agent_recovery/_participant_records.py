"""What a participant keeps per execution, and its persisted form.

Split from ``_participant.py`` to keep that module readable: the execution's
own facts and dependents, the claims recoveries hold on it (draft §8.5: the
owner, the suspended ones, and those that released it), and a failure signal
waiting for its answer. The transitions live in ``_state.py``; the engine
that applies them is ``_participant.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ._events import (
    dump_dependency,
    dump_reason,
    dump_ref,
    dump_residual,
    load_dependency,
    load_reason,
    load_ref,
    load_residual,
)
from ._messages import FailureSignal
from ._model import Action, Dependency, ExecRef, Facts, Outcome, Reason, Residual, Reversibility
from ._model import Status as ExecStatus
from ._state import MemberState

__all__ = [
    "ENGINE_PART",
    "Claim",
    "ExecutionRecord",
    "PendingSignal",
    "assemble",
    "dump_claim",
    "dump_execution",
    "execution_part",
    "load_claim",
    "load_execution",
]


@dataclass(slots=True)
class Claim:
    """A recovery's hold on an execution (draft §8.5)."""

    coordinator: str
    recovery: str
    trigger: str
    created: int
    state: MemberState = MemberState.HALTED
    request: str | None = None  # the rollback being answered (reply_to)
    request_iat: int = 0
    target: int | None = None
    action: Action | None = None
    reason: Reason | None = None
    outcome: Outcome | None = None
    checkpoint: int | None = None
    residual: tuple[Residual, ...] = ()
    code: str | None = None
    detail: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.coordinator, self.recovery)


@dataclass(slots=True)
class ExecutionRecord:
    ref: ExecRef
    status: ExecStatus
    reversibility: Reversibility
    domain: str | None
    authority: frozenset[str]
    position: int  # the checkpoint the current state descends from
    high: int  # the highest checkpoint number ever taken
    clean: bool = True  # no effect since ``position`` was taken or restored
    dependents: set[Dependency] = field(default_factory=set)
    # draft §5.4: the edges in which it consumed, kept to check a rollback's
    # reason against (draft §13.5).
    consumed: set[Dependency] = field(default_factory=set)
    claim: Claim | None = None
    suspended: list[Claim] = field(default_factory=list)  # oldest claim last
    history: dict[tuple[str, str], Claim] = field(default_factory=dict)

    @property
    def state(self) -> MemberState:
        return MemberState.IDLE if self.claim is None else self.claim.state

    def facts(self) -> Facts:
        return Facts(
            status=self.status,
            reversibility=self.reversibility,
            checkpoint=self.position,
            domain=self.domain,
        )


@dataclass(slots=True)
class PendingSignal:
    message: FailureSignal
    attempts: int
    next_at: int
    since: int


def dump_claim(c: Claim) -> dict[str, Any]:
    return {
        "coordinator": c.coordinator,
        "recovery": c.recovery,
        "trigger": c.trigger,
        "created": c.created,
        "state": c.state.value,
        "request": c.request,
        "request_iat": c.request_iat,
        "target": c.target,
        "action": None if c.action is None else c.action.value,
        "reason": None if c.reason is None else dump_reason(c.reason),
        "outcome": None if c.outcome is None else c.outcome.value,
        "checkpoint": c.checkpoint,
        "residual": [dump_residual(r) for r in c.residual],
        "code": c.code,
        "detail": c.detail,
    }


def load_claim(d: dict[str, Any]) -> Claim:
    return Claim(
        coordinator=d["coordinator"],
        recovery=d["recovery"],
        trigger=d["trigger"],
        created=d["created"],
        state=MemberState(d["state"]),
        request=d["request"],
        request_iat=d["request_iat"],
        target=d["target"],
        action=None if d["action"] is None else Action(d["action"]),
        reason=None if d["reason"] is None else load_reason(d["reason"]),
        outcome=None if d["outcome"] is None else Outcome(d["outcome"]),
        checkpoint=d["checkpoint"],
        residual=tuple(load_residual(r) for r in d["residual"]),
        code=d["code"],
        detail=d["detail"],
    )


def dump_execution(x: ExecutionRecord) -> dict[str, Any]:
    return {
        "ref": dump_ref(x.ref),
        "status": x.status.value,
        "reversibility": x.reversibility.value,
        "domain": x.domain,
        "authority": sorted(x.authority),
        "position": x.position,
        "high": x.high,
        "clean": x.clean,
        "dependents": [dump_dependency(d) for d in sorted(x.dependents)],
        "consumed": [dump_dependency(d) for d in sorted(x.consumed)],
        "claim": None if x.claim is None else dump_claim(x.claim),
        "suspended": [dump_claim(c) for c in x.suspended],
        "history": [dump_claim(c) for _, c in sorted(x.history.items())],
    }


def load_execution(d: dict[str, Any]) -> ExecutionRecord:
    x = ExecutionRecord(
        ref=load_ref(d["ref"]),
        status=ExecStatus(d["status"]),
        reversibility=Reversibility(d["reversibility"]),
        domain=d["domain"],
        authority=frozenset(d["authority"]),
        position=d["position"],
        high=d["high"],
        clean=d["clean"],
        dependents={load_dependency(e) for e in d["dependents"]},
        consumed={load_dependency(e) for e in d.get("consumed", ())},
        claim=None if d["claim"] is None else load_claim(d["claim"]),
        suspended=[load_claim(c) for c in d["suspended"]],
    )
    for c in d["history"]:
        claim = load_claim(c)
        x.history[claim.key] = claim
    return x


# The keys of the parts of a participant's snapshot (``Participant.snapshot_parts``).
ENGINE_PART = json.dumps(["engine"])


def execution_part(ref: ExecRef) -> str:
    return json.dumps(["execution", ref.agent, ref.exec], separators=(",", ":"))


def assemble(parts: dict[str, Any]) -> dict[str, Any]:
    """The whole snapshot (``Participant.snapshot``) from its parts."""
    executions = [value for key, value in parts.items() if key != ENGINE_PART]
    executions.sort(key=lambda d: (d["ref"][0], d["ref"][1]))
    return {**parts[ENGINE_PART], "executions": executions}
