"""An engine whose every step is persisted write-ahead (draft §11.2, §15).

:class:`DurableParty` wraps a coordinator or participant engine and a
:class:`~agent_recovery.store.Store`. It is what a runtime (the HTTP server, the
A2A adapter) drives instead of the bare engine::

    party = DurableParty(
        store, name="coordinator", signer=signer,
        create=lambda: Coordinator(agent=me, ids=ids),
        restore=lambda data: Coordinator.from_snapshot(data, ids=ids),
    )
    # after a restart, first hand over what a committed step had queued:
    for out in party.pending_outbox():
        transport.send(out.recipient, out.token)   # a duplicate is harmless
        party.mark_sent(out.id)
    # then, for each input:
    step = party.receive(sender, message, now)     # or handle_timer(now), or
    step = party.call(lambda engine: engine.abort(recovery, now))
    for out in step.outbound:                      # signed, durable, in order
        transport.send(out.recipient, out.token)
        party.mark_sent(out.id)
    while (event := party.engine.next_event()) is not None: ...

Each step runs the input on the engine, then pulls its outputs and, in ONE
transaction, appends the new recovery records to the issuer's chain (linked,
encoded and signed there, ``Store.append``), signs every outbound message and
queues it in the outbox, and saves the engine's snapshot. An engine that names
what a step changed (:class:`Incremental`, the coordinator) is saved as parts:
only the parts the step changed are written, so a step costs what it changed,
not what the engine holds. Only after the
commit does the step return, so nothing leaves the process before it is
durable: a process killed at any instant restarts from its last committed
step and re-sends what was queued but not marked sent. Outbox entries keep
their exact signed bytes, so a re-sent message is an exact duplicate, which
receivers answer idempotently (draft §9.3).

A step that raises changes nothing: the engine is rebuilt from the last
committed snapshot and the exception propagates (fail closed). Events
(``engine.next_event()``) are not persisted; drain them after every step. A
rebuilt participant raises again the local work it still owes
(``Participant.from_snapshot``).

Both engines supply their records through ``records()``: the coordinator's
account of each recovery, and the participant's own record of each rollback it
answered (draft §11.4). Each party appends to the chain of its signing key, so
an agent that is both coordinator and participant keeps one chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from .._errors import ErrorCode, LocalProtocolError
from .._messages import Message, RecoveryRecord
from .._records import TokenSigner
from .._wire import encode
from ._sqlite import LogEntry, OutboxEntry, Store

__all__ = ["DurableParty", "Engine", "Incremental", "Step"]


class Engine(Protocol):
    """What :class:`DurableParty` needs of an engine (both engines have it)."""

    def receive(self, sender: str, message: Message, now: int) -> None: ...

    def handle_timer(self, now: int) -> None: ...

    def data_to_send(self) -> list[Message]: ...

    def records(self) -> list[RecoveryRecord]: ...

    def snapshot(self) -> dict[str, Any]: ...


@runtime_checkable
class Incremental(Protocol):
    """An engine whose state is saved as parts (``from_snapshot({"parts": ...})`` reads them)."""

    def snapshot_parts(self) -> dict[str, Any]:
        """Every part, by key; what was changed before is forgotten."""
        ...

    def snapshot_changes(self) -> dict[str, Any]:
        """The parts changed since the last call (or ``snapshot_parts``), as they are now."""
        ...


E = TypeVar("E", bound=Engine)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step(Generic[T_co]):
    """What one committed step produced: durable before this object exists."""

    value: T_co
    outbound: list[OutboxEntry] = field(default_factory=list)
    records: list[LogEntry] = field(default_factory=list)

    def reply_to(self, message: Message) -> OutboxEntry | None:
        """The outbound answer to ``message`` (for a binding's synchronous reply)."""
        for out in self.outbound:
            if out.reply_to == message.id and out.recipient == message.sender:
                return out
        return None


class DurableParty(Generic[E]):
    """One engine, one store, one signing key; see the module docstring for use."""

    __slots__ = (
        "_create",
        "_engine",
        "_grouped",
        "_parts",
        "_restore",
        "_saved",
        "_unsaved",
        "name",
        "signer",
        "store",
    )

    def __init__(
        self,
        store: Store,
        *,
        name: str,
        signer: TokenSigner,
        create: Callable[[], E],
        restore: Callable[[dict[str, Any]], E],
    ) -> None:
        self.store = store
        self.name = name
        self.signer = signer
        self._create = create
        self._restore = restore
        self._saved = ""
        self._parts: dict[str, str] = {}  # the text of each part as stored
        self._grouped = False
        self._unsaved = False
        self._engine = self._load()

    @property
    def engine(self) -> E:
        """The live engine, for views and events. Change it only through a step."""
        return self._engine

    # ------------------------------------------------------------------ inputs

    def receive(self, sender: str, message: Message, now: int) -> Step[None]:
        """``engine.receive`` of an authenticated message, made durable."""
        return self._step(lambda e: e.receive(sender, message, now))

    def handle_timer(self, now: int) -> Step[None]:
        return self._step(lambda e: e.handle_timer(now))

    def call(self, fn: Callable[[E], T]) -> Step[T]:
        """Any API call on the engine (``rollback_done``, ``abort``...), made durable."""
        return self._step(fn)

    @contextmanager
    def group(self) -> Iterator[None]:
        """Steps taken inside commit together, in one transaction with one snapshot.

        For work that follows committed inputs, such as the results of the
        undos a batch of rollbacks asked for: ``n`` steps then cost one
        snapshot and one commit instead of ``n``. A step taken inside is
        durable only when the group ends: nothing it queued may leave before.
        If anything inside raises, the whole group is forgotten (fail closed).
        """
        if self._grouped:
            yield
            return
        self._grouped = True
        try:
            with self.store.transaction():
                yield
                if self._unsaved:
                    self._save(self._engine)
        except BaseException:
            self._engine = self._load()
            raise
        finally:
            self._grouped = False
            self._unsaved = False

    # ------------------------------------------------------------------ outputs

    def pending_outbox(self) -> list[OutboxEntry]:
        """Messages committed but not yet marked sent, oldest first."""
        return self.store.pending(self.name)

    def mark_sent(self, *ids: int) -> None:
        """The transport handed these over (a reply counts); they are not re-sent."""
        self.store.mark_sent(self.name, ids)

    def records(self) -> Iterator[LogEntry]:
        """This party's chain: every record its key signed, in order."""
        return self.store.entries(self.signer.owner)

    # ------------------------------------------------------------------ internals

    def _load(self) -> E:
        self._saved = ""
        self._parts = {}
        parts = self.store.load_parts(self.name)
        if parts is not None:
            self._parts = {key: _dump(value) for key, value in parts.items()}
            return self._restore({"parts": parts})
        data = self.store.load_snapshot(self.name)
        if data is not None:
            self._saved = _dump(data)
            engine = self._restore(data)
            if isinstance(engine, Incremental):
                with self.store.transaction():  # kept whole before: now as parts
                    self._save(engine, whole=True)
            return engine
        engine = self._create()
        with self.store.transaction():
            self._save(engine, whole=True)
        return engine

    def _save(self, engine: E, *, whole: bool = False) -> None:
        if isinstance(engine, Incremental):
            if whole:
                self.store.delete_snapshot(self.name)
                self.store.delete_parts(self.name)
                self._parts = {}
                parts = engine.snapshot_parts()
            else:
                parts = engine.snapshot_changes()
            known = self._parts
            texts = {key: _dump(value) for key, value in parts.items()}
            changed = {key: text for key, text in texts.items() if known.get(key) != text}
            if changed:  # an input that changed nothing writes nothing
                self.store.save_parts(self.name, changed)
                known.update(changed)
            return
        text = _dump(engine.snapshot())
        if text != self._saved:  # an input that changed nothing writes nothing
            self.store.save_snapshot(self.name, text)
            self._saved = text

    def _step(self, fn: Callable[[E], T]) -> Step[T]:
        engine = self._engine
        try:
            value = fn(engine)
            messages = engine.data_to_send()
            records = engine.records()
            with self.store.transaction():
                entries = self.store.append(self.signer, records)
                outbound = self.store.enqueue(self.name, [self._sign(m) for m in messages])
                if self._grouped:
                    self._unsaved = True  # saved once, when the group ends
                else:
                    self._save(engine)
        except BaseException:
            # Fail closed: whatever the engine did in memory is forgotten.
            self._engine = self._load()
            raise
        return Step(value=value, outbound=outbound, records=entries)

    def _sign(self, message: Message) -> tuple[str, str, str | None, bytes]:
        if message.sender != self.signer.owner:
            raise LocalProtocolError(
                ErrorCode.UNAUTHORIZED, f"{self.signer.owner!r} cannot send as {message.sender!r}"
            )
        token = self.signer.sign(encode(message))
        return message.recipient, message.id, getattr(message, "reply_to", None), token


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)
