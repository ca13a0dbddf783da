"""Typed errors carrying codes from the draft's error registry (draft §10).

Two families, as in h11 and h2: a :class:`LocalProtocolError` means *this* side
tried something the protocol forbids (a bug in the caller); a
:class:`RemoteProtocolError` means the peer sent something we refuse. Only the
remote family is translated into an ``error`` reply, and only at the single
inbound point of each engine or binding.
"""

from __future__ import annotations

import enum

__all__ = [
    "ErrorCode",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]


class ErrorCode(enum.StrEnum):
    """The initial contents of the Agent Recovery Error Codes registry (draft §16)."""

    # Encoding (draft §6.x)
    MALFORMED = "malformed"
    TOO_LARGE = "too-large"
    UNSUPPORTED_VERSION = "unsupported-version"
    # Message protection (draft §9.1)
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    ALG_NOT_ALLOWED = "alg-not-allowed"
    # Authorization (draft §9.2)
    UNAUTHORIZED = "unauthorized"
    WRONG_RECIPIENT = "wrong-recipient"
    # Replay (draft §9.3)
    REPLAY = "replay"
    STALE = "stale"
    CONFLICT = "conflict"
    WRONG_RECOVERY = "wrong-recovery"
    # Procedure (draft §8)
    UNKNOWN_RECOVERY = "unknown-recovery"
    UNKNOWN_EXECUTION = "unknown-execution"
    INVALID_STATE = "invalid-state"
    BUSY = "busy"
    SUPERSEDED = "superseded"
    # Resource protection (draft §13.4)
    RATE_LIMITED = "rate-limited"
    SCOPE_EXCEEDED = "scope-exceeded"
    OVERLOADED = "overloaded"
    INTERNAL = "internal"

    @property
    def description(self) -> str:
        """The registry's one-line definition of this code (draft §10)."""
        return _DESCRIPTIONS[self]

    @property
    def type_uri(self) -> str:
        """The RFC 9457 problem type URI for this code (draft §12.2)."""
        return f"urn:ietf:params:agent-recovery:error:{self.value}"


_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.MALFORMED: "The message is not well-formed JSON or violates the encoding rules.",
    ErrorCode.TOO_LARGE: "The message exceeds a size, length or nesting limit.",
    ErrorCode.UNSUPPORTED_VERSION: "The protocol version is not supported.",
    ErrorCode.UNSIGNED: "The message is not protected by a signature.",
    ErrorCode.BAD_SIGNATURE: "The signature does not verify.",
    ErrorCode.UNKNOWN_KEY: "The signing key is not known to the receiver.",
    ErrorCode.ALG_NOT_ALLOWED: "The signature algorithm is not allowed.",
    ErrorCode.UNAUTHORIZED: "The sender is not authorized to send this message.",
    ErrorCode.WRONG_RECIPIENT: "The message is addressed to another agent.",
    ErrorCode.REPLAY: "The message was already processed.",
    ErrorCode.STALE: "The issued-at time is outside the freshness window.",
    ErrorCode.CONFLICT: "A message with the same identifier and other content was seen.",
    ErrorCode.WRONG_RECOVERY: "The message belongs to another recovery than the one in force.",
    ErrorCode.UNKNOWN_RECOVERY: "The recovery is not known to the receiver.",
    ErrorCode.UNKNOWN_EXECUTION: "The execution is not known to the receiver.",
    ErrorCode.INVALID_STATE: "The message is not allowed in the current state.",
    ErrorCode.BUSY: "The execution belongs to another recovery.",
    ErrorCode.SUPERSEDED: "The recovery was taken over by an older recovery.",
    ErrorCode.RATE_LIMITED: "The sender exceeded its rate limit.",
    ErrorCode.SCOPE_EXCEEDED: "The rollback set exceeds a policy bound.",
    ErrorCode.OVERLOADED: "The receiver cannot accept more state now.",
    ErrorCode.INTERNAL: "The receiver failed for a reason of its own.",
}


class ProtocolError(Exception):
    """Base of every error this package raises for protocol reasons."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
        self.detail = detail


class LocalProtocolError(ProtocolError):
    """This side attempted something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that is refused; nothing was changed."""
