"""The inbound pipeline (draft §9) around real engines, operator override, and caps."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agent_recovery._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from agent_recovery._messages import Ack, Error, RollbackResult
from agent_recovery._model import EffectState, ExecRef, Residual, Severity
from agent_recovery._participant import Participant
from agent_recovery._state import RecoveryState
from agent_recovery._wire import decode, encode
from agent_recovery.security.endpoint import Accepted, Endpoint, InboundError, jws_size_limit
from agent_recovery.security.events import EventKind, EventLog, SecurityEvent
from agent_recovery.security.jws import Verifier
from agent_recovery.security.keys import b64url_decode
from agent_recovery.security.override import (
    OVERRIDE_JWS_TYPE,
    Override,
    OverrideAction,
    decode_override,
    encode_override,
    sign_override,
)
from agent_recovery.security.ratelimit import RecoveryCap

ATTACKS = Path(__file__).resolve().parents[1] / "conformance" / "attacks"


def _world_module() -> ModuleType:
    if "world" in sys.modules:
        return sys.modules["world"]
    sys.path.insert(0, str(ATTACKS))
    spec = importlib.util.spec_from_file_location("world", ATTACKS / "world.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["world"] = module
    spec.loader.exec_module(module)
    return module


w = _world_module()


def _payload(data: bytes) -> bytes:
    return b64url_decode(data.split(b".")[1])


def test_a_recovery_runs_entirely_over_signed_verified_messages() -> None:
    world = w.fixture_closed()
    assert world.refusals == []
    coordinator = world.engines[w.ORCHESTRATOR]
    (recovery,) = coordinator.recoveries()
    assert coordinator.recovery_state(recovery) is RecoveryState.CLOSED
    verifier = Verifier(world.keys)
    for sent in world.sent:
        verified = verifier.verify(sent.data)
        assert verified.owner == sent.message.sender
        assert decode(verified.payload) == sent.message
    for agent, log in world.logs.items():
        assert log.count(code=None) == 0, agent
    assert len(world.endpoints[w.DEPLOYER].replay) > 0


def test_a_late_reply_becomes_the_cached_reply() -> None:
    # The deployer acknowledged the rollback at once and sent its result later;
    # a retransmitted rollback must get the result, not the acknowledgement.
    world = w.fixture_closed()
    rollback = world.last("rollback", recipient=w.DEPLOYER)
    entry = world.endpoints[w.DEPLOYER].replay.snapshot(world.now)[
        (w.ORCHESTRATOR, rollback.message.id)
    ]
    assert entry.reply is not None
    result = decode(_payload(entry.reply))
    assert isinstance(result, RollbackResult) and result.reply_to == rollback.message.id


def test_endpoint_signs_only_for_its_own_agent() -> None:
    with pytest.raises(LocalProtocolError):
        Endpoint(
            agent=w.DEPLOYER,
            engine=Participant(agent=w.DEPLOYER),
            signer=w.signer(w.MONITOR),
            resolver=w.new_world().keys,
        )
    world = w.new_world()
    ack = Ack(id="a-1", sender=w.MONITOR, recipient=w.DEPLOYER, iat=w.T0, reply_to="x")
    with pytest.raises(LocalProtocolError):
        world.endpoints[w.DEPLOYER].sign(ack)


def test_answers_are_never_answered() -> None:
    world = w.new_world()
    now = w.T0 + w.STEP
    stray = Error(
        id="e-1",
        sender=w.INTRUDER,
        recipient=w.ORCHESTRATOR,
        iat=now,
        reply_to="c-1",
        code="internal",
    )
    outcome = world.deliver(w.ORCHESTRATOR, w.signer(w.INTRUDER).sign(encode(stray)), now)
    assert isinstance(outcome, Accepted) and outcome.reply is None
    # A refused error gets no error back either (no loops), though its sender is known.
    misaddressed = Error(
        id="e-2",
        sender=w.INTRUDER,
        recipient=w.MONITOR,
        iat=now,
        reply_to="c-1",
        code="internal",
    )
    refused = world.deliver(w.ORCHESTRATOR, w.signer(w.INTRUDER).sign(encode(misaddressed)), now)
    assert isinstance(refused, InboundError)
    assert refused.code is ErrorCode.WRONG_RECIPIENT and refused.reply is None
    assert refused.agent == w.INTRUDER


def test_events_name_only_authenticated_agents() -> None:
    world = w.new_world()
    now = w.T0 + w.STEP
    world.deliver(w.ORCHESTRATOR, b"not a jws", now)
    forged = w.signer(w.INTRUDER).sign(encode(_signal(now)))  # claims to be the deployer
    world.deliver(w.ORCHESTRATOR, forged, now)
    unsigned, impersonation = list(world.logs[w.ORCHESTRATOR])
    assert unsigned.agent is None and unsigned.code is ErrorCode.UNSIGNED
    assert impersonation.agent == w.INTRUDER and impersonation.code is ErrorCode.UNAUTHORIZED
    assert impersonation.message_id == "sig-x"


def _signal(now: int, execution: ExecRef | None = None, severity: Severity = Severity.ERROR):  # type: ignore[no-untyped-def]
    from agent_recovery._messages import FailureSignal

    return FailureSignal(
        id="sig-x",
        sender=w.DEPLOYER,
        recipient=w.ORCHESTRATOR,
        iat=now,
        execution=execution or w.DEPLOY,
        failure_type="timeout",
        severity=severity,
        retryable=False,
        effect_state=EffectState.NONE,
        checkpoint=0,
    )


def test_recovery_cap_refuses_new_recoveries_and_changes_nothing() -> None:
    world = w.fixture_restoring()  # one recovery running
    endpoint = world.endpoints[w.ORCHESTRATOR]
    cap = RecoveryCap(world.engines[w.ORCHESTRATOR], max_active=1)
    endpoint.admission = (cap,)
    now = world.now + w.STEP
    before = world.state(w.ORCHESTRATOR, now)
    data = w.signer(w.DEPLOYER).sign(encode(_signal(now, w.SPARES[0])))
    outcome = world.deliver(w.ORCHESTRATOR, data, now)
    assert isinstance(outcome, InboundError) and outcome.code is ErrorCode.OVERLOADED
    assert outcome.reply is None  # resource refusals cost no signature (draft §13.4)
    assert world.state(w.ORCHESTRATOR, now) == before
    # A warning opens no recovery, so it is not capped.
    warning = _signal(now, w.SPARES[0], Severity.WARNING)
    assert isinstance(
        world.deliver(w.ORCHESTRATOR, w.signer(w.DEPLOYER).sign(encode(warning)), now), Accepted
    )
    assert cap.active() == 1
    with pytest.raises(ValueError):
        RecoveryCap(world.engines[w.ORCHESTRATOR], max_active=0)


def _abort(now: int, recovery: str, **over: object) -> Override:
    fields: dict[str, object] = {
        "id": "ov-1",
        "operator": w.OPERATOR,
        "coordinator": w.ORCHESTRATOR,
        "iat": now,
        "action": OverrideAction.ABORT,
        "recovery": recovery,
        "reason": "change window closed",
    }
    fields.update(over)
    return Override(**fields)  # type: ignore[arg-type]


def test_operator_abort_is_applied_once_and_recorded() -> None:
    world = w.fixture_restoring()
    now = world.now + w.STEP
    coordinator = world.engines[w.ORCHESTRATOR]
    (recovery,) = coordinator.recoveries()
    operator = w.signer(w.OPERATOR, typ=OVERRIDE_JWS_TYPE)
    data = sign_override(operator, _abort(now, recovery))
    applied = world.override.receive(data, now)
    assert applied.action is OverrideAction.ABORT
    assert coordinator.recovery_state(recovery) is RecoveryState.ABORTED
    # draft §8.7: the record of the overridden recovery refers to the instruction.
    (record,) = [r for r in coordinator.records() if r.recovery == recovery]
    reference = "override:sha-256:" + hashlib.sha256(data).hexdigest()
    assert record.result.value == "aborted" and reference in record.evidence
    event = list(world.logs[w.ORCHESTRATOR])[-1]
    assert (event.kind, event.agent, event.detail) == (
        EventKind.OVERRIDE,
        w.OPERATOR,
        "change window closed",
    )
    # An exact duplicate is not applied again (and is not an error).
    before = world.state(w.ORCHESTRATOR, now)
    assert world.override.receive(data, now) == applied
    assert world.state(w.ORCHESTRATOR, now) == before
    world.pump(now)  # members are resumed
    assert world.engines[w.DEPLOYER].owner_of(w.DEPLOY) is None


@pytest.mark.parametrize(
    "action",
    [
        # draft §8.7: this coordinator does not offer releasing a member ...
        OverrideAction.RELEASE,
        # ... and sets an outcome only for a member whose outcome is in doubt:
        # watch is rolling back, its outcome is not unknown.
        OverrideAction.FORCE_OUTCOME,
    ],
)
def test_overrides_that_do_not_apply_are_refused_and_recorded(action: OverrideAction) -> None:
    world = w.fixture_restoring()
    now = world.now + w.STEP
    (recovery,) = world.engines[w.ORCHESTRATOR].recoveries()
    operator = w.signer(w.OPERATOR, typ=OVERRIDE_JWS_TYPE)
    forcing = action is OverrideAction.FORCE_OUTCOME
    override = _abort(
        now,
        recovery,
        action=action,
        execution=w.WATCH,
        outcome="failed" if forcing else None,
        residual=(Residual(description="config left half-applied"),) if forcing else (),
    )
    before = world.state(w.ORCHESTRATOR, now)
    with pytest.raises(RemoteProtocolError) as info:
        world.override.receive(sign_override(operator, override), now)
    assert info.value.code is ErrorCode.INVALID_STATE
    assert list(world.logs[w.ORCHESTRATOR])[-1].kind is EventKind.OVERRIDE_REFUSED
    assert world.state(w.ORCHESTRATOR, now) == before


def test_operator_policy_decides_per_action() -> None:
    world = w.fixture_restoring()
    now = world.now + w.STEP
    (recovery,) = world.engines[w.ORCHESTRATOR].recoveries()
    world.override.policy = lambda operator, action, rec: action is not OverrideAction.ABORT
    data = sign_override(w.signer(w.OPERATOR, typ=OVERRIDE_JWS_TYPE), _abort(now, recovery))
    with pytest.raises(RemoteProtocolError) as info:
        world.override.receive(data, now)
    assert info.value.code is ErrorCode.UNAUTHORIZED


def test_override_signing_needs_an_operator_signer() -> None:
    override = _abort(w.T0, "c-1")
    with pytest.raises(LocalProtocolError):
        sign_override(w.signer(w.OPERATOR), override)  # typed as a message
    with pytest.raises(LocalProtocolError):
        sign_override(w.signer(w.ORCHESTRATOR, typ=OVERRIDE_JWS_TYPE), override)


def test_override_round_trip_and_validation() -> None:
    full = _abort(
        w.T0,
        "c-1",
        action=OverrideAction.FORCE_OUTCOME,
        execution=w.WATCH,
        outcome="failed",
        residual=(Residual(description="d", resource="r"),),
    )
    assert decode_override(encode_override(full)) == full
    release = _abort(w.T0, "c-1", action=OverrideAction.RELEASE, execution=w.WATCH)
    assert decode_override(encode_override(release)) == release
    for bad in (
        {"reason": ""},
        {"execution": w.WATCH},  # abort names no execution
        {"action": OverrideAction.RELEASE},  # release needs one
        {"outcome": "failed"},
        {"residual": (Residual(description="d"),)},
        {"action": "abort"},
    ):
        with pytest.raises(LocalProtocolError):
            _abort(w.T0, "c-1", **bad)


@pytest.mark.parametrize(
    "data",
    [
        b"{",
        b"[]",
        b'{"v":1,"type":"override","v":1}',
        b'{"v":2,"type":"override"}',
        b'{"v":1,"type":"override","iat":1}',
        b'{"v":1,"type":"override","iat":"2026-11-23T18:00:00Z","action":"nuke"}',
        b'{"v":1,"type":"override","iat":"2026-11-23T18:00:00Z","action":"abort","residual":1}',
        b'{"v":1,"type":"override","iat":"2026-11-23T18:00:00Z","action":"release",'
        b'"id":"o","from":"a","to":"b","recovery":"r","reason":"x","execution":[]}',
    ],
)
def test_malformed_overrides(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_override(data)
    assert info.value.code is ErrorCode.MALFORMED


def test_event_log_is_bounded() -> None:
    log = EventLog(max_events=3, max_agents=2)
    for i in range(5):
        log(
            SecurityEvent(
                at=i,
                kind=EventKind.REFUSED,
                code=ErrorCode.STALE,
                detail="",
                digest="",
                agent=f"a{i}",
            )
        )
    assert len(log) == 3 and log.total == 5
    assert [e.at for e in log] == [2, 3, 4]
    assert log.count(code=ErrorCode.STALE) == 5
    assert log.count(agent="a0") == 1 and log.count(agent="a4") == 0  # folded past the bound


def test_jws_size_limit_covers_the_largest_message() -> None:
    assert jws_size_limit(3) == 4 + 2048
    assert jws_size_limit(4 * 1024 * 1024) > 4 * 1024 * 1024 * 4 // 3
