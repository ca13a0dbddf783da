"""False failure signals from one agent while a legitimate recovery runs (draft §13.4).

    python bench/flood.py [--signals N] [--duration-s S] [--legit-at-s T]

Real engines behind real endpoints (``conformance/attacks/world.py``), real
Ed25519 signatures. A flooder agent that legitimately owns four executions
(one of which fed the monitor's ``watch-2``) sends ``--signals`` distinct,
validly signed failure signals for them, evenly over ``--duration-s``
seconds, to the orchestrator. At ``--legit-at-s`` the deployer's execution
really fails and its recovery (deploy-1 and watch-1) runs.

Time is simulated, and the orchestrator is a single FIFO server: every message
it handles occupies it for the *measured* CPU time its endpoint and engine
took (process time, so that other load on a shared machine does not count),
so a flood delays legitimate messages exactly as much as it would keep a
single-threaded receiver busy. Participants answer at once.
The legitimate recovery's latency (failure signal sent -> recovery closed) is
measured with the flood and again without it, in the same run.

The orchestrator appraises triggers with a policy that requires evidence
(draft §9.2): the legitimate signal carries an evidence reference, the
flood's do not. So a false signal that gets past the rate limit costs a
bounded pause (its members are halted, then resumed), never a rollback.

Memory bound (the receiver's state that a flood can grow): the replay cache
holds at most 100,000 entries / 64 MiB and only *accepted* messages (of
which the rate limit admits at most burst + T/interval per agent); the rate
table one integer per authenticated agent (at most 10,000); the security
event log at most 10,000 events; the coordinator one recovery per accepted
signal. Refused signals allocate nothing that outlives their processing.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import heapq
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance" / "attacks"))

import world as w

from agent_recovery._coordinator import Coordinator, Verdict
from agent_recovery._events import RecoveryEnded, RecoveryStarted
from agent_recovery._messages import FailureSignal, Halt, Message, Rollback
from agent_recovery._model import (
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    RecordResult,
    Reversibility,
    Severity,
    Status,
)
from agent_recovery._participant import Participant
from agent_recovery._scope import ScopeResult
from agent_recovery._wire import decode, encode
from agent_recovery.security.endpoint import InboundError
from agent_recovery.security.keys import b64url_decode

FLOOD_EXECS = tuple(ExecRef(agent=w.FLOODER, exec=f"batch-{i}") for i in range(1, 5))
VICTIM = ExecRef(agent=w.MONITOR, exec="watch-2")
VICTIM_EDGE = Dependency(
    consumer=VICTIM, producer=FLOOD_EXECS[0], produced_after=1, consumed_after=1
)
MAX_SET = 2  # a flood execution and, at most, the victim that consumed its output


class RequireEvidence:
    """Appraisal (draft §9.2): act only on a trigger that cites evidence."""

    def appraise(self, signal: FailureSignal, scope: ScopeResult) -> Verdict | None:
        return Verdict.ACCEPT if signal.evidence else Verdict.REJECT


class Run:
    """One simulated run: the orchestrator as a FIFO server, time in float ms."""

    def __init__(self, *, signals: int, duration_ms: int, legit_at_ms: int) -> None:
        self.world = w.new_world(policy=RequireEvidence(), extra_agents=(w.FLOODER,))
        self._delegate()
        self.signals = signals
        self.interval = duration_ms / signals if signals else 0.0
        self.legit_at = w.T0 + legit_at_ms
        self.queue: list[tuple[float, int, bytes]] = []  # arrivals at the orchestrator
        self.seq = 0
        self.free_at = float(w.T0)
        self.busy_ms = 0.0
        self.flood_signer = w.signer(w.FLOODER)
        self.flood_sent = 0
        self.flood_outcomes: Counter[str] = Counter()
        self.legit_recovery: str | None = None
        self.legit_closed: float | None = None
        self.legit_result: RecordResult | None = None
        self.flood_recoveries: set[str] = set()
        self.sent: list[Message] = []  # what the orchestrator sent
        self.flood_span = (2**62, 0)  # first and last time a flood signal was served

    def _delegate(self) -> None:
        world = self.world
        orchestrator = world.engines[w.ORCHESTRATOR]
        flooder = world.engines[w.FLOODER]
        monitor = world.engines[w.MONITOR]
        assert isinstance(orchestrator, Coordinator)
        assert isinstance(flooder, Participant) and isinstance(monitor, Participant)
        active = Facts(status=Status.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0)
        for ref in FLOOD_EXECS:
            orchestrator.add_execution(ref, [w.ORCHESTRATOR])
            flooder.register_execution(ref, active, [w.ORCHESTRATOR])
            flooder.take_checkpoint(ref)
        orchestrator.add_execution(VICTIM, [w.ORCHESTRATOR])
        monitor.register_execution(VICTIM, active, [w.ORCHESTRATOR])
        monitor.take_checkpoint(VICTIM)
        flooder.record_dependency(VICTIM_EDGE)
        monitor.record_dependency(VICTIM_EDGE)

    # -- the orchestrator's queue ------------------------------------------------

    def _enqueue(self, at: float, data: bytes) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, data))

    def _next_flood_at(self) -> float | None:
        if self.flood_sent >= self.signals:
            return None
        return w.T0 + self.flood_sent * self.interval

    def _flood_message(self, at: float) -> bytes:
        i = self.flood_sent
        self.flood_sent += 1
        signal = FailureSignal(
            id=f"flood-{i}",
            sender=w.FLOODER,
            recipient=w.ORCHESTRATOR,
            iat=int(at),
            execution=FLOOD_EXECS[i % len(FLOOD_EXECS)],
            failure_type="timeout",
            severity=Severity.ERROR,
            retryable=False,
            effect_state=EffectState.UNKNOWN,
            checkpoint=0,
        )
        return self.flood_signer.sign(encode(signal))  # the attacker's cost, not counted

    # -- running -------------------------------------------------------------------

    def run(self) -> None:
        legit_started = False
        while True:
            flood_at = self._next_flood_at()
            queued_at = self.queue[0][0] if self.queue else None
            candidates = [t for t in (flood_at, queued_at) if t is not None]
            if not legit_started:
                candidates.append(float(self.legit_at))
            timer = self._timer()
            if timer is not None:
                candidates.append(timer)
            if not candidates or (self.legit_closed is not None and flood_at is None):
                return
            at = min(candidates)
            if not legit_started and at >= self.legit_at:
                legit_started = True
                # The real failure cites evidence (e.g. an execution context token).
                w.fail_deploy(self.world, self.legit_at, evidence=("ect:deploy-1/failed",))
                self._participants(float(self.legit_at))
                continue
            if timer is not None and at == timer:
                self._serve(at, None)
            elif flood_at is not None and at == flood_at:
                self._serve(at, self._flood_message(at), flood=True)
            else:
                _, _, data = heapq.heappop(self.queue)
                self._serve(at, data)

    def _timer(self) -> float | None:
        due = [e.get_timer() for e in self.world.engines.values()]
        found = [float(t) for t in due if t is not None]
        return min(found) if found else None

    def _serve(self, arrival: float, data: bytes | None, *, flood: bool = False) -> None:
        world = self.world
        start = max(arrival, self.free_at)
        now = int(start)
        endpoint = world.endpoints[w.ORCHESTRATOR]
        began = time.process_time()
        if flood:
            self.flood_span = (min(self.flood_span[0], now), max(self.flood_span[1], now))
        if data is None:
            for engine in world.engines.values():
                due = engine.get_timer()
                if due is not None and due <= now:
                    engine.handle_timer(now)
        else:
            outcome = world.deliver(w.ORCHESTRATOR, data, now)
            if flood:
                key = outcome.code.value if isinstance(outcome, InboundError) else "accepted"
                self.flood_outcomes[key] += 1
            if outcome.reply is not None:
                self._to_participant(outcome_sender(data), outcome.reply, now)
        self._events(now)
        outbound = endpoint.data_to_send()
        spent = (time.process_time() - began) * 1000
        self.busy_ms += spent
        self.free_at = start + spent
        if self.legit_closed is None and self.legit_result is not None:
            self.legit_closed = self.free_at
        for recipient, signed in outbound:
            self.sent.append(_decode(signed))
            self._to_participant(recipient, signed, int(self.free_at))
        self._participants(self.free_at)

    def _to_participant(self, recipient: str, data: bytes, now: int) -> None:
        outcome = self.world.deliver(recipient, data, now)
        if outcome.reply is not None:
            self._enqueue(float(now), outcome.reply)

    def _participants(self, at: float) -> None:
        """Participants act at once: finish rollbacks, send what they queued."""
        self.world._application(int(at))
        for agent, endpoint in self.world.endpoints.items():
            if agent == w.ORCHESTRATOR:
                continue
            for recipient, data in endpoint.data_to_send():
                if recipient == w.ORCHESTRATOR:
                    self._enqueue(at, data)
                else:  # pragma: no cover - participants only talk to the orchestrator
                    self._to_participant(recipient, data, int(at))

    def _events(self, now: int) -> None:
        orchestrator = self.world.engines[w.ORCHESTRATOR]
        assert isinstance(orchestrator, Coordinator)
        while (event := orchestrator.next_event()) is not None:
            if isinstance(event, RecoveryStarted):
                if event.origin.agent == w.FLOODER:
                    self.flood_recoveries.add(event.recovery)
                elif event.origin == w.DEPLOY:
                    self.legit_recovery = event.recovery
            elif isinstance(event, RecoveryEnded) and event.recovery == self.legit_recovery:
                self.legit_result = event.result  # closed when this service ends
        orchestrator.records()

    # -- figures ---------------------------------------------------------------------

    def halts(self) -> tuple[int, int]:
        """(executions halted, rollbacks requested) by recoveries the flood opened."""
        halted: set[tuple[str, str]] = set()
        rollbacks = 0
        for message in self.sent:
            if message.recovery in self.flood_recoveries:
                if isinstance(message, Halt):
                    halted.add((message.recovery, message.execution.exec))
                elif isinstance(message, Rollback):
                    rollbacks += 1
        return len(halted), rollbacks


def _decode(data: bytes) -> Message:
    return decode(b64url_decode(data.split(b".")[1]))


def outcome_sender(data: bytes) -> str:
    return _decode(data).sender


def simulate(*, signals: int, duration_ms: int, legit_at_ms: int) -> Run:
    run = Run(signals=signals, duration_ms=duration_ms, legit_at_ms=legit_at_ms)
    run.run()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=100_000)
    parser.add_argument("--duration-s", type=float, default=120.0)
    parser.add_argument("--legit-at-s", type=float, default=60.0)
    args = parser.parse_args()
    duration_ms = int(args.duration_s * 1000)
    legit_at_ms = int(args.legit_at_s * 1000)

    baseline = simulate(signals=0, duration_ms=duration_ms, legit_at_ms=legit_at_ms)
    assert baseline.legit_closed is not None
    base_latency = baseline.legit_closed - baseline.legit_at

    began = time.perf_counter()
    flood = simulate(signals=args.signals, duration_ms=duration_ms, legit_at_ms=legit_at_ms)
    wall = time.perf_counter() - began
    completed = flood.legit_closed is not None and flood.legit_result is RecordResult.COMPLETED
    latency = (flood.legit_closed - flood.legit_at) if flood.legit_closed is not None else None
    halts, rollbacks = flood.halts()
    endpoint = flood.world.endpoints[w.ORCHESTRATOR]
    orchestrator = flood.world.engines[w.ORCHESTRATOR]
    assert isinstance(orchestrator, Coordinator)
    policy = w.FAILURE_SIGNAL_POLICY
    # The bound applies to the time over which the orchestrator actually took
    # the flood in (longer than --duration-s if it fell behind).
    span = max(0, flood.flood_span[1] - flood.flood_span[0])
    admitted_bound = policy.admitted(span)
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"flood: {args.signals} signals over {args.duration_s:.0f} s simulated "
        f"({wall:.1f} s wall); orchestrator busy {flood.busy_ms / 1000:.1f} s "
        f"({flood.busy_ms / duration_ms:.0%} of the flood's span)"
    )
    print(f"flood outcomes at the orchestrator: {dict(sorted(flood.flood_outcomes.items()))}")
    print(
        f"rate limit {policy.burst} + 1 per {policy.interval_ms} ms admits at most "
        f"{admitted_bound} signals in {span} ms; each halts at most {MAX_SET} "
        f"executions -> bound {admitted_bound * MAX_SET} halts"
    )
    print(
        f"legitimate recovery: {flood.legit_result} after "
        f"{latency if latency is None else round(latency, 2)} ms "
        f"(without flood {base_latency:.2f} ms)"
    )
    print(
        f"receiver state: replay cache {len(endpoint.replay)} entries / "
        f"{endpoint.replay.bytes_used} B; rate table {len(endpoint.limiter)}; "
        f"events kept {len(flood.world.logs[w.ORCHESTRATOR])} of "
        f"{flood.world.logs[w.ORCHESTRATOR].total}; recoveries "
        f"{len(orchestrator.recoveries())}"
    )
    result = {
        "flood_signals": args.signals,
        "legit_completed": completed,
        "legit_latency_ratio": None if latency is None else round(latency / base_latency, 2),
        "legit_latency_ms": None if latency is None else round(latency, 2),
        "baseline_latency_ms": round(base_latency, 2),
        "flood_accepted": flood.flood_outcomes.get("accepted", 0),
        "flood_rate_limited": flood.flood_outcomes.get("rate-limited", 0),
        "admitted_bound": admitted_bound,
        "halts_caused": halts,
        "halts_bound": admitted_bound * MAX_SET,
        "rollbacks_caused": rollbacks,
        "max_rss_mb": round(max_rss_mb, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
