"""The coordinator engine (draft §8): contain, appraise, restore, close; timeouts; persistence."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from agent_recovery._coordinator import Coordinator, Verdict
from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._events import (
    AppraisalRequired,
    RecoveryEnded,
    RecoveryStarted,
    ReversibilityDiscrepancy,
    RollbackRequested,
    WarningReceived,
)
from agent_recovery._messages import (
    Ack,
    Error,
    FailureSignal,
    Halt,
    Message,
    RecoveryRecord,
    Rollback,
    RollbackResult,
)
from agent_recovery._model import (
    Action,
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    RecordResult,
    Residual,
    Reversibility,
    Severity,
)
from agent_recovery._model import Status as ExecStatus
from agent_recovery._participant import Participant
from agent_recovery._scope import Bounds, ScopeResult
from agent_recovery._state import RecoveryState, Retry, TrackState

# o (the origin) <- x <- z, and o <- y; x and y consumed o's output made after 1.
ORIGIN = ExecRef(agent="a", exec="o")
X = ExecRef(agent="b", exec="x")
Y = ExecRef(agent="d", exec="y")
Z = ExecRef(agent="f", exec="z")
EDGES = (
    Dependency(consumer=X, producer=ORIGIN, produced_after=1, consumed_after=0),
    Dependency(consumer=Y, producer=ORIGIN, produced_after=1, consumed_after=0),
    Dependency(consumer=Z, producer=X, produced_after=0, consumed_after=0),
)
RETRY = Retry(
    initial=10, ceiling=40, attempts=3, patience=1_000, follow_up_interval=50, follow_up=5_000
)


class Policy:
    def __init__(self, verdict: Verdict | None) -> None:
        self.verdict = verdict

    def appraise(self, signal: FailureSignal, scope: ScopeResult) -> Verdict | None:
        return self.verdict


class Net:
    """A coordinator ``c`` and one participant per agent, delivering in FIFO order."""

    def __init__(
        self,
        *,
        verdict: Verdict | None = Verdict.ACCEPT,
        bounds: Bounds | None = None,
        authority: tuple[str, ...] = ("c",),
        irreversible: frozenset[ExecRef] = frozenset(),
    ) -> None:
        self.now = 1_000
        self.irreversible = irreversible
        self.c = Coordinator(
            agent="c", ids=lambda n: f"c-{n}", policy=Policy(verdict), bounds=bounds, retry=RETRY
        )
        self.ps: dict[str, Participant] = {}
        for ref in (ORIGIN, X, Y, Z):
            p = self.ps[ref.agent] = Participant(agent=ref.agent, retry=RETRY)
            kind = Reversibility.IRREVERSIBLE if ref in irreversible else Reversibility.RESTORABLE
            p.register_execution(
                ref,
                Facts(status=ExecStatus.ACTIVE, reversibility=kind, checkpoint=0),
                ["c"] if ref != Z else authority,
            )
            p.take_checkpoint(ref)
            self.c.add_execution(ref, ["c"])
        for edge in EDGES:
            for agent in {edge.producer.agent, edge.consumer.agent}:
                self.ps[agent].record_dependency(edge)
        self.queue: list[Message] = []
        self.drop: Callable[[Message], bool] = lambda m: False
        self.asked: list[RollbackRequested] = []
        self.log: list[Message] = []
        self.records: list[RecoveryRecord] = []
        self.events: list[object] = []
        self.auto = True

    def signal(self) -> str:
        sid = self.ps["a"].signal_failure(
            execution=ORIGIN,
            to="c",
            failure_type="execution-error",
            severity=Severity.ERROR,
            retryable=False,
            effect_state=EffectState.PARTIAL,
            checkpoint=1,
            now=self.now,
        )
        self.pull()
        return sid

    def pull(self) -> None:
        for m in self.c.data_to_send():
            self.queue.append(m)
        self.records.extend(self.c.records())
        while (event := self.c.next_event()) is not None:
            self.events.append(event)
        for agent, p in self.ps.items():
            self.queue.extend(p.data_to_send())
            p.records()
            while (event := p.next_event()) is not None:
                if isinstance(event, RollbackRequested):
                    self.asked.append(event)
                    if self.auto:
                        self.complete(agent, event)

    def complete(self, agent: str, event: RollbackRequested) -> None:
        p = self.ps[agent]
        restoring = event.action in (Action.RESTORE, Action.CANCEL_RESTORE)
        if event.action is Action.COMPENSATE or (
            restoring and event.execution in self.irreversible
        ):
            # As the runtime does: an action that does not fit the reversibility
            # the agent registered is refused, not carried out (draft §8.2).
            p.rollback_done(
                event.execution,
                Outcome.REFUSED,
                checkpoint=p.position(event.execution),
                now=self.now,
                code=ErrorCode.INVALID_STATE,
            )
        elif event.action is Action.NONE:
            residual = (Residual(description="sent"),)
            p.rollback_done(
                event.execution, Outcome.IRREVERSIBLE, checkpoint=1, now=self.now, residual=residual
            )
        else:
            p.rollback_done(
                event.execution, Outcome.RESTORED, checkpoint=event.target, now=self.now
            )

    def step(self, *, timers: bool = True) -> bool:
        """Deliver one message, or else fire the earliest timers; False if idle."""
        self.pull()
        if self.queue:
            m = self.queue.pop(0)
            self.log.append(m)
            if not self.drop(m):
                engine = self.c if m.recipient == "c" else self.ps[m.recipient]
                engine.receive(m.sender, m, self.now)
            self.now += 1
            return True
        due = [t for t in (self.c.get_timer(), *(p.get_timer() for p in self.ps.values())) if t]
        if not timers or not due:
            return False
        self.now = max(self.now, min(due))
        self.c.handle_timer(self.now)
        for p in self.ps.values():
            p.handle_timer(self.now)
        return True

    def run(self, *, timers: bool = True, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.step(timers=timers):
                return
        raise AssertionError("did not settle")

    def released(self) -> bool:
        return all(self.ps[r.agent].owner_of(r) is None for r in (ORIGIN, X, Y, Z))

    def rid(self) -> str:
        (rid,) = self.c.recoveries()
        return rid

    def sent(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.log if isinstance(m, kind)]


def test_contain_discover_restore_close() -> None:
    net = Net()
    net.signal()
    net.run()
    rid = net.rid()
    assert net.c.recovery_state(rid) is RecoveryState.CLOSED
    # draft §8.1: discovered hop by hop: o first, then x and y, then z.
    halts = [m.execution for m in net.log if isinstance(m, Halt)]
    assert halts == [ORIGIN, X, Y, Z]
    # draft §8.2: reverse dependency order: z before x, x and y before o.
    order = [m.execution for m in net.sent(Rollback)]
    assert order.index(Z) < order.index(X) < order.index(ORIGIN)
    assert order.index(Y) < order.index(ORIGIN)
    (record,) = net.records
    assert record.result is RecordResult.COMPLETED
    assert {m.execution: m.outcome for m in record.members} == dict.fromkeys(
        (ORIGIN, X, Y, Z), "restored"
    )
    assert {m.execution: m.target for m in record.members} == {ORIGIN: 1, X: 0, Y: 0, Z: 0}
    assert isinstance(net.events[0], RecoveryStarted)
    assert isinstance(net.events[-1], RecoveryEnded)
    assert not net.c.busy(rid) and net.released()


def test_a_false_trigger_restores_nothing_and_resumes_everyone() -> None:
    # draft §9.2: a trigger that fails appraisal ends the recovery as rejected.
    net = Net(verdict=Verdict.REJECT)
    net.signal()
    net.run()
    assert net.c.recovery_state(net.rid()) is RecoveryState.REJECTED
    assert net.sent(Rollback) == [] and net.asked == []
    (record,) = net.records
    assert record.result is RecordResult.REJECTED
    assert all(m.outcome is None for m in record.members)
    assert net.released()


def test_a_deferred_appraisal_waits_for_a_decision() -> None:
    net = Net(verdict=None)
    net.signal()
    net.run()
    rid = net.rid()
    assert net.c.recovery_state(rid) is RecoveryState.APPRAISING and net.c.busy(rid)
    assert any(isinstance(e, AppraisalRequired) for e in net.events)
    net.c.decide(rid, Verdict.ACCEPT, net.now)
    net.run()
    assert net.c.recovery_state(rid) is RecoveryState.CLOSED
    with pytest.raises(LocalProtocolError):
        net.c.decide(rid, Verdict.ACCEPT, net.now)


def test_bounds_escalate_instead_of_acting() -> None:
    net = Net(bounds=Bounds(max_members=2))
    net.signal()
    net.run()
    assert net.c.recovery_state(net.rid()) is RecoveryState.ESCALATED
    (record,) = net.records
    assert record.result is RecordResult.ESCALATED and record.escalation is not None
    assert record.escalation.reason == "max-members" and record.escalation.frontier
    assert net.sent(Rollback) == [] and net.released()


def test_a_member_outside_the_authority_escalates_the_recovery() -> None:
    net = Net(authority=("someone-else",))
    net.signal()
    net.run()
    (record,) = net.records
    assert record.result is RecordResult.ESCALATED
    assert record.escalation is not None and record.escalation.reason == "refused"
    assert record.escalation.frontier == (Z,)
    refused = {m.execution: m for m in record.members}[Z]
    assert refused.outcome == "refused" and refused.residual
    assert refused.action is Action.UNDETERMINED


def test_an_unreachable_member_escalates() -> None:
    net = Net()
    net.drop = lambda m: m.TYPE == "halt" and m.recipient == "f"
    net.signal()
    net.run()
    (record,) = net.records
    assert record.escalation is not None and record.escalation.reason == "unreachable"
    assert {m.execution: m.outcome for m in record.members}[Z] == "unknown"
    assert len([m for m in net.log if m.TYPE == "halt" and m.recipient == "f"]) == RETRY.attempts


def test_an_unanswered_rollback_is_unknown_then_resolved_by_status() -> None:
    # draft §8.4: a timeout gives unknown (never success); the member stays
    # contained; a status query later resolves it and a record supersedes.
    net = Net()
    lost: list[Message] = []

    def drop(m: Message) -> bool:
        if m.recipient == "f" and m.TYPE in ("rollback", "status-query") and len(lost) < 3:
            lost.append(m)
            return True
        return False

    net.drop = drop
    net.signal()
    net.run()
    first, *later = net.records
    assert first.result is RecordResult.PARTIAL
    z = {m.execution: m for m in first.members}[Z]
    assert z.outcome == "unknown" and z.residual
    assert later
    final = later[-1]
    assert final.supersedes == (later[-2].id if len(later) > 1 else first.id)
    assert final.result is RecordResult.COMPLETED
    assert {m.execution: m.outcome for m in final.members}[Z] == "restored"
    assert net.ps["f"].owner_of(Z) is None  # released once known
    # Its producer x was still asked only after z had an outcome (unknown).
    assert len([e for e in net.asked if e.execution == Z]) == 1


def test_busy_is_waited_for_without_spending_attempts() -> None:
    net = Net()
    # Another recovery holds z and is working on it: the newcomer must wait.
    net.ps["f"].receive(
        "c",
        _halt_from("c", "rival", Z, created=1),
        net.now,
    )
    net.ps["f"].data_to_send()
    net.signal()
    net.run(timers=False)
    for _ in range(10):  # far more than RETRY.attempts retransmissions
        net.now = net.c.get_timer() or net.now
        net.c.handle_timer(net.now)
        net.run(timers=False)
    assert net.c.members(net.rid())[Z][0] is TrackState.HALTING
    busy = [m for m in net.log if isinstance(m, Error) and m.code == "busy"]
    assert len(busy) >= 5
    # The rival lets go: the waiting recovery proceeds to the end.
    net.ps["f"].receive("c", _resume_from("c", "rival", Z), net.now)
    net.run()
    assert net.c.recovery_state(net.rid()) is RecoveryState.CLOSED


def test_an_abort_waits_for_work_in_progress_and_supersedes() -> None:
    net = Net()
    net.auto = False
    net.signal()
    net.run(timers=False)
    rid = net.rid()
    assert net.c.recovery_state(rid) is RecoveryState.RESTORING
    net.c.abort(rid, net.now)
    net.run(timers=False)
    assert net.c.recovery_state(rid) is RecoveryState.ABORTED
    waiting = [e for e in net.asked if e.execution in (Z, Y)]
    for event in waiting:
        net.complete(event.execution.agent, event)
    net.run()
    assert net.records[0].result is RecordResult.ABORTED
    assert {m.execution: m.outcome for m in net.records[-1].members}[Z] == "restored"
    assert net.records[-1].supersedes is not None
    assert net.released()
    with pytest.raises(LocalProtocolError):
        net.c.abort(rid, net.now)


def test_an_irreversible_member_is_disclosed_and_its_dependents_still_undone() -> None:
    net = Net(irreversible=frozenset({X}))
    net.signal()
    net.run()
    (record,) = net.records
    members = {m.execution: m for m in record.members}
    assert record.result is RecordResult.PARTIAL
    assert members[X].outcome == "irreversible" and members[X].residual
    assert members[Z].outcome == "restored"


def test_a_late_ack_is_never_taken_for_the_ack_of_a_later_request() -> None:
    # A duplicated ack of the rollback, delivered after the resume went out,
    # must not count as the resume's acknowledgement (found by the simulator).
    net = Net()
    net.signal()
    net.run()
    rid = net.rid()
    old_ack = next(
        m for m in net.log if isinstance(m, Ack) and m.sender == "f" and m.recovery == rid
    )
    snapshot = net.c.snapshot()
    again = Coordinator.from_snapshot(snapshot, retry=RETRY)
    track_before = again.members(rid)[Z]
    again.receive("f", old_ack, net.now)
    assert again.members(rid)[Z] == track_before


def test_signals_are_authorized_and_deduplicated() -> None:
    net = Net()
    sid = net.signal()
    net.run()
    signal = next(m for m in net.log if isinstance(m, FailureSignal))
    net.c.receive("a", signal, net.now)  # retransmitted after the recovery closed
    (ack,) = net.c.data_to_send()
    assert isinstance(ack, Ack) and ack.recovery == net.rid() and ack.reply_to == sid
    assert len(net.c.recoveries()) == 1
    import dataclasses

    forged = dataclasses.replace(signal, checkpoint=0)
    net.c.receive("a", forged, net.now)
    assert [m.code for m in net.c.data_to_send() if isinstance(m, Error)] == ["conflict"]
    stranger = dataclasses.replace(signal, id="s2", sender="mallory")
    net.c.receive("mallory", stranger, net.now)
    assert [m.code for m in net.c.data_to_send() if isinstance(m, Error)] == ["unauthorized"]
    unknown = dataclasses.replace(signal, id="s3", execution=ExecRef(agent="a", exec="nope"))
    net.c.receive("a", unknown, net.now)
    assert [m.code for m in net.c.data_to_send() if isinstance(m, Error)] == ["unknown-execution"]
    warning = dataclasses.replace(signal, id="s4", severity=Severity.WARNING)
    net.c.receive("a", warning, net.now)
    (ack,) = net.c.data_to_send()
    assert isinstance(ack, Ack) and ack.recovery is None
    assert isinstance(net.c.next_event(), WarningReceived)
    assert len(net.c.recoveries()) == 1


def test_replies_are_authorized() -> None:
    net = Net()
    net.signal()
    net.run(timers=False)
    rid = net.rid()
    result = next(m for m in net.log if isinstance(m, RollbackResult) and m.sender == "f")
    import dataclasses

    cases = {
        "unauthorized": dataclasses.replace(result, sender="b"),  # not the member's agent
        "unknown-recovery": dataclasses.replace(result, recovery="nope"),
        "wrong-recovery": dataclasses.replace(result, trigger="other"),
    }
    for code, message in cases.items():
        net.c.receive(message.sender, message, net.now)
        errors = [m for m in net.c.data_to_send() if isinstance(m, Error)]
        assert [e.code for e in errors] == [code]
    no_request = dataclasses.replace(result, reply_to="invented")
    net.c.receive("f", no_request, net.now)
    assert [m.code for m in net.c.data_to_send() if isinstance(m, Error)] == ["unauthorized"]
    assert net.c.recovery_state(rid) is RecoveryState.CLOSED


def test_a_restarted_coordinator_continues_where_it_was() -> None:
    """Crash and rebuild the coordinator after every step: the run is unchanged."""
    plain = Net()
    plain.signal()
    plain.run()
    crashing = Net()
    crashing.signal()
    steps = 0
    while True:
        crashing.pull()  # a step's outputs leave before the next crash can happen
        data = json.loads(json.dumps(crashing.c.snapshot()))
        rebuilt = Coordinator.from_snapshot(
            data, ids=lambda n: f"c-{n}", policy=Policy(Verdict.ACCEPT), retry=RETRY
        )
        assert rebuilt.snapshot() == data
        crashing.c = rebuilt
        if not crashing.step():
            break
        steps += 1
    assert steps > 20
    assert [m.id for m in crashing.log] == [m.id for m in plain.log]
    assert [r.result for r in crashing.records] == [r.result for r in plain.records]


def _outcomes(net: Net) -> dict[ExecRef, str | None]:
    (record,) = net.records
    return {m.execution: m.outcome for m in record.members}


def test_a_reversibility_other_than_declared_is_reported_and_the_declared_one_used() -> None:
    # draft §13.6: x's agent declared "compensable" when the work was delegated
    # and now reports "restorable". The coordinator asks for compensation (the
    # declared class), not for the restore the halted reply invites, and
    # reports the discrepancy; x's agent refuses the mismatched action.
    net = Net()
    net.c.add_execution(X, ["c"], reversibility=Reversibility.COMPENSABLE)
    net.c.add_execution(Y, ["c"], reversibility=Reversibility.RESTORABLE)
    net.signal()
    net.run()
    rid = net.rid()
    (discrepancy,) = [e for e in net.events if isinstance(e, ReversibilityDiscrepancy)]
    assert discrepancy == ReversibilityDiscrepancy(
        execution=X,
        recovery=rid,
        declared=Reversibility.COMPENSABLE,
        reported=Reversibility.RESTORABLE,
    )
    actions = {m.execution: m.action for m in net.sent(Rollback)}
    assert actions[X] is Action.COMPENSATE and actions[Y] is Action.CANCEL_RESTORE
    outcomes = _outcomes(net)
    assert outcomes[X] == "refused" and outcomes[Y] == "restored"


def test_a_later_claim_of_more_reversibility_is_not_believed() -> None:
    # Declared irreversible at delegation, reported restorable when halted: no
    # undo is asked for; the member's effects stay recorded as residual.
    net = Net()
    net.c.add_execution(Z, ["c"], reversibility=Reversibility.IRREVERSIBLE)
    net.signal()
    net.run()
    assert [e.execution for e in net.events if isinstance(e, ReversibilityDiscrepancy)] == [Z]
    actions = {m.execution: m.action for m in net.sent(Rollback)}
    assert actions[Z] is Action.NONE


def test_a_restore_cannot_be_escaped_by_reporting_irreversible_when_halted() -> None:
    # Declared restorable at delegation, reported irreversible when halted: the
    # coordinator still asks for the restore its agent committed to; the agent,
    # holding to its new report, refuses, and the record says "refused" for it
    # (never "irreversible", which would pass for an honest declaration).
    net = Net(irreversible=frozenset({Z}))
    net.c.add_execution(Z, ["c"], reversibility=Reversibility.RESTORABLE)
    net.signal()
    net.run()
    assert [e.execution for e in net.events if isinstance(e, ReversibilityDiscrepancy)] == [Z]
    actions = {m.execution: m.action for m in net.sent(Rollback)}
    assert actions[Z] is Action.CANCEL_RESTORE
    assert _outcomes(net)[Z] == "refused"


def test_a_matching_reversibility_raises_nothing_and_survives_a_snapshot() -> None:
    net = Net()
    for ref in (ORIGIN, X, Y, Z):
        net.c.add_execution(ref, ["c"], reversibility=Reversibility.RESTORABLE)
    data = json.loads(json.dumps(net.c.snapshot()))
    assert all(len(entry) == 3 for entry in data["authority"])
    net.c = Coordinator.from_snapshot(data, policy=Policy(Verdict.ACCEPT), retry=RETRY)
    net.c.add_execution(X, ["c"], reversibility=Reversibility.RESTORABLE)
    net.c.add_execution(Y, ["c"])  # no declaration: nothing to compare
    rebuilt = Coordinator.from_snapshot(json.loads(json.dumps(net.c.snapshot())))
    assert rebuilt.snapshot() == net.c.snapshot()
    net.signal()
    net.run()
    assert not any(isinstance(e, ReversibilityDiscrepancy) for e in net.events)
    assert set(_outcomes(net).values()) == {"restored"}
    with pytest.raises(LocalProtocolError) as info:
        net.c.add_execution(X, ["c"], reversibility="restorable")  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.MALFORMED


def _in_doubt(state: TrackState) -> tuple[Net, str]:
    """A recovery whose member z never answered its rollback, z in ``state``."""
    net = Net()
    net.drop = lambda m: m.recipient == "f" and not isinstance(m, Halt)
    net.signal()
    while net.step():
        if net.c.recoveries() and net.c.members(net.rid()).get(Z, (None,))[0] is state:
            break
    rid = net.rid()
    assert net.c.members(rid)[Z][0] is state
    net.pull()
    return net, rid


@pytest.mark.parametrize("state", [TrackState.UNKNOWN, TrackState.ABANDONED])
def test_an_operator_sets_the_outcome_of_a_member_in_doubt(state: TrackState) -> None:
    # draft §8.7: after a manual repair an operator sets z's outcome; the record
    # is superseded and lists the reference to the operator's instruction. z is
    # still chased with status queries (unknown) or left to an operator (abandoned).
    net, rid = _in_doubt(state)
    # Unknown: the recovery waits for z (its wave blocks the next); abandoned:
    # the recovery was closed and its record says "unknown".
    earlier = list(net.records)
    assert [m.outcome for r in earlier for m in r.members if m.execution == Z] == (
        ["unknown"] if state is TrackState.ABANDONED else []
    )
    net.c.force_outcome(rid, Z, "restored", (), net.now, evidence="override:sha-256:ab12")
    net.drop = lambda m: False
    net.run()
    last = net.records[-1]
    assert last.recovery == rid and last.supersedes == (earlier[-1].id if earlier else None)
    assert {m.execution: m.outcome for m in last.members}[Z] == "restored"
    assert last.result is RecordResult.COMPLETED
    assert "override:sha-256:ab12" in last.evidence
    assert all("override:sha-256:ab12" not in r.evidence for r in earlier)
    # The reference survives a restart, for any later record of the recovery.
    again = Coordinator.from_snapshot(json.loads(json.dumps(net.c.snapshot())))
    assert again.snapshot() == net.c.snapshot()


def test_an_operator_cannot_set_an_outcome_that_is_not_in_doubt_or_does_not_fit() -> None:
    net, rid = _in_doubt(TrackState.ABANDONED)
    before = net.c.snapshot()
    leaves = (Residual(description="half-applied"),)
    cases = [
        (X, "restored", (), ErrorCode.INVALID_STATE),  # x's outcome is known
        (Z, "irreversible", leaves, ErrorCode.INVALID_STATE),  # z was asked to restore
        (Z, "compensated", (), ErrorCode.INVALID_STATE),
        (Z, "failed", (), ErrorCode.MALFORMED),  # effects remain: they must be listed
        (Z, "restored", leaves, ErrorCode.MALFORMED),  # nothing remains after a restore
        (Z, "fixed", (), ErrorCode.MALFORMED),
        (Z, "unknown", leaves, ErrorCode.INVALID_STATE),
    ]
    for ref, outcome, residual, code in cases:
        with pytest.raises(LocalProtocolError) as info:
            net.c.force_outcome(rid, ref, outcome, residual, net.now, evidence="override:x")
        assert info.value.code is code, (ref, outcome)
        assert net.c.snapshot() == before and not net.c.records()
    net.c.force_outcome(rid, Z, "failed", leaves, net.now, evidence="override:y")
    assert {m.execution: m.outcome for m in net.c.records()[-1].members}[Z] == "failed"


def test_a_snapshot_that_predates_declared_reversibility_loads() -> None:
    net = Net()
    data = json.loads(json.dumps(net.c.snapshot()))
    assert all(len(entry) == 2 for entry in data["authority"])
    assert Coordinator.from_snapshot(data).snapshot() == data


def test_bad_snapshots_are_refused() -> None:
    net = Net()
    net.signal()
    net.run()
    data = net.c.snapshot()
    data["recoveries"][0]["tracks"][0]["execution"] = ["only-one"]
    with pytest.raises(LocalProtocolError) as info:
        Coordinator.from_snapshot(data)
    assert info.value.code is ErrorCode.MALFORMED


def _halt_from(c: str, r: str, ref: ExecRef, *, created: int) -> Message:
    return Halt(
        id=f"{r}-h",
        sender=c,
        recipient=ref.agent,
        iat=1,
        recovery=r,
        trigger=f"t-{r}",
        execution=ref,
        created=created,
    )


def _resume_from(c: str, r: str, ref: ExecRef) -> Message:
    from agent_recovery._messages import Resume

    return Resume(
        id=f"{r}-r",
        sender=c,
        recipient=ref.agent,
        iat=1,
        recovery=r,
        trigger=f"t-{r}",
        execution=ref,
    )


def test_an_abort_that_does_not_apply_changes_nothing() -> None:
    # draft §8.7: a refused override leaves no trace in the recovery, not even
    # the reference to the instruction.
    net = Net()
    net.signal()
    net.run()
    rid = net.rid()
    before = net.c.snapshot()
    with pytest.raises(LocalProtocolError) as info:
        net.c.abort(rid, net.now, evidence="override:sha-256:cd34")  # it is closed
    assert info.value.code is ErrorCode.INVALID_STATE
    assert net.c.snapshot() == before and not net.c.records()
