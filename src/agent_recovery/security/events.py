"""Security events: what was refused, answered from the replay cache, or overridden.

Refused messages change no protocol state, but they are not forgotten: each
refusal, each duplicate answered from the replay cache and each operator
override produces a :class:`SecurityEvent`, which an endpoint hands to an
:class:`EventSink`. A recovery log can store them next to recovery records;
repeated refusals from one agent, or its failure signals whose recoveries were
rejected at appraisal (a recovery record with result ``rejected``), are the
input to later trust decisions (draft §13.4, deferred work).

:class:`EventLog` is a sink with a hard memory bound: the newest events in a
ring buffer, plus counters per (agent, code) for a bounded number of agents.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from .._errors import ErrorCode

__all__ = [
    "EventKind",
    "EventLog",
    "EventSink",
    "SecurityEvent",
]

_UNAUTHENTICATED: Final = ""


class EventKind(enum.StrEnum):
    REFUSED = "refused"  # the message was refused and changed nothing
    DUPLICATE = "duplicate"  # an exact duplicate: the cached reply was sent again
    OVERRIDE = "override"  # an operator override was applied (draft §9.2)
    OVERRIDE_REFUSED = "override-refused"  # an operator override was refused


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityEvent:
    """One refusal, duplicate or override, as an endpoint saw it.

    ``agent`` is the *authenticated* agent (the owner of the verifying key) or
    ``None`` when the message was refused before its signature was checked;
    identities a message merely claims are never recorded as its sender.
    """

    at: int
    kind: EventKind
    code: ErrorCode | None
    detail: str
    digest: str  # hex SHA-256 of the bytes received
    agent: str | None = None
    kid: str | None = None
    message_id: str | None = None
    message_type: str | None = None
    recovery: str | None = None


class EventSink(Protocol):
    def __call__(self, event: SecurityEvent) -> None: ...


class EventLog:
    """A bounded in-memory :class:`EventSink`."""

    __slots__ = ("_counts", "_events", "max_agents", "total")

    def __init__(self, *, max_events: int = 10_000, max_agents: int = 10_000) -> None:
        self._events: deque[SecurityEvent] = deque(maxlen=max_events)
        self._counts: Counter[tuple[str, str]] = Counter()
        self.max_agents = max_agents
        self.total = 0

    def __call__(self, event: SecurityEvent) -> None:
        self._events.append(event)
        self.total += 1
        agent = event.agent if event.agent is not None else _UNAUTHENTICATED
        key = (agent, event.code.value if event.code is not None else event.kind.value)
        # Bounded: unauthenticated refusals share one counter; past the agent
        # bound new agents are counted under the unauthenticated bucket.
        if key not in self._counts and len(self._counts) >= self.max_agents:
            key = (_UNAUTHENTICATED, key[1])
        self._counts[key] += 1

    def __iter__(self) -> Iterator[SecurityEvent]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def count(self, agent: str | None = None, code: ErrorCode | None = None) -> int:
        """Events so far for ``agent`` (None: any) with ``code`` (None: any)."""
        return sum(
            n
            for (a, c), n in self._counts.items()
            if (agent is None or a == agent) and (code is None or c == code.value)
        )
