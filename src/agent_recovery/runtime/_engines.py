"""One agent's engines behind one security endpoint, each step made durable.

The security :class:`~agent_recovery.security.Endpoint` verifies an inbound
message and hands it to one ``Engine``; the store's
:class:`~agent_recovery.store.DurableParty` runs one engine write-ahead. An
agent has a participant and, where it is a recovery authority, a coordinator.
:class:`AgentEngines` joins them: it routes each message to the engine it is
for, runs it as a durable step, and gives the endpoint only the synchronous
reply; every other message the step queued is left for the runtime to send
(:meth:`take_outbound`).

Routing (draft §6): ``failure-signal`` and the replies a coordinator waits for
(``halted``, ``rollback-result``, ``status``) go to the coordinator; requests
go to the participant; ``ack`` and ``error`` go to both, because each engine
ignores an answer to a request it did not send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._coordinator import Coordinator
from .._messages import Ack, Error, FailureSignal, Halted, Message, RollbackResult, Status
from .._participant import Participant
from ..bindings.http import peek
from ..store import DurableParty, OutboxEntry, Step

__all__ = ["AgentEngines", "Outbound"]

_TO_COORDINATOR = (FailureSignal, Halted, RollbackResult, Status)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    """A committed, signed message waiting to leave, and the party whose outbox holds it."""

    party: DurableParty[Any]
    entry: OutboxEntry


class AgentEngines:
    """The endpoint's engine: a participant and an optional coordinator, both durable."""

    __slots__ = (
        "_outbound",
        "_pending",
        "_replies",
        "_reply",
        "_sent",
        "coordinator",
        "on_step",
        "participant",
    )

    def __init__(
        self,
        participant: DurableParty[Participant],
        coordinator: DurableParty[Coordinator] | None = None,
    ) -> None:
        self.participant = participant
        self.coordinator = coordinator
        self._outbound: list[Outbound] = []
        self._reply: Message | None = None
        self._pending: dict[tuple[str, str], Message] = {}
        self._replies: dict[str, tuple[bytes, Message]] = {}
        # Replies that left as HTTP responses, to be marked sent in a batch: one
        # commit for many (a re-sent reply after a crash is a harmless duplicate).
        self._sent: list[tuple[DurableParty[Any], int]] = []
        self.on_step: Callable[[], None] | None = None

    def parties(self) -> list[DurableParty[Any]]:
        return (
            [self.participant]
            if self.coordinator is None
            else [
                self.participant,
                self.coordinator,
            ]
        )

    # -- the Engine protocol of security.endpoint ------------------------------------

    def receive(self, sender: str, message: Message, now: int) -> None:
        replies = self.receive_many([message], now)
        got = replies.get(message.id)
        self._reply = None if got is None else got[1]

    def data_to_send(self) -> list[Message]:
        """Only the synchronous reply: the endpoint signs it (to the same bytes) and caches it."""
        reply, self._reply = self._reply, None
        return [] if reply is None else [reply]

    # -- for the runtime ----------------------------------------------------------------

    def receive_many(self, messages: list[Message], now: int) -> dict[str, tuple[bytes, Message]]:
        """Deliver authenticated messages, one durable step per engine for all of them.

        Returns the synchronous reply to each message that has one, by message
        id: its signed bytes and the message. One step for many messages is
        group commit: one snapshot and one commit instead of one per message,
        which is what lets a coordinator keep up with a thousand members.
        """
        groups: dict[int, tuple[DurableParty[Any], list[Message]]] = {}
        for message in messages:
            for party in self._route(message):
                groups.setdefault(id(party), (party, []))[1].append(message)
        self._pending = {(m.sender, m.id): m for m in messages}
        self._replies = {}
        try:
            for party, batch in groups.values():
                self.collect(party, party.call(_feeder(batch, now)))
            if self.on_step is not None:
                self._work(self.on_step)
        finally:
            self._pending = {}
        replies, self._replies = self._replies, {}
        return replies

    def _work(self, work: Callable[[], None]) -> None:
        """The application's work for the messages just committed, as one group.

        The work (for example the undos a batch of rollbacks asks for) runs
        now, so that a result it produces at once can be the synchronous reply
        (draft §12.2). Its effects follow the committed inputs (write-ahead);
        the participant steps reporting them commit together (one snapshot for
        a batch of results, not one each). If the group fails, nothing it
        queued leaves: its steps are forgotten with it.
        """
        outbound, sent, replies = len(self._outbound), len(self._sent), dict(self._replies)
        try:
            with self.participant.group():
                work()
        except BaseException:
            del self._outbound[outbound:]
            del self._sent[sent:]
            self._replies = replies
            raise

    def _route(self, message: Message) -> list[DurableParty[Any]]:
        if isinstance(message, (Ack, Error)):
            return list(self.parties())
        if isinstance(message, _TO_COORDINATOR) and self.coordinator is not None:
            return [self.coordinator]
        return [self.participant]

    def collect(self, party: DurableParty[Any], step: Step[Any]) -> None:
        """Keep a step's outbound messages; an answer to a message being received is its reply.

        When a message gets two answers in the same exchange (an ``ack`` of a
        rollback, then its ``rollback-result``), the fuller one is the reply
        and the ``ack`` is not sent at all: it would say less, later.
        """
        for entry in step.outbound:
            asked = self._pending.get((entry.recipient, entry.reply_to or ""))
            if asked is not None:
                before = self._replies.get(asked.id)
                answer = peek(entry.token)
                if before is None or (isinstance(before[1], Ack) and not isinstance(answer, Ack)):
                    # Signing is deterministic (Ed25519; ES256 per RFC 6979): the
                    # endpoint's signature of this message is these very bytes.
                    self._replies[asked.id] = (entry.token, answer)
                    self._sent.append((party, entry.id))  # it leaves as the HTTP response
                    continue
            self._outbound.append(Outbound(party=party, entry=entry))

    def sent(self, party: DurableParty[Any], entry_id: int) -> None:
        """The transport handed an outbound message over; marked in the next batch."""
        self._sent.append((party, entry_id))

    def take_outbound(self) -> list[Outbound]:
        out, self._outbound = self._outbound, []
        return out

    def flush_sent(self) -> None:
        """Mark the replies sent since the last call, one commit per party."""
        sent, self._sent = self._sent, []
        for party in self.parties():
            ids = [i for p, i in sent if p is party]
            if ids:
                party.mark_sent(*ids)


def _feeder(messages: list[Message], now: int) -> Callable[[Any], None]:
    def feed(engine: Participant | Coordinator) -> None:
        for message in messages:
            engine.receive(message.sender, message, now)

    return feed
