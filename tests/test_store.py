"""The durable store (draft §11.2, §15): an append-only log of linked, signed
records in one SQLite file, and engines persisted write-ahead so a process
killed at any point resumes where it was. Real SQLite files, real keys, and
the real coordinator and participant engines."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from test_records_kit import COORDINATOR, WORKER, chain, record, signer, tokens, verifier

from agent_recovery._coordinator import Coordinator
from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._events import RecoveryEnded, RollbackRequested
from agent_recovery._messages import RecoveryRecord
from agent_recovery._model import (
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    RecordResult,
    Reversibility,
    Severity,
    Status,
)
from agent_recovery._participant import Participant
from agent_recovery._participant_records import assemble
from agent_recovery._records import GENESIS, verify_log
from agent_recovery._wire import decode
from agent_recovery.security.jws import Signer
from agent_recovery.store import DurableParty, OutboxEntry, Store, StoreError

SIGNER = signer()
VERIFIER = verifier(SIGNER)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "agent.db") as s:
        yield s


# -- the log ---------------------------------------------------------------------------


def test_the_file_uses_wal_and_full_synchronous_commits(store: Store, tmp_path: Path) -> None:
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(tmp_path / "agent.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_append_links_signs_and_stores_in_order(store: Store) -> None:
    entries = store.append(SIGNER, [record(i) for i in range(5)])
    assert [e.seq for e in entries] == list(range(5))
    stored = list(store.entries(SIGNER.owner))
    assert stored == entries
    assert tokens(chain([record(i) for i in range(5)], SIGNER)) == [e.token for e in stored]
    report = verify_log((e.token for e in stored), VERIFIER)
    assert report.ok and report.head == store.head(SIGNER.owner)


def test_appends_continue_the_chain_across_calls_and_reopenings(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as s:
        s.append(SIGNER, [record(0)])
        s.append(SIGNER, [record(1), record(2)])
    with Store(tmp_path / "a.db") as s:
        s.append(SIGNER, [record(3)])
        assert s.count(SIGNER.owner) == 4
        assert verify_log((e.token for e in s.entries(SIGNER.owner)), VERIFIER).ok


def test_two_stores_on_one_file_share_one_chain(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as one, Store(tmp_path / "a.db") as two:
        for i in range(6):
            (one if i % 2 else two).append(SIGNER, [record(i)])
        assert verify_log((e.token for e in one.entries(SIGNER.owner)), VERIFIER).checked == 6


def test_each_issuer_has_its_own_chain(store: Store) -> None:
    worker = signer(WORKER, seed=3)
    store.append(SIGNER, [record(0), record(1)])
    store.append(worker, [record(0, issuer=WORKER)])
    assert store.chains() == sorted([COORDINATOR, WORKER])
    assert store.head(WORKER).next_seq == 1 and store.head(COORDINATOR).next_seq == 2
    assert store.head("nobody") == GENESIS


def test_the_log_cannot_be_updated_or_deleted_even_with_sql(store: Store) -> None:
    store.append(SIGNER, [record(0)])
    for sql in ("UPDATE log SET token = x'00'", "DELETE FROM log"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            store._conn.execute(sql)
    assert store.count(SIGNER.owner) == 1


def test_a_failed_append_stores_nothing_of_its_batch(store: Store) -> None:
    store.append(SIGNER, [record(0)])
    with pytest.raises(LocalProtocolError) as info:
        store.append(SIGNER, [record(1), record(0)])  # rec-0 again
    assert info.value.code is ErrorCode.CONFLICT
    assert store.count(SIGNER.owner) == 1
    assert store.append(SIGNER, [record(1)])[0].seq == 1


def test_an_append_inside_a_transaction_that_fails_leaves_no_trace(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.append(SIGNER, [record(0)])
        store.enqueue("p", [(WORKER, "m-1", None, b"x")])
        raise RuntimeError("crash before commit")
    assert store.count(SIGNER.owner) == 0 and store.pending("p") == []


def test_the_outbox_keeps_order_until_marked_sent(store: Store) -> None:
    queued = store.enqueue("p", [(WORKER, f"m-{i}", None, b"t%d" % i) for i in range(3)])
    assert store.pending("p") == queued and store.pending("q") == []
    store.mark_sent("p", [queued[1].id, 999])
    assert [e.message_id for e in store.pending("p")] == ["m-0", "m-2"]


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(StoreError, match="not a SQLite store"):
        Store(junk)
    with pytest.raises(StoreError):
        Store(tmp_path / "missing.db", readonly=True)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema', '99')")
    with pytest.raises(StoreError, match="schema 99"):
        Store(other)


def test_a_read_only_store_reads_and_cannot_write(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as s:
        s.append(SIGNER, [record(0)])
    with Store(tmp_path / "a.db", readonly=True) as ro:
        assert ro.count(SIGNER.owner) == 1
        with pytest.raises(sqlite3.OperationalError):
            ro.append(SIGNER, [record(1)])


# -- durable engines -------------------------------------------------------------------

C = "spiffe://example.org/planner"
P = "spiffe://example.org/pusher"
X = ExecRef(agent=P, exec="push-1")  # fails
Y = ExecRef(agent=P, exec="ticket-1")  # consumed X's output
NOW = 1_800_000_000_000
C_SIGNER = signer(C, seed=5)
P_SIGNER = signer(P, seed=6)
KEYS = verifier(C_SIGNER, P_SIGNER)


def _coordinator() -> Coordinator:
    engine = Coordinator(agent=C)
    engine.add_execution(X, [C])
    engine.add_execution(Y, [C])
    return engine


def _participant() -> Participant:
    engine = Participant(agent=P)
    engine.register_execution(
        X, Facts(status=Status.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0), [C]
    )
    engine.register_execution(
        Y, Facts(status=Status.ACTIVE, reversibility=Reversibility.COMPENSABLE, checkpoint=0), [C]
    )
    return engine


def _open(path: Path, who: str) -> DurableParty[Coordinator] | DurableParty[Participant]:
    store = Store(path)
    if who == C:
        return DurableParty(
            store,
            name="coordinator",
            signer=C_SIGNER,
            create=_coordinator,
            restore=Coordinator.from_snapshot,
        )
    return DurableParty(
        store,
        name="participant",
        signer=P_SIGNER,
        create=_participant,
        restore=Participant.from_snapshot,
    )


class World:
    """Two agents, each a DurableParty over its own store file, joined by a queue.

    ``crash(agent)`` drops the agent's process state (nothing is closed
    cleanly, nothing not yet committed survives) and restarts it from its
    file; what it had queued but not sent is re-sent from its outbox.
    """

    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.paths = {C: tmp / "coordinator.db", P: tmp / "participant.db"}
        self.parties = {who: _open(path, who) for who, path in self.paths.items()}
        self.wire: list[tuple[str, OutboxEntry]] = []
        self.undone: list[ExecRef] = []

    def party(self, who: str) -> DurableParty[Coordinator] | DurableParty[Participant]:
        return self.parties[who]

    def queue(self, who: str, outbound: list[OutboxEntry]) -> None:
        self.wire += [(who, out) for out in outbound]

    def crash(self, who: str) -> None:
        self.wire = [(w, o) for w, o in self.wire if w != who]  # in flight: lost
        self.parties[who] = _open(self.paths[who], who)
        self.queue(who, self.parties[who].pending_outbox())
        self.work()

    def deliver_one(self) -> None:
        sender, out = self.wire.pop(0)
        self.parties[sender].mark_sent(out.id)
        verified = KEYS.verify(out.token)
        message = decode(verified.payload)
        target = self.parties[message.recipient]
        self.queue(message.recipient, target.receive(verified.owner, message, NOW).outbound)
        self.work()

    def work(self) -> None:
        """The participant's application does the undo work it is asked for."""
        party = self.parties[P]
        while (event := party.engine.next_event()) is not None:
            if not isinstance(event, RollbackRequested):
                continue
            if event.replayed and event.execution in self.undone:
                pass  # done before the crash: report, do not undo again
            else:
                self.undone.append(event.execution)
            outcome = Outcome.RESTORED if event.execution == X else Outcome.COMPENSATED
            step = party.call(
                lambda e, ev=event, o=outcome: e.rollback_done(  # type: ignore[misc]
                    ev.execution, o, checkpoint=ev.target, now=NOW
                )
            )
            self.queue(P, step.outbound)

    def start(self) -> None:
        p = self.parties[P]
        p.call(lambda e: e.take_checkpoint(X))  # type: ignore[union-attr]
        p.call(lambda e: e.take_checkpoint(Y))  # type: ignore[union-attr]
        edge = Dependency(producer=X, consumer=Y, produced_after=1, consumed_after=1)
        p.call(lambda e: e.record_dependency(edge))  # type: ignore[union-attr]
        step = p.call(
            lambda e: e.signal_failure(  # type: ignore[union-attr]
                execution=X,
                to=C,
                failure_type="tool-error",
                severity=Severity.ERROR,
                retryable=False,
                effect_state=EffectState.PARTIAL,
                checkpoint=0,
                now=NOW,
            )
        )
        self.queue(P, step.outbound)

    def chain(self, who: str) -> list[RecoveryRecord]:
        entries = list(self.parties[who].records())
        assert verify_log((e.token for e in entries), KEYS, issuer=who).ok
        return [decode(KEYS.verify(e.token).payload) for e in entries]  # type: ignore[misc]


def test_a_recovery_through_durable_parties_leaves_two_verified_chains(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.start()
    while world.wire:
        world.deliver_one()
    (record_c,) = world.chain(C)
    assert record_c.result is RecordResult.COMPLETED
    assert {m.execution: m.outcome for m in record_c.members} == {
        X: "restored",
        Y: "compensated",
    }
    records_p = world.chain(P)
    assert sorted(m.execution for r in records_p for m in r.members) == sorted([X, Y])
    assert all(r.recipient == C and r.recovery == record_c.recovery for r in records_p)
    assert sorted(world.undone) == sorted([X, Y])
    assert world.party(C).pending_outbox() == [] and world.party(P).pending_outbox() == []


def _steps_to_finish(tmp_path: Path) -> int:
    world = World(tmp_path)
    world.start()
    steps = 0
    while world.wire:
        world.deliver_one()
        steps += 1
    return steps


@pytest.fixture
def memory_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs where there is one: the in-process crashes below do not
    depend on fsync, and dozens of synchronous commits on a shared disk are slow."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm) as name:
        yield Path(name)


@pytest.mark.parametrize("who", [C, P])
def test_a_crash_after_any_step_resumes_exactly_there(memory_dir: Path, who: str) -> None:
    total = _steps_to_finish(memory_dir / "reference")
    assert total > 6
    for crash_at in range(total):
        world = World(memory_dir / f"{who}-{crash_at}")
        world.start()
        steps = 0
        while world.wire:
            if steps == crash_at:
                world.crash(who)
            world.deliver_one()
            steps += 1
        (record_c,) = world.chain(C)
        assert record_c.result is RecordResult.COMPLETED, crash_at
        assert len(world.chain(P)) == 2, crash_at
        # No execution's work was undone twice (the application saw each once).
        assert sorted(world.undone) == sorted([X, Y]), crash_at


def test_resent_messages_are_byte_identical(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.start()
    world.deliver_one()  # the coordinator took the signal: ack + halts queued
    queued = [o for w, o in world.wire if w == C]
    assert queued
    world.crash(C)
    resent = [o for w, o in world.wire if w == C]
    assert resent == queued


def test_a_step_that_raises_changes_nothing(tmp_path: Path) -> None:
    world = World(tmp_path)
    party = world.party(P)
    before = _stored(party.store)
    with pytest.raises(LocalProtocolError):
        party.call(lambda e: e.take_checkpoint(ExecRef(agent=P, exec="nope")))  # type: ignore[union-attr]
    assert _stored(party.store) == before
    assert party.engine.snapshot() == before
    assert party.pending_outbox() == []


def test_a_failure_inside_the_commit_rolls_the_engine_back(tmp_path: Path) -> None:
    class Broken(Signer):
        def sign(self, payload: bytes) -> bytes:
            raise OSError("disk full")

    world = World(tmp_path)
    world.start()
    world.deliver_one()
    world.deliver_one()  # the ack
    halt = next(o for w, o in world.wire if w == C)
    message = decode(KEYS.verify(halt.token).payload)
    party = world.party(P)
    before = party.engine.snapshot()
    good = party.signer
    party.signer = Broken(_key(6), kid=good.kid, owner=P)
    with pytest.raises(OSError, match="disk full"):
        party.receive(C, message, NOW)
    assert party.engine.snapshot() == before
    assert _stored(party.store) == before
    party.signer = good
    assert party.receive(C, message, NOW).reply_to(message) is not None


def _stored(store: Store) -> dict[str, Any]:
    """The participant's state as the store holds it: parts, one per execution."""
    parts = store.load_parts("participant")
    assert parts is not None and store.load_snapshot("participant") is None
    return assemble(parts)


def _key(seed: int) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def test_the_coordinator_record_ends_the_recovery_once(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.start()
    ended = []
    while world.wire:
        world.deliver_one()
        while (event := world.party(C).engine.next_event()) is not None:
            if isinstance(event, RecoveryEnded):
                ended.append(event)
    assert len(ended) == 1
