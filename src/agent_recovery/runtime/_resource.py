"""The real state an agent's work changes, and how it is undone (draft §5.2, §8.2).

One SQLite file per agent holds what its executions touch, as an operator
would see it:

- **device configuration** (``config``): the running configuration of each
  device, line by line. Restorable: a checkpoint keeps an image of the
  execution's device and records; restoring writes the image back.
- **tickets** (``ticket`` and its ``journal``): change tickets. Compensable
  only: a ticket that was opened or moved on cannot be un-opened, so
  compensation appends a compensating journal entry and cancels the ticket.
- **notifications** (``notification``, and a spool file beside the database):
  messages that left the system. Irreversible: they are disclosed as residual
  effects, never "undone".
- **records** (``record``): key/value working data of an execution (a plan,
  an approval). Restorable, like the configuration.

Every effect is stamped with the execution's checkpoint position when it was
made, which is what lets compensation and residual reports be exact: only
effects made at or after the target checkpoint are undone or disclosed.

Undo operations are idempotent per (execution, recovery): the ``undo`` table
remembers each one with its outcome, so a rollback request raised again after a
crash (``RollbackRequested.replayed``) reports the recorded outcome instead of
undoing twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Resource", "ResourceError", "UndoResult"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS config (
    device TEXT NOT NULL, pos INTEGER NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (device, pos));
CREATE TABLE IF NOT EXISTS record (
    exec TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (exec, key));
CREATE TABLE IF NOT EXISTS ticket (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ticket TEXT NOT NULL, exec TEXT NOT NULL,
    position INTEGER NOT NULL, entry TEXT NOT NULL, status TEXT NOT NULL,
    compensating INTEGER NOT NULL DEFAULT 0, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notification (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, exec TEXT NOT NULL, position INTEGER NOT NULL,
    recipient TEXT NOT NULL, subject TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS effect (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, exec TEXT NOT NULL, position INTEGER NOT NULL,
    kind TEXT NOT NULL, description TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (
    exec TEXT NOT NULL, seq INTEGER NOT NULL, label TEXT NOT NULL, image TEXT NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (exec, seq));
CREATE TABLE IF NOT EXISTS output (
    exec TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, produced_after INTEGER NOT NULL,
    PRIMARY KEY (exec, name));
CREATE TABLE IF NOT EXISTS progress (
    exec TEXT PRIMARY KEY, next_step INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS undo (
    exec TEXT NOT NULL, recovery TEXT NOT NULL, action TEXT NOT NULL, target INTEGER NOT NULL,
    outcome TEXT NOT NULL, details TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (exec, recovery));
"""


class ResourceError(Exception):
    """A change or an undo could not be carried out; nothing was changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UndoResult:
    """What an undo did: ``details`` are human-readable lines (residual or compensations).

    ``repeated`` is true when the undo had already been done for this recovery
    and was not done again.
    """

    outcome: str
    details: tuple[str, ...]
    repeated: bool = False


class Resource:
    """An agent's local resource in one SQLite file (``None``: in memory)."""

    def __init__(
        self, path: Path | None, *, devices: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Effects on the resource must survive a crash as firmly as the protocol
        # state that reports them (draft §8.2: an outcome is reported once done).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.spool = None if path is None else path.with_suffix(".sent.txt")
        with self._tx():
            for device, lines in (devices or {}).items():
                known = self._db.execute(
                    "SELECT 1 FROM config WHERE device=?", (device,)
                ).fetchone()
                if known is None:
                    self._write_lines(device, list(lines))

    def close(self) -> None:
        self._db.close()

    # -- work ---------------------------------------------------------------------

    def begin(self, exec_id: str, device: str | None, now: int) -> None:
        """Keep the image of checkpoint 0, the state before any effect (draft §5.2)."""
        row = self._db.execute(
            "SELECT 1 FROM checkpoint WHERE exec=? AND seq=0", (exec_id,)
        ).fetchone()
        if row is None:
            self.checkpoint(exec_id, device, 0, "initial state", now)

    def checkpoint(self, exec_id: str, device: str | None, seq: int, label: str, now: int) -> None:
        image = json.dumps(self._image(exec_id, device), sort_keys=True)
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO checkpoint VALUES (?, ?, ?, ?, ?)",
                (exec_id, seq, label, image, now),
            )

    def apply(
        self, exec_id: str, device: str | None, change: Mapping[str, Any], position: int, now: int
    ) -> str:
        """Make one change; return its description. ``position``: the current checkpoint."""
        with self._tx():
            if "config" in change:
                if device is None:
                    raise ResourceError(f"{exec_id} names no device to configure")
                lines = [str(x) for x in change["config"]]
                current = self._lines(device)
                self._write_lines(device, current + lines)
                text = f"configured {device}: +{len(lines)} line(s): " + "; ".join(
                    x.strip() for x in lines
                )
                kind = "config"
            elif "ticket" in change:
                t = change["ticket"]
                tid, status = str(t["id"]), str(t["status"])
                title = str(t.get("title", tid))
                entry = str(t.get("note", f"status {status}"))
                self._db.execute(
                    "INSERT INTO ticket VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
                    "SET status=excluded.status, updated=excluded.updated",
                    (tid, title, status, now),
                )
                self._db.execute(
                    "INSERT INTO journal (ticket, exec, position, entry, status, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (tid, exec_id, position, entry, status, now),
                )
                text = f"ticket {tid} -> {status}: {entry}"
                kind = "ticket"
            elif "notify" in change:
                n = change["notify"]
                recipient, subject = str(n["to"]), str(n["subject"])
                self._db.execute(
                    "INSERT INTO notification (exec, position, recipient, subject, at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (exec_id, position, recipient, subject, now),
                )
                if self.spool is not None:
                    # The message leaves the system here: once in the spool it is sent.
                    with self.spool.open("a", encoding="utf-8") as spool:
                        spool.write(f"{now}\t{recipient}\t{subject}\n")
                text = f"notified {recipient}: {subject}"
                kind = "notify"
            elif "record" in change:
                r = change["record"]
                self._db.execute(
                    "INSERT OR REPLACE INTO record VALUES (?, ?, ?)",
                    (exec_id, str(r["key"]), json.dumps(r.get("value"))),
                )
                text = f"recorded {r['key']}"
                kind = "record"
            else:
                raise ResourceError("unknown change")
            self._db.execute(
                "INSERT INTO effect (exec, position, kind, description, at) VALUES (?, ?, ?, ?, ?)",
                (exec_id, position, kind, text, now),
            )
        return text

    def put_output(self, exec_id: str, name: str, value: Any, produced_after: int) -> None:
        """Make an output available to consumers; ``produced_after``: the current checkpoint."""
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO output VALUES (?, ?, ?, ?)",
                (exec_id, name, json.dumps(value), produced_after),
            )

    def output(self, exec_id: str, name: str) -> tuple[Any, int] | None:
        row = self._db.execute(
            "SELECT value, produced_after FROM output WHERE exec=? AND name=?", (exec_id, name)
        ).fetchone()
        return None if row is None else (json.loads(row[0]), int(row[1]))

    def progress(self, exec_id: str) -> tuple[int, str]:
        """(index of the next step to run, plan state) of an execution's work."""
        row = self._db.execute(
            "SELECT next_step, state FROM progress WHERE exec=?", (exec_id,)
        ).fetchone()
        return (0, "running") if row is None else (int(row[0]), str(row[1]))

    def set_progress(self, exec_id: str, next_step: int, state: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO progress VALUES (?, ?, ?)", (exec_id, next_step, state)
            )

    # -- undo -----------------------------------------------------------------------

    def restore(
        self, exec_id: str, device: str | None, target: int, recovery: str, now: int
    ) -> UndoResult:
        """Write back the image of checkpoint ``target`` (restorable, draft §8.2)."""
        done = self._done(exec_id, recovery)
        if done is not None:
            return done
        row = self._db.execute(
            "SELECT image, label FROM checkpoint WHERE exec=? AND seq=?", (exec_id, target)
        ).fetchone()
        if row is None:
            raise ResourceError(f"{exec_id} has no checkpoint {target}")
        image = json.loads(row[0])
        details: list[str] = []
        with self._tx():
            if device is not None and device in image["config"]:
                before = len(self._lines(device))
                self._write_lines(device, image["config"][device])
                details.append(
                    f"{device}: configuration restored to checkpoint {target} ({row[1]}), "
                    f"{before} -> {len(image['config'][device])} lines"
                )
            self._db.execute("DELETE FROM record WHERE exec=?", (exec_id,))
            # Outputs made after the target no longer exist (draft §7).
            self._db.execute(
                "DELETE FROM output WHERE exec=? AND produced_after>=?", (exec_id, target)
            )
            for key, value in image["records"].items():
                self._db.execute("INSERT INTO record VALUES (?, ?, ?)", (exec_id, key, value))
            if not details:
                details.append(f"working records restored to checkpoint {target} ({row[1]})")
            self._remember(exec_id, recovery, "restore", target, "restored", details, now)
        return UndoResult(outcome="restored", details=tuple(details))

    def compensate(self, exec_id: str, target: int, recovery: str, now: int) -> UndoResult:
        """Append compensating entries for ticket changes made at or after ``target``."""
        done = self._done(exec_id, recovery)
        if done is not None:
            return done
        rows = self._db.execute(
            "SELECT DISTINCT ticket FROM journal WHERE exec=? AND position>=? AND compensating=0 "
            "ORDER BY ticket",
            (exec_id, target),
        ).fetchall()
        details: list[str] = []
        with self._tx():
            for (tid,) in rows:
                entry = f"compensation: change rolled back by recovery {recovery}; ticket cancelled"
                self._db.execute(
                    "UPDATE ticket SET status='cancelled', updated=? WHERE id=?", (now, tid)
                )
                self._db.execute(
                    "INSERT INTO journal (ticket, exec, position, entry, status, compensating, at)"
                    " VALUES (?, ?, ?, ?, 'cancelled', 1, ?)",
                    (tid, exec_id, target, entry, now),
                )
                details.append(f"ticket {tid} cancelled (compensating journal entry appended)")
            self._remember(exec_id, recovery, "compensate", target, "compensated", details, now)
        return UndoResult(outcome="compensated", details=tuple(details))

    def residual(self, exec_id: str, target: int, recovery: str, now: int) -> UndoResult:
        """Notifications sent at or after ``target``: effects nothing can undo."""
        done = self._done(exec_id, recovery)
        if done is not None:
            return done
        rows = self._db.execute(
            "SELECT seq, recipient, subject, at FROM notification WHERE exec=? AND position>=? "
            "ORDER BY seq",
            (exec_id, target),
        ).fetchall()
        details = [f"notification #{seq} to {to} sent: {subject!r}" for seq, to, subject, _ in rows]
        outcome = "irreversible" if details else "not-needed"
        with self._tx():
            self._remember(exec_id, recovery, "none", target, outcome, details, now)
        return UndoResult(outcome=outcome, details=tuple(details))

    def undo_count(self) -> dict[str, int]:
        """Undo operations carried out, per execution (for the crash benchmark)."""
        rows = self._db.execute("SELECT exec, COUNT(*) FROM undo GROUP BY exec").fetchall()
        return {exec_id: count for exec_id, count in rows}

    # -- views --------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Everything an operator would look at, as JSON-able data."""
        devices = [d for (d,) in self._db.execute("SELECT DISTINCT device FROM config")]
        return {
            "config": {d: self._lines(d) for d in sorted(devices)},
            "tickets": [
                {"id": i, "title": t, "status": s}
                for i, t, s in self._db.execute("SELECT id, title, status FROM ticket ORDER BY id")
            ],
            "journal": [
                {"ticket": t, "entry": e, "status": s}
                for t, e, s in self._db.execute(
                    "SELECT ticket, entry, status FROM journal ORDER BY seq"
                )
            ],
            "notifications": [
                {"to": r, "subject": s}
                for r, s in self._db.execute(
                    "SELECT recipient, subject FROM notification ORDER BY seq"
                )
            ],
            "records": {
                f"{e}:{k}": json.loads(v)
                for e, k, v in self._db.execute("SELECT exec, key, value FROM record ORDER BY 1, 2")
            },
            "undo": [
                {"exec": e, "recovery": r, "action": a, "target": t, "outcome": o}
                for e, r, a, t, o in self._db.execute(
                    "SELECT exec, recovery, action, target, outcome FROM undo ORDER BY at, exec"
                )
            ],
        }

    # -- internals ----------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def _lines(self, device: str) -> list[str]:
        rows = self._db.execute(
            "SELECT text FROM config WHERE device=? ORDER BY pos", (device,)
        ).fetchall()
        return [text for (text,) in rows]

    def _write_lines(self, device: str, lines: list[str]) -> None:
        self._db.execute("DELETE FROM config WHERE device=?", (device,))
        self._db.executemany(
            "INSERT INTO config VALUES (?, ?, ?)", [(device, i, x) for i, x in enumerate(lines)]
        )

    def _image(self, exec_id: str, device: str | None) -> dict[str, Any]:
        records = dict(
            self._db.execute("SELECT key, value FROM record WHERE exec=?", (exec_id,)).fetchall()
        )
        config = {} if device is None else {device: self._lines(device)}
        return {"config": config, "records": records}

    def _done(self, exec_id: str, recovery: str) -> UndoResult | None:
        row = self._db.execute(
            "SELECT outcome, details FROM undo WHERE exec=? AND recovery=?", (exec_id, recovery)
        ).fetchone()
        if row is None:
            return None
        return UndoResult(outcome=row[0], details=tuple(json.loads(row[1])), repeated=True)

    def _remember(  # noqa: PLR0917 - one row's columns, in order
        self,
        exec_id: str,
        recovery: str,
        action: str,
        target: int,
        outcome: str,
        details: list[str],
        now: int,
    ) -> None:
        # Inside the same transaction as the undo itself: done and remembered, or neither.
        self._db.execute(
            "INSERT INTO undo VALUES (?, ?, ?, ?, ?, ?, ?)",
            (exec_id, recovery, action, target, outcome, json.dumps(details), now),
        )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
