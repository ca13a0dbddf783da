"""The abstract objects of the information model (draft §5).

These are values: frozen, slotted, keyword-only dataclasses that validate when
built, so an object that exists is well-formed (draft §5, §6.13). Messages
(``_messages.py``) are built from them; the rollback-set computation
(``_scope.py``) works on them.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias

from ._errors import ErrorCode, LocalProtocolError

__all__ = [
    "MAX_CHECKPOINT",
    "MAX_INTEGER",
    "MAX_PARAMS_DEPTH",
    "MAX_TIMESTAMP",
    "MIN_TIMESTAMP",
    "Action",
    "Dependency",
    "EffectState",
    "Escalation",
    "ExecRef",
    "Facts",
    "JSONValue",
    "Outcome",
    "Owner",
    "Progress",
    "Reason",
    "ReasonKind",
    "RecordResult",
    "Residual",
    "Reversibility",
    "Severity",
    "Status",
    "check_checkpoint",
    "check_identifier",
    "check_text",
    "check_timestamp",
    "check_token",
    "check_uint",
    "format_timestamp",
    "freeze_json",
    "freeze_object",
    "parse_timestamp",
]

# draft §5.1: identifiers are 1..255 printable US-ASCII characters, no space.
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,255}")
# draft §5.2: checkpoint sequence numbers stay inside the I-JSON exact-integer range.
MAX_CHECKPOINT = 2**53 - 1
# draft §5.1: timestamps are milliseconds since 1970-01-01T00:00:00Z, up to
# 9999-12-31T23:59:59.999Z (the last instant an RFC 3339 date-time can name).
MIN_TIMESTAMP = 0
MAX_TIMESTAMP = 253_402_300_799_999


# draft §6.13: I-JSON (RFC 7493 §2.1) strings cannot hold lone surrogates.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _is_text(value: object) -> bool:
    return isinstance(value, str) and (value.isascii() or _SURROGATE.search(value) is None)


def check_identifier(value: object, what: str) -> str:
    """Return ``value`` if it is a valid identifier (draft §5.1), else raise."""
    if not isinstance(value, str) or _IDENTIFIER.fullmatch(value) is None:
        raise LocalProtocolError(ErrorCode.MALFORMED, f"{what}: not a valid identifier")
    return value


def check_checkpoint(value: object, what: str) -> int:
    """Return ``value`` if it is a checkpoint sequence number (draft §5.2), else raise."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CHECKPOINT:
        raise LocalProtocolError(ErrorCode.MALFORMED, f"{what}: not a checkpoint number")
    return value


def check_timestamp(value: object, what: str) -> int:
    """Return ``value`` if it is a timestamp in milliseconds (draft §5.1), else raise."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_TIMESTAMP <= value <= MAX_TIMESTAMP
    ):
        raise LocalProtocolError(ErrorCode.MALFORMED, f"{what}: not a timestamp")
    return value


def _malformed(detail: str) -> LocalProtocolError:
    return LocalProtocolError(ErrorCode.MALFORMED, detail)


# draft §16: registry values are short lowercase tokens.
_TOKEN = re.compile(r"[a-z][a-z0-9-]{0,62}")


def check_token(value: object, what: str) -> str:
    """Return ``value`` if it has registry-value syntax (draft §16), else raise."""
    if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
        raise _malformed(f"{what}: not a registry token")
    return value


def check_text(value: object, what: str) -> str:
    """Return ``value`` if it is a string I-JSON can carry (draft §6.13), else raise."""
    # RFC 7493 §2.1 forbids lone surrogates: they cannot be encoded in UTF-8.
    if not isinstance(value, str) or not (value.isascii() or _SURROGATE.search(value) is None):
        raise _malformed(f"{what}: not a text string")
    return value


def check_uint(value: object, what: str) -> None:
    """Raise unless ``value`` is an integer in 0..2**53-1 (draft §6.13)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INTEGER:
        raise _malformed(f"{what}: not an unsigned integer")


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's
    # algorithm): plain arithmetic, so the core needs no date or clock module.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day


def _month_days(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _MONTH_DAYS[month - 1]


# draft §5.1: the form every conforming encoder emits; decoded without the
# general pattern's optional parts, since nearly every timestamp received has it.
_CANONICAL = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z"
)


@functools.lru_cache(maxsize=1024)
def _valid_day(year: int, month: int, day: int) -> int | None:
    # Days since the epoch for a valid date, else None. Cached per date: the
    # timestamps a party receives fall on few distinct days.
    if not 1 <= month <= 12 or not 1 <= day <= _month_days(year, month):
        return None
    return _days_from_civil(year, month, day)


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch for an RFC 3339 date-time, truncated to ms.

    Raises :class:`LocalProtocolError` (``malformed``). A leap second (``:60``)
    is folded into the last millisecond of its minute: the protocol orders
    events, it does not count SI seconds.
    """
    canonical = _CANONICAL.fullmatch(text)
    if canonical is not None:
        year, month, day, hour, minute, second, millis = map(int, canonical.groups())
        days = _valid_day(year, month, day)
        if days is not None and hour <= 23 and minute <= 59 and second <= 59:
            seconds = days * 86_400 + hour * 3600 + minute * 60 + second
            return check_timestamp(seconds * 1000 + millis, "timestamp")
    # Anything else (offsets, other fraction lengths, leap seconds, errors).
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise _malformed("timestamp: not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    fraction, sign, off_hour, off_minute = match.group(7, 8, 9, 10)
    millis = int((fraction + "00")[:3]) if fraction else 0
    if second == 60:
        second, millis = 59, 999
    if not 1 <= month <= 12 or not 1 <= day <= _month_days(year, month):
        raise _malformed("timestamp: no such date")
    if hour > 23 or minute > 59 or second > 59:
        raise _malformed("timestamp: bad time of day")
    offset = 0
    if sign is not None:
        if int(off_hour) > 23 or int(off_minute) > 59:
            raise _malformed("timestamp: bad offset")
        offset = (int(off_hour) * 60 + int(off_minute)) * (1 if sign == "+" else -1)
    days = _days_from_civil(year, month, day)
    seconds = days * 86_400 + hour * 3600 + (minute - offset) * 60 + second
    return check_timestamp(seconds * 1000 + millis, "timestamp")


def format_timestamp(millis: int) -> str:
    """The canonical form: UTC, ``Z``, exactly three fraction digits (draft §5.1)."""
    seconds, ms = divmod(millis, 1000)
    days, seconds = divmod(seconds, 86_400)
    year, month, day = _civil_from_days(days)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


# ---------------------------------------------------------------------------
# I-JSON values (draft §6.13)

JSONValue: TypeAlias = (
    "bool | int | float | str | tuple[JSONValue, ...] | Mapping[str, JSONValue] | None"
)

# draft §6.13: I-JSON (RFC 7493 §2.2) integers are exact only within +-(2**53 - 1).
MAX_INTEGER = 2**53 - 1
# draft §6.13: the whole message nests at most 32 arrays/objects deep; ``params``
# sits one level below the top-level object.
MAX_PARAMS_DEPTH = 31


def freeze_json(value: object, what: str = "params", depth: int = 0) -> JSONValue:
    """Return an immutable copy of an I-JSON value, or raise (draft §6.13).

    Objects become read-only mappings with sorted keys (so encoding is
    deterministic), arrays become tuples; integers must be exact in I-JSON,
    numbers finite, strings free of lone surrogates.
    """
    if depth > MAX_PARAMS_DEPTH:
        raise _malformed(f"{what}: nested too deeply")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise _malformed(f"{what}: integer outside the I-JSON range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _malformed(f"{what}: number is not finite")
        return value
    if isinstance(value, str):
        return check_text(value, what)
    if isinstance(value, (list, tuple)):
        return tuple(freeze_json(item, what, depth + 1) for item in value)
    if isinstance(value, Mapping):
        for key in value:
            check_text(key, what)
        items: dict[str, JSONValue] = {}
        for key in sorted(value):
            items[key] = freeze_json(value[key], what, depth + 1)
        return MappingProxyType(items)
    raise _malformed(f"{what}: not a JSON value")


def freeze_object(value: object, what: str = "params") -> Mapping[str, JSONValue]:
    """:func:`freeze_json` for a value that must be a JSON object."""
    if not isinstance(value, Mapping):
        raise _malformed(f"{what}: not an object")
    frozen = freeze_json(value, what)
    assert isinstance(frozen, Mapping)
    return frozen


class Status(enum.StrEnum):
    """Where an execution is in its own life (draft §5.2)."""

    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


class Reversibility(enum.StrEnum):
    """Declared when the execution starts, never at failure time (draft §5.2)."""

    RESTORABLE = "restorable"
    COMPENSABLE = "compensable"
    IRREVERSIBLE = "irreversible"


class Action(enum.StrEnum):
    """What the coordinator asks of a member of the rollback set (draft §7)."""

    CANCEL_RESTORE = "cancel-restore"
    RESTORE = "restore"
    COMPENSATE = "compensate"
    NONE = "none"  # irreversible: nothing can be undone, residual effects are disclosed
    # draft §7: facts missing, so no action can be chosen; only ever appears in a
    # recovery record (the result is then incomplete), never in a rollback request.
    UNDETERMINED = "undetermined"


class ReasonKind(enum.StrEnum):
    """Why an execution is a member of the rollback set (draft §7)."""

    ORIGIN = "origin"
    DIRECT = "direct"
    TRANSITIVE = "transitive"


class Outcome(enum.StrEnum):
    """Initial contents of the Member Outcomes registry (draft §8, §16)."""

    RESTORED = "restored"
    COMPENSATED = "compensated"
    IRREVERSIBLE = "irreversible"
    FAILED = "failed"
    REFUSED = "refused"
    NOT_NEEDED = "not-needed"
    UNKNOWN = "unknown"


class RecordResult(enum.StrEnum):
    """How a recovery ended, as stated in its recovery record (draft §11)."""

    COMPLETED = "completed"  # every member reached restored, compensated or not-needed
    PARTIAL = "partial"  # at least one irreversible, failed, refused or unknown outcome
    ESCALATED = "escalated"  # bounds exceeded or facts missing: handed to policy, not acted on
    REJECTED = "rejected"  # the trigger failed appraisal: everyone was resumed
    ABORTED = "aborted"  # ended by an operator


class Severity(enum.StrEnum):
    """How serious a failure is for the execution itself (draft §6.2)."""

    WARNING = "warning"
    ERROR = "error"
    FATAL = "fatal"


class EffectState(enum.StrEnum):
    """State of the failed step's external effects when it failed (draft §6.2)."""

    NONE = "none"
    PARTIAL = "partial"
    COMPLETE = "complete"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class ExecRef:
    """An execution reference: the agent that runs it and its id there (draft §5.2).

    Ordered by (agent, exec) so that every deterministic ordering in the
    protocol (waves, reasons, records) uses the same total order.
    """

    agent: str
    exec: str

    def __post_init__(self) -> None:
        check_identifier(self.agent, "agent")
        check_identifier(self.exec, "exec")


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Dependency:
    """Consumer used an output that producer made after its ``produced_after`` checkpoint.

    ``consumed_after`` is the consumer's latest checkpoint before it consumed
    that output, so restoring the consumer to it undoes the consumption
    (draft §5.4). Both parties learn the whole edge when the output is consumed.
    """

    consumer: ExecRef
    producer: ExecRef
    produced_after: int
    consumed_after: int

    def __post_init__(self) -> None:
        if not isinstance(self.consumer, ExecRef) or not isinstance(self.producer, ExecRef):
            raise LocalProtocolError(ErrorCode.MALFORMED, "dependency: not execution references")
        check_checkpoint(self.produced_after, "produced_after")
        check_checkpoint(self.consumed_after, "consumed_after")


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What a member reports about its execution when halted (draft §5.2)."""

    status: Status
    reversibility: Reversibility
    checkpoint: int
    domain: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, Status) or not isinstance(self.reversibility, Reversibility):
            raise LocalProtocolError(ErrorCode.MALFORMED, "facts: status or reversibility")
        check_checkpoint(self.checkpoint, "checkpoint")
        if self.domain is not None:
            check_identifier(self.domain, "domain")


@dataclass(frozen=True, slots=True, kw_only=True)
class Residual:
    """An effect that remains after a partial, irreversible or unknown outcome (draft §8.2)."""

    description: str
    resource: str | None = None

    def __post_init__(self) -> None:
        if not _is_text(self.description) or not self.description:
            raise LocalProtocolError(ErrorCode.MALFORMED, "residual: empty description")
        if self.resource is not None and not _is_text(self.resource):
            raise LocalProtocolError(ErrorCode.MALFORMED, "residual: resource is not text")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """Why a member is in the rollback set, with the edge that brought it in (draft §7)."""

    kind: ReasonKind
    via: Dependency | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ReasonKind) or not (
            self.via is None or isinstance(self.via, Dependency)
        ):
            raise LocalProtocolError(ErrorCode.MALFORMED, "reason: kind or edge")
        if (self.kind is ReasonKind.ORIGIN) != (self.via is None):
            raise LocalProtocolError(
                ErrorCode.MALFORMED, "reason: origin has no edge, other kinds need one"
            )


# ---------------------------------------------------------------------------
# Small values used inside messages (draft §6)


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """How much of the failed execution's work was done (draft §6.2)."""

    completed: int
    total: int

    def __post_init__(self) -> None:
        check_uint(self.completed, "progress.completed")
        check_uint(self.total, "progress.total")
        if self.completed > self.total:
            raise _malformed("progress: completed exceeds total")


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """The recovery that owns an execution, returned with ``busy`` (draft §8.5)."""

    recovery: str
    created: int

    def __post_init__(self) -> None:
        check_identifier(self.recovery, "owner.recovery")
        check_timestamp(self.created, "owner.created")


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalation:
    """Why a recovery was handed to policy, and the frontier not entered (draft §7)."""

    reason: str
    frontier: tuple[ExecRef, ...] = ()

    def __post_init__(self) -> None:
        check_text(self.reason, "escalation.reason")
        if not isinstance(self.frontier, tuple) or not all(
            isinstance(e, ExecRef) for e in self.frontier
        ):
            raise _malformed("escalation.frontier: not a tuple of execution references")
