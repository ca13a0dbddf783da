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
    def type_uri(self) -> str:
        """The RFC 9457 problem type URI for this code (draft §12.2)."""
        return f"urn:ietf:params:agent-recovery:error:{self.value}"


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
