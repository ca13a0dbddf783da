"""A clock the test decides: time moves only when told to."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Milliseconds since the epoch, advanced explicitly (engines take ``now`` as an argument)."""

    __slots__ = ("now",)

    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("time does not go backwards")
        self.now += ms
        return self.now

    def set(self, now: int) -> int:
        if now < self.now:
            raise ValueError("time does not go backwards")
        self.now = now
        return self.now
