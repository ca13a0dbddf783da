"""Message values validate when built (draft §6): every rule, both sides of it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._messages import (
    MESSAGE_TYPES,
    Ack,
    Error,
    Escalation,
    FailureSignal,
    Halt,
    Halted,
    Message,
    Owner,
    Progress,
    RecordMember,
    RecoveryRecord,
    Resume,
    Rollback,
    RollbackResult,
    Status,
    StatusQuery,
    freeze_json,
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
    RecordResult,
    Residual,
    Reversibility,
    Severity,
)
from agent_recovery._model import Status as ExecStatus
from agent_recovery._registry import FailureType, RecommendedAction

CONF = ExecRef(agent="spiffe://ops.example/configurator", exec="exec-7f3a")
MON = ExecRef(agent="spiffe://ops.example/monitor", exec="exec-c3d8")
EDGE = Dependency(consumer=MON, producer=CONF, produced_after=2, consumed_after=1)
ENV: dict[str, Any] = {
    "id": "msg-1",
    "sender": "spiffe://ops.example/orchestrator",
    "recipient": "spiffe://ops.example/monitor",
    "iat": 1_795_456_801_512,
}
SCOPE: dict[str, Any] = {"recovery": "rcv-0b5d", "trigger": "sig-4e21"}
LEAK = (Residual(description="notice e-mailed to 12 customers"),)


def malformed() -> Any:
    return pytest.raises(LocalProtocolError, match=r"^malformed")


def signal(**changes: Any) -> FailureSignal:
    fields: dict[str, Any] = {
        **ENV,
        "id": "sig-4e21",
        "execution": CONF,
        "failure_type": FailureType.VERIFICATION_FAILED,
        "severity": Severity.ERROR,
        "retryable": False,
        "effect_state": EffectState.PARTIAL,
        "checkpoint": 2,
    }
    return FailureSignal(**{**fields, **changes})


def result(**changes: Any) -> RollbackResult:
    fields: dict[str, Any] = {
        **ENV,
        **SCOPE,
        "reply_to": "msg-0",
        "execution": MON,
        "outcome": Outcome.RESTORED,
        "checkpoint": 1,
    }
    return RollbackResult(**{**fields, **changes})


def record(**changes: Any) -> RecoveryRecord:
    fields: dict[str, Any] = {
        **ENV,
        **SCOPE,
        "seq": 0,
        "prev": "",
        "created": 10,
        "closed": 20,
        "result": RecordResult.COMPLETED,
        "members": (),
    }
    return RecoveryRecord(**{**fields, **changes})


# ---------------------------------------------------------------------------
# The set of messages


def test_one_class_per_message_type() -> None:
    assert set(MESSAGE_TYPES) == {
        "failure-signal", "ack", "error", "halt", "halted", "rollback", "rollback-result",
        "resume", "status-query", "status", "recovery-record",
    }  # fmt: skip
    assert set(MESSAGE_TYPES.values()) == set(Message.__args__)
    for name, cls in MESSAGE_TYPES.items():
        assert name == cls.TYPE
        params = cls.__dataclass_params__  # type: ignore[union-attr]
        assert params.frozen and cls.__slots__
        assert all(f.kw_only for f in dataclasses.fields(cls))


def test_every_failure_signal_member_is_justified_in_the_docstring() -> None:
    """BRIEF §5: each mandatory and optional member says why it is there (draft §6.2)."""
    doc = FailureSignal.__doc__ or ""
    assert "draft §6.2" in doc
    for f in dataclasses.fields(FailureSignal):
        assert f"``{f.name}``" in doc, f.name


def test_messages_are_immutable_and_hashable() -> None:
    message = signal(params={"check": "reachability"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.checkpoint = 0  # type: ignore[misc]
    assert hash(message) == hash(signal(params={"check": "other"}))  # params not hashed
    assert message != signal(params={"check": "other"})


# ---------------------------------------------------------------------------
# Envelope and scope (draft §6.1)


@pytest.mark.parametrize("member", ["id", "sender", "recipient"])
@pytest.mark.parametrize("value", ["", "a b", "x" * 256, "é", 7, None])
def test_envelope_identifiers(member: str, value: object) -> None:
    with malformed():
        signal(**{member: value})


@pytest.mark.parametrize("iat", [-1, 253_402_300_800_000, True, 1.5, "2026-01-01T00:00:00Z"])
def test_issued_at_is_a_millisecond_timestamp(iat: object) -> None:
    with malformed():
        signal(iat=iat)


def test_failure_signal_belongs_to_no_recovery() -> None:
    assert signal().recovery is None and signal().trigger is None
    with pytest.raises(TypeError):
        FailureSignal(**{**dataclasses.asdict(signal()), "recovery": "rcv-1"})


@pytest.mark.parametrize(
    "cls,extra",
    [
        (Halt, {"execution": MON, "created": 5}),
        (Resume, {"execution": MON}),
        (StatusQuery, {"execution": MON}),
    ],
)
def test_messages_within_a_recovery_name_it_and_its_trigger(cls: Any, extra: Any) -> None:
    cls(**ENV, **SCOPE, **extra)
    for missing in SCOPE:
        with malformed():
            cls(**ENV, **{**SCOPE, missing: None}, **extra)


@pytest.mark.parametrize("cls,extra", [(Ack, {}), (Error, {"code": "internal"})])
def test_replies_carry_recovery_and_trigger_together_or_not_at_all(cls: Any, extra: Any) -> None:
    cls(**ENV, reply_to="m", **extra)
    cls(**ENV, **SCOPE, reply_to="m", **extra)
    for alone, value in SCOPE.items():
        with malformed():
            cls(**ENV, reply_to="m", **{alone: value}, **extra)


# ---------------------------------------------------------------------------
# Failure signal (draft §6.2)


def test_failure_signal_types_are_checked() -> None:
    with malformed():
        signal(severity="error")  # the enum, not its value
    with malformed():
        signal(effect_state="partial")
    with malformed():
        signal(retryable=1)
    with malformed():
        signal(execution=("a", "b"))
    with malformed():
        signal(checkpoint=-1)
    with malformed():
        signal(failure_type="Not A Token")
    with malformed():
        signal(evidence=["a list"])
    with malformed():
        signal(resources=("ok", 3))


def test_retry_after_only_for_retryable_failures() -> None:
    assert signal(retryable=True, retry_after=30).retry_after == 30
    with malformed():
        signal(retryable=False, retry_after=30)


def test_a_signal_is_not_its_own_cause() -> None:
    assert signal(cause="sig-0001").cause == "sig-0001"
    with malformed():
        signal(cause="sig-4e21")


def test_progress_cannot_exceed_total() -> None:
    assert Progress(completed=5, total=5).completed == 5
    with malformed():
        Progress(completed=6, total=5)


def test_unregistered_values_are_kept_and_fall_back() -> None:
    message = signal(failure_type="quorum-lost", recommended_action="page-operator")
    assert message.failure_type == "quorum-lost"
    assert message.effective_failure_type is FailureType.UNSPECIFIED
    assert message.effective_recommended_action is RecommendedAction.ESCALATE
    known = signal(failure_type="timeout", recommended_action="retry")
    assert known.effective_failure_type is FailureType.TIMEOUT
    assert known.effective_recommended_action is RecommendedAction.RETRY
    assert signal().effective_recommended_action is None


def test_params_are_frozen_sorted_and_i_json() -> None:
    original: dict[str, Any] = {"b": [1, {"y": 2.5}], "a": None}
    message = signal(params=original)
    original["b"].append("mutated later")
    assert message.params == {"a": None, "b": (1, {"y": 2.5})}
    assert list(message.params or {}) == ["a", "b"]
    with pytest.raises(TypeError):
        message.params["c"] = 1  # type: ignore[index]
    for bad in [{"x": math.inf}, {"x": math.nan}, {"x": 2**53}, {"x": "\ud800"}, {"x": {1, 2}},
                ["not", "an", "object"], {7: "non-text key"}]:  # fmt: skip
        with malformed():
            signal(params=bad)


def test_params_nesting_is_bounded() -> None:
    value: Any = 0
    for _ in range(30):
        value = [value]
    signal(params={"deep": value})  # params object 1 + 30 arrays: within 31
    with malformed():
        signal(params={"deep": [value]})
    assert freeze_json([[1]]) == ((1,),)


def test_text_cannot_hold_lone_surrogates() -> None:
    with malformed():
        signal(detail="bad \udc00")
    with malformed():
        Residual(description="bad \ud800")
    assert signal(detail="fine \U0001f600").detail == "fine \U0001f600"


# ---------------------------------------------------------------------------
# Error, halted, rollback (draft §6.4, §6.6, §6.7)


def test_owner_exactly_with_busy_and_superseded() -> None:
    owner = Owner(recovery="rcv-0b5d", created=5)
    for code in ("busy", "superseded"):
        assert Error(**ENV, reply_to="m", code=code, owner=owner).owner == owner
        with malformed():
            Error(**ENV, reply_to="m", code=code)
    with malformed():
        Error(**ENV, reply_to="m", code="invalid-state", owner=owner)
    # An unregistered code is defined elsewhere: owner is neither required nor refused.
    Error(**ENV, reply_to="m", code="brand-new", owner=owner)
    assert Error(**ENV, reply_to="m", code="brand-new").effective_code is ErrorCode.INTERNAL
    assert Error(**ENV, reply_to="m", code="busy", owner=owner).effective_code is ErrorCode.BUSY


def test_halt_goes_to_the_agent_of_the_execution() -> None:
    halt = {**ENV, **SCOPE, "created": 5}
    assert Halt(**halt, execution=MON).recipient == MON.agent
    with malformed():
        Halt(**halt, execution=CONF)


def test_halted_reports_only_edges_it_produced() -> None:
    facts = Facts(status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=3)
    Halted(**ENV, **SCOPE, reply_to="m", execution=CONF, facts=facts, dependents=(EDGE,))
    with malformed():
        Halted(**ENV, **SCOPE, reply_to="m", execution=MON, facts=facts, dependents=(EDGE,))
    with malformed():
        Halted(**ENV, **SCOPE, reply_to="m", execution=CONF, facts="active", dependents=())  # type: ignore[arg-type]


def test_rollback_reason_edge_has_the_member_as_consumer() -> None:
    via = Reason(kind=ReasonKind.DIRECT, via=EDGE)
    rollback = {**ENV, **SCOPE, "target": 1, "action": Action.CANCEL_RESTORE}
    Rollback(**rollback, execution=MON, reason=via)
    with malformed():
        Rollback(**rollback, execution=CONF, reason=via)
    with malformed():
        Rollback(**{**rollback, "action": Action.UNDETERMINED}, execution=MON, reason=via)


def test_reason_kind_and_edge_go_together() -> None:
    with malformed():
        Reason(kind=ReasonKind.ORIGIN, via=EDGE)
    with malformed():
        Reason(kind=ReasonKind.TRANSITIVE)
    with malformed():
        Reason(kind="direct", via=EDGE)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Outcomes and residual effects (draft §6.8, §6.11, §8.2)


@pytest.mark.parametrize("outcome", ["irreversible", "failed", "unknown"])
def test_outcomes_that_leave_effects_disclose_them(outcome: str) -> None:
    assert result(outcome=outcome, residual=LEAK).effective_outcome == outcome
    with malformed():
        result(outcome=outcome)
    with malformed():
        Status(**ENV, **SCOPE, reply_to="m", execution=MON, state="failed", outcome=outcome)
    with malformed():
        RecordMember(
            execution=CONF, target=0, action=Action.NONE, reason=Reason(kind=ReasonKind.ORIGIN),
            outcome=outcome,
        )  # fmt: skip


@pytest.mark.parametrize("outcome", ["restored", "compensated", "not-needed"])
def test_outcomes_that_undo_everything_leave_no_residual(outcome: str) -> None:
    assert result(outcome=outcome).residual == ()
    with malformed():
        result(outcome=outcome, residual=LEAK)
    with malformed():
        Status(**ENV, **SCOPE, reply_to="m", execution=MON, state=outcome, outcome=outcome,
               residual=LEAK)  # fmt: skip


def test_a_code_exactly_with_refused() -> None:
    assert result(outcome="refused", code="unauthorized").code == "unauthorized"
    assert result(outcome="refused", code="unauthorized", residual=LEAK).residual == LEAK
    with malformed():
        result(outcome="refused")
    with malformed():
        result(outcome="restored", code="internal")


def test_unregistered_outcome_counts_as_unknown_never_success() -> None:
    deferred = result(outcome="deferred")
    assert deferred.outcome == "deferred"
    assert deferred.effective_outcome is Outcome.UNKNOWN
    status = Status(**ENV, **SCOPE, reply_to="m", execution=MON, state="halted")
    assert status.effective_outcome is None


# ---------------------------------------------------------------------------
# Recovery record (draft §11)


def test_record_chain_and_time_order() -> None:
    digest = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"
    record(seq=7, prev=digest)
    for prev in ["short", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg", None]:
        with malformed():
            record(seq=7, prev=prev)
    with malformed():
        record(seq=0, prev=digest)  # the first record has no predecessor
    with malformed():
        record(seq=7, prev="")
    with malformed():
        record(created=21)


def test_record_lists_each_execution_once() -> None:
    member = RecordMember(
        execution=CONF, target=2, action=Action.RESTORE, reason=Reason(kind=ReasonKind.ORIGIN)
    )
    assert member.effective_outcome is None
    record(members=(member,))
    with malformed():
        record(members=(member, member))


def test_escalation_exactly_when_escalated() -> None:
    escalation = Escalation(reason="set exceeds 2 trust domains", frontier=(MON,))
    record(result=RecordResult.ESCALATED, escalation=escalation)
    with malformed():
        record(result=RecordResult.ESCALATED)
    with malformed():
        record(result=RecordResult.PARTIAL, escalation=escalation)
    with malformed():
        Escalation(reason="x", frontier=[MON])  # type: ignore[arg-type]
