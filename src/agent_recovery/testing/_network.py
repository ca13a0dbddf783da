"""An in-memory network with loss, duplication, reordering and delay.

Messages are objects, delivered to the agent named by their ``recipient``.
Randomness comes from a seeded :class:`random.Random`, so a run is repeatable.
Faults apply until ``Faults.until``; after that the network is reliable (but
still delays), which is the "faults stop" premise of the liveness property.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from .._messages import Message

__all__ = ["Faults", "InMemoryNetwork", "NetworkStats"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """What the network does to each message while faults are on."""

    loss: float = 0.0  # probability a message is dropped
    duplicate: float = 0.0  # probability a message is delivered twice
    reorder: float = 0.0  # probability a message is held back (overtaken by later ones)
    min_delay: int = 1
    max_delay: int = 50
    reorder_delay: int = 2_000  # the longest hold-back
    until: int | None = None  # faults stop at this time; None = never

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if not 0 <= self.min_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 <= min_delay <= max_delay")


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    dropped_down: int = 0  # arrived at an agent that was down


class InMemoryNetwork:
    """Schedules deliveries; the caller pops what is due and hands it to the recipient."""

    def __init__(self, *, faults: Faults | None = None, seed: int = 0) -> None:
        self.faults = faults if faults is not None else Faults()
        self.stats = NetworkStats()
        self._rng = random.Random(seed)
        self._queue: list[tuple[int, int, Message]] = []
        self._seq = 0
        self._down: set[str] = set()

    def faulty(self, now: int) -> bool:
        until = self.faults.until
        return until is None or now < until

    def send(self, message: Message, now: int) -> None:
        self.stats.sent += 1
        f = self.faults
        rng = self._rng
        copies = 1
        if self.faulty(now):
            if rng.random() < f.loss:
                self.stats.lost += 1
                return
            if rng.random() < f.duplicate:
                self.stats.duplicated += 1
                copies = 2
        for _ in range(copies):
            at = now + rng.randint(f.min_delay, f.max_delay)
            if self.faulty(now) and rng.random() < f.reorder:
                self.stats.reordered += 1
                at += rng.randint(1, f.reorder_delay)
            self._seq += 1
            heapq.heappush(self._queue, (at, self._seq, message))

    def next_time(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now: int) -> list[Message]:
        """Messages due by ``now`` whose recipient is up, in delivery order."""
        out: list[Message] = []
        while self._queue and self._queue[0][0] <= now:
            _, _, message = heapq.heappop(self._queue)
            if message.recipient in self._down:
                self.stats.dropped_down += 1
                continue
            self.stats.delivered += 1
            out.append(message)
        return out

    def in_flight(self) -> int:
        return len(self._queue)

    def set_down(self, agent: str, down: bool) -> None:
        if down:
            self._down.add(agent)
        else:
            self._down.discard(agent)
