"""The coordinator's persisted state and its snapshot forms (draft §11.2).

:class:`CoordinatorState` holds what a coordinator keeps across a restart:
its id counter, the executions it is a recovery authority for, the failure
signals it answered and its recoveries. It writes them as one snapshot or as
parts (a store rewrites, per step, only the parts the step changed) and reads
either back. The engine (``_coordinator.Coordinator``) is built on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._authorities import Authorities
from ._coordinator_records import (
    RecoveryData,
    TrackData,
    dump_edges,
    dump_header,
    dump_recovery,
    dump_track,
    load_recovery,
    part_key,
)
from ._events import dump_ref
from ._model import ExecRef
from ._scope import Bounds

__all__ = ["CoordinatorState"]

_AUTHORITY = part_key("authority")


class CoordinatorState:
    """The persisted part of a coordinator."""

    def __init__(self, *, agent: str, bounds: Bounds) -> None:
        self.agent = agent
        self._bounds = bounds
        self._seq = 0
        self._authority = Authorities()
        self._signals: dict[tuple[str, str], tuple[str | None, bytes]] = {}
        self._recoveries: dict[str, RecoveryData] = {}
        self._requests: dict[str, tuple[str, ExecRef, str]] = {}  # id -> recovery, member, type
        # Persisted parts changed since they were last taken (``snapshot_changes``),
        # each with the function that dumps it as it is then.
        self._changed: dict[str, Callable[[], Any]] = {}
        self._taken_seq = 0

    def snapshot(self) -> dict[str, Any]:
        """The engine's whole state as JSON-able data (outputs already pulled)."""
        return {
            "agent": self.agent,
            "seq": self._seq,
            "authority": self._authority.dump(),
            "signals": [
                [sender, sid, rid, raw.decode("utf-8")]
                for (sender, sid), (rid, raw) in sorted(self._signals.items())
            ],
            "recoveries": [dump_recovery(r) for _, r in sorted(self._recoveries.items())],
        }

    def snapshot_parts(self) -> dict[str, Any]:
        """The same state cut into parts, by key: ``from_snapshot({"parts": ...})`` reads it.

        A store keeps the parts and, after each step, rewrites only those
        :meth:`snapshot_changes` names (draft §11.2: the write-ahead state of a
        coordinator with a thousand members must not cost a thousand rows per
        reply).
        """
        self._changed.clear()
        self._taken_seq = self._seq
        parts: dict[str, Any] = {
            part_key("engine"): {"agent": self.agent, "seq": self._seq},
            _AUTHORITY: self._authority.dump(),
        }
        for (sender, sid), (rid, raw) in self._signals.items():
            parts[part_key("signal", sender, sid)] = [rid, raw.decode("utf-8")]
        for rec in self._recoveries.values():
            parts[part_key("recovery", rec.id)] = dump_header(rec)
            if rec.edges:
                parts[part_key("edges", rec.id, 0)] = dump_edges(rec.edges)
            for track in rec.tracks.values():
                parts[part_key("track", rec.id, *dump_ref(track.execution))] = dump_track(track)
        return parts

    def snapshot_changes(self) -> dict[str, Any]:
        """The parts changed since the last call (or :meth:`snapshot_parts`), as they are now."""
        changed, self._changed = self._changed, {}
        parts = {key: dump() for key, dump in changed.items()}
        if self._seq != self._taken_seq:
            self._taken_seq = self._seq
            parts[part_key("engine")] = {"agent": self.agent, "seq": self._seq}
        return parts

    def _touch(self, rec: RecoveryData, track: TrackData | None = None) -> None:
        if track is None:
            self._changed[part_key("recovery", rec.id)] = lambda: dump_header(rec)
        else:
            key = part_key("track", rec.id, *dump_ref(track.execution))
            self._changed[key] = lambda: dump_track(track)

    def _touch_authority(self) -> None:
        self._changed[_AUTHORITY] = self._authority.dump

    def _touch_signal(self, sender: str, sid: str) -> None:
        def dump() -> list[Any]:
            rid, raw = self._signals[sender, sid]
            return [rid, raw.decode("utf-8")]

        self._changed[part_key("signal", sender, sid)] = dump

    def _load(self, data: dict[str, Any]) -> None:
        """Fill a new engine from :meth:`snapshot` output."""
        self._seq = data["seq"]
        self._authority = Authorities.load(data["authority"])
        for sender, sid, rid, raw in data["signals"]:
            self._signals[sender, sid] = (rid, raw.encode("utf-8"))
        for item in data["recoveries"]:
            rec = load_recovery(item, self._bounds)
            self._recoveries[rec.id] = rec
            # The request index is derived: every request belongs to one member.
            for track in rec.tracks.values():
                for mid, kind in track.requests.items():
                    self._requests[mid] = (rec.id, track.execution, kind)
