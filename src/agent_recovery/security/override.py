"""Operator override: its own credential, its own replay rule, always recorded (draft §8.7).

An override is not a protocol message. It is a management command an
operator sends to a coordinator to end a recovery (``abort``), to set a
member's outcome after manual repair (``force-outcome``), or to end a member's
containment (``release``). It is a compact JWS, like a message, but:

- it is signed with an *operator* key, resolved from a key set that holds no
  agent keys, and typed ``agent-recovery-override+jws``, so no agent key and no
  protocol message can ever be taken for an override (nor the reverse);
- an :data:`OperatorPolicy` decides per operator, action and recovery;
- it has its own replay cache (same rule as draft §9.3);
- every override, applied or refused, produces a security event, and the
  coordinator records applied ones in its recovery record (result
  ``aborted``, or outcomes marked as set by an operator).

JSON shape (members in this order; unknown members ignored)::

    {"v": 1, "type": "override", "id": id, "from": operator id,
     "to": coordinator agent id, "iat": timestamp,
     "action": "abort" / "force-outcome" / "release",
     "recovery": id, ? "execution": ExecRef,      ; execution: not for abort
     ? "outcome": outcome, ? "residual": [Residual], ; force-outcome only
     "reason": text}                                 ; why, for the record
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .._errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from .._messages import check_token
from .._model import ExecRef, Residual, check_identifier
from .._wire import format_timestamp, parse_timestamp
from .events import EventKind, EventSink, SecurityEvent
from .jws import Signer, Verifier
from .keys import KeyResolver
from .replay import ReplayCache

__all__ = [
    "MAX_OVERRIDE_SIZE",
    "OVERRIDE_JWS_TYPE",
    "OperatorPolicy",
    "Override",
    "OverrideAction",
    "OverrideEndpoint",
    "OverrideTarget",
    "allow_all_operators",
    "decode_override",
    "encode_override",
    "sign_override",
]

OVERRIDE_JWS_TYPE: Final = "agent-recovery-override+jws"
MAX_OVERRIDE_SIZE: Final = 64 * 1024
_REASON_MAX: Final = 4096


class OverrideAction(enum.StrEnum):
    ABORT = "abort"  # end the recovery: nothing further is restored; members resumed
    FORCE_OUTCOME = "force-outcome"  # set one member's outcome (e.g. an unknown, repaired)
    RELEASE = "release"  # end one member's containment without waiting for the recovery


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """One operator command, validated when built."""

    id: str
    operator: str
    coordinator: str
    iat: int
    action: OverrideAction
    recovery: str
    reason: str
    execution: ExecRef | None = None
    outcome: str | None = None
    residual: tuple[Residual, ...] = ()

    def __post_init__(self) -> None:
        check_identifier(self.id, "id")
        check_identifier(self.operator, "from")
        check_identifier(self.coordinator, "to")
        check_identifier(self.recovery, "recovery")
        if not isinstance(self.action, OverrideAction):
            raise LocalProtocolError(ErrorCode.MALFORMED, "action: not an override action")
        if not isinstance(self.reason, str) or not 0 < len(self.reason) <= _REASON_MAX:
            raise LocalProtocolError(ErrorCode.MALFORMED, "reason: required text")
        needs_execution = self.action is not OverrideAction.ABORT
        if (self.execution is not None) != needs_execution:
            raise LocalProtocolError(
                ErrorCode.MALFORMED,
                f"execution: {'required' if needs_execution else 'not'} for {self.action}",
            )
        forcing = self.action is OverrideAction.FORCE_OUTCOME
        if (self.outcome is not None) != forcing:
            raise LocalProtocolError(ErrorCode.MALFORMED, "outcome: exactly with force-outcome")
        if self.outcome is not None:
            check_token(self.outcome, "outcome")
        if self.residual and not forcing:
            raise LocalProtocolError(ErrorCode.MALFORMED, "residual: only with force-outcome")
        if not all(isinstance(r, Residual) for r in self.residual):
            raise LocalProtocolError(ErrorCode.MALFORMED, "residual: not residual effects")


def encode_override(override: Override) -> bytes:
    out: dict[str, Any] = {
        "v": 1,
        "type": "override",
        "id": override.id,
        "from": override.operator,
        "to": override.coordinator,
        "iat": format_timestamp(override.iat),
        "action": override.action.value,
        "recovery": override.recovery,
    }
    if override.execution is not None:
        out["execution"] = {"agent": override.execution.agent, "exec": override.execution.exec}
    if override.outcome is not None:
        out["outcome"] = override.outcome
    if override.residual:
        out["residual"] = [
            {"description": r.description, **({"resource": r.resource} if r.resource else {})}
            for r in override.residual
        ]
    out["reason"] = override.reason
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise LocalProtocolError(ErrorCode.MALFORMED, "duplicate member")
    return result


def decode_override(data: bytes) -> Override:
    """Parse an override command; raise only :class:`RemoteProtocolError`."""
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_pairs)
        if type(obj) is not dict or obj.get("v") != 1 or obj.get("type") != "override":
            raise LocalProtocolError(ErrorCode.MALFORMED, "not an override command")
        execution = obj.get("execution")
        residual = obj.get("residual", [])
        if type(residual) is not list:
            raise LocalProtocolError(ErrorCode.MALFORMED, "residual: not an array")
        iat = obj.get("iat")
        if type(iat) is not str:
            raise LocalProtocolError(ErrorCode.MALFORMED, "iat: not a timestamp")
        return Override(
            id=obj.get("id"),  # type: ignore[arg-type]  # checked when built
            operator=obj.get("from"),  # type: ignore[arg-type]
            coordinator=obj.get("to"),  # type: ignore[arg-type]
            iat=parse_timestamp(iat),
            action=OverrideAction(str(obj.get("action"))),
            recovery=obj.get("recovery"),  # type: ignore[arg-type]
            reason=obj.get("reason"),  # type: ignore[arg-type]
            execution=None if execution is None else ExecRef(**_struct(execution)),
            outcome=obj.get("outcome"),
            residual=tuple(Residual(**_struct(r)) for r in residual),
        )
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.code, exc.detail) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise RemoteProtocolError(ErrorCode.MALFORMED, type(exc).__name__) from None


def _struct(raw: object) -> dict[str, Any]:
    if type(raw) is not dict:
        raise LocalProtocolError(ErrorCode.MALFORMED, "not an object")
    return raw


class OverrideTarget(Protocol):
    """What a coordinator engine offers operators (draft §8.7).

    ``abort`` is required. ``force_outcome(recovery, execution, outcome,
    residual, now, evidence=...)`` and ``release(recovery, execution, now)``
    are used when the engine has them; otherwise those overrides are refused
    (``invalid-state``). Each raises :class:`ProtocolError` and changes
    nothing if the override does not apply (unknown recovery, state).
    ``evidence`` is the reference to the instruction that the recovery's
    records list (draft §8.7).
    """

    def abort(self, recovery: str, now: int, *, evidence: str | None = None) -> None: ...


OperatorPolicy = Callable[[str, OverrideAction, str], bool]
"""(operator id, action, recovery id) -> allowed. The key set says who is an operator."""


def allow_all_operators(operator: str, action: OverrideAction, recovery: str) -> bool:
    """Every key in the operator key set may perform every override."""
    return True


class OverrideEndpoint:
    """Verifies, authorizes, replay-checks, applies and records operator overrides."""

    __slots__ = ("agent", "events", "policy", "replay", "target", "verifier")

    def __init__(
        self,
        *,
        agent: str,
        target: OverrideTarget,
        operators: KeyResolver,
        events: EventSink,
        policy: OperatorPolicy = allow_all_operators,
        replay: ReplayCache | None = None,
    ) -> None:
        self.agent = agent
        self.target = target
        self.verifier = Verifier(operators, typ=OVERRIDE_JWS_TYPE)
        self.events = events  # required: an override is always recorded
        self.policy = policy
        self.replay = replay if replay is not None else ReplayCache()

    def receive(self, data: bytes, now: int) -> Override:
        """Apply one override, or raise :class:`RemoteProtocolError` having changed nothing.

        An exact duplicate of an applied override is not applied again; it
        returns the override (idempotent).
        """
        override: Override | None = None
        operator: str | None = None
        kid: str | None = None
        try:
            if len(data) > MAX_OVERRIDE_SIZE:
                raise RemoteProtocolError(ErrorCode.TOO_LARGE, f"{len(data)} octets")
            verified = self.verifier.verify(data)
            kid = verified.kid
            override = decode_override(verified.payload)
            operator = verified.owner
            if verified.owner != override.operator:
                raise RemoteProtocolError(ErrorCode.UNAUTHORIZED, "key is another operator's")
            if override.coordinator != self.agent:
                raise RemoteProtocolError(ErrorCode.WRONG_RECIPIENT, "for another coordinator")
            if not self.policy(override.operator, override.action, override.recovery):
                raise RemoteProtocolError(
                    ErrorCode.UNAUTHORIZED, f"{override.operator!r} may not {override.action}"
                )
            duplicate = self.replay.check(
                sender=override.operator,
                message_id=override.id,
                iat=override.iat,
                recovery=override.recovery,
                data=verified.payload,
                now=now,
            )
            if duplicate is not None:
                return override
            self._apply(override, _reference(data), now)
        except ProtocolError as exc:
            code = exc.code
            self._record(
                data=data,
                now=now,
                kind=EventKind.OVERRIDE_REFUSED,
                code=code,
                detail=exc.detail,
                override=override,
                operator=operator,
                kid=kid,
            )
            raise RemoteProtocolError(code, exc.detail) from None
        self.replay.commit(
            sender=override.operator,
            message_id=override.id,
            iat=override.iat,
            recovery=override.recovery,
            data=verified.payload,
            reply=None,
            now=now,
        )
        self._record(
            data=data,
            now=now,
            kind=EventKind.OVERRIDE,
            code=None,
            detail=override.reason,
            override=override,
            operator=operator,
            kid=kid,
        )
        return override

    def _apply(self, override: Override, reference: str, now: int) -> None:
        # draft §8.7: the record of an overridden recovery refers to the instruction.
        if override.action is OverrideAction.ABORT:
            self.target.abort(override.recovery, now, evidence=reference)
            return
        name = "release" if override.action is OverrideAction.RELEASE else "force_outcome"
        method = getattr(self.target, name, None)
        if method is None:
            raise RemoteProtocolError(
                ErrorCode.INVALID_STATE, f"{override.action} is not offered by this coordinator"
            )
        if override.action is OverrideAction.RELEASE:
            method(override.recovery, override.execution, now)
        else:
            method(
                override.recovery,
                override.execution,
                override.outcome,
                override.residual,
                now,
                evidence=reference,
            )

    def _record(
        self,
        *,
        data: bytes,
        now: int,
        kind: EventKind,
        code: ErrorCode | None,
        detail: str,
        override: Override | None,
        operator: str | None,
        kid: str | None,
    ) -> None:
        self.events(
            SecurityEvent(
                at=now,
                kind=kind,
                code=code,
                detail=detail,
                digest=hashlib.sha256(data).hexdigest(),
                agent=operator,
                kid=kid,
                message_id=override.id if override is not None else None,
                message_type=f"override:{override.action}" if override is not None else None,
                recovery=override.recovery if override is not None else None,
            )
        )


def _reference(data: bytes) -> str:
    """How a record refers to an operator instruction: the SHA-256 of its JWS octets.

    The security event of the override carries the same digest, so the two can
    be matched; the instruction itself is kept by whoever keeps those events.
    """
    return "override:sha-256:" + hashlib.sha256(data).hexdigest()


def sign_override(signer: Signer, override: Override) -> bytes:
    """Sign an override with an operator key (a signer made with :data:`OVERRIDE_JWS_TYPE`)."""
    if signer.typ != OVERRIDE_JWS_TYPE:
        raise LocalProtocolError(ErrorCode.ALG_NOT_ALLOWED, "not an operator signer")
    if signer.owner != override.operator:
        raise LocalProtocolError(ErrorCode.UNAUTHORIZED, "key is another operator's")
    return signer.sign(encode_override(override))
