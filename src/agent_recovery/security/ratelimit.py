"""Per-agent rate limits (draft §13.4, denial of service by false failure signals).

A failure signal is cheap to send and makes a coordinator halt every member of
a rollback set, so each agent gets a token bucket for the message types a
policy names (by default only ``failure-signal``). Buckets are kept as the
generic cell rate algorithm: one integer per (agent, type), the "theoretical
arrival time" of the next conforming message. A message conforms when that
time is at most ``(burst - 1) * interval`` ahead of ``now``; taking it moves
the time ``interval`` further.

Only authenticated agents reach the limiter (it runs after signature
verification), so the table is bounded by the number of keys a receiver
trusts; it also has a hard size of its own. An entry whose time has passed is
the same as no entry and is swept when the table is full; a table full of live
entries refuses (``overloaded``) rather than forgetting an agent's debt.

A policy named ``"*"`` applies to every message type in addition (a
deployment that wants an overall budget per agent). As with the replay cache,
checking is read-only and :meth:`RateLimiter.consume` runs only once the
message was accepted, so refused messages cost no tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

from .._errors import ErrorCode, RemoteProtocolError
from .._messages import FailureSignal, Message
from .._model import Severity
from .._state import TERMINAL_RECOVERY_STATES, RecoveryState

__all__ = [
    "ANY_TYPE",
    "DEFAULT_POLICIES",
    "DEFAULT_TRACKED",
    "RateLimiter",
    "RatePolicy",
    "RecoveryCap",
]

DEFAULT_TRACKED: Final = 10_000
# A policy under this name applies to every message an agent sends, in
# addition to the policy for its type (if any).
ANY_TYPE: Final = "*"


@dataclass(frozen=True, slots=True, kw_only=True)
class RatePolicy:
    """``burst`` messages at once, then one per ``interval_ms``."""

    burst: int
    interval_ms: int

    def __post_init__(self) -> None:
        if self.burst < 1 or self.interval_ms < 1:
            raise ValueError("rate policy: burst and interval must be positive")

    @property
    def tolerance_ms(self) -> int:
        return (self.burst - 1) * self.interval_ms

    def admitted(self, duration_ms: int) -> int:
        """Most messages one agent can have admitted in ``duration_ms`` (the bound)."""
        return self.burst + max(0, duration_ms) // self.interval_ms


# Ten failure signals at once, then one every six seconds, per agent.
DEFAULT_POLICIES: Final[Mapping[str, RatePolicy]] = MappingProxyType(
    {"failure-signal": RatePolicy(burst=10, interval_ms=6_000)}
)


class RateLimiter:
    """Token buckets per (authenticated agent, message type). Time is an argument."""

    __slots__ = ("_tat", "max_tracked", "policies")

    def __init__(
        self,
        policies: Mapping[str, RatePolicy] = DEFAULT_POLICIES,
        *,
        max_tracked: int = DEFAULT_TRACKED,
    ) -> None:
        if max_tracked < 1:
            raise ValueError("rate limiter: max_tracked must be positive")
        self.policies = MappingProxyType(dict(policies))
        self.max_tracked = max_tracked
        self._tat: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        return len(self._tat)

    def _buckets(self, message_type: str) -> tuple[tuple[str, RatePolicy], ...]:
        # The type's own bucket, and the all-types bucket ("*") if configured.
        own = self.policies.get(message_type)
        every = self.policies.get(ANY_TYPE)
        found = [(message_type, own)] if own is not None else []
        if every is not None:
            found.append((ANY_TYPE, every))
        return tuple(found)

    def check(self, agent: str, message_type: str, now: int) -> None:
        """Raise ``rate-limited`` (or ``overloaded``) if the message may not be taken now."""
        for bucket, policy in self._buckets(message_type):
            tat = self._tat.get((agent, bucket))
            if tat is None:
                if len(self._tat) >= self.max_tracked:
                    self._sweep(now)  # housekeeping: a swept entry meant a full bucket
                    if len(self._tat) >= self.max_tracked:
                        raise RemoteProtocolError(ErrorCode.OVERLOADED, "rate table is full")
                continue
            if tat - now > policy.tolerance_ms:
                wait = tat - now - policy.tolerance_ms
                raise RemoteProtocolError(
                    ErrorCode.RATE_LIMITED, f"{bucket} from {agent!r}: retry in {wait} ms"
                )

    def retry_after_ms(self, agent: str, message_type: str, now: int) -> int:
        """How long until the next message of this type from ``agent`` conforms (0 = now)."""
        wait = 0
        for bucket, policy in self._buckets(message_type):
            tat = self._tat.get((agent, bucket))
            if tat is not None:
                wait = max(wait, tat - now - policy.tolerance_ms)
        return wait

    def consume(self, agent: str, message_type: str, now: int) -> None:
        """Take one token for an accepted message (after :meth:`check` passed)."""
        for bucket, policy in self._buckets(message_type):
            key = (agent, bucket)
            if key not in self._tat and len(self._tat) >= self.max_tracked:
                self._sweep(now)
            self._tat[key] = max(self._tat.get(key, now), now) + policy.interval_ms

    def _sweep(self, now: int) -> None:
        # O(n), but only when the table is full; an entry in the past is a full bucket.
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    def snapshot(self, now: int) -> dict[tuple[str, str], int]:
        """The buckets that are not full at ``now`` (for tests and diagnostics)."""
        return {k: tat for k, tat in self._tat.items() if tat > now}


class _Recoveries(Protocol):
    def recoveries(self) -> tuple[str, ...]: ...

    def recovery_state(self, recovery: str) -> RecoveryState: ...


class RecoveryCap:
    """Refuse failure signals that would open a recovery beyond ``max_active`` (draft §13.4).

    An endpoint admission check for a coordinator: a failure signal of
    severity ``error`` or ``fatal`` opens a recovery, so while ``max_active``
    recoveries are not yet in a terminal state, further ones are refused with
    ``overloaded`` and change nothing. Warnings open none and pass.
    """

    __slots__ = ("coordinator", "max_active")

    def __init__(self, coordinator: _Recoveries, max_active: int) -> None:
        if max_active < 1:
            raise ValueError("recovery cap: max_active must be positive")
        self.coordinator = coordinator
        self.max_active = max_active

    def active(self) -> int:
        engine = self.coordinator
        # O(recoveries): the engine keeps closed recoveries; a counter kept by
        # the engine itself would make this O(1).
        return sum(
            engine.recovery_state(r) not in TERMINAL_RECOVERY_STATES for r in engine.recoveries()
        )

    def __call__(self, message: Message, now: int) -> None:
        if not isinstance(message, FailureSignal) or message.severity is Severity.WARNING:
            return
        if self.active() >= self.max_active:
            raise RemoteProtocolError(
                ErrorCode.OVERLOADED, f"{self.max_active} recoveries are already running"
            )
