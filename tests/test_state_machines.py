"""Every (state, message) pair of both machines, through the engines (draft §8.6).

For each entry of the member table, a participant is put in the state with
recoveries standing in every relation to the execution, the message is sent
from the recovery in the entry's relation, and the reply, the next state and
the side effect must be what the table says; a refusal must change nothing.
For each entry of the tracking table, a coordinator's member is put in the
state and sent the reply; its tracking state must follow the table. Hypothesis
varies what the table does not fix: times, facts, targets, outcomes. A
stateful test then drives a participant with random message sequences.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._messages import Ack, Error, Halted, Message, RollbackResult, Status
from agent_recovery._model import Action, Outcome, Residual
from agent_recovery._participant import Participant
from agent_recovery._state import (
    MEMBER_MESSAGE_INPUTS,
    MEMBER_TRANSITIONS,
    TRACK_MESSAGE_INPUTS,
    TRACK_TRANSITIONS,
    MemberEffect,
    MemberInput,
    MemberReply,
    MemberState,
    Relation,
    TrackAction,
    TrackInput,
    TrackState,
    released_state,
)
from agent_recovery.testing._builders import EXECUTION, RELATION_SENDER, MemberBench, TrackBench, X

MEMBER_PAIRS = sorted(
    (key for key in MEMBER_TRANSITIONS if key[1] in MEMBER_MESSAGE_INPUTS),
    key=lambda k: (list(MemberState).index(k[0]), k[1].value, k[2].value),
)
TRACK_PAIRS = sorted(
    (key for key in TRACK_TRANSITIONS if key[1] in TRACK_MESSAGE_INPUTS),
    key=lambda k: (list(TrackState).index(k[0]), k[1].value),
)
_DEFAULT = settings.default or settings()
# A few examples per pair by default; the "long" Hypothesis profile scales them up.
PAIRS_SETTINGS = settings(max_examples=max(3, _DEFAULT.max_examples // 60), deadline=None)


def _without_counters(snapshot: dict[str, Any]) -> dict[str, Any]:
    # An error reply spends a message id; nothing else may change.
    return {k: v for k, v in snapshot.items() if k != "seq"}


def _reply_kind(message: Message) -> MemberReply:
    if isinstance(message, Halted):
        return MemberReply.HALTED
    if isinstance(message, Ack):
        return MemberReply.ACK
    if isinstance(message, RollbackResult):
        return MemberReply.ROLLBACK_RESULT
    if isinstance(message, Status):
        return MemberReply.STATUS
    assert isinstance(message, Error)
    return MemberReply.BUSY if message.code == "busy" else MemberReply.INVALID_STATE


def test_every_member_pair_is_exercised() -> None:
    assert len(MEMBER_PAIRS) == sum(1 for k in MEMBER_TRANSITIONS if k[1] in MEMBER_MESSAGE_INPUTS)
    assert len(MEMBER_PAIRS) > 150


@pytest.mark.parametrize("pair", MEMBER_PAIRS, ids=lambda k: "-".join(v.value for v in k))
@PAIRS_SETTINGS
@given(delay=st.integers(min_value=0, max_value=10**9), new_target=st.sampled_from([0, 1]))
def test_member_pair(
    pair: tuple[MemberState, MemberInput, Relation], delay: int, new_target: int
) -> None:
    state, event, relation = pair
    step = MEMBER_TRANSITIONS[pair]
    bench = MemberBench(state)
    bench.now += delay
    before = bench.p.snapshot()
    owner_before = bench.p.owner_of(EXECUTION)
    who = RELATION_SENDER[relation]
    # A repeated rollback must repeat the request; a first one may name any target.
    first = state is MemberState.HALTED and relation is not Relation.FINISHED
    target = new_target if first else 0
    action = Action.NONE if state is MemberState.IRREVERSIBLE else Action.RESTORE
    if state is MemberState.COMPENSATED:
        action = Action.COMPENSATE
    if relation is Relation.FINISHED:
        action = Action.RESTORE
    out = bench.send(who, event, target=target, action=action)
    replies = [m for m in out if m.recipient == f"c-{who}"]
    assert replies, "every request gets a reply"
    assert _reply_kind(replies[0]) is step.reply
    if step.reply is MemberReply.BUSY:
        error = replies[0]
        assert isinstance(error, Error) and error.owner is not None
    if step.reply in (MemberReply.BUSY, MemberReply.INVALID_STATE):
        # draft §9: a refusal changes nothing.
        assert _without_counters(bench.p.snapshot()) == _without_counters(before)
        return
    after = bench.p.state_of(EXECUTION)
    if step.effect is MemberEffect.START:
        # Nothing after the target left: answered not-needed at once (draft §8.5).
        assert after in (MemberState.ROLLING_BACK, MemberState.NOT_NEEDED)
    elif step.effect is MemberEffect.RELEASE:
        assert after is released_state([MemberState.HALTED])  # "sus" comes back
        assert bench.p.owner_of(EXECUTION) == ("c-sus", "sus")
    else:
        assert after is step.next
    if step.effect is MemberEffect.TAKE_OVER:
        assert bench.p.owner_of(EXECUTION) == ("c-old", "old")
    elif step.effect not in (MemberEffect.RELEASE, MemberEffect.CLAIM):
        assert bench.p.owner_of(EXECUTION) == owner_before
    if step.effect is MemberEffect.TOMBSTONE:
        late = bench.send(who, MemberInput.HALT)
        assert isinstance(late[0], Error) and late[0].code == ErrorCode.INVALID_STATE


def test_every_track_pair_is_exercised() -> None:
    assert {s for s, _ in TRACK_PAIRS} == set(TrackState)
    assert len(TRACK_PAIRS) == len(TrackState) * len(TRACK_MESSAGE_INPUTS)


@pytest.mark.parametrize("pair", TRACK_PAIRS, ids=lambda k: f"{k[0].value}-{k[1].value}")
@PAIRS_SETTINGS
@given(delay=st.integers(min_value=0, max_value=50))
def test_track_pair(pair: tuple[TrackState, TrackInput], delay: int) -> None:
    state, event = pair
    step = TRACK_TRANSITIONS[pair]
    bench = TrackBench(state)
    bench.now += delay
    before = bench.c.snapshot()
    out = bench.reply(X, event)
    assert not [m for m in out if isinstance(m, Error)], "a table input is never refused"
    assert bench.track(X) is step.next
    if step.next is state and step.action is TrackAction.NONE:
        assert bench.c.snapshot() == before  # ignored: nothing changes
    if step.action is TrackAction.SEND_ROLLBACK:
        assert any(m.TYPE == "rollback" and m.recipient == X.agent for m in out)


def test_member_refusals_before_the_table() -> None:
    bench = MemberBench(MemberState.HALTED)
    message = bench.message("own", MemberInput.ROLLBACK)
    # Spoofed sender, wrong recipient, unknown execution, outside the authority.
    bench.p.receive("c-old", message, bench.now)
    bench.p.receive("c-own", _replace(message, recipient="other"), bench.now)
    stranger = _replace(message, sender="c-x", recovery="zz")
    bench.p.receive("c-x", stranger, bench.now)
    codes = [m.code for m in bench.p.data_to_send() if isinstance(m, Error)]
    assert codes == ["unauthorized", "wrong-recipient", "unauthorized"]
    assert bench.p.state_of(EXECUTION) is MemberState.HALTED


def _replace(message: Message, **kw: Any) -> Message:
    import dataclasses

    return dataclasses.replace(message, **kw)


# -- random sequences ------------------------------------------------------------------

_WHO = sorted(RELATION_SENDER.values())


class ParticipantMachine(RuleBasedStateMachine):
    """Random messages from random recoveries, and random application reports."""

    def __init__(self) -> None:
        super().__init__()
        self.bench = MemberBench(MemberState.IDLE)
        self.outcomes: dict[tuple[str, str], Outcome] = {}

    @rule(
        who=st.sampled_from(_WHO),
        event=st.sampled_from(MEMBER_MESSAGE_INPUTS),
        checkpoint=st.sampled_from([0, 1]),
    )
    def send(self, who: str, event: MemberInput, checkpoint: int) -> None:
        before = self.bench.p.snapshot()
        out = self.bench.send(who, event, target=checkpoint)
        replies = [m for m in out if m.recipient == f"c-{who}"]
        assert replies, "every request is answered"
        if isinstance(replies[0], Error):
            assert _without_counters(self.bench.p.snapshot()) == _without_counters(before)
        for m in out:
            if isinstance(m, RollbackResult):
                key = (m.sender, m.recovery)
                # draft §8.6: an outcome, once reported, is never changed.
                assert self.outcomes.setdefault(key, m.effective_outcome) is m.effective_outcome

    @precondition(lambda self: self.bench.p.state_of(EXECUTION) is MemberState.ROLLING_BACK)
    @rule(outcome=st.sampled_from([Outcome.RESTORED, Outcome.FAILED, Outcome.NOT_NEEDED]))
    def done(self, outcome: Outcome) -> None:
        residual = (Residual(description="left"),) if outcome is Outcome.FAILED else ()
        self.bench.p.rollback_done(
            EXECUTION, outcome, checkpoint=0, now=self.bench.now, residual=residual
        )
        self.bench.p.data_to_send()

    @rule()
    def illegal_report(self) -> None:
        if self.bench.p.state_of(EXECUTION) is not MemberState.ROLLING_BACK:
            with pytest.raises(LocalProtocolError):
                self.bench.p.rollback_done(
                    EXECUTION, Outcome.RESTORED, checkpoint=0, now=self.bench.now
                )

    @invariant()
    def consistent(self) -> None:
        p = self.bench.p
        assert (p.owner_of(EXECUTION) is None) == (p.state_of(EXECUTION) is MemberState.IDLE)
        data = p.snapshot()
        again = Participant.from_snapshot(data).snapshot()
        assert again == data  # the persisted form is the whole state
        while p.next_event() is not None:
            pass


TestParticipantMachine = ParticipantMachine.TestCase
TestParticipantMachine.settings = settings(
    max_examples=max(40, _DEFAULT.max_examples // 5), stateful_step_count=30, deadline=None
)
