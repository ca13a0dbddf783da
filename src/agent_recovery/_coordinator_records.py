"""What the coordinator knows about each recovery and member, and how it is kept.

Split from ``_coordinator.py`` to keep that module readable: the per-member
data the tracking machine carries (its state lives in ``_state.py``), the
per-recovery data with its cached rollback set, how a recovery record lists
the members (draft §11), why a recovery escalated, and the persisted forms:
the whole snapshot and the same state cut into independently written parts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._events import (
    dump_dependency,
    dump_facts,
    dump_reason,
    dump_ref,
    dump_residual,
    load_dependency,
    load_facts,
    load_reason,
    load_ref,
    load_residual,
)
from ._messages import (
    Error,
    Escalation,
    FailureSignal,
    Message,
    RecordMember,
    RollbackResult,
    Status,
)
from ._model import Action, Dependency, ExecRef, Facts, Outcome, Reason, ReasonKind, Residual
from ._registry import OUTCOMES
from ._scope import Bounds, ScopeBuilder, ScopeResult
from ._state import RecoveryInput, RecoveryState, TrackAction, TrackState
from ._wire import decode, encode

__all__ = [
    "RecoveryData",
    "TrackData",
    "assemble",
    "build_members",
    "dump_recovery",
    "dump_track",
    "escalation_for",
    "load_recovery",
    "load_track",
    "part_key",
]

# draft §8.2: outcomes that leave effects behind disclose them.
_DISCLOSE = frozenset({Outcome.IRREVERSIBLE, Outcome.FAILED, Outcome.UNKNOWN, Outcome.REFUSED})
_ORIGIN = Reason(kind=ReasonKind.ORIGIN)
_UNDONE_VALUES = frozenset({Outcome.RESTORED.value, Outcome.COMPENSATED.value})


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

    def settle(
        self,
        action: TrackAction,
        message: Message | None,
        operator: tuple[str, tuple[Residual, ...]] | None = None,
    ) -> bool:
        """Record an outcome; return whether it differs from the one recorded.

        ``operator`` is an outcome and residual an operator set (draft §8.7).
        """
        before = (self.outcome, self.checkpoint, self.residual)
        if operator is not None and action is TrackAction.RECORD:
            self.outcome, self.residual = operator
            self.checkpoint = self.target if self.outcome in _UNDONE_VALUES else None
        elif isinstance(message, (RollbackResult, Status)) and action is TrackAction.RECORD:
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


# ---------------------------------------------------------------------------
# One recovery


@dataclass(slots=True)
class RecoveryData:
    """One recovery as its coordinator sees it; ``state`` is a recovery state.

    Besides the protocol state it keeps derived indexes, so that one reply
    costs time proportional to what it changes, not to the size of the set:
    the rollback set last computed, how many members are in each tracking
    state, overall and per rollback wave. Track states change only through
    :meth:`add_track` and :meth:`set_state`, which keep the counts exact.
    """

    id: str
    signal: FailureSignal
    signaller: str
    created: int
    state: RecoveryState = RecoveryState.CONTAINING
    edges: dict[Dependency, None] = field(default_factory=dict)  # in arrival order
    facts: dict[ExecRef, Facts] = field(default_factory=dict)
    tracks: dict[ExecRef, TrackData] = field(default_factory=dict)
    builder: ScopeBuilder | None = None
    escalation: Escalation | None = None
    deferred: bool = False
    record: str | None = None  # id of the latest record issued
    cached: ScopeResult | None = None  # the set last computed
    # Facts arrived after ``cached`` was computed; they change actions only
    # (membership, targets, reasons, waves and bounds stay as computed).
    stale_actions: bool = False
    counts: dict[TrackState, int] = field(default_factory=dict)
    wave_of: dict[ExecRef, int] = field(default_factory=dict)
    wave_counts: list[dict[TrackState, int]] = field(default_factory=list)
    indexed: tuple[tuple[ExecRef, ...], ...] | None = None  # the waves indexed
    # References to operator instructions applied to this recovery (draft §8.7),
    # listed in the "evidence" of its records after the trigger's own.
    overrides: list[str] = field(default_factory=list)

    def result(self) -> ScopeResult:
        """The rollback set as known now (draft §7); recomputed only after learning."""
        if self.cached is None or self.stale_actions:
            assert self.builder is not None
            self.cached = self.builder.result()
            self.stale_actions = False
        return self.cached

    def shape(self) -> ScopeResult:
        """The set with possibly stale actions: members, targets, reasons, waves, bounds."""
        return self.cached if self.cached is not None else self.result()

    def add_track(self, track: TrackData) -> None:
        self.tracks[track.execution] = track
        self.counts[track.state] = self.counts.get(track.state, 0) + 1
        self.indexed = None  # a new member: the waves are indexed again when read

    def set_state(self, track: TrackData, state: TrackState) -> None:
        before = track.state
        if before is state:
            return
        track.state = state
        counts = self.counts
        counts[before] -= 1
        counts[state] = counts.get(state, 0) + 1
        wave = self.wave_of.get(track.execution)
        if wave is not None:
            counts = self.wave_counts[wave]
            counts[before] -= 1
            counts[state] = counts.get(state, 0) + 1

    def present(self) -> list[TrackState]:
        """The tracking states some member is in (the joint rules test only membership)."""
        return [s for s, n in self.counts.items() if n]

    def wave_states(self, waves: tuple[tuple[ExecRef, ...], ...]) -> list[list[TrackState]]:
        """Per wave, the tracking states some of its members are in."""
        if self.indexed is not waves:
            self.wave_of = {}
            self.wave_counts = []
            for index, wave in enumerate(waves):
                counts: dict[TrackState, int] = {}
                for ref in wave:
                    self.wave_of[ref] = index
                    state = self.tracks[ref].state
                    counts[state] = counts.get(state, 0) + 1
                self.wave_counts.append(counts)
            self.indexed = waves
        return [[s for s, n in counts.items() if n] for counts in self.wave_counts]


# ---------------------------------------------------------------------------
# Persisted forms


def dump_header(rec: RecoveryData) -> dict[str, Any]:
    return {
        "id": rec.id,
        "signal": encode(rec.signal).decode("utf-8"),
        "signaller": rec.signaller,
        "created": rec.created,
        "state": rec.state.value,
        "escalation": None
        if rec.escalation is None
        else [rec.escalation.reason, [dump_ref(r) for r in rec.escalation.frontier]],
        "deferred": rec.deferred,
        "record": rec.record,
        "overrides": list(rec.overrides),
    }


def dump_recovery(rec: RecoveryData) -> dict[str, Any]:
    return {
        **dump_header(rec),
        "edges": [dump_dependency(d) for d in rec.edges],
        "facts": [[dump_ref(r), dump_facts(f)] for r, f in sorted(rec.facts.items())],
        "tracks": [dump_track(t) for _, t in sorted(rec.tracks.items())],
    }


def load_recovery(d: dict[str, Any], bounds: Bounds) -> RecoveryData:
    signal = decode(d["signal"].encode("utf-8"))
    assert isinstance(signal, FailureSignal)
    rec = RecoveryData(
        id=d["id"],
        signal=signal,
        signaller=d["signaller"],
        created=d["created"],
        state=RecoveryState(d["state"]),
        deferred=d["deferred"],
        record=d["record"],
        overrides=list(d.get("overrides", [])),  # absent before operator outcomes existed
    )
    # The incremental set is rebuilt from what it was fed; its result depends only
    # on the edges and facts, not on their order (``_scope.ScopeBuilder``).
    rec.builder = ScopeBuilder(origin=signal.execution, checkpoint=signal.checkpoint, bounds=bounds)
    rec.edges = dict.fromkeys(load_dependency(e) for e in d["edges"])
    for raw, facts in d["facts"]:
        ref = load_ref(raw)
        rec.facts[ref] = load_facts(facts)
        rec.builder.set_facts(ref, rec.facts[ref])
    rec.builder.add_edges(rec.edges)
    for item in d["tracks"]:
        rec.add_track(load_track(item))
    if d["escalation"] is not None:
        reason, frontier = d["escalation"]
        rec.escalation = Escalation(reason=reason, frontier=tuple(load_ref(r) for r in frontier))
    return rec


# The parts of a coordinator's state (``Coordinator.snapshot_parts``): a durable
# store writes, per step, only the parts the step changed, so a step costs what
# it changed and a closed recovery is not written again. Each part is keyed by
# the JSON text of a list naming it:
#   ["engine"]                      agent and id counter
#   ["authority"]                   the executions it is an authority for
#   ["signal", sender, id]          a failure signal seen: [recovery, raw]
#   ["recovery", id]                a recovery's header (``dump_header``)
#   ["track", recovery, agent, exec]  a member (``dump_track``)
#   ["edges", recovery, start]      edges learned together, the first at ``start``


def part_key(*name: str | int) -> str:
    return json.dumps(list(name), separators=(",", ":"))


def dump_edges(edges: Iterable[Dependency]) -> list[list[Any]]:
    return [dump_dependency(d) for d in edges]


def assemble(parts: dict[str, Any]) -> dict[str, Any]:
    """The whole snapshot (``Coordinator.snapshot``) from its parts."""
    engine = parts[part_key("engine")]
    signals: list[list[Any]] = []
    headers: dict[str, dict[str, Any]] = {}
    tracks: dict[str, list[dict[str, Any]]] = {}
    chunks: dict[str, list[tuple[int, list[Any]]]] = {}
    for key, value in parts.items():
        name = json.loads(key)
        kind = name[0]
        if kind == "signal":
            signals.append([name[1], name[2], *value])
        elif kind == "recovery":
            headers[name[1]] = value
        elif kind == "track":
            tracks.setdefault(name[1], []).append(value)
        elif kind == "edges":
            chunks.setdefault(name[1], []).append((name[2], value))
        elif kind not in ("engine", "authority"):
            raise ValueError(f"unknown part {key!r}")
    recoveries = []
    for rid, header in sorted(headers.items()):
        members = sorted(tracks.pop(rid, []), key=lambda t: (t["execution"][0], t["execution"][1]))
        edges = [e for _, chunk in sorted(chunks.pop(rid, [])) for e in chunk]
        facts = [[t["execution"], t["facts"]] for t in members if t["facts"] is not None]
        recoveries.append({**header, "edges": edges, "facts": facts, "tracks": members})
    if tracks or chunks:
        raise ValueError("parts of an unknown recovery")
    return {
        "agent": engine["agent"],
        "seq": engine["seq"],
        "authority": parts[part_key("authority")],
        "signals": sorted(signals, key=lambda s: (s[0], s[1])),
        "recoveries": recoveries,
    }
