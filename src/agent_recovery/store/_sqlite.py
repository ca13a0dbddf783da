"""The durable recovery log and engine state in one SQLite file (draft §11.2, §15).

One file holds, per agent:

- ``log``: the recovery-record chains, one per issuer, append-only. Rows are
  never updated or deleted: the API has no such call and triggers refuse it,
  so a bug elsewhere cannot rewrite history.
- ``snapshots``: the latest state of each engine (``Participant.snapshot()``),
  by party name, rewritten whole at each step;
- ``parts``: the latest state of an engine that names what each step changed
  (``Coordinator.snapshot_parts()`` and ``snapshot_changes()``), one row per
  part, so a step rewrites only the rows it changed;
- ``outbox``: signed messages a committed step produced and the transport has
  not yet handed over, in order.

Durability: WAL journal, ``synchronous=FULL`` (every commit is on stable
storage before it returns), and one transaction per engine step, so a
process killed at any instant finds on restart exactly the state of its last
completed step. ``BEGIN IMMEDIATE`` takes the write lock before the chain head
is read, so two processes appending to one file cannot fork a chain.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .._errors import ErrorCode, LocalProtocolError
from .._messages import RecoveryRecord
from .._records import GENESIS, ChainHead, TokenSigner, payload_digest, seal

__all__ = ["SCHEMA_VERSION", "LogEntry", "OutboxEntry", "Store", "StoreError", "is_store"]

SCHEMA_VERSION: Final = 2
# Version 1 is version 2 without the ``parts`` table: opening it adds the table.
_UPGRADABLE: Final = frozenset({"1"})
_MAGIC: Final = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS: Final = 10_000

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    chain     TEXT    NOT NULL,  -- the issuer's agent id
    seq       INTEGER NOT NULL,  -- the record's seq
    record_id TEXT    NOT NULL,
    recovery  TEXT    NOT NULL,
    digest    TEXT    NOT NULL,  -- payload digest: the next record's prev
    token     BLOB    NOT NULL,  -- the JWS compact serialization, as signed
    PRIMARY KEY (chain, seq),
    UNIQUE (chain, record_id)
);
CREATE INDEX IF NOT EXISTS log_recovery ON log (chain, recovery);
CREATE TRIGGER IF NOT EXISTS log_no_update BEFORE UPDATE ON log
BEGIN SELECT RAISE(ABORT, 'the recovery log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS log_no_delete BEFORE DELETE ON log
BEGIN SELECT RAISE(ABORT, 'the recovery log is append-only'); END;
CREATE TABLE IF NOT EXISTS snapshots (
    party TEXT PRIMARY KEY,
    data  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    party TEXT NOT NULL,
    key   TEXT NOT NULL,
    data  TEXT NOT NULL,
    PRIMARY KEY (party, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    party      TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    reply_to   TEXT,
    token      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_party ON outbox (party, id);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '{SCHEMA_VERSION}');
"""


class StoreError(Exception):
    """The file is not a usable store (not SQLite, another schema, unreadable).

    Not a protocol error: nothing a peer sent can cause it.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One stored record: its place in its chain and its JWS as signed."""

    chain: str
    seq: int
    record_id: str
    recovery: str
    token: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """A signed message waiting for the transport (``id`` orders and names it)."""

    id: int
    recipient: str
    message_id: str
    reply_to: str | None
    token: bytes


class Store:
    """A SQLite store: the append-only recovery log plus engine state.

    Not thread-safe: use one :class:`Store` per thread (several may open one
    file; SQLite serializes their writes).
    """

    __slots__ = ("_conn", "_depth", "path", "readonly")

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._depth = 0
        if readonly or self.path.exists():
            _check_magic(self.path)
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self._conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from exc
        try:
            self._setup()
        except (sqlite3.Error, StoreError) as exc:
            self._conn.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{path}: {exc}") from exc

    def _setup(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        if not self.readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":  # pragma: no cover - only on file systems without WAL support
                raise StoreError(f"{self.path}: cannot use WAL (journal mode {mode})")
            # draft §11.2: a record is on stable storage before anyone sees it.
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is not None and row[0] in _UPGRADABLE:
            if not self.readonly:
                version = str(SCHEMA_VERSION)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (version,))
            row = (str(SCHEMA_VERSION),)  # a reader needs nothing version 2 added
        if row is None or row[0] != str(SCHEMA_VERSION):
            found = None if row is None else row[0]
            raise StoreError(f"{self.path}: store schema {found}, expected {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (nesting joins the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth = 0

    # ------------------------------------------------------------------ the log

    def append(self, signer: TokenSigner, records: Iterable[RecoveryRecord]) -> list[LogEntry]:
        """Link, sign and store ``records`` at the end of ``signer.owner``'s chain.

        One transaction (or part of the caller's): each record gets the next
        ``seq`` and the previous payload's digest as ``prev`` (draft §11.2),
        whatever it carried. Returns the new entries; once the outermost
        transaction commits (at return, if there is no caller's), they are durable.
        """
        chain = signer.owner
        out: list[LogEntry] = []
        with self.transaction():
            head = self.head(chain)
            for record in records:
                sealed = seal(record, head, signer)
                try:
                    self._conn.execute(
                        "INSERT INTO log (chain, seq, record_id, recovery, digest, token)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            chain,
                            sealed.seq,
                            record.id,
                            record.recovery,
                            payload_digest(sealed.payload),
                            sealed.token,
                        ),
                    )
                except sqlite3.IntegrityError as exc:
                    raise LocalProtocolError(
                        ErrorCode.CONFLICT, f"record {record.id!r} is already in the log"
                    ) from exc
                head = sealed.head
                out.append(
                    LogEntry(
                        chain=chain,
                        seq=sealed.seq,
                        record_id=record.id,
                        recovery=record.recovery,
                        token=sealed.token,
                    )
                )
        return out

    def head(self, chain: str) -> ChainHead:
        """Where ``chain`` stands: the next record's ``seq`` and ``prev``."""
        row = self._conn.execute(
            "SELECT seq, digest FROM log WHERE chain = ? ORDER BY seq DESC LIMIT 1", (chain,)
        ).fetchone()
        return GENESIS if row is None else ChainHead(next_seq=row[0] + 1, prev=row[1])

    def chains(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT chain FROM log ORDER BY chain")]

    def entries(self, chain: str, *, start: int = 0) -> Iterator[LogEntry]:
        """The entries of ``chain`` from ``seq`` ``start`` on, in order, read lazily."""
        cursor = self._conn.execute(
            "SELECT seq, record_id, recovery, token FROM log"
            " WHERE chain = ? AND seq >= ? ORDER BY seq",
            (chain, start),
        )
        for seq, record_id, recovery, token in cursor:
            yield LogEntry(
                chain=chain, seq=seq, record_id=record_id, recovery=recovery, token=bytes(token)
            )

    def count(self, chain: str) -> int:
        row = self._conn.execute("SELECT count(*) FROM log WHERE chain = ?", (chain,)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ snapshots

    def load_snapshot(self, party: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT data FROM snapshots WHERE party = ?", (party,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        if not isinstance(data, dict):
            raise StoreError(f"{self.path}: snapshot of {party!r} is not an object")
        return data

    def save_snapshot(self, party: str, text: str) -> None:
        """Store ``party``'s state, already serialized as JSON text."""
        self._conn.execute(
            "INSERT INTO snapshots (party, data) VALUES (?, ?)"
            " ON CONFLICT (party) DO UPDATE SET data = excluded.data",
            (party, text),
        )

    def delete_snapshot(self, party: str) -> None:
        self._conn.execute("DELETE FROM snapshots WHERE party = ?", (party,))

    def load_parts(self, party: str) -> dict[str, Any] | None:
        """``party``'s state as parts, by key; ``None`` if it keeps none."""
        rows = self._conn.execute("SELECT key, data FROM parts WHERE party = ?", (party,))
        try:
            parts = {key: json.loads(data) for key, data in rows}
        except ValueError as exc:
            raise StoreError(f"{self.path}: a part of {party!r} is not JSON") from exc
        return parts or None

    def save_parts(self, party: str, parts: dict[str, str]) -> None:
        """Store (or replace) parts of ``party``'s state, each already JSON text."""
        self._conn.executemany(
            "INSERT INTO parts (party, key, data) VALUES (?, ?, ?)"
            " ON CONFLICT (party, key) DO UPDATE SET data = excluded.data",
            [(party, key, text) for key, text in parts.items()],
        )

    def delete_parts(self, party: str) -> None:
        self._conn.execute("DELETE FROM parts WHERE party = ?", (party,))

    # ------------------------------------------------------------------ the outbox

    def enqueue(
        self, party: str, items: Iterable[tuple[str, str, str | None, bytes]]
    ) -> list[OutboxEntry]:
        """Queue (recipient, message id, reply_to, token) for sending, in order."""
        out: list[OutboxEntry] = []
        with self.transaction():
            for recipient, message_id, reply_to, token in items:
                cursor = self._conn.execute(
                    "INSERT INTO outbox (party, recipient, message_id, reply_to, token)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (party, recipient, message_id, reply_to, token),
                )
                assert cursor.lastrowid is not None
                out.append(
                    OutboxEntry(
                        id=cursor.lastrowid,
                        recipient=recipient,
                        message_id=message_id,
                        reply_to=reply_to,
                        token=token,
                    )
                )
        return out

    def pending(self, party: str) -> list[OutboxEntry]:
        rows = self._conn.execute(
            "SELECT id, recipient, message_id, reply_to, token FROM outbox"
            " WHERE party = ? ORDER BY id",
            (party,),
        )
        return [
            OutboxEntry(id=i, recipient=r, message_id=m, reply_to=t, token=bytes(b))
            for i, r, m, t, b in rows
        ]

    def mark_sent(self, party: str, ids: Iterable[int]) -> None:
        """The transport handed these over; unknown or repeated ids are ignored.

        Not synced on its own: a mark lost in a power failure only makes the
        message leave again, and its receiver answers the exact duplicate
        idempotently (draft §9.3). In WAL mode a commit at ``synchronous=NORMAL``
        is still atomic and ordered, and the next step's sync (``FULL``) makes it
        durable with that step; a process that is killed loses nothing either way.
        """
        rows = [(party, i) for i in ids]
        if self._depth:  # inside a step: it commits with the step
            self._conn.executemany("DELETE FROM outbox WHERE party = ? AND id = ?", rows)
            return
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self.transaction():
                self._conn.executemany("DELETE FROM outbox WHERE party = ? AND id = ?", rows)
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")


def _check_magic(path: Path) -> None:
    # sqlite3 opens any file and fails only at the first query; say it plainly.
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_MAGIC))
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror or exc}") from exc
    if head and head != _MAGIC:
        raise StoreError(f"{path}: not a SQLite store")


def is_store(path: str | Path) -> bool:
    """True if ``path`` starts like a SQLite database (else: a JSON Lines export?)."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False
