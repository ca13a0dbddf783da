"""The JSON encoding of messages (draft §6.13): strict I-JSON in, canonical bytes out.

Inbound, :func:`decode` is the single point where bytes become a message. It
applies, in this order, and raises only :class:`RemoteProtocolError`:

1. size: at most :data:`MAX_MESSAGE_SIZE` octets before parsing (``too-large``);
2. I-JSON (RFC 8259, RFC 7493): UTF-8 without BOM, no duplicate member names,
   no lone surrogates, integers exact in IEEE 754 binary64, finite numbers,
   nesting at most :data:`MAX_DEPTH` deep (``malformed``; depth: ``too-large``);
3. the size limit of the message's ``type`` (:data:`SIZE_LIMITS`, ``too-large``);
4. version: ``"v": 1`` (``unsupported-version``) and a known ``type``;
5. shape: members, types, identifier and timestamp syntax (``malformed``);
6. the cross-member rules enforced when the message value is built.

Unknown members are ignored at every level; unknown registry values are kept
and acted on as their fallback (``_registry.py``).

Outbound, :func:`encode` is canonical: members in the order of :data:`SPECS`
(the draft's order), compact separators, UTF-8, optional members omitted when
absent or empty, timestamps in UTC with exactly three fraction digits. The same
message always gives the same bytes.

:data:`SPECS` is the single description of every message's JSON shape: the
codec walks it, and ``scripts/gen_schemas.py`` generates the JSON Schemas and
the draft's CDDL from it.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar

from ._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from ._messages import (
    MESSAGE_TYPES,
    Ack,
    Error,
    FailureSignal,
    Halt,
    Halted,
    Message,
    RecordMember,
    RecoveryRecord,
    Resume,
    Rollback,
    RollbackResult,
    Status,
    StatusQuery,
)
from ._model import (
    MAX_INTEGER,
    Action,
    Dependency,
    EffectState,
    Escalation,
    ExecRef,
    Facts,
    Owner,
    Progress,
    Reason,
    ReasonKind,
    RecordResult,
    Residual,
    Reversibility,
    Severity,
    format_timestamp,
    parse_timestamp,
)
from ._model import Status as ExecStatus

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "MAX_DEPTH",
    "MAX_MESSAGE_SIZE",
    "SIZE_LIMITS",
    "SPECS",
    "VERSION",
    "Choice",
    "ListOf",
    "Member",
    "MessageSpec",
    "Scalar",
    "Scope",
    "Struct",
    "decode",
    "encode",
    "format_timestamp",
    "parse",
    "parse_timestamp",
]

VERSION: Final = 1
_T = TypeVar("_T")

# draft §6.13 limits. Most messages are a few hundred octets; 64 KiB leaves room
# for detail text, params and a few hundred residual effects. A halted reply or
# a recovery record lists a whole neighbourhood or rollback set: 4 MiB holds
# 1,000 edges or members even with 255-character identifiers throughout.
DEFAULT_SIZE_LIMIT: Final = 64 * 1024
MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
SIZE_LIMITS: Final[Mapping[str, int]] = MappingProxyType(
    {
        **{name: DEFAULT_SIZE_LIMIT for name in MESSAGE_TYPES},
        Halted.TYPE: MAX_MESSAGE_SIZE,
        RecoveryRecord.TYPE: MAX_MESSAGE_SIZE,
    }
)
# draft §6.13: arrays and objects nest at most 32 deep (the top-level object is
# depth 1). The protocol's own shapes need 6; the rest is for ``params``.
MAX_DEPTH: Final = 32

# ---------------------------------------------------------------------------
# The shape of every message, as data


class Scalar(enum.Enum):
    """JSON leaf kinds, each with one syntax rule (draft §5.1, §6.13)."""

    ID = "id"  # identifier: 1..255 printable US-ASCII, no space
    UINT = "uint"  # integer 0..2**53-1
    TIMESTAMP = "timestamp"  # RFC 3339 date-time
    TEXT = "text"  # any string
    NONEMPTY_TEXT = "nonempty-text"
    BOOL = "bool"
    TOKEN = "token"  # registry value: [a-z][a-z0-9-]{0,62}, open set
    DIGEST = "digest"  # "" or unpadded base64url SHA-256
    OBJECT = "object"  # any JSON object


@dataclass(frozen=True, slots=True)
class Choice:
    """A closed set of string values: an enum, optionally minus some members."""

    name: str
    values: tuple[str, ...]
    cls: type[enum.StrEnum]


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Kind


@dataclass(frozen=True, slots=True)
class Member:
    """One JSON member: its name, the attribute it fills, its kind, and presence."""

    name: str
    attr: str
    kind: Kind
    required: bool = True


@dataclass(frozen=True, slots=True)
class Struct:
    """A JSON object that becomes one value class.

    ``name`` is its CDDL rule and JSON Schema definition name; it never equals a
    member name, so no CDDL bareword key can be mistaken for a rule reference.
    """

    name: str
    cls: type[Any]
    members: tuple[Member, ...]


Kind: TypeAlias = "Scalar | Choice | ListOf | Struct"


class Scope(enum.Enum):
    """Whether a message type carries ``recovery`` and ``trigger`` (draft §6.1)."""

    NONE = "none"  # failure-signal: it starts a recovery
    OPTIONAL = "optional"  # ack, error: both when answering within a recovery
    REQUIRED = "required"  # everything the coordinator and members exchange


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """A message type: its body follows the envelope members ``v``, ``type`` ... ``iat``."""

    name: str
    cls: type[Message]
    scope: Scope
    body: tuple[Member, ...]

    @property
    def members(self) -> tuple[Member, ...]:
        """Every member after ``v`` and ``type``, in encoding order."""
        if self.scope is Scope.NONE:
            return (*_ENVELOPE, *self.body)
        required = self.scope is Scope.REQUIRED
        scope = (
            Member("recovery", "recovery", Scalar.ID, required),
            Member("trigger", "trigger", Scalar.ID, required),
        )
        return (*_ENVELOPE, *scope, *self.body)


def _choice(cls: type[enum.StrEnum], name: str, *, without: tuple[str, ...] = ()) -> Choice:
    return Choice(name, tuple(m.value for m in cls if m.value not in without), cls)


_ENVELOPE = (
    Member("id", "id", Scalar.ID),
    Member("from", "sender", Scalar.ID),
    Member("to", "recipient", Scalar.ID),
    Member("iat", "iat", Scalar.TIMESTAMP),
)
_IN_RECOVERY = Scope.REQUIRED
_MAY_BE_IN_RECOVERY = Scope.OPTIONAL

EXEC_REF = Struct(
    "exec-ref",
    ExecRef,
    (Member("agent", "agent", Scalar.ID), Member("exec", "exec", Scalar.ID)),
)
DEPENDENCY = Struct(
    "dependency",
    Dependency,
    (
        Member("consumer", "consumer", EXEC_REF),
        Member("producer", "producer", EXEC_REF),
        Member("produced_after", "produced_after", Scalar.UINT),
        Member("consumed_after", "consumed_after", Scalar.UINT),
    ),
)
FACTS = Struct(
    "exec-facts",
    Facts,
    (
        Member("status", "status", _choice(ExecStatus, "exec-status")),
        Member("reversibility", "reversibility", _choice(Reversibility, "reversibility-class")),
        Member("checkpoint", "checkpoint", Scalar.UINT),
        Member("domain", "domain", Scalar.ID, False),
    ),
)
RESIDUAL = Struct(
    "residual-effect",
    Residual,
    (
        Member("description", "description", Scalar.NONEMPTY_TEXT),
        Member("resource", "resource", Scalar.TEXT, False),
    ),
)
REASON = Struct(
    "member-reason",
    Reason,
    (
        Member("kind", "kind", _choice(ReasonKind, "reason-kind")),
        Member("via", "via", DEPENDENCY, False),
    ),
)
PROGRESS = Struct(
    "step-progress",
    Progress,
    (Member("completed", "completed", Scalar.UINT), Member("total", "total", Scalar.UINT)),
)
OWNER = Struct(
    "recovery-owner",
    Owner,
    (Member("recovery", "recovery", Scalar.ID), Member("created", "created", Scalar.TIMESTAMP)),
)
ESCALATION = Struct(
    "escalation-info",
    Escalation,
    (
        Member("reason", "reason", Scalar.TEXT),
        Member("frontier", "frontier", ListOf(EXEC_REF)),
    ),
)
RECORD_MEMBER = Struct(
    "record-member",
    RecordMember,
    (
        Member("execution", "execution", EXEC_REF),
        Member("target", "target", Scalar.UINT),
        Member("action", "action", _choice(Action, "record-action")),
        Member("reason", "reason", REASON),
        Member("outcome", "outcome", Scalar.TOKEN, False),
        Member("checkpoint", "checkpoint", Scalar.UINT, False),
        Member("residual", "residual", ListOf(RESIDUAL)),
    ),
)

_EXECUTION = Member("execution", "execution", EXEC_REF)
_REPLY_TO = Member("reply_to", "reply_to", Scalar.ID)
_RESIDUALS = Member("residual", "residual", ListOf(RESIDUAL), False)
_DETAIL = Member("detail", "detail", Scalar.TEXT, False)

SPECS: Final[Mapping[str, MessageSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            MessageSpec(
                FailureSignal.TYPE,
                FailureSignal,
                Scope.NONE,
                (
                    _EXECUTION,
                    Member("failure_type", "failure_type", Scalar.TOKEN),
                    Member("severity", "severity", _choice(Severity, "severity-level")),
                    Member("retryable", "retryable", Scalar.BOOL),
                    Member("effect_state", "effect_state", _choice(EffectState, "effect-state")),
                    Member("checkpoint", "checkpoint", Scalar.UINT),
                    Member("cause", "cause", Scalar.ID, False),
                    Member("progress", "progress", PROGRESS, False),
                    Member("partial_output", "partial_output", Scalar.TEXT, False),
                    Member("retry_after", "retry_after", Scalar.UINT, False),
                    _DETAIL,
                    Member("params", "params", Scalar.OBJECT, False),
                    Member("evidence", "evidence", ListOf(Scalar.TEXT), False),
                    Member("resources", "resources", ListOf(Scalar.TEXT), False),
                    Member("recommended_action", "recommended_action", Scalar.TOKEN, False),
                ),
            ),
            MessageSpec(Ack.TYPE, Ack, _MAY_BE_IN_RECOVERY, (_REPLY_TO,)),
            MessageSpec(
                Error.TYPE,
                Error,
                _MAY_BE_IN_RECOVERY,
                (
                    _REPLY_TO,
                    Member("code", "code", Scalar.TOKEN),
                    _DETAIL,
                    Member("owner", "owner", OWNER, False),
                ),
            ),
            MessageSpec(
                Halt.TYPE,
                Halt,
                _IN_RECOVERY,
                (_EXECUTION, Member("created", "created", Scalar.TIMESTAMP)),
            ),
            MessageSpec(
                Halted.TYPE,
                Halted,
                _IN_RECOVERY,
                (
                    _REPLY_TO,
                    _EXECUTION,
                    Member("facts", "facts", FACTS),
                    Member("dependents", "dependents", ListOf(DEPENDENCY)),
                ),
            ),
            MessageSpec(
                Rollback.TYPE,
                Rollback,
                _IN_RECOVERY,
                (
                    _EXECUTION,
                    Member("target", "target", Scalar.UINT),
                    Member(
                        "action",
                        "action",
                        _choice(Action, "rollback-action", without=(Action.UNDETERMINED,)),
                    ),
                    Member("reason", "reason", REASON),
                ),
            ),
            MessageSpec(
                RollbackResult.TYPE,
                RollbackResult,
                _IN_RECOVERY,
                (
                    _REPLY_TO,
                    _EXECUTION,
                    Member("outcome", "outcome", Scalar.TOKEN),
                    Member("checkpoint", "checkpoint", Scalar.UINT),
                    Member("residual", "residual", ListOf(RESIDUAL)),
                    Member("code", "code", Scalar.TOKEN, False),
                    _DETAIL,
                ),
            ),
            MessageSpec(Resume.TYPE, Resume, _IN_RECOVERY, (_EXECUTION,)),
            MessageSpec(StatusQuery.TYPE, StatusQuery, _IN_RECOVERY, (_EXECUTION,)),
            MessageSpec(
                Status.TYPE,
                Status,
                _IN_RECOVERY,
                (
                    _REPLY_TO,
                    _EXECUTION,
                    Member("state", "state", Scalar.TOKEN),
                    Member("outcome", "outcome", Scalar.TOKEN, False),
                    Member("checkpoint", "checkpoint", Scalar.UINT, False),
                    _RESIDUALS,
                ),
            ),
            MessageSpec(
                RecoveryRecord.TYPE,
                RecoveryRecord,
                _IN_RECOVERY,
                (
                    Member("seq", "seq", Scalar.UINT),
                    Member("prev", "prev", Scalar.DIGEST),
                    Member("created", "created", Scalar.TIMESTAMP),
                    Member("closed", "closed", Scalar.TIMESTAMP),
                    Member("result", "result", _choice(RecordResult, "record-result")),
                    Member("members", "members", ListOf(RECORD_MEMBER)),
                    Member("supersedes", "supersedes", Scalar.ID, False),
                    Member("escalation", "escalation", ESCALATION, False),
                    Member("evidence", "evidence", ListOf(Scalar.TEXT), False),
                ),
            ),
        )
    }
)

_ENCODE_MEMBERS: Final = MappingProxyType({name: spec.members for name, spec in SPECS.items()})

# ---------------------------------------------------------------------------
# Encoding


def _dump(kind: Kind, value: Any) -> Any:
    if isinstance(kind, Struct):
        return _dump_members(kind.members, value, {})
    if isinstance(kind, ListOf):
        return [_dump(kind.item, item) for item in value]
    if kind is Scalar.TIMESTAMP:
        return format_timestamp(value)
    if isinstance(kind, Choice):
        return value.value
    return value


def _dump_members(members: tuple[Member, ...], value: Any, out: dict[str, Any]) -> dict[str, Any]:
    for member in members:
        item = getattr(value, member.attr)
        if item is None or (item == () and not member.required):
            continue
        out[member.name] = _dump(member.kind, item)
    return out


def _default(value: object) -> object:
    # ``params`` is held as read-only mappings (``freeze_json``); the encoder
    # sees them only here.
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def encode(message: Message) -> bytes:
    """The canonical encoding of ``message`` (draft §6.13).

    Raises :class:`LocalProtocolError` (``too-large``) if the result would
    exceed the limit for its type, so that whatever is sent can be received.
    """
    out = _dump_members(
        _ENCODE_MEMBERS[message.TYPE], message, {"v": VERSION, "type": message.TYPE}
    )
    data = json.dumps(
        out, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
    ).encode("utf-8")
    if len(data) > SIZE_LIMITS[message.TYPE]:
        raise LocalProtocolError(ErrorCode.TOO_LARGE, f"{message.TYPE}: {len(data)} octets")
    return data


# ---------------------------------------------------------------------------
# Decoding


def _malformed(detail: str) -> LocalProtocolError:
    return LocalProtocolError(ErrorCode.MALFORMED, detail)


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # RFC 7493 §2.3: member names MUST be unique.
        raise _malformed("duplicate member name")
    return obj


def _parse_int(text: str) -> int:
    # RFC 7493 §2.2: only integers in +-(2**53 - 1) are exact everywhere. The
    # length test keeps huge digit strings from being converted at all.
    if len(text) > 17:
        raise _malformed("integer outside the I-JSON range")
    value = int(text)
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise _malformed("integer outside the I-JSON range")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _malformed("number is not finite")
    return value


def _parse_constant(text: str) -> None:
    raise _malformed(f"{text} is not JSON")


# A lone surrogate can only arrive as a \u escape (strict UTF-8 decoding refuses
# encoded surrogates, and the parser joins escaped pairs); escapes are rare, so
# the full walk runs only when the raw text contains one in the surrogate range.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _walk(value: object, *, depth_limit: int, strings: bool) -> None:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > depth_limit:
                raise LocalProtocolError(ErrorCode.TOO_LARGE, "nested too deeply")
            for key, child in item.items():
                if strings and _SURROGATE.search(key):
                    raise _malformed("lone surrogate")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > depth_limit:
                raise LocalProtocolError(ErrorCode.TOO_LARGE, "nested too deeply")
            stack.extend((child, depth + 1) for child in item)
        elif strings and isinstance(item, str) and _SURROGATE.search(item):
            raise _malformed("lone surrogate")


# Decoding walks a plan compiled once from SPECS: per member (JSON name,
# attribute, required, converter), where ``None`` means "pass the raw value on":
# identifiers, integers, text, booleans and tokens are checked by the value
# classes themselves, exactly as for locally built messages.
_Convert: TypeAlias = "Callable[[Any, str], Any] | None"
_Plan: TypeAlias = "tuple[tuple[str, str, bool, _Convert], ...]"


def _build_members(plan: _Plan, obj: dict[str, Any], what: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name, attr, required, convert in plan:
        raw = obj.get(name)
        if raw is None:
            # No member is nullable: null is as wrong as a missing required member.
            if required or name in obj:
                raise _malformed(f"{what}.{name}: missing or null")
            continue
        kwargs[attr] = raw if convert is None else convert(raw, name)
    return kwargs


def _compile_plan(members: tuple[Member, ...]) -> _Plan:
    return tuple((m.name, m.attr, m.required, _compile(m.kind)) for m in members)


def _compile(kind: Kind) -> _Convert:
    if isinstance(kind, Struct):
        cls, plan = kind.cls, _compile_plan(kind.members)

        def struct(raw: Any, what: str) -> Any:
            if type(raw) is not dict:
                raise _malformed(f"{what}: not an object")
            return cls(**_build_members(plan, raw, what))

        return struct
    if isinstance(kind, ListOf):
        item = _compile(kind.item)

        def array(raw: Any, what: str) -> Any:
            if type(raw) is not list:
                raise _malformed(f"{what}: not an array")
            return tuple(raw) if item is None else tuple(item(x, what) for x in raw)

        return array
    if isinstance(kind, Choice):
        values = {value: kind.cls(value) for value in kind.values}

        def choice(raw: Any, what: str) -> Any:
            if type(raw) is not str or raw not in values:
                raise _malformed(f"{what}: not one of the defined values")
            return values[raw]

        return choice
    if kind is Scalar.TIMESTAMP:
        return _convert_timestamp
    if kind is Scalar.OBJECT:
        return _convert_object
    return None


def _convert_timestamp(raw: Any, what: str) -> int:
    if type(raw) is not str:
        raise _malformed(f"{what}: not a timestamp")
    return parse_timestamp(raw)


def _convert_object(raw: Any, what: str) -> Any:
    if type(raw) is not dict:
        raise _malformed(f"{what}: not an object")
    return raw


_PLANS: Final[Mapping[str, tuple[type[Message], _Plan]]] = MappingProxyType(
    {name: (spec.cls, _compile_plan(spec.members)) for name, spec in SPECS.items()}
)
_JSON = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
)


def _parse(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_MESSAGE_SIZE:
        raise LocalProtocolError(ErrorCode.TOO_LARGE, f"{len(data)} octets")
    text = data.decode("utf-8")  # strict: RFC 7493 §2.1
    obj = _JSON.decode(text)
    nesting = data.count(b"[") + data.count(b"{")
    escapes = _SURROGATE_ESCAPE.search(data) is not None
    if nesting > MAX_DEPTH or escapes:
        _walk(obj, depth_limit=MAX_DEPTH, strings=escapes)
    if type(obj) is not dict:
        raise _malformed("not a JSON object")
    kind = obj.get("type")
    if type(kind) is str and len(data) > SIZE_LIMITS.get(kind, MAX_MESSAGE_SIZE):
        raise LocalProtocolError(ErrorCode.TOO_LARGE, f"{kind}: {len(data)} octets")
    return obj


def _build_message(obj: dict[str, Any]) -> Message:
    version = obj.get("v")
    if type(version) is not int:
        raise _malformed("v: missing or not an integer")
    if version != VERSION:
        raise LocalProtocolError(ErrorCode.UNSUPPORTED_VERSION, f"v: {version}")
    kind = obj.get("type")
    if type(kind) is not str or kind not in _PLANS:
        raise _malformed("type: missing or unknown")
    cls, plan = _PLANS[kind]
    message: Message = cls(**_build_members(plan, obj, kind))
    return message


def parse(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Steps 1 and 2 of :func:`decode`: the I-JSON object, before any shape check.

    This is the strict parse that has to precede validation against the JSON
    Schemas or the CDDL, which cannot see duplicate names, bad UTF-8, lone
    surrogates or size (draft §6.13). Raises only :class:`RemoteProtocolError`.
    """
    return _inbound(_parse, data)


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Decode one message; raise only :class:`RemoteProtocolError` (draft §6.13, §10).

    Nothing else escapes: this is the single inbound point where every failure
    of the input, however deep, becomes a registry error code.
    """
    return _inbound(_decode, data)


def _decode(data: bytes) -> Message:
    return _build_message(_parse(data))


def _inbound(step: Callable[[bytes], _T], data: bytes | bytearray | memoryview) -> _T:
    try:
        return step(bytes(data))
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.code, exc.detail) from None
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError. Python's
        # parser recurses per nesting level, so absurd nesting ends here too.
        code = ErrorCode.TOO_LARGE if isinstance(exc, RecursionError) else ErrorCode.MALFORMED
        raise RemoteProtocolError(code, type(exc).__name__) from None
