"""Several agents, each with its engines, on one in-memory network and one clock.

An :class:`AgentNode` holds an agent's participant and, if it coordinates,
its coordinator. :class:`World` drives them: it delivers due messages, fires
due timers and runs scheduled application tasks, always in time order, and
after every input pulls the engines' outputs (messages to the network, events
and records to the :class:`Application`).

Crashing an agent keeps only what the engines' ``snapshot()`` returned (after
a JSON round trip, as a store would keep it); everything else is lost,
including messages that arrive while it is down and application work in
progress. Restarting rebuilds the engines with ``from_snapshot()``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from typing import Any, Protocol

from .._coordinator import AppraisalPolicy, Coordinator
from .._events import Event
from .._messages import (
    Ack,
    Error,
    FailureSignal,
    Halted,
    Message,
    RecoveryRecord,
    RollbackResult,
    Status,
)
from .._participant import Participant
from .._scope import Bounds
from .._state import Retry
from ._network import InMemoryNetwork

__all__ = ["AgentNode", "Application", "World"]

_TO_COORDINATOR = (FailureSignal, Halted, RollbackResult, Status)


class Application(Protocol):
    """The application side of every agent: acts on engine events, keeps records."""

    def on_event(self, world: World, node: AgentNode, event: Event) -> None: ...

    def on_record(self, world: World, node: AgentNode, record: RecoveryRecord) -> None: ...


class AgentNode:
    """One agent: a participant, optionally a coordinator, and its crash state."""

    def __init__(
        self,
        name: str,
        *,
        coordinator: bool,
        retry: Retry,
        policy: AppraisalPolicy | None,
        bounds: Bounds | None,
    ) -> None:
        self.name = name
        self.retry = retry
        self.policy = policy
        self.bounds = bounds
        self.participant: Participant | None = Participant(
            agent=name, ids=self._participant_ids, retry=retry
        )
        self.coordinator: Coordinator | None = (
            Coordinator(
                agent=name, ids=self._coordinator_ids, policy=policy, bounds=bounds, retry=retry
            )
            if coordinator
            else None
        )
        self.is_coordinator = coordinator
        self.up = True
        self.epoch = 0  # bumped by every crash: work scheduled before it is void
        self.crashes = 0
        self.routes: dict[str, str] = {}  # request id -> engine that sent it (the binding's map)
        self._saved: tuple[dict[str, Any], dict[str, Any] | None] | None = None

    def _participant_ids(self, n: int) -> str:
        return f"{self.name}.p{n}"

    def _coordinator_ids(self, n: int) -> str:
        return f"{self.name}.c{n}"

    @property
    def p(self) -> Participant:
        assert self.participant is not None, f"{self.name} is down"
        return self.participant

    @property
    def c(self) -> Coordinator:
        assert self.coordinator is not None, f"{self.name} is down or not a coordinator"
        return self.coordinator

    def engines(self) -> list[tuple[str, Participant | Coordinator]]:
        out: list[tuple[str, Participant | Coordinator]] = []
        if self.participant is not None:
            out.append(("p", self.participant))
        if self.coordinator is not None:
            out.append(("c", self.coordinator))
        return out

    def route(self, message: Message) -> Participant | Coordinator | None:
        if isinstance(message, (Ack, Error)):
            role = self.routes.get(message.reply_to)
            if role is None:
                return None
            return self.coordinator if role == "c" else self.participant
        if isinstance(message, _TO_COORDINATOR) and self.coordinator is not None:
            return self.coordinator
        return self.participant

    def crash(self) -> None:
        # What survives is what a store would hold: the JSON form of the snapshots.
        p = json.loads(json.dumps(self.p.snapshot()))
        c = None if self.coordinator is None else json.loads(json.dumps(self.c.snapshot()))
        self._saved = (p, c)
        self.participant = None
        self.coordinator = None
        self.up = False
        self.epoch += 1
        self.crashes += 1

    def restart(self) -> None:
        assert self._saved is not None
        p, c = self._saved
        self.participant = Participant.from_snapshot(p, ids=self._participant_ids, retry=self.retry)
        if c is not None:
            self.coordinator = Coordinator.from_snapshot(
                c,
                ids=self._coordinator_ids,
                policy=self.policy,
                bounds=self.bounds,
                retry=self.retry,
            )
        self._saved = None
        self.up = True


class World:
    """Drives every agent's engines through one network in time order."""

    def __init__(self, *, network: InMemoryNetwork, app: Application, now: int = 0) -> None:
        self.network = network
        self.app = app
        self.now = now
        self.agents: dict[str, AgentNode] = {}
        self._tasks: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.steps = 0

    def add_agent(
        self,
        name: str,
        *,
        coordinator: bool = False,
        retry: Retry | None = None,
        policy: AppraisalPolicy | None = None,
        bounds: Bounds | None = None,
    ) -> AgentNode:
        node = AgentNode(
            name,
            coordinator=coordinator,
            retry=retry if retry is not None else Retry(),
            policy=policy,
            bounds=bounds,
        )
        self.agents[name] = node
        return node

    def schedule(self, at: int, task: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._tasks, (max(at, self.now), self._seq, task))

    def crash(self, name: str) -> None:
        node = self.agents[name]
        if node.up:
            node.crash()
            self.network.set_down(name, True)

    def restart(self, name: str) -> None:
        node = self.agents[name]
        if not node.up:
            node.restart()
            self.network.set_down(name, False)
            self.pump(node)

    def pump(self, node: AgentNode) -> None:
        """Pull every output of ``node``'s engines (after each input)."""
        for role, engine in node.engines():
            for message in engine.data_to_send():
                node.routes[message.id] = role
                self.network.send(message, self.now)
            while (event := engine.next_event()) is not None:
                self.app.on_event(self, node, event)
            if isinstance(engine, Coordinator):
                for record in engine.records():
                    self.app.on_record(self, node, record)

    def _next_time(self) -> int | None:
        times = [t for t in (self.network.next_time(),) if t is not None]
        if self._tasks:
            times.append(self._tasks[0][0])
        for node in self.agents.values():
            for _, engine in node.engines():
                timer = engine.get_timer()
                if timer is not None:
                    times.append(max(timer, self.now))
        return min(times, default=None)

    def step(self, until: int) -> bool:
        """Process everything due at the next instant; False if nothing is due by ``until``."""
        at = self._next_time()
        if at is None or at > until:
            return False
        self.now = at
        self.steps += 1
        for message in self.network.pop_due(at):
            node = self.agents.get(message.recipient)
            if node is None or not node.up:
                continue
            engine = node.route(message)
            if engine is not None:
                engine.receive(message.sender, message, at)
                self.pump(node)
        while self._tasks and self._tasks[0][0] <= at:
            _, _, task = heapq.heappop(self._tasks)
            task()
        for node in self.agents.values():
            for _, engine in node.engines():
                timer = engine.get_timer()
                if timer is not None and timer <= at:
                    engine.handle_timer(at)
                    self.pump(node)
        return True

    def run(self, until: int, max_steps: int = 1_000_000) -> int:
        """Run until nothing is due by ``until``; return the number of instants processed."""
        steps = 0
        while steps < max_steps and self.step(until):
            steps += 1
        return steps

    def idle(self) -> bool:
        return self._next_time() is None
