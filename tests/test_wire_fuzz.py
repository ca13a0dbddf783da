"""Properties of the codec (draft §6.13), checked with Hypothesis.

- ``decode(encode(m)) == m`` for generated messages of every type, including
  unregistered registry values, unknown-free params and maximum-size values;
- ``encode`` is deterministic and canonical: re-encoding gives the same bytes;
- decoding arbitrary bytes, arbitrary JSON texts, and valid messages with one
  member replaced or removed raises nothing but ``RemoteProtocolError``.

The default run uses the ``ci`` profile (200 examples per property). The long
run, at least 100,000 examples per property::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_wire_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery._messages import (
    MAX_INTEGER,
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
)
from agent_recovery._model import (
    MAX_TIMESTAMP,
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
from agent_recovery._wire import SPECS, decode, encode

# ---------------------------------------------------------------------------
# Strategies for every value of the information model

PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
ids = st.text(alphabet=PRINTABLE, min_size=1, max_size=255)
uints = st.one_of(st.integers(0, 20), st.integers(0, MAX_INTEGER))
times = st.integers(0, MAX_TIMESTAMP)
# Any Unicode scalar value: surrogates cannot be encoded and are refused.
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
LOWER = "abcdefghijklmnopqrstuvwxyz"
BASE64URL = LOWER + LOWER.upper() + "0123456789-_"
tokens = st.builds(
    str.__add__, st.sampled_from(LOWER), st.text(alphabet=LOWER + "0123456789-", max_size=62)
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_INTEGER, MAX_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)

exec_refs = st.builds(ExecRef, agent=ids, exec=ids)
residuals = st.builds(Residual, description=texts.filter(bool), resource=st.none() | texts)
optional_ids = st.none() | ids


def dependencies(consumer: Any = exec_refs, producer: Any = exec_refs) -> Any:
    return st.builds(
        Dependency, consumer=consumer, producer=producer, produced_after=uints, consumed_after=uints
    )


def reasons(execution: ExecRef) -> Any:
    via = dependencies(consumer=st.just(execution))
    return st.one_of(
        st.just(Reason(kind=ReasonKind.ORIGIN)),
        st.builds(
            Reason, kind=st.sampled_from([ReasonKind.DIRECT, ReasonKind.TRANSITIVE]), via=via
        ),
    )


def outcomes_with_residual(draw: Any, *, optional: bool) -> tuple[str | None, tuple[Residual, ...]]:
    choices = [*(o.value for o in Outcome)]
    outcome = draw(st.sampled_from(choices) | tokens)
    if optional and draw(st.booleans()):
        outcome = None
    residual = tuple(draw(st.lists(residuals, max_size=3)))
    if outcome in {"irreversible", "failed", "unknown"} and not residual:
        residual = (draw(residuals),)
    if outcome in {"restored", "compensated", "not-needed"}:
        residual = ()
    return outcome, residual


@st.composite
def envelopes(draw: Any, *, scoped: bool | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": draw(ids),
        "sender": draw(ids),
        "recipient": draw(ids),
        "iat": draw(times),
    }
    if scoped or (scoped is None and draw(st.booleans())):
        fields["recovery"] = draw(ids)
        fields["trigger"] = draw(ids)
    return fields


@st.composite
def failure_signals(draw: Any) -> FailureSignal:
    env = draw(envelopes(scoped=False))
    retryable = draw(st.booleans())
    completed = draw(uints)
    return FailureSignal(
        **env,
        execution=draw(exec_refs),
        failure_type=draw(st.sampled_from([t.value for t in FailureType]) | tokens),
        severity=draw(st.sampled_from(Severity)),
        retryable=retryable,
        effect_state=draw(st.sampled_from(EffectState)),
        checkpoint=draw(uints),
        cause=draw(optional_ids.filter(lambda c: c != env["id"])),
        progress=draw(
            st.none()
            | st.builds(
                Progress, completed=st.just(completed), total=st.integers(completed, MAX_INTEGER)
            )
        ),
        partial_output=draw(st.none() | texts),
        retry_after=draw(st.none() | uints) if retryable else None,
        detail=draw(st.none() | texts),
        params=draw(st.none() | st.dictionaries(texts, json_values, max_size=4)),
        evidence=tuple(draw(st.lists(texts, max_size=3))),
        resources=tuple(draw(st.lists(texts, max_size=3))),
        recommended_action=draw(
            st.none() | st.sampled_from([a.value for a in RecommendedAction]) | tokens
        ),
    )


@st.composite
def errors(draw: Any) -> Error:
    code = draw(st.sampled_from(["busy", "superseded", "malformed", "invalid-state"]) | tokens)
    owners = st.builds(Owner, recovery=ids, created=times)
    if code in ("busy", "superseded"):
        owner = draw(owners)
    elif code in {c.value for c in ErrorCode}:
        owner = None
    else:
        owner = draw(st.none() | owners)
    return Error(
        **draw(envelopes(scoped=None)),
        reply_to=draw(ids),
        code=code,
        detail=draw(st.none() | texts),
        owner=owner,
    )


@st.composite
def halteds(draw: Any) -> Halted:
    execution = draw(exec_refs)
    return Halted(
        **draw(envelopes(scoped=True)),
        reply_to=draw(ids),
        execution=execution,
        facts=draw(
            st.builds(
                Facts,
                status=st.sampled_from(ExecStatus),
                reversibility=st.sampled_from(Reversibility),
                checkpoint=uints,
                domain=optional_ids,
            )
        ),
        dependents=tuple(draw(st.lists(dependencies(producer=st.just(execution)), max_size=4))),
    )


@st.composite
def rollbacks(draw: Any) -> Rollback:
    execution = draw(exec_refs)
    return Rollback(
        **draw(envelopes(scoped=True)),
        execution=execution,
        target=draw(uints),
        action=draw(st.sampled_from([a for a in Action if a is not Action.UNDETERMINED])),
        reason=draw(reasons(execution)),
    )


@st.composite
def rollback_results(draw: Any) -> RollbackResult:
    outcome, residual = outcomes_with_residual(draw, optional=False)
    assert outcome is not None
    code = draw(tokens) if outcome == "refused" else None
    return RollbackResult(
        **draw(envelopes(scoped=True)),
        reply_to=draw(ids),
        execution=draw(exec_refs),
        outcome=outcome,
        checkpoint=draw(uints),
        residual=residual,
        code=code,
        detail=draw(st.none() | texts),
    )


@st.composite
def statuses(draw: Any) -> Status:
    outcome, residual = outcomes_with_residual(draw, optional=True)
    return Status(
        **draw(envelopes(scoped=True)),
        reply_to=draw(ids),
        execution=draw(exec_refs),
        state=draw(tokens),
        outcome=outcome,
        checkpoint=draw(st.none() | uints),
        residual=residual,
    )


@st.composite
def record_members(draw: Any, execution: ExecRef) -> RecordMember:
    outcome, residual = outcomes_with_residual(draw, optional=True)
    return RecordMember(
        execution=execution,
        target=draw(uints),
        action=draw(st.sampled_from(Action)),
        reason=draw(reasons(execution)),
        outcome=outcome,
        checkpoint=draw(st.none() | uints),
        residual=residual,
    )


@st.composite
def records(draw: Any) -> RecoveryRecord:
    executions = draw(st.lists(exec_refs, max_size=4, unique=True))
    created = draw(times)
    result = draw(st.sampled_from(RecordResult))
    escalation = None
    if result is RecordResult.ESCALATED:
        escalation = Escalation(
            reason=draw(texts), frontier=tuple(draw(st.lists(exec_refs, max_size=3)))
        )
    seq = draw(uints)
    return RecoveryRecord(
        **draw(envelopes(scoped=True)),
        seq=seq,
        prev="" if seq == 0 else draw(st.text(alphabet=BASE64URL, min_size=43, max_size=43)),
        created=created,
        closed=draw(st.integers(created, MAX_TIMESTAMP)),
        result=result,
        members=tuple(draw(record_members(e)) for e in executions),
        supersedes=draw(optional_ids),
        escalation=escalation,
        evidence=tuple(draw(st.lists(texts, max_size=3))),
    )


def _scoped_execution(cls: type[Halt] | type[Resume] | type[StatusQuery]) -> Any:
    extra = {"created": times} if cls is Halt else {}

    def build(env: dict[str, Any], execution: ExecRef, **kw: Any) -> Any:
        if cls is Halt:  # draft §6.5: addressed to the execution's agent
            env = {**env, "recipient": execution.agent}
        return cls(**env, execution=execution, **kw)

    return st.builds(build, envelopes(scoped=True), exec_refs, **extra)


messages: st.SearchStrategy[Message] = st.one_of(
    failure_signals(),
    st.builds(lambda env, reply_to: Ack(**env, reply_to=reply_to), envelopes(scoped=None), ids),
    errors(),
    _scoped_execution(Halt),
    halteds(),
    rollbacks(),
    rollback_results(),
    _scoped_execution(Resume),
    _scoped_execution(StatusQuery),
    statuses(),
    records(),
)

# ---------------------------------------------------------------------------
# Properties


@given(messages)
def test_decode_inverts_encode(message: Message) -> None:
    data = encode(message)
    decoded = decode(data)
    assert decoded == message
    assert type(decoded) is type(message)
    assert encode(decoded) == data  # canonical: one message, one encoding


@st.composite
def damaged_bytes(draw: Any) -> bytes:
    """A valid encoding with a few octets overwritten, inserted or removed."""
    data = bytearray(encode(draw(messages)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        byte = draw(st.integers(0, 255) | st.sampled_from(b'{}[]",:\\0-e.'))
        operation = draw(st.sampled_from(["set", "insert", "delete"]))
        if operation == "insert" or at == len(data):
            data.insert(at, byte)
        elif operation == "set":
            data[at] = byte
        else:
            del data[at]
    return bytes(data)


@given(st.binary(max_size=512) | damaged_bytes())
def test_arbitrary_bytes_raise_only_the_typed_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        decode(data)


MEMBER_NAMES = sorted({m.name for spec in SPECS.values() for m in spec.members})
message_like = st.fixed_dictionaries(
    {"v": st.just(1) | json_values, "type": st.sampled_from(sorted(SPECS)) | json_values},
    optional={
        name: json_values | ids | exec_refs.map(lambda e: {"agent": e.agent, "exec": e.exec})
        for name in MEMBER_NAMES
    },
)


@given(json_values | message_like)
def test_arbitrary_json_raises_only_the_typed_error(value: Any) -> None:
    with contextlib.suppress(RemoteProtocolError):
        decode(json.dumps(value).encode())


@given(messages, st.data())
def test_damaged_messages_raise_only_the_typed_error(message: Message, data: st.DataObject) -> None:
    obj = json.loads(encode(message))
    path: list[Any] = []
    target: Any = obj
    # Walk down a random path, then replace or delete what is there.
    while isinstance(target, (dict, list)) and target and data.draw(st.booleans()):
        key = data.draw(
            st.sampled_from(sorted(target) if isinstance(target, dict) else range(len(target)))
        )
        path.append(key)
        parent, target = target, target[key]
    if not path:
        obj[data.draw(texts)] = data.draw(json_values)
    elif data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    try:
        result = decode(json.dumps(obj, ensure_ascii=data.draw(st.booleans())).encode())
    except RemoteProtocolError:
        return
    # Whatever is accepted re-encodes and decodes to itself.
    assert decode(encode(result)) == result
