"""A small deterministic world of real engines behind real endpoints (draft §9, §13).

Four agents, each a sans-I/O engine wrapped in a
:class:`~agent_recovery.security.endpoint.Endpoint` with its own key, replay
cache, rate limiter and event log; every message between them is signed and
verified. Delivery is synchronous and in order; the clock is an argument.

- ``orchestrator`` (coordinator; Ed25519) is the recovery authority of
  ``deploy-1`` and ``watch-1`` (and of the spare executions below);
- ``deployer`` (participant; Ed25519) runs ``deploy-1`` and ten spare
  executions ``spare-1`` .. ``spare-10`` (for the rate-limit fixture);
- ``monitor`` (participant; ES256) runs ``watch-1``, which consumed output that
  ``deploy-1`` produced after its checkpoint 2, having taken checkpoint 1;
- ``intruder`` (participant; Ed25519) has a valid key and authority over
  nothing.

Fixtures (:data:`FIXTURES`) are named states reached by scripted steps; the
attack corpus names the fixture its case runs against. Used by
``generate.py``, ``tests/test_attack_corpus.py`` and ``bench/flood.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_recovery._coordinator import AppraisalPolicy, Coordinator
from agent_recovery._errors import RemoteProtocolError
from agent_recovery._events import RollbackRequested
from agent_recovery._messages import Message
from agent_recovery._model import (
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    Reversibility,
    Severity,
    Status,
)
from agent_recovery._participant import Participant
from agent_recovery._wire import decode, parse_timestamp
from agent_recovery.security.endpoint import Accepted, Endpoint, InboundError
from agent_recovery.security.events import EventLog
from agent_recovery.security.jws import Signer
from agent_recovery.security.keys import JwkSet, b64url_decode, load_jwk_set
from agent_recovery.security.override import OverrideEndpoint
from agent_recovery.security.ratelimit import RateLimiter, RatePolicy
from agent_recovery.security.replay import ReplayCache

KEYS = Path(__file__).resolve().parent.parent / "keys"

ORCHESTRATOR = "spiffe://ops.example/orchestrator"
DEPLOYER = "spiffe://ops.example/deployer"
MONITOR = "spiffe://ops.example/monitor"
INTRUDER = "spiffe://ops.example/intruder"
OPERATOR = "spiffe://ops.example/operator"
FLOODER = "spiffe://ops.example/flooder"  # used by bench/flood.py

DEPLOY = ExecRef(agent=DEPLOYER, exec="deploy-1")
WATCH = ExecRef(agent=MONITOR, exec="watch-1")
SPARES = tuple(ExecRef(agent=DEPLOYER, exec=f"spare-{i}") for i in range(1, 11))
EDGE = Dependency(consumer=WATCH, producer=DEPLOY, produced_after=2, consumed_after=1)

T0 = parse_timestamp("2026-11-23T18:00:00.000Z")
STEP = 1_000  # fixtures advance the clock one second per scripted step

KIDS = {
    ORCHESTRATOR: "orchestrator-1",
    DEPLOYER: "deployer-1",
    MONITOR: "monitor-1",
    INTRUDER: "intruder-1",
    OPERATOR: "operator-1",
    FLOODER: "flooder-1",
}
# One budget for every failure signal from one agent (draft §13.4): small
# enough that the rate-limit fixture is quick to reach.
FAILURE_SIGNAL_POLICY = RatePolicy(burst=10, interval_ms=6_000)


def signer(agent: str, *, typ: str | None = None) -> Signer:
    jwk = json.loads((KEYS / f"{KIDS[agent]}.jwk").read_text(encoding="utf-8"))
    return Signer.from_jwk(jwk) if typ is None else Signer.from_jwk(jwk, typ=typ)


def rogue_signer() -> Signer:
    """A key no receiver trusts (kid ``rogue-1``, claiming the deployer)."""
    jwk = json.loads((KEYS / "rogue-1.jwk").read_text(encoding="utf-8"))
    return Signer.from_jwk(jwk)


@dataclass
class Sent:
    """One message that crossed the network, as signed bytes and decoded."""

    at: int
    recipient: str
    data: bytes
    message: Message


@dataclass
class World:
    keys: JwkSet
    engines: dict[str, Coordinator | Participant]
    endpoints: dict[str, Endpoint]
    logs: dict[str, EventLog]
    override: OverrideEndpoint
    now: int = T0
    complete_rollbacks: bool = True
    sent: list[Sent] = field(default_factory=list)
    refusals: list[tuple[str, InboundError]] = field(default_factory=list)

    # -- state, for "nothing changed" ------------------------------------------

    def state(self, agent: str, now: int) -> dict[str, Any]:
        """Everything a refused message must leave unchanged at ``agent``.

        The engine's id counter (``seq``) is left out: an engine that refuses
        with an error reply spends a message id on the reply, which is not
        protocol state.
        """
        endpoint = self.endpoints[agent]
        engine = dict(self.engines[agent].snapshot())
        engine.pop("seq", None)
        state = {
            "engine": engine,
            "replay": endpoint.replay.snapshot(now),
            "rate": endpoint.limiter.snapshot(now),
            "outbox": list(endpoint._outbox),
        }
        if agent == ORCHESTRATOR:
            state["override-replay"] = self.override.replay.snapshot(now)
        return state

    # -- delivery ---------------------------------------------------------------

    def deliver(
        self, recipient: str, data: bytes, now: int, *, context: str | None = None
    ) -> Accepted | InboundError:
        """Hand ``data`` to ``recipient``'s endpoint; return what it said."""
        try:
            return self.endpoints[recipient].receive(data, now, recovery_context=context)
        except InboundError as exc:
            return exc

    def pump(self, now: int) -> None:
        """Deliver every queued message, and the replies, until the network is quiet."""
        self.now = now
        while True:
            self._application(now)
            moved = False
            for sender in sorted(self.endpoints):
                for recipient, data in self.endpoints[sender].data_to_send():
                    moved = True
                    self._send(sender, recipient, data, now)
            if not moved:
                return

    def _send(self, sender: str, recipient: str, data: bytes, now: int) -> None:
        self.sent.append(Sent(at=now, recipient=recipient, data=data, message=_decode(data)))
        outcome = self.deliver(recipient, data, now)
        if isinstance(outcome, InboundError):
            self.refusals.append((recipient, outcome))
        reply = outcome.reply
        if reply is not None:
            # The synchronous reply travels back to the sender (draft §12.1).
            self.sent.append(Sent(at=now, recipient=sender, data=reply, message=_decode(reply)))
            back = self.deliver(sender, reply, now)
            if isinstance(back, InboundError):
                self.refusals.append((sender, back))

    def _application(self, now: int) -> None:
        """What the agents' applications do: finish rollbacks they are asked for."""
        for engine in self.engines.values():
            while (event := engine.next_event()) is not None:
                if (
                    self.complete_rollbacks
                    and isinstance(engine, Participant)
                    and isinstance(event, RollbackRequested)
                ):
                    engine.rollback_done(
                        event.execution, Outcome.RESTORED, checkpoint=event.target, now=now
                    )
            if isinstance(engine, Coordinator):
                engine.records()  # recovery records belong to the records layer

    def tick(self, now: int) -> None:
        """Run every engine's timer if due, then pump."""
        for engine in self.engines.values():
            due = engine.get_timer()
            if due is not None and due <= now:
                engine.handle_timer(now)
        self.pump(now)

    # -- queries ----------------------------------------------------------------

    def last(self, type_: str, *, recipient: str | None = None) -> Sent:
        for item in reversed(self.sent):
            if type_ == item.message.TYPE and (recipient is None or item.recipient == recipient):
                return item
        raise LookupError(type_)


def _decode(data: bytes) -> Message:
    payload = data.split(b".")[1]
    try:
        return decode(b64url_decode(payload))
    except (ValueError, RemoteProtocolError) as exc:  # pragma: no cover - our own output
        raise AssertionError("an engine sent an undecodable message") from exc


def new_world(
    *,
    limiter: Callable[[], RateLimiter] | None = None,
    policy: AppraisalPolicy | None = None,
    extra_agents: tuple[str, ...] = (),
) -> World:
    keys = load_jwk_set(KEYS / "jwks.json")
    coordinator = Coordinator(agent=ORCHESTRATOR, policy=policy)
    engines: dict[str, Coordinator | Participant] = {
        ORCHESTRATOR: coordinator,
        DEPLOYER: Participant(agent=DEPLOYER),
        MONITOR: Participant(agent=MONITOR),
        INTRUDER: Participant(agent=INTRUDER),
        **{agent: Participant(agent=agent) for agent in extra_agents},
    }
    make_limiter = limiter or (lambda: RateLimiter({"failure-signal": FAILURE_SIGNAL_POLICY}))
    logs = {agent: EventLog() for agent in engines}
    endpoints = {
        agent: Endpoint(
            agent=agent,
            engine=engine,
            signer=signer(agent),
            resolver=keys,
            replay=ReplayCache(),
            limiter=make_limiter(),
            events=logs[agent],
        )
        for agent, engine in engines.items()
    }
    world = World(
        keys=keys,
        engines=engines,
        endpoints=endpoints,
        logs=logs,
        override=OverrideEndpoint(
            agent=ORCHESTRATOR,
            target=coordinator,
            operators=load_jwk_set(KEYS / "operators.json"),
            events=logs[ORCHESTRATOR],
        ),
    )
    _delegate(world)
    return world


def _delegate(world: World) -> None:
    """The work as delegated before anything fails (draft §5.2, §5.3, §5.4)."""
    orchestrator = world.engines[ORCHESTRATOR]
    deployer = world.engines[DEPLOYER]
    monitor = world.engines[MONITOR]
    assert isinstance(orchestrator, Coordinator)
    assert isinstance(deployer, Participant) and isinstance(monitor, Participant)
    active = Facts(status=Status.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0)
    for ref in (DEPLOY, *SPARES):
        orchestrator.add_execution(ref, [ORCHESTRATOR])
        deployer.register_execution(ref, active, [ORCHESTRATOR])
    orchestrator.add_execution(WATCH, [ORCHESTRATOR])
    monitor.register_execution(WATCH, active, [ORCHESTRATOR])
    deployer.take_checkpoint(DEPLOY)
    deployer.take_checkpoint(DEPLOY)  # output below is produced after checkpoint 2
    monitor.take_checkpoint(WATCH)  # consumed after checkpoint 1
    deployer.record_dependency(EDGE)
    monitor.record_dependency(EDGE)
    monitor.take_checkpoint(WATCH)


def fail_deploy(
    world: World, now: int, *, checkpoint: int = 1, evidence: tuple[str, ...] = ()
) -> str:
    deployer = world.engines[DEPLOYER]
    assert isinstance(deployer, Participant)
    return deployer.signal_failure(
        execution=DEPLOY,
        to=ORCHESTRATOR,
        failure_type="timeout",
        severity=Severity.ERROR,
        retryable=False,
        effect_state=EffectState.PARTIAL,
        checkpoint=checkpoint,
        now=now,
        detail="rollout did not become ready",
        evidence=evidence,
    )


# -- fixtures ---------------------------------------------------------------------


def fixture_idle() -> World:
    """Work delegated, nothing failed."""
    return new_world()


def fixture_restoring() -> World:
    """deploy-1 failed; both members halted; the monitor was asked to roll back
    watch-1 and has not answered (it is ``rolling-back``; the orchestrator waits)."""
    world = new_world()
    world.complete_rollbacks = False
    fail_deploy(world, T0 + STEP)
    world.pump(T0 + STEP)
    return world


def fixture_closed() -> World:
    """The recovery of deploy-1 ran to completion: restored, resumed, recorded."""
    world = new_world()
    fail_deploy(world, T0 + STEP)
    world.pump(T0 + STEP)
    return world


def fixture_second_recovery() -> World:
    """After the first recovery closed, deploy-1 failed again: a second recovery
    holds both executions and waits for the monitor's rollback result."""
    world = fixture_closed()
    world.complete_rollbacks = False
    deployer = world.engines[DEPLOYER]
    assert isinstance(deployer, Participant)
    deployer.take_checkpoint(DEPLOY)  # the redeployment makes progress ...
    fail_deploy(world, T0 + 2 * STEP)  # ... and fails after checkpoint 1 again
    world.pump(T0 + 2 * STEP)
    return world


def fixture_signals_exhausted() -> World:
    """The deployer spent its whole failure-signal budget (ten spare executions
    failed at once); the orchestrator runs ten recoveries."""
    world = new_world()
    world.complete_rollbacks = False
    deployer = world.engines[DEPLOYER]
    assert isinstance(deployer, Participant)
    for ref in SPARES:
        deployer.signal_failure(
            execution=ref,
            to=ORCHESTRATOR,
            failure_type="timeout",
            severity=Severity.ERROR,
            retryable=False,
            effect_state=EffectState.NONE,
            checkpoint=0,
            now=T0 + STEP,
        )
    world.pump(T0 + STEP)
    return world


FIXTURES: dict[str, Callable[[], World]] = {
    "idle": fixture_idle,
    "restoring": fixture_restoring,
    "closed": fixture_closed,
    "second-recovery": fixture_second_recovery,
    "signals-exhausted": fixture_signals_exhausted,
}
