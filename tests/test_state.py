"""The transition tables of draft §8.6 are complete, closed and consistent (``_state.py``)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._model import Outcome, RecordResult
from agent_recovery._state import (
    MEMBER_INPUT_OUTCOME,
    MEMBER_MESSAGE_INPUTS,
    MEMBER_TRANSITIONS,
    OUTCOME_STATE,
    RECOVERY_TRANSITIONS,
    TERMINAL_MEMBER_STATES,
    TERMINAL_RECOVERY_STATES,
    TRACK_MESSAGE_INPUTS,
    TRACK_REQUEST,
    TRACK_TRANSITIONS,
    MemberEffect,
    MemberInput,
    MemberReply,
    MemberState,
    RecoveryInput,
    RecoveryState,
    Relation,
    Retry,
    TrackInput,
    TrackState,
    containment_input,
    member_relations,
    member_step,
    ready_to_roll_back,
    record_result,
    recovery_step,
    released_state,
    releasing_input,
    restoring_input,
    track_step,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -- member machine ---------------------------------------------------------------


def test_every_message_has_an_entry_in_every_member_state() -> None:
    # draft §8.6: duplicates, late messages and foreign recoveries included.
    for state in MemberState:
        for event in MEMBER_MESSAGE_INPUTS:
            for relation in member_relations(state, event):
                assert (state, event, relation) in MEMBER_TRANSITIONS, (state, event, relation)


def test_member_table_has_no_unreachable_entries() -> None:
    for state, event, relation in MEMBER_TRANSITIONS:
        if event in MEMBER_MESSAGE_INPUTS:
            assert relation in member_relations(state, event)
        else:
            assert (state, relation) == (MemberState.ROLLING_BACK, Relation.OWNER)


def test_only_the_owner_changes_the_state() -> None:
    for (state, event, relation), step in MEMBER_TRANSITIONS.items():
        if step.next is not state:
            takes_over = relation is Relation.OLDER and step.effect is MemberEffect.TAKE_OVER
            assert relation in (Relation.OWNER, Relation.NONE) or takes_over, (state, event)


def test_refusals_have_no_effect() -> None:
    for key, step in MEMBER_TRANSITIONS.items():
        if step.reply in (MemberReply.BUSY, MemberReply.INVALID_STATE):
            assert step.next is key[0] and step.effect is MemberEffect.NONE, key


def test_terminal_states_are_sticky_until_the_owner_resumes() -> None:
    for (state, event, relation), step in MEMBER_TRANSITIONS.items():
        if state in TERMINAL_MEMBER_STATES and step.next is not state:
            assert (event, relation) in (
                (MemberInput.RESUME, Relation.OWNER),
                (MemberInput.HALT, Relation.OLDER),
            )


def test_work_in_progress_is_never_taken_over_or_released() -> None:
    # draft §8.5, §8.6: an older recovery waits; a resume is refused until an outcome.
    older = member_step(MemberState.ROLLING_BACK, MemberInput.HALT, Relation.OLDER)
    assert older.reply is MemberReply.BUSY
    resume = member_step(MemberState.ROLLING_BACK, MemberInput.RESUME, Relation.OWNER)
    assert resume.reply is MemberReply.INVALID_STATE


def test_a_late_halt_never_contains_a_released_execution() -> None:
    for state in MemberState:
        for relation in (Relation.RELEASED, Relation.FINISHED):
            step = member_step(state, MemberInput.HALT, relation)
            assert step.reply is MemberReply.INVALID_STATE and step.next is state


def test_outcome_reports_map_to_terminal_states() -> None:
    assert set(OUTCOME_STATE.values()) == TERMINAL_MEMBER_STATES
    for event, outcome in MEMBER_INPUT_OUTCOME.items():
        step = member_step(MemberState.ROLLING_BACK, event, Relation.OWNER)
        assert step.next is OUTCOME_STATE[outcome]
    assert Outcome.UNKNOWN not in OUTCOME_STATE  # a participant always knows


@pytest.mark.parametrize("state", [s for s in MemberState if s is not MemberState.ROLLING_BACK])
def test_an_outcome_report_outside_a_rollback_is_a_local_error(state: MemberState) -> None:
    with pytest.raises(LocalProtocolError) as info:
        member_step(state, MemberInput.DONE_RESTORED, Relation.OWNER)
    assert info.value.code is ErrorCode.INVALID_STATE
    # h2 style: the error names role, state and input.
    assert "participant" in str(info.value) and state.value in str(info.value)


def test_release_reinstates_the_most_recent_suspended_claim() -> None:
    assert released_state([]) is MemberState.IDLE
    assert released_state([MemberState.HALTED, MemberState.RESTORED]) is MemberState.RESTORED


# -- tracking machine ---------------------------------------------------------------


def test_every_reply_has_an_entry_in_every_tracking_state() -> None:
    for state in TrackState:
        for event in TRACK_MESSAGE_INPUTS:
            assert (state, event) in TRACK_TRANSITIONS, (state, event)


def test_timers_exist_exactly_where_a_request_is_outstanding() -> None:
    for state in TrackState:
        timed = {TrackInput.RETRY, TrackInput.GIVE_UP} <= {
            e for s, e in TRACK_TRANSITIONS if s is state
        }
        assert timed == (state in TRACK_REQUEST), state


def test_a_timeout_never_yields_success() -> None:
    # draft §8.4: giving up on a rollback gives unknown; on a halt, unreachable.
    assert track_step(TrackState.ROLLING_BACK, TrackInput.GIVE_UP).next is TrackState.UNKNOWN
    assert track_step(TrackState.HALTING, TrackInput.GIVE_UP).next is TrackState.UNREACHABLE
    for state in TRACK_REQUEST:
        assert track_step(state, TrackInput.GIVE_UP).next is not TrackState.SETTLED


def test_an_unknown_member_is_not_released_until_resolved() -> None:
    assert track_step(TrackState.UNKNOWN, TrackInput.RELEASE).next is TrackState.UNKNOWN
    resolved = track_step(TrackState.UNKNOWN, TrackInput.STATUS_FINAL)
    assert resolved.next is TrackState.SETTLED
    assert track_step(TrackState.SETTLED, TrackInput.RELEASE).next is TrackState.RELEASING


def test_a_missing_tracking_entry_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="coordinator member in state held"):
        track_step(TrackState.HELD, TrackInput.RETRY)


# -- recovery machine -----------------------------------------------------------------


def test_recovery_happy_path() -> None:
    state = RecoveryState.CONTAINING
    for event in (
        RecoveryInput.SCOPE_CLOSED,
        RecoveryInput.ACCEPT,
        RecoveryInput.SETTLED,
        RecoveryInput.RELEASED,
    ):
        state = recovery_step(state, event).next
    assert state is RecoveryState.CLOSED


def test_nothing_is_restored_before_appraisal() -> None:
    # draft §9.2: only an accepted trigger leads to restoring.
    into_restoring = [
        k for k, v in RECOVERY_TRANSITIONS.items() if v.next is RecoveryState.RESTORING
    ]
    assert {k[0] for k in into_restoring} <= {RecoveryState.APPRAISING, RecoveryState.RESTORING}
    assert (RecoveryState.APPRAISING, RecoveryInput.ACCEPT) in into_restoring


def test_final_recovery_states_are_absorbing() -> None:
    for (state, _event), step in RECOVERY_TRANSITIONS.items():
        if state in TERMINAL_RECOVERY_STATES:
            assert step.next is state
    with pytest.raises(LocalProtocolError, match="recovery in state closed cannot handle"):
        recovery_step(RecoveryState.CLOSED, RecoveryInput.ABORT)


def test_joint_rules() -> None:
    halting, held = TrackState.HALTING, TrackState.HELD
    assert containment_input([held, halting], bound_hit=False) is None
    assert containment_input([held, halting], bound_hit=True) is RecoveryInput.SCOPE_UNDETERMINED
    assert containment_input([held, TrackState.REFUSED], bound_hit=False) is (
        RecoveryInput.SCOPE_UNDETERMINED
    )
    assert containment_input([held, held], bound_hit=False) is RecoveryInput.SCOPE_CLOSED
    settled, rolling = TrackState.SETTLED, TrackState.ROLLING_BACK
    # Wave 1 is due only when wave 0 is settled (draft §8.2).
    assert ready_to_roll_back([[held, held], [held]]) == 0
    assert ready_to_roll_back([[settled, rolling], [held]]) is None
    assert ready_to_roll_back([[settled, TrackState.UNKNOWN], [held]]) == 1
    assert restoring_input([settled, TrackState.UNKNOWN]) is RecoveryInput.SETTLED
    assert restoring_input([settled, rolling]) is None
    assert releasing_input([TrackState.RELEASED, TrackState.UNKNOWN]) is RecoveryInput.RELEASED
    assert releasing_input([TrackState.RELEASING]) is None


def test_record_results() -> None:
    done = [Outcome.RESTORED, Outcome.NOT_NEEDED, Outcome.COMPENSATED]
    assert record_result(RecoveryState.CLOSED, done) is RecordResult.COMPLETED
    assert record_result(RecoveryState.CLOSED, [*done, Outcome.UNKNOWN]) is RecordResult.PARTIAL
    assert record_result(RecoveryState.REJECTED, [None]) is RecordResult.REJECTED
    assert record_result(RecoveryState.ESCALATED, []) is RecordResult.ESCALATED
    assert record_result(RecoveryState.ABORTED, done) is RecordResult.ABORTED


def test_retry_backoff_doubles_up_to_the_ceiling() -> None:
    retry = Retry(initial=100, ceiling=700)
    assert [retry.delay(n) for n in range(1, 6)] == [100, 200, 400, 700, 700]
    with pytest.raises(LocalProtocolError):
        Retry(initial=10, ceiling=5)
    with pytest.raises(LocalProtocolError):
        Retry(attempts=0)


# -- the draft's tables are generated from these ------------------------------------------


def _generator() -> object:
    path = ROOT / "scripts" / "gen_state_tables.py"
    spec = importlib.util.spec_from_file_location("gen_state_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_tables_cover_every_state_and_fit_the_draft() -> None:
    gen = _generator()
    text: str = gen.render()  # type: ignore[attr-defined]
    for state in (*MemberState, *RecoveryState, *TrackState):
        assert f"<td>{state.value}" in text or state in TERMINAL_MEMBER_STATES, state
    for block in text.split("<![CDATA[")[1:]:
        art = block.split("]]>")[0]
        assert max(len(line) for line in art.splitlines()) <= 69


def test_the_figure_check_notices_a_missing_transition(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()
    arrows = dict(gen.RECOVERY_ARROWS)  # type: ignore[attr-defined]
    del arrows["appraising", "rejected"]
    monkeypatch.setattr(gen, "RECOVERY_ARROWS", arrows)
    with pytest.raises(gen.RenderError, match="lacks"):  # type: ignore[attr-defined]
        gen.render()  # type: ignore[attr-defined]


def test_relations_cover_the_enum() -> None:
    used = {r for (_s, _e, r) in MEMBER_TRANSITIONS}
    assert used == set(Relation)
    assert RecordResult.ESCALATED.value == "escalated"
