"""The replay rule: one cache, one freshness window, a hard memory bound (draft §9.3).

A receiver keeps, for every message it *accepted*, an entry keyed by
``(sender, message id)`` holding the SHA-256 digest of the exact message bytes,
the message's recovery id, and the reply it sent. Then, for each verified and
decoded message, in this order:

1. ``iat`` outside ``[now - window, now + skew]``      -> ``stale``
2. an entry for (sender, id) with the same digest     -> duplicate: the cached
   reply is sent again and nothing else happens (code ``replay`` in logs)
3. an entry for (sender, id) with another recovery id -> ``wrong-recovery``
4. an entry for (sender, id) with other content       -> ``conflict``
5. no entry, cache full of unexpired entries, or the
   sender's share of it full                           -> ``overloaded``
6. otherwise the message is new.

An entry may be forgotten once ``iat + window`` has passed, because from then
on step 1 refuses the same message anyway; that is what makes a bounded cache
sound. When the cache is full of entries that may *not* yet be forgotten it
refuses new messages rather than evicting old ones: evicting would let an
attacker who can make a receiver accept many messages (for instance a
compromised peer) wash a captured message out of the cache and replay it.
Each sender may hold at most ``max_per_sender`` entries, so one agent that
floods a receiver with messages it accepts (acknowledgements, say) exhausts
its own share, not everyone's.

Checking is read-only; :meth:`ReplayCache.commit` records a message only after
the engine accepted it, so a refused message leaves the cache as it was.

A receiver that lost its cache (a restart without durable storage) refuses as
``stale`` every message issued before ``complete_since``, the time from which
its cache is complete (draft §9.3). A durable receiver gives the cache a
:class:`ReplayJournal` that keeps every entry, and rebuilds the cache from it
with :meth:`ReplayCache.restore` on restart; its cache is then complete since
the journal was created.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from .._errors import ErrorCode, LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PER_SENDER",
    "DEFAULT_SKEW_MS",
    "DEFAULT_WINDOW_MS",
    "ENTRY_OVERHEAD",
    "ReplayCache",
    "ReplayEntry",
    "ReplayJournal",
    "digest",
]

DEFAULT_WINDOW_MS: Final = 300_000  # 5 minutes into the past
DEFAULT_SKEW_MS: Final = 30_000  # 30 seconds into the future (clock skew)
DEFAULT_CAPACITY: Final = 100_000
DEFAULT_PER_SENDER: Final = 10_000
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
# A conservative estimate of what one entry costs in CPython beyond its strings
# and cached reply (dict slot, heap tuple, the entry object, the digest).
ENTRY_OVERHEAD: Final = 512


def digest(data: bytes) -> bytes:
    """The digest that identifies an exact message (SHA-256 of its bytes)."""
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayEntry:
    """What the receiver remembers about one accepted message."""

    digest: bytes
    recovery: str | None
    expires: int  # iat + window: after this the message is stale anyway
    reply: bytes | None  # the signed reply sent for it, resent on an exact duplicate


class ReplayJournal(Protocol):
    """Durable storage for a replay cache's entries (draft §9.3)."""

    def put(self, key: tuple[str, str], entry: ReplayEntry) -> None:
        """Keep ``entry``, the cache's new entry for ``key``."""

    def put_reply(self, key: tuple[str, str], reply: bytes) -> None:
        """Replace the reply kept for ``key``."""


class ReplayCache:
    """Bounded replay cache implementing the rule above. Time is an argument."""

    __slots__ = (
        "_bytes",
        "_entries",
        "_expiry",
        "_journal",
        "_per_sender",
        "capacity",
        "complete_since",
        "max_bytes",
        "max_per_sender",
        "skew_ms",
        "window_ms",
    )

    def __init__(
        self,
        *,
        window_ms: int = DEFAULT_WINDOW_MS,
        skew_ms: int = DEFAULT_SKEW_MS,
        capacity: int = DEFAULT_CAPACITY,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_per_sender: int = DEFAULT_PER_SENDER,
        complete_since: int | None = None,
        journal: ReplayJournal | None = None,
    ) -> None:
        if min(window_ms, capacity, max_bytes, max_per_sender) <= 0 or skew_ms < 0:
            raise ValueError("replay cache limits must be positive")
        self.complete_since = complete_since
        self._journal = journal
        self.window_ms = window_ms
        self.skew_ms = skew_ms
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.max_per_sender = max_per_sender
        self._entries: dict[tuple[str, str], ReplayEntry] = {}
        self._per_sender: dict[str, int] = {}
        self._expiry: list[tuple[int, tuple[str, str]]] = []  # min-heap on expiry time
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        """Accounted memory: strings, cached replies and :data:`ENTRY_OVERHEAD` per entry."""
        return self._bytes

    def expire(self, now: int) -> None:
        """Forget entries whose messages are stale at ``now``.

        Forgetting them is invisible to the rule (step 1 refuses such messages),
        so this is housekeeping, not a change of the cache's meaning.
        """
        heap = self._expiry
        while heap and heap[0][0] < now:
            expires, key = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is not None and entry.expires == expires:
                del self._entries[key]
                self._bytes -= _cost(key, entry)
                left = self._per_sender[key[0]] - 1
                if left:
                    self._per_sender[key[0]] = left
                else:
                    del self._per_sender[key[0]]

    def check(
        self, *, sender: str, message_id: str, iat: int, recovery: str | None, data: bytes, now: int
    ) -> ReplayEntry | None:
        """Apply the rule; return the entry of an exact duplicate, ``None`` if new.

        Raises :class:`RemoteProtocolError` (``stale``, ``wrong-recovery``,
        ``conflict``, ``overloaded``). Changes nothing but :meth:`expire`'s
        housekeeping, which does not change any verdict.
        """
        self.expire(now)
        if iat < now - self.window_ms:
            raise RemoteProtocolError(ErrorCode.STALE, "issued-at is older than the window")
        if iat > now + self.skew_ms:
            raise RemoteProtocolError(ErrorCode.STALE, "issued-at is too far in the future")
        if self.complete_since is not None and iat < self.complete_since:
            # draft §9.3: a copy of this message may have been accepted by the
            # cache this receiver lost; only "stale" is safe.
            raise RemoteProtocolError(
                ErrorCode.STALE, "issued before this receiver's replay cache is complete"
            )
        entry = self._entries.get((sender, message_id))
        if entry is not None:
            if entry.digest == digest(data):
                return entry
            if entry.recovery != recovery:
                raise RemoteProtocolError(
                    ErrorCode.WRONG_RECOVERY,
                    f"message {message_id!r} was accepted in recovery {entry.recovery!r}",
                )
            raise RemoteProtocolError(
                ErrorCode.CONFLICT, f"message {message_id!r} was accepted with other content"
            )
        if self._full():
            raise RemoteProtocolError(ErrorCode.OVERLOADED, "replay cache is full")
        if self._per_sender.get(sender, 0) >= self.max_per_sender:
            raise RemoteProtocolError(ErrorCode.OVERLOADED, f"replay share of {sender!r} is full")
        return None

    def commit(
        self,
        *,
        sender: str,
        message_id: str,
        iat: int,
        recovery: str | None,
        data: bytes,
        reply: bytes | None,
        now: int,
    ) -> None:
        """Remember an accepted message and the reply sent for it.

        Call only after :meth:`check` returned ``None`` for the same message at
        the same time; the bound holds because :meth:`check` refused when full.
        """
        self.expire(now)
        key = (sender, message_id)
        entry = ReplayEntry(
            digest=digest(data), recovery=recovery, expires=iat + self.window_ms, reply=reply
        )
        old = self._entries.get(key)
        if old is not None:  # check() would have refused it or returned it
            raise LocalProtocolError(ErrorCode.INTERNAL, "message is already recorded")
        self._add(key, entry)
        if self._journal is not None:
            self._journal.put(key, entry)

    def restore(self, entries: Iterable[tuple[tuple[str, str], ReplayEntry]], now: int) -> int:
        """Load the entries a journal kept; return how many are still in force.

        The entries were admitted within the bounds when they were accepted;
        they are loaded even if the bounds shrank since, so that the cache stays
        complete (new messages are then refused as ``overloaded`` until enough
        expire).
        """
        loaded = 0
        for key, entry in entries:
            if entry.expires < now or key in self._entries:
                continue
            self._add(key, entry)
            loaded += 1
        return loaded

    def _add(self, key: tuple[str, str], entry: ReplayEntry) -> None:
        self._entries[key] = entry
        self._bytes += _cost(key, entry)
        self._per_sender[key[0]] = self._per_sender.get(key[0], 0) + 1
        heapq.heappush(self._expiry, (entry.expires, key))

    def update_reply(self, *, sender: str, message_id: str, reply: bytes) -> bool:
        """Make ``reply`` the cached reply of an accepted message; False if none is cached.

        For replies produced after the request was accepted (a rollback result
        after the application finished). The byte bound may be passed by the
        difference, which is at most one message.
        """
        key = (sender, message_id)
        entry = self._entries.get(key)
        if entry is None:
            return False
        updated = ReplayEntry(
            digest=entry.digest, recovery=entry.recovery, expires=entry.expires, reply=reply
        )
        self._entries[key] = updated
        self._bytes += _cost(key, updated) - _cost(key, entry)
        if self._journal is not None:
            self._journal.put_reply(key, reply)
        return True

    def _full(self) -> bool:
        # After expire(): every entry left is in force.  The byte bound can be
        # passed by at most the one entry admitted while just under it.
        return len(self._entries) >= self.capacity or self._bytes >= self.max_bytes

    def snapshot(self, now: int) -> dict[tuple[str, str], ReplayEntry]:
        """The entries in force at ``now`` (for tests and diagnostics)."""
        return {k: e for k, e in self._entries.items() if e.expires >= now}


def _cost(key: tuple[str, str], entry: ReplayEntry) -> int:
    return (
        ENTRY_OVERHEAD
        + len(key[0])
        + len(key[1])
        + len(entry.recovery or "")
        + len(entry.reply or b"")
    )
