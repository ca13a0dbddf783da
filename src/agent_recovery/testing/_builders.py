"""Builders that put one engine into a chosen state, for table-driven tests.

:class:`MemberBench` holds a participant whose execution is in any member
state, with recoveries standing in every relation to it (owner, suspended,
released, finished, older, younger, none), and sends it any message from any
of them. :class:`TrackBench` holds a coordinator whose member ``x`` is in any
tracking state, with the other members keeping the recovery from moving on,
and feeds it any reply ``x`` could send. Both play the peers by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._coordinator import Coordinator, Verdict
from .._errors import ErrorCode
from .._messages import (
    Ack,
    Error,
    Halt,
    Halted,
    Message,
    Owner,
    Resume,
    Rollback,
    RollbackResult,
    Status,
    StatusQuery,
)
from .._model import (
    Action,
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    Reason,
    ReasonKind,
    Residual,
    Reversibility,
    Severity,
)
from .._model import Status as ExecStatus
from .._participant import Participant
from .._scope import ScopeResult
from .._state import MemberInput, MemberState, Relation, Retry, TrackInput, TrackState

__all__ = ["MemberBench", "TrackBench"]

AGENT = "p"
EXECUTION = ExecRef(agent=AGENT, exec="e")
_ORIGIN = Reason(kind=ReasonKind.ORIGIN)


@dataclass(frozen=True, slots=True)
class _Recovery:
    coordinator: str
    recovery: str
    created: int

    @property
    def trigger(self) -> str:
        return f"t-{self.recovery}"


# The owner was created at 100; "old" is older, "young" and "sus" younger.
RECOVERIES = {
    "own": _Recovery("c-own", "own", 100),
    "old": _Recovery("c-old", "old", 50),
    "young": _Recovery("c-young", "young", 200),
    "sus": _Recovery("c-sus", "sus", 300),
    "rel": _Recovery("c-rel", "rel", 10),
    "fin": _Recovery("c-fin", "fin", 20),
}
RELATION_SENDER = {
    Relation.OWNER: "own",
    Relation.SUSPENDED: "sus",
    Relation.RELEASED: "rel",
    Relation.FINISHED: "fin",
    Relation.OLDER: "old",
    Relation.YOUNGER: "young",
    Relation.OTHER: "young",
    Relation.NONE: "young",
}
_TERMINAL_OUTCOME = {
    MemberState.RESTORED: (Outcome.RESTORED, Action.RESTORE),
    MemberState.COMPENSATED: (Outcome.COMPENSATED, Action.COMPENSATE),
    MemberState.IRREVERSIBLE: (Outcome.IRREVERSIBLE, Action.NONE),
    MemberState.FAILED: (Outcome.FAILED, Action.RESTORE),
    MemberState.REFUSED: (Outcome.REFUSED, Action.RESTORE),
    MemberState.NOT_NEEDED: (Outcome.NOT_NEEDED, Action.RESTORE),
}


class MemberBench:
    """A participant whose execution ``p/e`` is in ``state`` under recovery ``own``."""

    def __init__(self, state: MemberState, *, target: int = 0) -> None:
        self.p = Participant(agent=AGENT, ids=lambda n: f"p-{n}")
        self.now = 1_000
        self._n = 0
        authority = [r.coordinator for r in RECOVERIES.values()]
        facts = Facts(
            status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0
        )
        self.p.register_execution(EXECUTION, facts, authority)
        self.p.take_checkpoint(EXECUTION)
        other = ExecRef(agent="q", exec="f")
        self.p.record_dependency(
            Dependency(consumer=other, producer=EXECUTION, produced_after=1, consumed_after=0)
        )
        # "rel" held the execution and released it without a rollback.
        self.send("rel", MemberInput.HALT)
        self.send("rel", MemberInput.RESUME)
        # "fin" held it, had it roll back (which failed) and released it.
        self.send("fin", MemberInput.HALT)
        self.send("fin", MemberInput.ROLLBACK, target=0)
        self.done(Outcome.FAILED)
        self.send("fin", MemberInput.RESUME)
        if state is not MemberState.IDLE:
            # "sus" halts it first; the older "own" takes it over: "sus" is suspended.
            self.send("sus", MemberInput.HALT)
            self.send("own", MemberInput.HALT)
        if state is MemberState.ROLLING_BACK or state in _TERMINAL_OUTCOME:
            action = _TERMINAL_OUTCOME.get(state, (None, Action.RESTORE))[1]
            self.send("own", MemberInput.ROLLBACK, target=target, action=action)
        if state in _TERMINAL_OUTCOME:
            self.done(_TERMINAL_OUTCOME[state][0])
        self.drain()
        assert self.p.state_of(EXECUTION) is state, (self.p.state_of(EXECUTION), state)

    def message(
        self,
        who: str,
        event: MemberInput,
        *,
        target: int = 0,
        action: Action = Action.RESTORE,
    ) -> Message:
        r = RECOVERIES[who]
        self._n += 1
        common: dict[str, Any] = {
            "id": f"{who}-m{self._n}",
            "sender": r.coordinator,
            "recipient": AGENT,
            "iat": self.now,
            "recovery": r.recovery,
            "trigger": r.trigger,
            "execution": EXECUTION,
        }
        if event is MemberInput.HALT:
            return Halt(**common, created=r.created)
        if event is MemberInput.ROLLBACK:
            return Rollback(**common, target=target, action=action, reason=_ORIGIN)
        if event is MemberInput.RESUME:
            return Resume(**common)
        return StatusQuery(**common)

    def send(self, who: str, event: MemberInput, **kw: Any) -> list[Message]:
        message = self.message(who, event, **kw)
        self.p.receive(message.sender, message, self.now)
        self.now += 1
        return self.p.data_to_send()

    def done(self, outcome: Outcome) -> None:
        residual = (
            (Residual(description="left"),)
            if outcome in (Outcome.FAILED, Outcome.IRREVERSIBLE)
            else ()
        )
        code = ErrorCode.UNAUTHORIZED if outcome is Outcome.REFUSED else None
        checkpoint = 0 if outcome in (Outcome.RESTORED, Outcome.COMPENSATED) else 1
        self.p.rollback_done(
            EXECUTION, outcome, checkpoint=checkpoint, now=self.now, residual=residual, code=code
        )
        self.now += 1
        self.p.data_to_send()

    def drain(self) -> None:
        self.p.data_to_send()
        while self.p.next_event() is not None:
            pass
        self.p.records()


class _Policy:
    def appraise(self, signal: object, scope: ScopeResult) -> Verdict | None:
        return Verdict.ACCEPT


# The recovery's members: origin ``o`` and its two consumers ``x`` (the one the
# tests drive) and ``y`` (which keeps the recovery in its phase).
ORIGIN = ExecRef(agent="a", exec="o")
X = ExecRef(agent="b", exec="x")
Y = ExecRef(agent="d", exec="y")
BENCH_RETRY = Retry(
    initial=10, ceiling=20, attempts=2, patience=100_000, follow_up_interval=40, follow_up=400
)


class TrackBench:
    """A coordinator whose member ``x`` is in ``state``."""

    def __init__(self, state: TrackState) -> None:
        self.c = Coordinator(agent="c", ids=lambda n: f"c-{n}", policy=_Policy(), retry=BENCH_RETRY)
        self.now = 1_000
        self._n = 0
        self.last: dict[tuple[ExecRef, str], str] = {}  # (member, request type) -> id
        self.latest: dict[ExecRef, str] = {}
        for ref in (ORIGIN, X, Y):
            self.c.add_execution(ref, ["c"])
        signal = self._make_signal()
        self.c.receive("a", signal, self.now)
        self.pump()
        self.rid = self.c.recoveries()[0]
        self._build(state)
        assert self.track(X) is state, (self.track(X), state)

    def _build(self, state: TrackState) -> None:
        edges = (
            Dependency(consumer=X, producer=ORIGIN, produced_after=1, consumed_after=0),
            Dependency(consumer=Y, producer=ORIGIN, produced_after=1, consumed_after=0),
        )
        self.reply(ORIGIN, TrackInput.HALTED, dependents=edges)
        if state is TrackState.HALTING:
            return
        if state is TrackState.REFUSED:
            self.reply(X, TrackInput.REFUSAL)
            return
        if state is TrackState.UNREACHABLE:
            self.reply(Y, TrackInput.BUSY)  # y keeps the recovery containing
            self.run_timers(until=lambda: self.track(X) is TrackState.UNREACHABLE)
            return
        self.reply(X, TrackInput.HALTED)
        if state is TrackState.HELD:
            return
        self.reply(Y, TrackInput.HALTED)  # containment closes; appraisal accepts
        if state is TrackState.ROLLING_BACK:
            return
        if state is TrackState.SETTLED:
            self.reply(X, TrackInput.ROLLBACK_RESULT)
            return
        if state is TrackState.UNKNOWN:
            self.reply(Y, TrackInput.ACK)  # y is working; x never answers
            self.run_timers(
                until=lambda: (
                    self.track(X) is TrackState.UNKNOWN and (X, "status-query") in self.last
                )
            )
            return
        self.reply(X, TrackInput.ROLLBACK_RESULT)
        self.reply(Y, TrackInput.ROLLBACK_RESULT)
        self.reply(ORIGIN, TrackInput.ROLLBACK_RESULT)
        if state is TrackState.RELEASING:
            return
        if state is TrackState.RELEASED:
            self.reply(X, TrackInput.ACK)
            return
        self.reply(Y, TrackInput.ACK)
        self.reply(ORIGIN, TrackInput.ACK)
        self.run_timers(until=lambda: self.track(X) is TrackState.ABANDONED)

    def _make_signal(self) -> Message:
        from .._messages import FailureSignal

        return FailureSignal(
            id="sig",
            sender="a",
            recipient="c",
            iat=self.now,
            execution=ORIGIN,
            failure_type="execution-error",
            severity=Severity.ERROR,
            retryable=False,
            effect_state=EffectState.PARTIAL,
            checkpoint=1,
        )

    def track(self, ref: ExecRef) -> TrackState:
        return self.c.members(self.rid)[ref][0]

    def pump(self) -> list[Message]:
        out = self.c.data_to_send()
        for m in out:
            execution = getattr(m, "execution", None)
            if execution is not None and m.TYPE in ("halt", "rollback", "resume", "status-query"):
                self.last[execution, m.TYPE] = m.id
                self.latest[execution] = m.id
        while self.c.next_event() is not None:
            pass
        self.c.records()
        return out

    def run_timers(self, *, until: Any, limit: int = 200) -> None:
        for _ in range(limit):
            if until():
                return
            timer = self.c.get_timer()
            assert timer is not None, "no timer left"
            self.now = max(self.now, timer)
            self.c.handle_timer(self.now)
            self.pump()
        raise AssertionError("state not reached")

    def message(self, ref: ExecRef, event: TrackInput, **kw: Any) -> Message:
        self._n += 1
        reply_to = self.latest[ref]
        common: dict[str, Any] = {
            "id": f"{ref.exec}-r{self._n}",
            "sender": ref.agent,
            "recipient": "c",
            "iat": self.now,
            "reply_to": reply_to,
            "recovery": self.rid,
            "trigger": "sig",
        }
        facts = Facts(
            status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=1
        )
        if event is TrackInput.HALTED:
            deps = kw.get("dependents", ())
            return Halted(**common, execution=ref, facts=facts, dependents=deps)
        if event is TrackInput.ACK:
            return Ack(**common)
        if event is TrackInput.ROLLBACK_RESULT:
            return RollbackResult(
                **common, execution=ref, outcome=Outcome.RESTORED.value, checkpoint=0
            )
        if event is TrackInput.BUSY:
            owner = Owner(recovery="elsewhere", created=1)
            return Error(**common, code=ErrorCode.BUSY.value, owner=owner)
        if event is TrackInput.REFUSAL:
            return Error(**common, code=ErrorCode.UNAUTHORIZED.value)
        if event is TrackInput.TRANSIENT:
            return Error(**common, code=ErrorCode.OVERLOADED.value)
        statuses: dict[TrackInput, dict[str, Any]] = {
            TrackInput.STATUS_HALTED: {"state": "halted"},
            TrackInput.STATUS_WORKING: {"state": "rolling-back"},
            TrackInput.STATUS_FINAL: {"state": "restored", "outcome": "restored", "checkpoint": 0},
            TrackInput.STATUS_IDLE: {"state": "idle"},
        }
        return Status(**common, execution=ref, **statuses[event])

    def reply(self, ref: ExecRef, event: TrackInput, **kw: Any) -> list[Message]:
        message = self.message(ref, event, **kw)
        self.c.receive(ref.agent, message, self.now)
        self.now += 1
        return self.pump()
