"""The replay cache kept in the agent's store file, so a restart loses none of it (draft §9.3).

A receiver that loses its replay cache must refuse as ``stale`` every message
issued before the time from which its cache is complete. :class:`ReplayJournal`
keeps every entry of the cache (``security.ReplayCache``) in the agent's SQLite
file, so after a restart the cache is rebuilt and complete since the journal
was created, and an exact duplicate is still answered with the reply it got.

Entries are written after the engine step that accepted their messages has
committed (the cache records only accepted messages). A process killed between
the two would lose the entries of that batch, so before a batch the runtime
calls :meth:`ReplayJournal.begin` with a bound on the issue time of any message
the batch can accept; the bound is cleared in the same transaction that writes
the batch's entries. Found set on restart, it means entries may be missing, and
the cache is complete only from that bound on. The bound is written before the
step and the step's own commit (``synchronous=FULL``) makes it durable; the
entries may then be written with ``synchronous=NORMAL``, because losing them
with the clearing of the bound is the case the bound covers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from ..security.replay import ReplayEntry

__all__ = ["ReplayJournal"]

_BUSY_TIMEOUT_MS: Final = 10_000
_PURGE_EVERY_MS: Final = 60_000

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS replay_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay_cache (
    sender   TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    digest   BLOB    NOT NULL,
    recovery TEXT,
    expires  INTEGER NOT NULL,
    reply    BLOB,
    PRIMARY KEY (sender, id)
) WITHOUT ROWID;
"""


class ReplayJournal:
    """The durable copy of one receiver's replay cache, in its store file."""

    __slots__ = ("_bound", "_db", "_last_purge", "_replies", "_rows", "complete_since")

    def __init__(self, path: str | Path, *, now: int, lost_before: int = 0) -> None:
        """Open the journal in the store file at ``path``.

        A new journal is complete from the start: nothing was accepted before
        it existed, unless ``lost_before`` says that an earlier incarnation of
        the agent accepted messages until then and kept no journal (a store
        in a temporary directory); messages issued before it are then refused.
        """
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        self._rows: dict[tuple[str, str], ReplayEntry] = {}
        self._replies: dict[tuple[str, str], bytes] = {}
        self._last_purge = now
        self._bound = False  # a bound is written and not yet cleared
        with self._transaction():
            meta = dict(self._db.execute("SELECT key, value FROM replay_meta").fetchall())
            complete = int(meta.get("complete_since", lost_before))
            pending = meta.get("pending")
            if pending is not None:
                # Killed between a batch's step and its entries: they may be lost.
                complete = max(complete, int(pending))
            self._db.execute(
                "INSERT OR REPLACE INTO replay_meta VALUES ('complete_since', ?)", (complete,)
            )
            self._db.execute("DELETE FROM replay_meta WHERE key = 'pending'")
        self.complete_since: int = complete

    def entries(self, now: int) -> Iterator[tuple[tuple[str, str], ReplayEntry]]:
        """The entries still in force at ``now``, for ``ReplayCache.restore``."""
        rows = self._db.execute(
            "SELECT sender, id, digest, recovery, expires, reply FROM replay_cache"
            " WHERE expires >= ?",
            (now,),
        )
        for sender, mid, digest, recovery, expires, reply in rows:
            yield (
                (sender, mid),
                ReplayEntry(
                    digest=bytes(digest),
                    recovery=recovery,
                    expires=expires,
                    reply=None if reply is None else bytes(reply),
                ),
            )

    def begin(self, until: int) -> None:
        """Before a batch: no message it accepts was issued at or after ``until``."""
        self._db.execute(
            "INSERT OR REPLACE INTO replay_meta VALUES ('pending', ?)",
            (max(until, self.complete_since),),
        )
        self._bound = True

    # ReplayCache calls these two; the rows are written by :meth:`commit`.

    def put(self, key: tuple[str, str], entry: ReplayEntry) -> None:
        self._rows[key] = entry

    def put_reply(self, key: tuple[str, str], reply: bytes) -> None:
        entry = self._rows.get(key)
        if entry is None:
            self._replies[key] = reply
        else:
            self._rows[key] = ReplayEntry(
                digest=entry.digest, recovery=entry.recovery, expires=entry.expires, reply=reply
            )

    def commit(self, now: int) -> None:
        """Write what the cache recorded since the last commit, and clear the bound."""
        purge = now - self._last_purge >= _PURGE_EVERY_MS
        if not (self._rows or self._replies or self._bound or purge):
            return  # nothing to write: no transaction at all
        rows, self._rows = self._rows, {}
        replies, self._replies = self._replies, {}
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO replay_cache VALUES (?, ?, ?, ?, ?, ?)",
                [(k[0], k[1], e.digest, e.recovery, e.expires, e.reply) for k, e in rows.items()],
            )
            self._db.executemany(
                "UPDATE replay_cache SET reply = ? WHERE sender = ? AND id = ?",
                [(reply, k[0], k[1]) for k, reply in replies.items()],
            )
            self._db.execute("DELETE FROM replay_meta WHERE key = 'pending'")
            self._bound = False
            if purge:
                # draft §9.3: an entry may go once its message is stale anyway.
                self._db.execute("DELETE FROM replay_cache WHERE expires < ?", (now,))
                self._last_purge = now

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
