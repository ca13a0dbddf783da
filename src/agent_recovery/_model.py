"""The abstract objects of the information model (draft §5).

These are values: frozen, slotted, keyword-only dataclasses that validate when
built, so an object that exists is well-formed (draft §5, §6.x). Messages
(``_messages.py``) are built from them; the rollback-set computation
(``_scope.py``) works on them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ._errors import ErrorCode, LocalProtocolError

__all__ = [
    "MAX_CHECKPOINT",
    "Action",
    "Dependency",
    "EffectState",
    "ExecRef",
    "Facts",
    "Outcome",
    "Reason",
    "ReasonKind",
    "Residual",
    "Reversibility",
    "Severity",
    "Status",
    "check_checkpoint",
    "check_identifier",
]

# draft §5.1: identifiers are 1..255 printable US-ASCII characters, no space.
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,255}")
# draft §5.2: checkpoint sequence numbers stay inside the I-JSON exact-integer range.
MAX_CHECKPOINT = 2**53 - 1


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
        check_checkpoint(self.checkpoint, "checkpoint")
        if self.domain is not None:
            check_identifier(self.domain, "domain")


@dataclass(frozen=True, slots=True, kw_only=True)
class Residual:
    """An effect that remains after a partial, irreversible or unknown outcome (draft §8.2)."""

    description: str
    resource: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.description, str) or not self.description:
            raise LocalProtocolError(ErrorCode.MALFORMED, "residual: empty description")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """Why a member is in the rollback set, with the edge that brought it in (draft §7)."""

    kind: ReasonKind
    via: Dependency | None = None

    def __post_init__(self) -> None:
        if (self.kind is ReasonKind.ORIGIN) != (self.via is None):
            raise LocalProtocolError(
                ErrorCode.MALFORMED, "reason: origin has no edge, other kinds need one"
            )
