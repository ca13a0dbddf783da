"""The JSON codec (draft §6.13): timestamps, canonical form, limits, the inbound point."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_recovery._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from agent_recovery._messages import (
    FailureSignal,
    Halted,
    RecordMember,
    RecoveryRecord,
    Resume,
)
from agent_recovery._model import (
    MAX_TIMESTAMP,
    Action,
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Reason,
    ReasonKind,
    RecordResult,
    Residual,
    Reversibility,
    Severity,
)
from agent_recovery._model import Status as ExecStatus
from agent_recovery._registry import FailureType
from agent_recovery._wire import (
    DEFAULT_SIZE_LIMIT,
    MAX_DEPTH,
    MAX_MESSAGE_SIZE,
    SIZE_LIMITS,
    SPECS,
    decode,
    encode,
    format_timestamp,
    parse,
    parse_timestamp,
)

CONF = ExecRef(agent="spiffe://ops.example/configurator", exec="exec-7f3a")
ENV: dict[str, Any] = {
    "id": "sig-4e21",
    "sender": "spiffe://ops.example/configurator",
    "recipient": "spiffe://ops.example/orchestrator",
    "iat": 1_795_456_801_512,
}
SCOPE: dict[str, Any] = {"recovery": "rcv-0b5d", "trigger": "sig-4e21"}


def signal(**changes: Any) -> FailureSignal:
    fields: dict[str, Any] = {
        **ENV,
        "execution": CONF,
        "failure_type": "verification-failed",
        "severity": Severity.ERROR,
        "retryable": False,
        "effect_state": EffectState.PARTIAL,
        "checkpoint": 2,
    }
    return FailureSignal(**{**fields, **changes})


def remote(code: ErrorCode) -> Any:
    return pytest.raises(RemoteProtocolError, match=f"^{code.value}")


# ---------------------------------------------------------------------------
# Timestamps (draft §5.1)


@pytest.mark.parametrize(
    "text,millis",
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.000Z", 0),
        ("2026-11-23T18:00:01.512Z", 1_795_456_801_512),
        ("2026-11-23t18:00:01.512z", 1_795_456_801_512),
        ("2026-11-23T20:00:01.512999999+02:00", 1_795_456_801_512),  # truncated, not rounded
        ("2026-11-23T12:30:01.5-05:30", 1_795_456_801_500),
        ("2016-12-31T23:59:60Z", 1_483_228_799_999),  # leap second folded into the minute
        ("9999-12-31T23:59:59.999Z", MAX_TIMESTAMP),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
    ],
)
def test_parse_timestamp(text: str, millis: int) -> None:
    assert parse_timestamp(text) == millis


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T18:00:01.512",  # no offset
        "2026-11-23 18:00:01Z",
        "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T18:60:00Z",
        "2026-11-23T18:00:61Z",
        "2026-11-23T18:00:00+24:00",
        "2026-11-23T18:00:00+01:60",
        "2026-11-23T18:00:00.Z",
        "2026-11-23T18:00:00.1234567890Z",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:30:00+01:00",  # before the epoch once converted to UTC
        "0000-01-01T00:00:00Z",
        "2026-11-23T18:00:00Z ",
        "\uff12\uff10\uff12\uff16-11-23T18:00:00Z",  # fullwidth digits
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(LocalProtocolError, match="malformed"):
        parse_timestamp(text)


@given(st.integers(0, MAX_TIMESTAMP))
def test_timestamp_canonical_form_round_trips(millis: int) -> None:
    text = format_timestamp(millis)
    assert len(text) == 24 and text.endswith("Z") and text[19] == "."
    assert parse_timestamp(text) == millis


# ---------------------------------------------------------------------------
# Canonical encoding


def test_encoding_is_compact_ordered_and_omits_absent_members() -> None:
    data = encode(signal(detail="Prüfung ✓", evidence=()))
    text = data.decode("utf-8")
    assert text.startswith('{"v":1,"type":"failure-signal","id":"sig-4e21","from":')
    assert "Prüfung ✓" in text  # UTF-8, not \u escapes
    assert " " not in text.replace("Prüfung ✓", "")
    obj = json.loads(data)
    assert "evidence" not in obj and "cause" not in obj and "recovery" not in obj
    order = [m.name for m in SPECS["failure-signal"].members]
    present = [k for k in obj if k not in ("v", "type")]
    assert present == [name for name in order if name in obj]


def test_required_empty_arrays_are_sent() -> None:
    facts = Facts(status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0)
    halted = Halted(**ENV, **SCOPE, reply_to="m", execution=CONF, facts=facts)
    assert json.loads(encode(halted))["dependents"] == []


def test_unregistered_values_survive_a_round_trip() -> None:
    data = encode(signal(failure_type="quorum-lost"))
    message = decode(data)
    assert isinstance(message, FailureSignal)
    assert message.failure_type == "quorum-lost"
    assert message.effective_failure_type is FailureType.UNSPECIFIED
    assert encode(message) == data


def test_unknown_members_are_ignored_at_every_level() -> None:
    obj = json.loads(encode(signal()))
    obj["x-future"] = {"anything": [1, 2]}
    obj["execution"]["shard"] = 3
    assert decode(json.dumps(obj).encode()) == signal()


def test_decode_accepts_any_bytes_like() -> None:
    data = encode(signal())
    assert decode(bytearray(data)) == decode(memoryview(data)) == signal()


# ---------------------------------------------------------------------------
# Limits (draft §6.13)


def test_size_limits() -> None:
    assert SIZE_LIMITS["halted"] == SIZE_LIMITS["recovery-record"] == MAX_MESSAGE_SIZE
    assert SIZE_LIMITS["failure-signal"] == DEFAULT_SIZE_LIMIT == 64 * 1024
    base = len(encode(signal(detail="")))
    at_limit = signal(detail="x" * (DEFAULT_SIZE_LIMIT - base))
    data = encode(at_limit)
    assert len(data) == DEFAULT_SIZE_LIMIT and decode(data) == at_limit
    with pytest.raises(LocalProtocolError, match="too-large"):
        encode(signal(detail="x" * (DEFAULT_SIZE_LIMIT - base + 1)))
    with remote(ErrorCode.TOO_LARGE):
        decode(data[:-1] + b' ,"x":1}')  # one more member, over the limit
    with remote(ErrorCode.TOO_LARGE):
        decode(b" " * (MAX_MESSAGE_SIZE + 1))


def _long_id(tag: str) -> str:
    return (tag + "-" + "x" * 255)[:255]


def test_a_thousand_members_with_longest_identifiers_fit() -> None:
    """draft §6.13: a record or halted reply naming 1,000 executions is not refused."""
    executions = [ExecRef(agent=_long_id(f"a{i}"), exec=_long_id(f"e{i}")) for i in range(1001)]
    edges = [
        Dependency(consumer=executions[i + 1], producer=executions[0], produced_after=2**40,
                   consumed_after=2**40)
        for i in range(1000)
    ]  # fmt: skip
    members = tuple(
        RecordMember(
            execution=edge.consumer,
            target=edge.consumed_after,
            action=Action.RESTORE,
            reason=Reason(kind=ReasonKind.TRANSITIVE, via=edge),
            outcome="irreversible",
            checkpoint=edge.consumed_after,
            residual=(Residual(description="a notice was sent", resource="mailing:7731"),),
        )
        for edge in edges
    )
    long_env = {**ENV, "id": _long_id("i"), "sender": _long_id("s"), "recipient": _long_id("r")}
    record = RecoveryRecord(
        **long_env, **SCOPE, seq=0, prev="", created=1, closed=2,
        result=RecordResult.PARTIAL, members=members,
    )  # fmt: skip
    data = encode(record)
    assert len(data) < MAX_MESSAGE_SIZE
    assert decode(data) == record
    facts = Facts(
        status=ExecStatus.COMPLETED, reversibility=Reversibility.COMPENSABLE, checkpoint=9
    )
    halted = Halted(
        **long_env, **SCOPE, reply_to=_long_id("m"), execution=executions[0], facts=facts,
        dependents=tuple(edges),
    )  # fmt: skip
    assert decode(encode(halted)) == halted


def _nested(depth: int) -> bytes:
    # The message object is depth 1, params depth 2, then arrays.
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    obj = json.loads(encode(signal()))
    obj["params"] = {"deep": json.loads(inner) if depth > 2 else None}
    return json.dumps(obj).encode()


def test_nesting_limit() -> None:
    assert decode(_nested(MAX_DEPTH)).params is not None  # type: ignore[union-attr]
    with remote(ErrorCode.TOO_LARGE):
        decode(_nested(MAX_DEPTH + 1))
    with remote(ErrorCode.TOO_LARGE):
        decode(b"[" * 200_000)  # the parser's own recursion limit, well before ours
    with remote(ErrorCode.TOO_LARGE):
        decode(b'{"x":' * 100 + b"1" + b"}" * 100)


# ---------------------------------------------------------------------------
# The inbound point: only RemoteProtocolError, with a registry code


@pytest.mark.parametrize(
    "data,code",
    [
        (b"", ErrorCode.MALFORMED),
        (b"\xff", ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ack","x":' + b"9" * 5000 + b"}", ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ack","x":1e999999}', ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ack","x":-Infinity}', ErrorCode.MALFORMED),
        (b'{"v":true,"type":"ack"}', ErrorCode.MALFORMED),
        (b'{"v":1.0,"type":"ack"}', ErrorCode.MALFORMED),
        (b'{"v":0,"type":"ack"}', ErrorCode.UNSUPPORTED_VERSION),
        (b'{"v":1,"type":["ack"]}', ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ack"}', ErrorCode.MALFORMED),
        (b'"just a string"', ErrorCode.MALFORMED),
        (b'{"v":1,"type":"ack","id":"\\ud83d"}', ErrorCode.MALFORMED),
    ],
)
def test_decode_errors_carry_registry_codes(data: bytes, code: ErrorCode) -> None:
    with remote(code):
        decode(data)


def test_wrong_kinds_of_values_are_malformed_not_crashes() -> None:
    good = json.loads(encode(Resume(**ENV, **SCOPE, execution=CONF)))
    for member in good:
        if member in ("v", "type"):
            continue
        for value in [None, 1, -1, 1.5, True, "", "x y", [], {}, [1], {"agent": 1}]:
            data = json.dumps({**good, member: value}).encode()
            try:
                decode(data)
            except RemoteProtocolError as exc:
                assert exc.code is ErrorCode.MALFORMED


def test_parse_is_the_strict_step_before_schema_validation() -> None:
    assert parse(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    with remote(ErrorCode.MALFORMED):
        parse(b'{"a":1,"a":1}')
    with remote(ErrorCode.TOO_LARGE):
        parse(json.dumps({"type": "ack", "pad": "x" * DEFAULT_SIZE_LIMIT}).encode())
    # Size of an unknown type is bounded by the overall limit only.
    assert parse(json.dumps({"type": "?", "pad": "x" * DEFAULT_SIZE_LIMIT}).encode())
