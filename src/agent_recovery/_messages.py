"""Every protocol message, as a value that is well-formed because it exists (draft §6).

One frozen, slotted, keyword-only dataclass per message type; the same classes
are used for sending and receiving. Construction validates every member and the
cross-member rules of draft §6, raising :class:`LocalProtocolError` with
``ErrorCode.MALFORMED``; the codec (``_wire.py``) turns that into a
:class:`RemoteProtocolError` for inbound bytes.

Registry-valued members (failure type, recommended action, outcome, error code)
hold the raw string as sent, so a message carrying a value registered after
this implementation was written still round-trips and its signature stays
verifiable over the same bytes; the ``effective_*`` properties give the value
to act on, which falls back per the registry and is never a success
(``_registry.py``, draft §6.13).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, TypeAlias

from ._errors import ErrorCode, LocalProtocolError
from ._model import (
    MAX_INTEGER,
    MAX_PARAMS_DEPTH,
    Action,
    Dependency,
    EffectState,
    Escalation,
    ExecRef,
    Facts,
    JSONValue,
    Outcome,
    Owner,
    Progress,
    Reason,
    RecordResult,
    Residual,
    Severity,
    check_checkpoint,
    check_identifier,
    check_text,
    check_timestamp,
    check_token,
    check_uint,
    freeze_json,
    freeze_object,
)
from ._registry import (
    ERROR_CODES,
    FAILURE_TYPES,
    OUTCOMES,
    RECOMMENDED_ACTIONS,
    FailureType,
    RecommendedAction,
)

__all__ = [
    "MAX_INTEGER",
    "MAX_PARAMS_DEPTH",
    "MESSAGE_TYPES",
    "Ack",
    "Error",
    "Escalation",
    "FailureSignal",
    "Halt",
    "Halted",
    "JSONValue",
    "Message",
    "Owner",
    "Progress",
    "RecordMember",
    "RecoveryRecord",
    "Resume",
    "Rollback",
    "RollbackResult",
    "Status",
    "StatusQuery",
    "check_token",
    "freeze_json",
    "freeze_object",
]

# draft §6.13: a prev hash is the unpadded base64url SHA-256 digest (43 characters).
_DIGEST = re.compile(r"[A-Za-z0-9_-]{43}")
# draft §6.8: these outcomes leave effects behind, which must be disclosed;
# those that undid everything have none to disclose.
_MUST_DISCLOSE = frozenset({Outcome.IRREVERSIBLE, Outcome.FAILED, Outcome.UNKNOWN})
_NOTHING_REMAINS = frozenset({Outcome.RESTORED, Outcome.COMPENSATED, Outcome.NOT_NEEDED})
# draft §6.4: the codes that name the recovery owning an execution.
_OWNER_CODES = frozenset({ErrorCode.BUSY, ErrorCode.SUPERSEDED})


def _malformed(detail: str) -> LocalProtocolError:
    return LocalProtocolError(ErrorCode.MALFORMED, detail)


def _check_opt_text(value: object, what: str) -> None:
    if value is not None:
        check_text(value, what)


def _check_opt_identifier(value: object, what: str) -> None:
    if value is not None:
        check_identifier(value, what)


def _check_bool(value: object, what: str) -> None:
    if not isinstance(value, bool):
        raise _malformed(f"{what}: not a boolean")


def _check_instance(value: object, cls: type, what: str) -> None:
    if not isinstance(value, cls):
        raise _malformed(f"{what}: not a {cls.__name__}")


def _check_tuple(value: object, cls: type, what: str) -> None:
    if not isinstance(value, tuple):
        raise _malformed(f"{what}: not a tuple")
    for item in value:
        if not isinstance(item, cls):
            raise _malformed(f"{what}: item is not a {cls.__name__}")


def _check_texts(value: object, what: str) -> None:
    if not isinstance(value, tuple):
        raise _malformed(f"{what}: not a tuple")
    for item in value:
        check_text(item, what)


def _check_residual(outcome: str | None, residual: tuple[Residual, ...], what: str) -> None:
    # draft §6.8: a registered outcome that leaves effects behind discloses
    # them, one that undid everything has none. An unregistered outcome is acted
    # on as unknown, but its own specification defines its disclosure rule, so
    # it is not rejected here.
    if outcome in _MUST_DISCLOSE and not residual:
        raise _malformed(f"{what}: outcome {outcome} requires residual effects")
    if outcome in _NOTHING_REMAINS and residual:
        raise _malformed(f"{what}: outcome {outcome} leaves no residual effects")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMember:
    """One member of the rollback set as recorded (draft §11).

    ``outcome`` and ``checkpoint`` are absent for a member that was never asked
    to roll back (the recovery was escalated, rejected or aborted first).
    """

    execution: ExecRef
    target: int
    action: Action
    reason: Reason
    outcome: str | None = None
    checkpoint: int | None = None
    residual: tuple[Residual, ...] = ()

    def __post_init__(self) -> None:
        _check_instance(self.execution, ExecRef, "member.execution")
        check_checkpoint(self.target, "member.target")
        _check_instance(self.action, Action, "member.action")
        _check_instance(self.reason, Reason, "member.reason")
        _check_via(self.reason, self.execution, "member.reason")
        if self.outcome is not None:
            check_token(self.outcome, "member.outcome")
        if self.checkpoint is not None:
            check_checkpoint(self.checkpoint, "member.checkpoint")
        _check_tuple(self.residual, Residual, "member.residual")
        _check_residual(self.outcome, self.residual, "member")

    @property
    def effective_outcome(self) -> Outcome | None:
        """The outcome to act on: unregistered values count as ``unknown``."""
        return None if self.outcome is None else OUTCOMES.effective(self.outcome)


def _check_via(reason: Reason, execution: ExecRef, what: str) -> None:
    # draft §7: the edge that brought a member in has that member as its consumer.
    if reason.via is not None and reason.via.consumer != execution:
        raise _malformed(f"{what}: the edge's consumer is not this execution")


# ---------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    """Envelope members every message has (draft §6.1)."""

    TYPE: ClassVar[str]

    id: str
    """Message id, unique per sender: the key for replay detection (draft §9.3)."""
    sender: str
    """Agent id of the sender (JSON ``from``); the signature must be by its key."""
    recipient: str
    """Agent id of the intended recipient (JSON ``to``); anyone else refuses it."""
    iat: int
    """Issued-at, milliseconds since the epoch; checked against a freshness window."""

    def __post_init__(self) -> None:
        check_identifier(self.id, "id")
        check_identifier(self.sender, "from")
        check_identifier(self.recipient, "to")
        check_timestamp(self.iat, "iat")
        self._check()

    def _check(self) -> None:
        raise NotImplementedError


class _Scoped:
    """Checks for messages that belong to a recovery (draft §6.1)."""

    __slots__ = ()
    recovery: str | None
    trigger: str | None

    def _check_scope(self, required: bool) -> None:
        if required:
            check_identifier(self.recovery, "recovery")
            check_identifier(self.trigger, "trigger")
        else:
            # draft §6.1: a reply outside a recovery carries neither; inside, both.
            if (self.recovery is None) != (self.trigger is None):
                raise _malformed("recovery and trigger must be present together")
            _check_opt_identifier(self.recovery, "recovery")
            _check_opt_identifier(self.trigger, "trigger")


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureSignal(_Base):
    """An execution failed; sent by its agent to its recovery authority (draft §6.2).

    Mandatory members are exactly what a recovery authority needs to act safely
    without asking back; everything else is optional and may be ignored.

    Mandatory (draft §6.2):

    - the protocol version (``v`` on the wire): a receiver must know which rules
      the sender followed before it reads anything else.
    - ``id``, ``sender``, ``iat`` (envelope): the signal id is what every later
      message of the recovery names as its ``trigger``, and with the issuer and
      issue time it is what replay protection keys on.
    - ``recipient``: the recovery authority addressed; anyone else refuses the
      signal, so a captured signal cannot be redirected to another authority.
    - ``execution``: which execution failed. Without it there is no origin for
      the rollback set.
    - ``failure_type``: why, from the Failure Types registry, so a receiver can
      choose a policy mechanically instead of parsing text. Unregistered values
      are kept and acted on as ``unspecified`` (never as success).
    - ``severity``: whether recovery is requested at all (``warning``: no;
      ``error``: yes; ``fatal``: yes, and the agent will not go on itself).
    - ``retryable``: whether running the failed work again unchanged may succeed
      (a transient condition). It decides between retry and rollback.
    - ``effect_state``: what the failed step did to the outside world: ``none``,
      ``partial``, ``complete`` or ``unknown``. A coordinator cannot tell a
      harmless failure from one that left effects behind without it, and
      ``unknown`` forces the cautious path.
    - ``checkpoint``: the last good checkpoint; work after it is invalid. 0 means
      none: restart from the beginning. It is the origin's restore target and so
      the start of the rollback-set computation (draft §7).

    Optional (draft §6.2):

    - ``cause``: the id of an upstream failure signal that caused this one, so
      chains of failures are recognised as one incident and not recovered twice.
    - ``progress``: completed and total steps, for a partial effect state.
    - ``partial_output``: a reference to output produced before the failure;
      content never travels in the signal (size, privacy).
    - ``retry_after``: seconds before a retry makes sense; only with
      ``retryable``.
    - ``detail``: human-readable text for operators; never acted on.
    - ``params``: failure-type-specific members (e.g. a timeout's deadline).
    - ``evidence``: references to execution evidence or attestation results
      supporting the signal, used when the trigger is appraised (draft §9).
    - ``resources``: resources affected by the failure, to scope manual work.
    - ``recommended_action``: the agent's advice; the authority decides.
      Unregistered values are acted on as ``escalate``.
    """

    TYPE: ClassVar[str] = "failure-signal"
    # draft §6.1: a failure signal starts a recovery, so it belongs to none yet.
    recovery: ClassVar[None] = None
    trigger: ClassVar[None] = None

    execution: ExecRef
    failure_type: str
    severity: Severity
    retryable: bool
    effect_state: EffectState
    checkpoint: int
    cause: str | None = None
    progress: Progress | None = None
    partial_output: str | None = None
    retry_after: int | None = None
    detail: str | None = None
    params: Mapping[str, JSONValue] | None = field(default=None, hash=False)
    evidence: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    recommended_action: str | None = None

    def _check(self) -> None:
        _check_instance(self.execution, ExecRef, "execution")
        check_token(self.failure_type, "failure_type")
        _check_instance(self.severity, Severity, "severity")
        _check_bool(self.retryable, "retryable")
        _check_instance(self.effect_state, EffectState, "effect_state")
        check_checkpoint(self.checkpoint, "checkpoint")
        if self.cause is not None:
            check_identifier(self.cause, "cause")
            if self.cause == self.id:
                raise _malformed("cause: a signal cannot cause itself")
        if self.progress is not None:
            _check_instance(self.progress, Progress, "progress")
        _check_opt_text(self.partial_output, "partial_output")
        if self.retry_after is not None:
            check_uint(self.retry_after, "retry_after")
            if not self.retryable:
                raise _malformed("retry_after: only for a retryable failure")
        _check_opt_text(self.detail, "detail")
        if self.params is not None:
            object.__setattr__(self, "params", freeze_object(self.params))
        _check_texts(self.evidence, "evidence")
        _check_texts(self.resources, "resources")
        if self.recommended_action is not None:
            check_token(self.recommended_action, "recommended_action")

    @property
    def effective_failure_type(self) -> FailureType:
        """The failure type to act on: unregistered values count as ``unspecified``."""
        return FAILURE_TYPES.effective(self.failure_type)

    @property
    def effective_recommended_action(self) -> RecommendedAction | None:
        """The advice to act on: unregistered values count as ``escalate``."""
        if self.recommended_action is None:
            return None
        return RECOMMENDED_ACTIONS.effective(self.recommended_action)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(_Scoped, _Base):
    """The request was accepted (draft §6.3).

    Answering a failure signal, ``recovery`` and ``trigger`` name the recovery
    the authority opened for it (absent if it opened none, e.g. for a warning).
    """

    TYPE: ClassVar[str] = "ack"

    reply_to: str
    recovery: str | None = None
    trigger: str | None = None

    def _check(self) -> None:
        self._check_scope(required=False)
        check_identifier(self.reply_to, "reply_to")


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(_Scoped, _Base):
    """The request was refused and changed nothing (draft §6.4, §10)."""

    TYPE: ClassVar[str] = "error"

    reply_to: str
    code: str
    detail: str | None = None
    owner: Owner | None = None
    recovery: str | None = None
    trigger: str | None = None

    def _check(self) -> None:
        self._check_scope(required=False)
        check_identifier(self.reply_to, "reply_to")
        check_token(self.code, "code")
        _check_opt_text(self.detail, "detail")
        if self.owner is not None:
            _check_instance(self.owner, Owner, "owner")
        # draft §6.4: busy and superseded name the owning recovery; registered
        # codes other than these never do. An unregistered code's own
        # specification decides, so it is not rejected here.
        if self.code in _OWNER_CODES and self.owner is None:
            raise _malformed(f"owner: required with code {self.code}")
        if self.code in ERROR_CODES and self.code not in _OWNER_CODES and self.owner is not None:
            raise _malformed(f"owner: not with code {self.code}")

    @property
    def effective_code(self) -> ErrorCode:
        """The code to act on: unregistered codes count as ``internal``."""
        return ERROR_CODES.effective(self.code)

    @classmethod
    def refusing(
        cls,
        message: Message,
        *,
        id: str,
        sender: str,
        recipient: str,
        iat: int,
        code: ErrorCode,
        detail: str,
    ) -> Error:
        """The refusal of ``message``, in its recovery (draft §6.4).

        ``recipient`` is the authenticated sender of ``message``, which is not
        always the agent the message names in ``from``.
        """
        return cls(
            id=id,
            sender=sender,
            recipient=recipient,
            iat=iat,
            reply_to=message.id,
            code=code.value,
            detail=detail or None,
            recovery=message.recovery,
            trigger=message.trigger,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Halt(_Scoped, _Base):
    """Stop producing effects and forwarding outputs; keep state (draft §6.5, §8.1)."""

    TYPE: ClassVar[str] = "halt"

    recovery: str
    trigger: str
    execution: ExecRef
    created: int
    """The recovery's creation time: with its id, the takeover order (draft §8.5)."""

    def _check(self) -> None:
        self._check_scope(required=True)
        _check_instance(self.execution, ExecRef, "execution")
        # draft §6.5: a halt goes to the agent that runs the execution.
        if self.execution.agent != self.recipient:
            raise _malformed("execution: not run by the recipient")
        check_timestamp(self.created, "created")


@dataclass(frozen=True, slots=True, kw_only=True)
class Halted(_Scoped, _Base):
    """The execution is contained; its facts and known dependents (draft §6.6, §8.1)."""

    TYPE: ClassVar[str] = "halted"

    recovery: str
    trigger: str
    reply_to: str
    execution: ExecRef
    facts: Facts
    dependents: tuple[Dependency, ...] = ()

    def _check(self) -> None:
        self._check_scope(required=True)
        check_identifier(self.reply_to, "reply_to")
        _check_instance(self.execution, ExecRef, "execution")
        _check_instance(self.facts, Facts, "facts")
        _check_tuple(self.dependents, Dependency, "dependents")
        # draft §8.1: a member reports the edges it produced, which is all it knows.
        for edge in self.dependents:
            if edge.producer != self.execution:
                raise _malformed("dependents: producer is not this execution")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollback(_Scoped, _Base):
    """Undo this execution's work after ``target`` (draft §6.7, §8.2)."""

    TYPE: ClassVar[str] = "rollback"

    recovery: str
    trigger: str
    execution: ExecRef
    target: int
    action: Action
    reason: Reason

    def _check(self) -> None:
        self._check_scope(required=True)
        _check_instance(self.execution, ExecRef, "execution")
        check_checkpoint(self.target, "target")
        _check_instance(self.action, Action, "action")
        # draft §7: a member whose action is undetermined is escalated, never asked.
        if self.action is Action.UNDETERMINED:
            raise _malformed("action: undetermined is not a request")
        _check_instance(self.reason, Reason, "reason")
        _check_via(self.reason, self.execution, "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackResult(_Scoped, _Base):
    """The member's outcome, residual effects and where it now is (draft §6.8, §8.2)."""

    TYPE: ClassVar[str] = "rollback-result"

    recovery: str
    trigger: str
    reply_to: str
    execution: ExecRef
    outcome: str
    checkpoint: int
    residual: tuple[Residual, ...] = ()
    code: str | None = None
    detail: str | None = None

    def _check(self) -> None:
        self._check_scope(required=True)
        check_identifier(self.reply_to, "reply_to")
        _check_instance(self.execution, ExecRef, "execution")
        check_token(self.outcome, "outcome")
        check_checkpoint(self.checkpoint, "checkpoint")
        _check_tuple(self.residual, Residual, "residual")
        _check_residual(self.outcome, self.residual, "rollback-result")
        if self.code is not None:
            check_token(self.code, "code")
        # draft §6.8: a refusal says why, with a code from the error registry;
        # no other outcome carries one.
        if (self.code is not None) != (self.outcome == Outcome.REFUSED):
            raise _malformed("code: present exactly with outcome refused")
        _check_opt_text(self.detail, "detail")

    @property
    def effective_outcome(self) -> Outcome:
        """The outcome to act on: unregistered values count as ``unknown``."""
        return OUTCOMES.effective(self.outcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume(_Scoped, _Base):
    """Containment ends; the execution may continue (draft §6.9, §8.3)."""

    TYPE: ClassVar[str] = "resume"

    recovery: str
    trigger: str
    execution: ExecRef

    def _check(self) -> None:
        self._check_scope(required=True)
        _check_instance(self.execution, ExecRef, "execution")


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusQuery(_Scoped, _Base):
    """Ask a member where its execution is, e.g. after a timeout (draft §6.10, §8.4)."""

    TYPE: ClassVar[str] = "status-query"

    recovery: str
    trigger: str
    execution: ExecRef

    def _check(self) -> None:
        self._check_scope(required=True)
        _check_instance(self.execution, ExecRef, "execution")


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(_Scoped, _Base):
    """The member's state and, once final, its outcome (draft §6.11, §8.4)."""

    TYPE: ClassVar[str] = "status"

    recovery: str
    trigger: str
    reply_to: str
    execution: ExecRef
    state: str
    """The member state name of draft §8.6; unknown names are treated as unknown."""
    outcome: str | None = None
    checkpoint: int | None = None
    residual: tuple[Residual, ...] = ()

    def _check(self) -> None:
        self._check_scope(required=True)
        check_identifier(self.reply_to, "reply_to")
        _check_instance(self.execution, ExecRef, "execution")
        check_token(self.state, "state")
        if self.outcome is not None:
            check_token(self.outcome, "outcome")
        if self.checkpoint is not None:
            check_checkpoint(self.checkpoint, "checkpoint")
        _check_tuple(self.residual, Residual, "residual")
        _check_residual(self.outcome, self.residual, "status")

    @property
    def effective_outcome(self) -> Outcome | None:
        """The outcome to act on: unregistered values count as ``unknown``."""
        return None if self.outcome is None else OUTCOMES.effective(self.outcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryRecord(_Scoped, _Base):
    """The coordinator's signed account of one recovery (draft §11).

    ``prev`` chains the coordinator's records: the unpadded base64url SHA-256
    of the previous record's JWS bytes, or empty for the first record.
    """

    TYPE: ClassVar[str] = "recovery-record"

    recovery: str
    trigger: str
    seq: int
    prev: str
    created: int
    closed: int
    result: RecordResult
    members: tuple[RecordMember, ...] = ()
    supersedes: str | None = None
    escalation: Escalation | None = None
    evidence: tuple[str, ...] = ()

    def _check(self) -> None:
        self._check_scope(required=True)
        check_uint(self.seq, "seq")
        if not isinstance(self.prev, str) or (self.prev and not _DIGEST.fullmatch(self.prev)):
            raise _malformed("prev: not a base64url SHA-256 digest")
        # draft §11.1: the chain starts at seq 0, the only record without a prev.
        if (self.seq == 0) != (self.prev == ""):
            raise _malformed("prev: empty exactly for the first record (seq 0)")
        check_timestamp(self.created, "created")
        check_timestamp(self.closed, "closed")
        if self.closed < self.created:
            raise _malformed("closed: before created")
        _check_instance(self.result, RecordResult, "result")
        _check_tuple(self.members, RecordMember, "members")
        # draft §7: an execution is in a rollback set at most once.
        if len({m.execution for m in self.members}) != len(self.members):
            raise _malformed("members: an execution is listed twice")
        _check_opt_identifier(self.supersedes, "supersedes")
        if self.escalation is not None:
            _check_instance(self.escalation, Escalation, "escalation")
        # draft §11: an escalated record says why; no other record has an escalation.
        if (self.result is RecordResult.ESCALATED) != (self.escalation is not None):
            raise _malformed("escalation: present exactly when the result is escalated")
        _check_texts(self.evidence, "evidence")


Message: TypeAlias = (
    FailureSignal
    | Ack
    | Error
    | Halt
    | Halted
    | Rollback
    | RollbackResult
    | Resume
    | StatusQuery
    | Status
    | RecoveryRecord
)

MESSAGE_TYPES: Mapping[str, type[Message]] = MappingProxyType(
    {
        cls.TYPE: cls
        for cls in (
            FailureSignal,
            Ack,
            Error,
            Halt,
            Halted,
            Rollback,
            RollbackResult,
            Resume,
            StatusQuery,
            Status,
            RecoveryRecord,
        )
    }
)
