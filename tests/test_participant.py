"""The participant engine (draft §8): authorization, containment, undo, concurrency, persistence."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._events import (
    HaltRequested,
    Resumed,
    RollbackRequested,
    SignalAcknowledged,
    SignalRefused,
    SignalUndelivered,
)
from agent_recovery._messages import (
    Ack,
    Error,
    FailureSignal,
    Halt,
    Halted,
    Message,
    Resume,
    Rollback,
    RollbackResult,
    Status,
    StatusQuery,
)
from agent_recovery._model import (
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
from agent_recovery._model import Status as ExecStatus
from agent_recovery._participant import Participant, inherited_authority
from agent_recovery._state import MemberState, Retry

E = ExecRef(agent="p", exec="e")
F = ExecRef(agent="q", exec="f")
ORIGIN = Reason(kind=ReasonKind.ORIGIN)


class Peer:
    """Plays coordinators by hand against one participant."""

    def __init__(self, reversibility: Reversibility = Reversibility.RESTORABLE) -> None:
        self.p = Participant(agent="p", retry=Retry(initial=100, ceiling=400, attempts=3))
        self.p.register_execution(
            E,
            Facts(status=ExecStatus.ACTIVE, reversibility=reversibility, checkpoint=0),
            ["c1", "c2"],
        )
        self.p.take_checkpoint(E)  # 1
        self.p.record_dependency(
            Dependency(consumer=F, producer=E, produced_after=1, consumed_after=0)
        )
        self.n = 0
        self.now = 1_000

    def send(self, message: Message) -> list[Message]:
        self.p.receive(message.sender, message, self.now)
        self.now += 1
        return self.p.data_to_send()

    def common(self, c: str, r: str, **kw: Any) -> dict[str, Any]:
        self.n += 1
        return {
            "id": f"m{self.n}",
            "sender": c,
            "recipient": "p",
            "iat": self.now,
            "recovery": r,
            "trigger": f"t-{r}",
            "execution": E,
            **kw,
        }

    def halt(self, c: str = "c1", r: str = "r1", created: int = 100) -> list[Message]:
        return self.send(Halt(**self.common(c, r), created=created))

    def rollback(
        self, c: str = "c1", r: str = "r1", target: int = 0, action: Action = Action.RESTORE
    ) -> list[Message]:
        return self.send(Rollback(**self.common(c, r), target=target, action=action, reason=ORIGIN))

    def resume(self, c: str = "c1", r: str = "r1") -> list[Message]:
        return self.send(Resume(**self.common(c, r)))

    def status(self, c: str = "c1", r: str = "r1") -> Status:
        out = self.send(StatusQuery(**self.common(c, r)))
        assert isinstance(out[-1], Status)
        return out[-1]

    def events(self) -> list[object]:
        out: list[object] = []
        while (event := self.p.next_event()) is not None:
            out.append(event)
        return out


def codes(out: list[Message]) -> list[str]:
    return [m.code for m in out if isinstance(m, Error)]


# -- registration and local work ---------------------------------------------------------


def test_registration_is_checked() -> None:
    p = Participant(agent="p")
    facts = Facts(status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0)
    with pytest.raises(LocalProtocolError) as info:
        p.register_execution(F, facts, ["c"])
    assert info.value.code is ErrorCode.UNKNOWN_EXECUTION
    p.register_execution(E, facts, ["c"])
    with pytest.raises(LocalProtocolError):
        p.register_execution(E, facts, ["c"])
    with pytest.raises(LocalProtocolError):
        p.record_dependency(Dependency(consumer=F, producer=E, produced_after=5, consumed_after=0))


def test_a_contained_execution_does_no_work() -> None:
    # draft §8.1: halted means no effects and no forwarded outputs.
    peer = Peer()
    peer.halt()
    with pytest.raises(LocalProtocolError, match="contained"):
        peer.p.take_checkpoint(E)
    with pytest.raises(LocalProtocolError, match="contained"):
        peer.p.record_dependency(
            Dependency(consumer=F, producer=E, produced_after=1, consumed_after=0)
        )


def test_authority_is_inherited_and_includes_the_own_agent() -> None:
    assert inherited_authority("a", {"root"}) == {"a", "root"}
    peer = Peer()
    out = peer.halt(c="p")  # the execution's own agent may always contain it
    assert isinstance(out[0], Halted)


# -- authorization happens before any effect (draft §9.2) ----------------------------------


def test_unauthorized_messages_change_nothing() -> None:
    peer = Peer()
    before = peer.p.snapshot()
    assert codes(peer.halt(c="stranger")) == ["unauthorized"]
    spoofed = Halt(**peer.common("c1", "r1"), created=1)
    peer.p.receive("c2", spoofed, peer.now)  # authenticated as c2, claims to be c1
    assert codes(peer.p.data_to_send()) == ["unauthorized"]
    x = ExecRef(agent="x", exec="e")
    elsewhere = Halt(**{**peer.common("c1", "r1"), "recipient": "x", "execution": x}, created=1)
    assert codes(peer.send(elsewhere)) == ["wrong-recipient"]
    nowhere = ExecRef(agent="p", exec="nowhere")
    unknown = Halt(**{**peer.common("c1", "r1"), "execution": nowhere}, created=1)
    assert codes(peer.send(unknown)) == ["unknown-execution"]
    after = peer.p.snapshot()
    assert {k: v for k, v in after.items() if k != "seq"} == {
        k: v for k, v in before.items() if k != "seq"
    }


def test_correlation_is_checked() -> None:
    peer = Peer()
    peer.halt()
    wrong = Rollback(
        **{**peer.common("c1", "r1"), "trigger": "other"},
        target=0,
        action=Action.RESTORE,
        reason=ORIGIN,
    )
    assert codes(peer.send(wrong)) == ["wrong-recovery"]
    peer.rollback(target=0)
    assert codes(peer.rollback(target=1)) == ["conflict"]  # another request, same recovery


def test_replies_and_stray_messages() -> None:
    peer = Peer()
    stray = Ack(id="x", sender="c1", recipient="p", iat=1, reply_to="nothing")
    assert peer.send(stray) == []  # answers are never answered
    halted = Halted(
        **peer.common("c1", "r1"),
        reply_to="m0",
        facts=Facts(status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0),
    )
    assert codes(peer.send(halted)) == ["invalid-state"]


# -- containment, undo, release -------------------------------------------------------------


def test_halted_reports_facts_and_dependents() -> None:
    peer = Peer()
    out = peer.halt()
    assert isinstance(out[0], Halted)
    assert out[0].facts.checkpoint == 1
    assert out[0].dependents == (
        Dependency(consumer=F, producer=E, produced_after=1, consumed_after=0),
    )
    assert peer.events() == [HaltRequested(execution=E, recovery="r1")]


def test_the_application_undoes_and_the_result_goes_to_the_owner() -> None:
    peer = Peer()
    peer.halt()
    out = peer.rollback(target=0)
    assert isinstance(out[0], Ack)
    request = [e for e in peer.events() if isinstance(e, RollbackRequested)]
    assert request and request[0].target == 0 and not request[0].replayed
    peer.p.rollback_done(E, Outcome.RESTORED, checkpoint=0, now=peer.now)
    result = peer.p.data_to_send()
    assert isinstance(result[0], RollbackResult)
    assert (result[0].recipient, result[0].outcome, result[0].reply_to) == ("c1", "restored", "m2")
    # draft §11.4: the participant keeps its own record of what it did.
    (record,) = peer.p.records()
    assert record.recipient == "c1" and record.members[0].outcome == "restored"
    # Outputs made after the restored checkpoint are gone, and so is the edge.
    assert isinstance(peer.halt(r="r9")[0], Error)  # still held by r1
    peer.resume()
    assert peer.events()[-1] == Resumed(execution=E, recovery="r1", outcome=Outcome.RESTORED)
    out = peer.halt(c="c2", r="r2")
    assert isinstance(out[0], Halted) and out[0].dependents == ()


def test_nothing_left_to_undo_is_answered_without_the_application() -> None:
    # draft §8.5: an execution already restored to or before the target is not
    # undone again: the engine answers not-needed itself (S2).
    peer = Peer()
    peer.halt()
    peer.rollback(target=0)
    peer.p.rollback_done(E, Outcome.RESTORED, checkpoint=0, now=peer.now)
    peer.resume()
    peer.events()
    peer.halt(c="c2", r="r2")
    out = peer.rollback(c="c2", r="r2", target=0)
    results = [m for m in out if isinstance(m, RollbackResult)]
    assert results and results[0].outcome == "not-needed"
    assert not [e for e in peer.events() if isinstance(e, RollbackRequested)]


@pytest.mark.parametrize(
    ("action", "outcome", "residual", "code"),
    [
        (Action.RESTORE, Outcome.IRREVERSIBLE, ("x",), None),  # only if declared so
        (Action.RESTORE, Outcome.FAILED, (), None),  # must disclose
        (Action.RESTORE, Outcome.REFUSED, (), None),  # must give a code
        (Action.RESTORE, Outcome.UNKNOWN, ("x",), None),  # a participant knows
        (Action.COMPENSATE, Outcome.RESTORED, (), None),
        (Action.RESTORE, Outcome.RESTORED, ("x",), None),  # nothing remains
        (Action.COMPENSATE, Outcome.COMPENSATED, ("x",), None),
        (Action.RESTORE, Outcome.NOT_NEEDED, ("x",), None),
    ],
)
def test_outcome_reports_are_validated(
    action: Action, outcome: Outcome, residual: tuple[str, ...], code: ErrorCode | None
) -> None:
    peer = Peer()
    peer.halt()
    peer.rollback(target=0, action=action)
    before = peer.p.snapshot()
    with pytest.raises(LocalProtocolError):
        peer.p.rollback_done(
            E,
            outcome,
            checkpoint=0,
            now=peer.now,
            residual=tuple(Residual(description=r) for r in residual),
            code=code,
        )
    assert peer.p.snapshot() == before
    with pytest.raises(LocalProtocolError):  # restored past the target is not restored
        peer.p.rollback_done(E, Outcome.RESTORED, checkpoint=1, now=peer.now)


def test_status_answers_for_the_asking_recovery() -> None:
    peer = Peer()
    assert peer.status().state == "idle"
    peer.halt()
    peer.rollback()
    assert peer.status().state == "rolling-back"
    peer.p.rollback_done(
        E, Outcome.FAILED, checkpoint=1, now=peer.now, residual=(Residual(description="x"),)
    )
    done = peer.status()
    assert (done.state, done.outcome, done.residual[0].description) == ("failed", "failed", "x")
    assert peer.status(c="c2", r="r2").state == "idle"  # nothing of r2's here
    peer.resume()
    assert (peer.status().state, peer.status().outcome) == ("idle", "failed")


def test_a_resume_before_its_halt_makes_the_halt_late() -> None:
    # Reordering: the coordinator gave up and resumed; its halt arrives afterwards.
    peer = Peer()
    assert isinstance(peer.resume()[0], Ack)
    assert codes(peer.halt()) == ["invalid-state"]
    assert peer.p.state_of(E) is MemberState.IDLE


# -- concurrent recoveries (draft §8.5) -------------------------------------------------------


def test_the_older_recovery_takes_over_and_the_younger_waits() -> None:
    peer = Peer()
    peer.halt(c="c2", r="young", created=200)
    busy = peer.halt(c="c1", r="younger", created=300)
    assert codes(busy) == ["busy"]
    assert isinstance(busy[0], Error) and busy[0].owner is not None
    assert (busy[0].owner.recovery, busy[0].owner.created) == ("young", 200)
    out = peer.halt(c="c1", r="old", created=100)
    assert isinstance(out[0], Halted)
    assert peer.p.owner_of(E) == ("c1", "old")
    # The suspended claim waits: its requests are answered busy.
    assert codes(peer.rollback(c="c2", r="young")) == ["busy"]
    # Work in progress is never taken over.
    peer.rollback(c="c1", r="old", target=0)
    assert codes(peer.halt(c="c2", r="oldest", created=1)) == ["busy"]
    peer.p.rollback_done(E, Outcome.RESTORED, checkpoint=0, now=peer.now)
    peer.p.data_to_send()
    peer.events()
    # Released by the older one, the execution stays contained for the younger one.
    peer.resume(c="c1", r="old")
    assert peer.p.owner_of(E) == ("c2", "young")
    assert peer.p.state_of(E) is MemberState.HALTED
    assert not [e for e in peer.events() if isinstance(e, Resumed)]
    # Its rollback now finds nothing left to undo.
    out = peer.rollback(c="c2", r="young", target=0)
    assert [m.outcome for m in out if isinstance(m, RollbackResult)] == ["not-needed"]


def test_a_suspended_claim_can_let_go() -> None:
    peer = Peer()
    peer.halt(c="c2", r="young", created=200)
    peer.halt(c="c1", r="old", created=100)
    assert isinstance(peer.resume(c="c2", r="young")[0], Ack)
    peer.resume(c="c1", r="old")
    assert peer.p.state_of(E) is MemberState.IDLE


# -- failure signals (draft §6.2, §8.4) -------------------------------------------------------


def _signal(peer: Peer) -> str:
    return peer.p.signal_failure(
        execution=E,
        to="c1",
        failure_type="execution-error",
        severity=Severity.ERROR,
        retryable=False,
        effect_state=EffectState.PARTIAL,
        checkpoint=1,
        now=0,
    )


def test_a_signal_is_retransmitted_unchanged_until_answered() -> None:
    peer = Peer()
    sid = _signal(peer)
    (first,) = peer.p.data_to_send()
    assert isinstance(first, FailureSignal)
    times = []
    for _ in range(5):
        at = peer.p.get_timer()
        assert at is not None
        times.append(at)
        peer.p.handle_timer(at)
        (again,) = peer.p.data_to_send()
        assert again == first  # same id: one recovery, however often it is sent
    # Backoff, then the follow-up pace (draft §8.4).
    assert [b - a for a, b in itertools.pairwise(times)] == [200, 60_000, 60_000, 60_000]
    transient = Error(id="x1", sender="c1", recipient="p", iat=1, reply_to=sid, code="overloaded")
    peer.send(transient)
    assert peer.p.get_timer() is not None
    peer.send(Ack(id="x2", sender="c1", recipient="p", iat=1, reply_to=sid))
    assert peer.p.get_timer() is None
    events = peer.events()
    assert SignalAcknowledged(signal=sid, recovery=None) in events


def test_a_refused_or_undelivered_signal_is_reported() -> None:
    peer = Peer()
    sid = _signal(peer)
    peer.send(Error(id="x", sender="c1", recipient="p", iat=1, reply_to=sid, code="unauthorized"))
    assert SignalRefused(signal=sid, code="unauthorized") in peer.events()
    sid2 = _signal(peer)
    while (at := peer.p.get_timer()) is not None:
        peer.p.handle_timer(at)
    assert SignalUndelivered(signal=sid2) in peer.events()
    assert peer.p.state_of(E) is MemberState.IDLE


# -- persistence -----------------------------------------------------------------------------


def test_a_restarted_participant_continues_where_it_was() -> None:
    peer = Peer()
    _signal(peer)
    peer.halt()
    peer.rollback(target=0)
    peer.events()
    data = json.loads(json.dumps(peer.p.snapshot()))
    again = Participant.from_snapshot(data)
    assert again.snapshot() == data
    events = []
    while (event := again.next_event()) is not None:
        events.append(event)
    # The local work still owed is asked for again, marked as replayed.
    assert isinstance(events[0], HaltRequested)
    assert isinstance(events[1], RollbackRequested) and events[1].replayed
    again.rollback_done(E, Outcome.RESTORED, checkpoint=0, now=peer.now)
    (result,) = again.data_to_send()
    assert isinstance(result, RollbackResult) and result.reply_to == "m2"
    assert again.get_timer() == peer.p.get_timer()
    with pytest.raises(LocalProtocolError):
        Participant.from_snapshot({**data, "executions": [{"ref": ["p"]}]})


def test_an_effect_without_outputs_is_work_to_undo() -> None:
    # draft §5.2, §8.5: a change since the last checkpoint that produced no
    # output (a notification sent) still has to be undone: the engine asks the
    # application instead of answering not-needed itself.
    clean, dirty = Peer(), Peer()
    for peer in (clean, dirty):
        peer.p.take_checkpoint(E)
        peer.events()
    dirty.p.record_effect(E)
    answers: list[list[object]] = []
    for peer in (clean, dirty):
        peer.halt()
        out = peer.rollback(target=2)  # the checkpoint just taken
        answers.append([type(e).__name__ for e in peer.events()])
        results = [m for m in out if isinstance(m, RollbackResult)]
        answers[-1].append(results[0].outcome if results else None)
    assert answers[0][-1] == "not-needed" and "RollbackRequested" not in answers[0]
    assert answers[1][-1] is None and "RollbackRequested" in answers[1]


def test_an_effect_completing_during_containment_counts() -> None:
    # draft §6.5: an uninterruptible effect in progress at the halt may
    # complete; the rollback's outcome must take it into account, so the
    # engine asks the application instead of answering not-needed.
    peer = Peer()
    peer.p.take_checkpoint(E)  # 2: nothing done since
    peer.halt()
    peer.events()
    with pytest.raises(LocalProtocolError):
        peer.p.take_checkpoint(E)  # a contained execution starts nothing new
    peer.p.record_effect(E)  # but the effect that was under way finished
    out = peer.rollback(target=2)
    assert not [m for m in out if isinstance(m, RollbackResult)]
    assert [e for e in peer.events() if isinstance(e, RollbackRequested)]


def test_a_rollback_reason_is_checked_against_the_recorded_edges() -> None:
    # draft §13.5: the edge that brought the execution in should be one it
    # recorded as consumer, and the target that edge's consumed_after; a
    # discrepancy is recorded (an event) and the rollback still goes ahead.
    from agent_recovery._events import ReasonDiscrepancy

    g = ExecRef(agent="q", exec="g")
    consumed = Dependency(consumer=E, producer=g, produced_after=3, consumed_after=1)
    other = Dependency(consumer=E, producer=g, produced_after=4, consumed_after=1)

    def run(via: Dependency, target: int) -> list[str]:
        peer = Peer()
        peer.p.record_dependency(consumed)
        peer.halt()
        peer.events()
        reason = Reason(kind=ReasonKind.DIRECT, via=via)
        peer.send(
            Rollback(**peer.common("c1", "r1"), target=target, action=Action.RESTORE, reason=reason)
        )
        events = peer.events()
        assert [e for e in events if isinstance(e, RollbackRequested)]  # it goes ahead
        return [e.detail for e in events if isinstance(e, ReasonDiscrepancy)]

    assert run(consumed, 1) == []
    assert run(consumed, 0) == ["target 0 is not the edge's consumed_after 1"]
    assert run(other, 1) == ["the reason's edge matches no dependency recorded here"]
    # The consumer-side edge survives a snapshot and is gone once the
    # execution is restored to a checkpoint at or before its consumption.
    peer = Peer()
    peer.p.record_dependency(consumed)
    restored = Participant.from_snapshot(peer.p.snapshot(), retry=Retry())
    assert restored.snapshot() == peer.p.snapshot()
    assert "consumed" in json.dumps(peer.p.snapshot())
    peer.halt()
    peer.send(
        Rollback(
            **peer.common("c1", "r1"),
            target=1,
            action=Action.RESTORE,
            reason=Reason(kind=ReasonKind.DIRECT, via=consumed),
        )
    )
    peer.p.rollback_done(E, Outcome.RESTORED, checkpoint=1, now=peer.now)
    assert not [e for e in peer.events() if isinstance(e, ReasonDiscrepancy)]
    assert json.loads(json.dumps(peer.p.snapshot()))["executions"][0]["consumed"] == []
