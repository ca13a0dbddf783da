"""A coordinator kept as parts, a step rewriting only what it changed (draft §11.2, §15).

Also: a store of schema version 1 (the whole snapshot in one row) is upgraded
and read as before, and a group of steps commits together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_store import C_SIGNER, P_SIGNER, X, Y, _coordinator, _participant

from agent_recovery._coordinator import Coordinator
from agent_recovery._model import Dependency, ExecRef
from agent_recovery._participant import Participant
from agent_recovery.store import DurableParty, Store
from agent_recovery.store._sqlite import SCHEMA_VERSION


def _party(path: Path) -> DurableParty[Coordinator]:
    return DurableParty(
        Store(path),
        name="coordinator",
        signer=C_SIGNER,
        create=_coordinator,
        restore=Coordinator.from_snapshot,
    )


def _rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Record what each call of ``Store.<name>`` writes: how many parts, or 1."""
    writes: list[int] = []
    original = getattr(Store, name)

    def counted(self: Store, party: str, data: Any) -> None:
        writes.append(len(data) if isinstance(data, dict) else 1)
        original(self, party, data)

    monkeypatch.setattr(Store, name, counted)
    return writes


def test_the_coordinator_is_kept_as_parts_and_restarts_identical(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    party = _party(path)
    party.call(lambda c: c.add_execution(ExecRef(agent="a", exec="z"), [C_SIGNER.owner]))
    before = party.engine.snapshot()
    party.store.close()
    assert _rows(path, "parts") >= 2 and _rows(path, "snapshots") == 0
    again = _party(path)
    assert again.engine.snapshot() == before
    again.store.close()


def test_a_step_writes_only_the_parts_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    party = _party(tmp_path / "c.db")
    writes = _counting(monkeypatch, "save_parts")
    for i in range(50):
        party.call(lambda c, i=i: c.add_execution(ExecRef(agent="a", exec=f"e{i}"), ["x"]))
    # Each call changes the authority part (and nothing else).
    assert writes == [1] * 50
    party.call(lambda c: None)  # a step that changes nothing writes nothing
    assert writes == [1] * 50
    party.store.close()


def test_a_version_1_store_is_upgraded_and_its_snapshot_read(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = _coordinator()
    with Store(path) as store:
        store.save_snapshot("coordinator", json.dumps(engine.snapshot()))
        store._conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
        store._conn.execute("DROP TABLE parts")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone()[0] == "1"
    with Store(path, readonly=True):
        pass  # a reader opens version 1 as is
    party = _party(path)
    assert party.engine.snapshot() == engine.snapshot()
    party.store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    # The whole snapshot was replaced by its parts, in one transaction.
    assert _rows(path, "snapshots") == 0 and _rows(path, "parts") > 0


def _participant_party(path: Path) -> DurableParty[Participant]:
    return DurableParty(
        Store(path),
        name="participant",
        signer=P_SIGNER,
        create=_participant,
        restore=Participant.from_snapshot,
    )


def test_steps_in_a_group_commit_together_with_one_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.db"
    party = _participant_party(path)
    saves = _counting(monkeypatch, "save_parts")
    with party.group():
        party.call(lambda p: p.take_checkpoint(X))
        party.call(lambda p: p.take_checkpoint(Y))
        assert saves == []  # nothing is saved before the group ends
    assert saves == [2]  # once, and only the two executions the steps changed
    party.store.close()
    again = _participant_party(path)
    assert again.engine.position(X) == 1 and again.engine.position(Y) == 1
    again.store.close()


def test_a_participant_step_writes_only_the_executions_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.db"
    party = _participant_party(path)
    saves = _counting(monkeypatch, "save_parts")
    party.call(lambda p: p.take_checkpoint(X))
    assert saves == [1]  # X, not Y nor the engine's own part
    party.call(lambda p: p.position(Y))  # a view changes nothing and writes nothing
    assert saves == [1]
    expected = party.engine.snapshot()
    party.store.close()
    again = _participant_party(path)
    assert again.engine.snapshot() == expected
    again.store.close()


def test_a_group_that_fails_is_forgotten_whole(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    party = _participant_party(path)
    before = party.engine.snapshot()
    with pytest.raises(RuntimeError), party.group():
        party.call(lambda p: p.take_checkpoint(X))
        edge = Dependency(consumer=Y, producer=X, produced_after=1, consumed_after=0)
        party.call(lambda p: p.record_dependency(edge))
        raise RuntimeError("the work failed")
    assert party.engine.snapshot() == before
    party.store.close()
    again = _participant_party(path)
    assert again.engine.snapshot() == before
    again.store.close()


def test_marking_sent_leaves_every_later_commit_synced(tmp_path: Path) -> None:
    party = _participant_party(tmp_path / "p.db")
    party.mark_sent(1, 2)  # committed without a sync of its own
    # draft §11.2: the steps that follow are still on stable storage when they return.
    assert party.store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with party.store.transaction():
        party.mark_sent(3)  # inside a step: it commits with the step
    assert party.store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    party.store.close()
