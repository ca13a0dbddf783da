"""JamJet's own test examples, converted into failure signals (draft appendix "JamJet").

The inputs are the JSON forms of the examples in the ``#[cfg(test)]`` module of
JamJet's ``failure.rs`` (``jamjet-protocols``): the eleven variants of
``all_variants_serialize``, the ``round_trip_delegate_unreachable`` variant and
the ``round_trip_failure_info`` envelope, as serde serialises them
(``#[serde(tag = "type", rename_all = "snake_case")]``, ``None`` as ``null``).
"""

from __future__ import annotations

from typing import Any

import pytest

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery._messages import FailureSignal, Progress
from agent_recovery._model import EffectState, ExecRef, Severity
from agent_recovery._registry import FailureType, JamJetDisposition
from agent_recovery._wire import decode, encode, parse_timestamp
from agent_recovery.interop.jamjet import NotAFailure, SignalFields, convert, convert_failure

# all_variants_serialize (failure.rs lines 145-192)
ALL_VARIANTS: list[dict[str, Any]] = [
    {"type": "delegate_unreachable", "url": "u", "message": "m"},
    {"type": "capability_mismatch", "requested": "r", "available": ["a"]},
    {"type": "policy_denied", "policy_id": "p", "reason": "r"},
    {"type": "approval_required", "prompt": "ok?"},
    {"type": "budget_exceeded", "limit": 10.0, "actual": 15.0, "unit": "usd"},
    {"type": "trust_crossing_denied", "from_domain": "a.com", "to_domain": "b.com"},
    {"type": "verification_failed", "check": "sig", "message": "bad"},
    {"type": "tool_dependency_failed", "tool": "t", "error": "e"},
    {"type": "partial_completion", "completed_steps": 3, "total_steps": 5, "output": None},
    {"type": "fallback_invoked", "original_delegate": "a", "fallback_delegate": "b", "reason": "r"},
    {"type": "timeout", "deadline_secs": 10, "elapsed_secs": 12},
]
# round_trip_delegate_unreachable (lines 99-108)
UNREACHABLE = {
    "type": "delegate_unreachable",
    "url": "https://agent.example.com",
    "message": "connection refused",
}
# round_trip_failure_info (lines 111-128)
FAILURE_INFO = {
    "failure": {"type": "timeout", "deadline_secs": 30, "elapsed_secs": 35},
    "severity": "error",
    "retryable": True,
    "partial_output": {"partial": True},
    "recommended_fallback": "backup-agent",
    "audit_ref": "audit-12345",
    "timestamp": "2026-03-15T00:00:00Z",
}

EXPECTED = {
    "delegate_unreachable": (FailureType.UNREACHABLE, EffectState.NONE, "m"),
    "capability_mismatch": (FailureType.CAPABILITY_MISMATCH, EffectState.NONE, None),
    "policy_denied": (FailureType.POLICY_DENIED, EffectState.NONE, "r"),
    "budget_exceeded": (FailureType.BUDGET_EXCEEDED, EffectState.NONE, None),
    "trust_crossing_denied": (FailureType.TRUST_CROSSING_DENIED, EffectState.NONE, None),
    "verification_failed": (FailureType.VERIFICATION_FAILED, EffectState.UNKNOWN, "bad"),
    "tool_dependency_failed": (FailureType.TOOL_FAILED, EffectState.UNKNOWN, "e"),
    "partial_completion": (FailureType.UNSPECIFIED, EffectState.PARTIAL, None),
    "timeout": (FailureType.TIMEOUT, EffectState.UNKNOWN, None),
}
NOT_FAILURES = {
    "approval_required": JamJetDisposition.PENDING,
    "fallback_invoked": JamJetDisposition.ACTION_TAKEN,
}

EXECUTION = ExecRef(agent="spiffe://ops.example/configurator", exec="exec-7f3a")


def _signal(fields: SignalFields, **extra: Any) -> FailureSignal:
    message = fields.to_signal(
        id="sig-jj01",
        sender=EXECUTION.agent,
        recipient="spiffe://ops.example/orchestrator",
        execution=EXECUTION,
        **extra,
    )
    assert decode(encode(message)) == message  # what JamJet said survives the wire
    return message


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v["type"])
def test_each_variant_of_the_seed_tests(variant: dict[str, Any]) -> None:
    converted = convert_failure(variant)
    name = variant["type"]
    if name in NOT_FAILURES:
        assert isinstance(converted, NotAFailure)
        assert converted.disposition is NOT_FAILURES[name]
        assert converted.carried_as and converted.detail
        return
    assert isinstance(converted, SignalFields)
    failure_type, effect_state, detail = EXPECTED[name]
    message = _signal(converted, iat=1_000)
    assert message.failure_type == failure_type
    assert message.effect_state is effect_state
    assert message.detail == detail
    assert message.severity is Severity.ERROR and message.retryable is False
    assert message.checkpoint == 0  # JamJet has none: restart from the beginning
    fields = {k: v for k, v in variant.items() if k != "type"}
    if name == "partial_completion":
        assert message.progress == Progress(completed=3, total=5)
        assert message.params is None  # output was null
    else:
        assert message.params == {
            k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()
        }


def test_round_trip_delegate_unreachable() -> None:
    converted = convert_failure(UNREACHABLE, severity=Severity.WARNING, retryable=True)
    assert isinstance(converted, SignalFields)
    message = _signal(converted, iat=1_000)
    assert message.effective_failure_type is FailureType.UNREACHABLE
    assert message.detail == "connection refused"
    assert message.params == {"url": "https://agent.example.com", "message": "connection refused"}
    assert message.severity is Severity.WARNING and message.retryable


def test_round_trip_failure_info() -> None:
    converted = convert(FAILURE_INFO)
    assert isinstance(converted, SignalFields)
    message = _signal(converted, checkpoint=4)
    assert message.iat == parse_timestamp("2026-03-15T00:00:00Z")
    assert message.failure_type == FailureType.TIMEOUT
    assert message.severity is Severity.ERROR and message.retryable is True
    assert message.effect_state is EffectState.UNKNOWN and message.checkpoint == 4
    assert message.evidence == ("audit-12345",)
    assert message.params == {
        "deadline_secs": 30,
        "elapsed_secs": 35,
        "partial_output": {"partial": True},
        "recommended_fallback": "backup-agent",
    }
    assert message.recommended_action is None  # a fallback name is not a registered action


def test_partial_output_by_reference() -> None:
    info = {**FAILURE_INFO, "failure": ALL_VARIANTS[8] | {"output": {"rows": 3}}}
    converted = convert(info, partial_output_ref="https://artifacts.ops.example/jj/partial")
    assert isinstance(converted, SignalFields)
    message = _signal(converted)
    assert message.partial_output == "https://artifacts.ops.example/jj/partial"
    assert message.effect_state is EffectState.PARTIAL
    assert "output" not in (message.params or {})
    assert "partial_output" not in (message.params or {})
    inline = convert(info)
    assert isinstance(inline, SignalFields)
    assert inline.params == {
        "output": {"rows": 3},
        "partial_output": {"partial": True},
        "recommended_fallback": "backup-agent",
    }


@pytest.mark.parametrize("variant", ["approval_required", "fallback_invoked"])
def test_non_failures_in_an_envelope_are_still_not_signals(variant: str) -> None:
    failure = next(v for v in ALL_VARIANTS if v["type"] == variant)
    converted = convert({**FAILURE_INFO, "failure": failure})
    assert isinstance(converted, NotAFailure) and converted.variant == variant
    assert converted.disposition is NOT_FAILURES[variant]


def test_a_variant_added_later_is_a_failure_of_unknown_kind() -> None:
    converted = convert_failure({"type": "quota_frozen", "quota": "q1"})
    assert isinstance(converted, SignalFields)
    assert converted.failure_type == FailureType.UNSPECIFIED
    assert converted.effect_state is EffectState.UNKNOWN
    assert converted.params == {"jamjet_type": "quota_frozen", "quota": "q1"}


@pytest.mark.parametrize(
    "info",
    [
        {**FAILURE_INFO, "severity": "critical"},
        {**FAILURE_INFO, "retryable": "yes"},
        {**FAILURE_INFO, "failure": "timeout"},
        {**FAILURE_INFO, "failure": {"deadline_secs": 1}},
        {**FAILURE_INFO, "failure": {"type": "timeout", "x": float("nan")}},
        {**FAILURE_INFO, "timestamp": "15/03/2026"},
        {**FAILURE_INFO, "failure": {"type": "partial_completion", "completed_steps": 6,
                                     "total_steps": 5}},
        {**FAILURE_INFO, "failure": {"type": "partial_completion", "completed_steps": "3",
                                     "total_steps": 5}},
        "not an object",
    ],
)  # fmt: skip
def test_malformed_jamjet_input_is_refused(info: Any) -> None:
    with pytest.raises(RemoteProtocolError) as raised:
        convert(info)
    assert raised.value.code is ErrorCode.MALFORMED


def test_a_signal_needs_a_time() -> None:
    converted = convert_failure(UNREACHABLE)
    assert isinstance(converted, SignalFields)
    with pytest.raises(RemoteProtocolError):
        _signal(converted)
