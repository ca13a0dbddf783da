"""What the engines tell the application, and the persisted form of their values.

Events are pulled with ``next_event()``. A participant's events are the local
work the protocol asks of the application (stop, undo, continue); a
coordinator's events report the life of its recoveries. Every event is a
frozen, slotted, keyword-only dataclass, like the messages.

The second half of this module converts the model values an engine keeps
(execution references, edges, facts, residual effects, reasons) to and from
JSON-able data, for ``snapshot()`` / ``from_snapshot()``: an engine's state
leaves it as data, exactly like its messages and events.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._errors import ErrorCode, LocalProtocolError
from ._model import (
    Action,
    Dependency,
    ExecRef,
    Facts,
    Outcome,
    Reason,
    ReasonKind,
    RecordResult,
    Residual,
    Reversibility,
    Status,
)

__all__ = [
    "AppraisalRequired",
    "Event",
    "HaltRequested",
    "ReasonDiscrepancy",
    "RecoveryEnded",
    "RecoveryStarted",
    "Resumed",
    "ReversibilityDiscrepancy",
    "RollbackRequested",
    "SignalAcknowledged",
    "SignalRefused",
    "SignalUndelivered",
    "WarningReceived",
    "dump_dependency",
    "dump_facts",
    "dump_reason",
    "dump_ref",
    "dump_residual",
    "load_dependency",
    "load_facts",
    "load_reason",
    "load_ref",
    "load_residual",
]


# ---------------------------------------------------------------------------
# Participant events: local work the application must do


@dataclass(frozen=True, slots=True, kw_only=True)
class HaltRequested:
    """Stop producing effects and forwarding outputs of ``execution``; keep its state.

    Raised again after a restart for every execution still contained, so the
    application can rebuild its view from the engine (draft §8.1).
    """

    execution: ExecRef
    recovery: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackRequested:
    """Undo ``execution``'s work after checkpoint ``target`` by ``action`` (draft §8.2).

    Report the outcome with ``Participant.rollback_done``. ``replayed`` is true
    when the engine raises the request again after a restart: the application
    must then not undo twice (it may already have finished before the crash).
    """

    execution: ExecRef
    recovery: str
    trigger: str
    target: int
    action: Action
    reason: Reason
    replayed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed:
    """Containment of ``execution`` ended (draft §8.3).

    ``outcome`` is the rollback outcome under the recovery that released it,
    or ``None`` if it was not asked to roll back (it was unaffected, or the
    trigger was rejected): the execution continues. A restored execution is
    released to local policy.
    """

    execution: ExecRef
    recovery: str
    outcome: Outcome | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasonDiscrepancy:
    """A rollback's reason or target does not match the dependencies recorded here.

    The rollback is carried out all the same (the coordinator computed the set
    from both sides' reports); the discrepancy is for the agent's own log and
    its operators (draft §13.5).
    """

    execution: ExecRef
    recovery: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalAcknowledged:
    """The recovery authority accepted failure signal ``signal`` (draft §6.2)."""

    signal: str
    recovery: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRefused:
    """The recovery authority refused failure signal ``signal`` with ``code``."""

    signal: str
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalUndelivered:
    """No answer to failure signal ``signal`` after every retransmission (draft §8.4)."""

    signal: str


# ---------------------------------------------------------------------------
# Coordinator events


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryStarted:
    recovery: str
    trigger: str
    origin: ExecRef
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WarningReceived:
    """A failure signal of severity ``warning``: no recovery is requested (draft §6.2)."""

    signal: str
    execution: ExecRef


@dataclass(frozen=True, slots=True, kw_only=True)
class AppraisalRequired:
    """The policy deferred its verdict; call ``Coordinator.decide`` (draft §9.2)."""

    recovery: str
    trigger: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversibilityDiscrepancy:
    """A halted reply reports another reversibility than the one declared at delegation.

    The actions are computed from the declared class (draft §13.6); the
    discrepancy is for the coordinator's log and its operators.
    """

    execution: ExecRef
    recovery: str
    declared: Reversibility
    reported: Reversibility


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryEnded:
    """The recovery reached a final state and its record was issued (draft §8.3)."""

    recovery: str
    state: str
    result: RecordResult


Event: TypeAlias = (
    HaltRequested
    | RollbackRequested
    | Resumed
    | ReasonDiscrepancy
    | SignalAcknowledged
    | SignalRefused
    | SignalUndelivered
    | RecoveryStarted
    | WarningReceived
    | AppraisalRequired
    | ReversibilityDiscrepancy
    | RecoveryEnded
)


# ---------------------------------------------------------------------------
# Persisted form of model values (snapshots)


def _bad(what: str) -> LocalProtocolError:
    return LocalProtocolError(ErrorCode.MALFORMED, f"snapshot: bad {what}")


def dump_ref(ref: ExecRef) -> list[str]:
    return [ref.agent, ref.exec]


def load_ref(data: Any) -> ExecRef:
    if not isinstance(data, list) or len(data) != 2 or not all(type(v) is str for v in data):
        raise _bad("execution reference")
    return _ref(data[0], data[1])


# Values are immutable, so rebuilt engines may share them: validating each
# reference once keeps restoring a large snapshot cheap.
@functools.lru_cache(maxsize=4096)
def _ref(agent: str, exec: str) -> ExecRef:
    return ExecRef(agent=agent, exec=exec)


def dump_dependency(dep: Dependency) -> list[Any]:
    return [dump_ref(dep.consumer), dump_ref(dep.producer), dep.produced_after, dep.consumed_after]


def load_dependency(data: Any) -> Dependency:
    if not isinstance(data, list) or len(data) != 4 or not all(type(v) is int for v in data[2:]):
        raise _bad("dependency")
    return _dependency(load_ref(data[0]), load_ref(data[1]), data[2], data[3])


@functools.lru_cache(maxsize=4096)
def _dependency(consumer: ExecRef, producer: ExecRef, produced: Any, consumed: Any) -> Dependency:
    return Dependency(
        consumer=consumer, producer=producer, produced_after=produced, consumed_after=consumed
    )


def dump_facts(facts: Facts) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": facts.status.value,
        "reversibility": facts.reversibility.value,
        "checkpoint": facts.checkpoint,
    }
    if facts.domain is not None:
        out["domain"] = facts.domain
    return out


def load_facts(data: Any) -> Facts:
    if not isinstance(data, Mapping):
        raise _bad("facts")
    try:
        return Facts(
            status=Status(data["status"]),
            reversibility=Reversibility(data["reversibility"]),
            checkpoint=data["checkpoint"],
            domain=data.get("domain"),
        )
    except (KeyError, ValueError) as exc:
        raise _bad("facts") from exc


def dump_residual(residual: Residual) -> list[str | None]:
    return [residual.description, residual.resource]


def load_residual(data: Any) -> Residual:
    if not isinstance(data, list) or len(data) != 2:
        raise _bad("residual")
    return Residual(description=data[0], resource=data[1])


def dump_reason(reason: Reason) -> list[Any]:
    return [reason.kind.value, None if reason.via is None else dump_dependency(reason.via)]


def load_reason(data: Any) -> Reason:
    if not isinstance(data, list) or len(data) != 2:
        raise _bad("reason")
    try:
        kind = ReasonKind(data[0])
    except ValueError as exc:
        raise _bad("reason") from exc
    return Reason(kind=kind, via=None if data[1] is None else load_dependency(data[1]))
