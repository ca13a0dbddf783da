"""The fault-injection simulator and the invariants it checks (draft §8).

Each scenario (``_scenario.py``) runs on a :class:`World`: agents with their
engines, an in-memory network that loses, duplicates, reorders and delays
messages while faults are on, crashes and restarts, and an application model
(:class:`SimApp`) that takes checkpoints, consumes outputs, fails, undoes work
when asked and keeps the ground truth. After the faults stop the run drains,
and these properties are checked against that ground truth:

S1  No surviving execution consumed tainted output: every execution that a
    genuine failure taints is restored or compensated to (or before) the
    checkpoint the rollback-set rule gives, or a recovery record discloses
    that it was not (irreversible, failed, refused or unknown with residual
    effects, or a recovery that escalated or was aborted).
S2  No execution is undone twice: the application is asked at most once per
    recovery and execution, and never asked when an earlier recovery already
    restored it to or before the target.
S3  Every recovery ends, with a record in which every member has a final
    outcome, or ``unknown`` with residual effects disclosed (members of an
    escalated, rejected or aborted recovery may have none: never asked).
S4  The rolled-back set equals the scope closure: nothing outside it is
    undone, nothing deeper than its target (no needless rollback).
L1  Once faults stop, every recovery terminates: final state, no request or
    answer owed, no execution left contained, every failure signal answered.

The ground truth taint is computed here with its own fixed point over every
edge the application recorded, not with ``_scope``, so the two cannot share a
mistake. The same scenarios also run two baselines a user might pick instead:
abort everything on any failure report, and local-only handling.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .._coordinator import Verdict
from .._events import (
    Event,
    HaltRequested,
    RecoveryEnded,
    Resumed,
    RollbackRequested,
    SignalAcknowledged,
    SignalRefused,
    SignalUndelivered,
)
from .._messages import FailureSignal, RecoveryRecord
from .._model import (
    Action,
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    Residual,
    Reversibility,
    Severity,
    Status,
)
from .._registry import OUTCOMES
from .._scope import Bounds, ScopeResult
from .._state import TERMINAL_RECOVERY_STATES, MemberState
from ._network import Faults, InMemoryNetwork
from ._scenario import Scenario, generate
from ._world import AgentNode, World

__all__ = [
    "EvidencePolicy",
    "ScenarioResult",
    "SimApp",
    "combine",
    "run_scenario",
    "simulate",
    "taint",
]

DRAIN = 4 * 3_600_000  # how long a run may take to settle after faults stop
_DISCLOSED = frozenset({Outcome.IRREVERSIBLE, Outcome.FAILED, Outcome.REFUSED, Outcome.UNKNOWN})
_NOT_ACTED = frozenset({"escalated", "aborted"})


class EvidencePolicy:
    """Appraisal: accept a trigger only if it carries valid evidence (draft §9.2).

    Pure: the verdict depends on the signal alone. False triggers in the
    simulator carry forged evidence, so they are rejected and nothing is undone.
    """

    def appraise(self, signal: FailureSignal, scope: ScopeResult) -> Verdict | None:
        return Verdict.ACCEPT if "valid" in signal.evidence else Verdict.REJECT


def taint(origin: ExecRef, checkpoint: int, edges: Iterable[Dependency]) -> dict[ExecRef, int]:
    """Ground truth (draft §7): each tainted execution and the checkpoint to restore."""
    out: dict[ExecRef, list[Dependency]] = {}
    for e in edges:
        if e.consumer != e.producer:
            out.setdefault(e.producer, []).append(e)
    target = {origin: checkpoint}
    queue = [origin]
    while queue:
        p = queue.pop()
        for e in out.get(p, ()):
            if e.produced_after >= target[p]:
                t = e.consumed_after
                if e.consumer not in target or t < target[e.consumer]:
                    target[e.consumer] = t
                    queue.append(e.consumer)
    return target


@dataclass(slots=True)
class _Exec:
    ref: ExecRef
    reversibility: Reversibility
    status: Status = Status.ACTIVE
    position: int = 0
    high: int = 0
    dirty: bool = False  # effects after ``position``
    quiescent: bool = False  # restored and released: local policy stops it
    undone: int = 0  # effective undo operations
    clean_by_protocol: bool = False  # restored by a recovery, untouched since
    contained_by: str | None = None
    first_effect: int | None = None

    def satisfied(self, target: int) -> bool:
        """Nothing after checkpoint ``target`` survives."""
        return self.position < target or (self.position == target and not self.dirty)

    def effect(self, now: int) -> None:
        self.dirty = True
        self.clean_by_protocol = False
        if self.first_effect is None:
            self.first_effect = now


@dataclass(slots=True)
class _Failure:
    origin: ExecRef
    genuine: bool
    checkpoint: int
    coordinator: str
    at: int
    signal: str
    acknowledged: bool = False
    recovery: str | None = None


class SimApp:
    """The application of every agent, and the ground truth the invariants use."""

    def __init__(self, scenario: Scenario, rng: random.Random) -> None:
        self.scenario = scenario
        self.rng = rng
        self.execs = {
            s.ref: _Exec(ref=s.ref, reversibility=s.reversibility) for s in scenario.executions
        }
        self.edges: list[tuple[int, Dependency]] = []
        self.failures: list[_Failure] = []
        self.records: dict[str, RecoveryRecord] = {}
        self.fresh: Counter[tuple[str, ExecRef]] = Counter()
        self.redundant = 0
        self.undelivered = 0
        self.refused_signals = 0
        self.takeovers = 0
        self.superseding = 0
        self.unknown_recorded = 0
        self.escalations: Counter[str] = Counter()
        self.first_signal: int | None = None

    # -- engine events ---------------------------------------------------------

    def on_event(self, world: World, node: AgentNode, event: Event) -> None:
        if isinstance(event, HaltRequested):
            x = self.execs[event.execution]
            if x.contained_by is not None and x.contained_by != event.recovery:
                self.takeovers += 1
            x.contained_by = event.recovery
        elif isinstance(event, RollbackRequested):
            self._rollback(world, node, event)
        elif isinstance(event, Resumed):
            self.execs[event.execution].contained_by = None
        elif isinstance(event, SignalAcknowledged):
            for f in self.failures:
                if f.signal == event.signal:
                    f.acknowledged = True
                    f.recovery = event.recovery
        elif isinstance(event, SignalUndelivered):
            self.undelivered += 1
        elif isinstance(event, SignalRefused):
            self.refused_signals += 1
        elif isinstance(event, RecoveryEnded):
            pass

    def on_record(self, world: World, node: AgentNode, record: RecoveryRecord) -> None:
        if record.supersedes is not None:
            self.superseding += 1
        else:
            self.unknown_recorded += sum(
                1 for m in record.members if m.outcome == Outcome.UNKNOWN.value
            )
            if record.escalation is not None:
                self.escalations[record.escalation.reason] += 1
        self.records[record.recovery] = record

    def _rollback(self, world: World, node: AgentNode, event: RollbackRequested) -> None:
        x = self.execs[event.execution]
        if not event.replayed:
            self.fresh[event.recovery, event.execution] += 1
            if x.clean_by_protocol and x.position <= event.target:
                self.redundant += 1  # the engine could have known: nothing to undo
        epoch = node.epoch

        def done() -> None:
            if node.epoch != epoch or not node.up:
                return  # lost in a crash; the restarted engine asks again
            p = node.p
            if p.owner_of(x.ref) is None or p.state_of(x.ref) is not MemberState.ROLLING_BACK:
                return
            outcome, checkpoint, residual = self._undo(x, event)
            if outcome is not Outcome.NOT_NEEDED:
                # draft §8.3: an undone execution is released to local policy
                # (here: it stops); one whose outcome left effects behind must
                # not forward outputs made after its target, which are tainted.
                x.quiescent = True
            p.rollback_done(x.ref, outcome, checkpoint=checkpoint, residual=residual, now=world.now)
            world.pump(node)

        world.schedule(world.now + self.rng.randint(5, 1_500), done)

    def _undo(
        self, x: _Exec, event: RollbackRequested
    ) -> tuple[Outcome, int, tuple[Residual, ...]]:
        if event.action is Action.NONE:
            return (
                Outcome.IRREVERSIBLE,
                x.position,
                (Residual(description=f"effects after checkpoint {event.target} stand"),),
            )
        if x.satisfied(event.target):
            return Outcome.NOT_NEEDED, x.position, ()
        if self.rng.random() < 0.03:
            return (
                Outcome.FAILED,
                x.position,
                (Residual(description="undo failed; effects remain"),),
            )
        x.position = event.target
        x.dirty = False
        x.undone += 1
        x.clean_by_protocol = True
        if x.reversibility is Reversibility.COMPENSABLE:
            return Outcome.COMPENSATED, event.target, ()
        return Outcome.RESTORED, event.target, ()

    # -- the plan ----------------------------------------------------------------

    def idle(self, world: World, ref: ExecRef) -> bool:
        node = world.agents[ref.agent]
        return node.up and node.p.state_of(ref) is MemberState.IDLE

    def checkpoint(self, world: World, ref: ExecRef) -> None:
        x = self.execs[ref]
        if x.status is not Status.ACTIVE or x.quiescent or not self.idle(world, ref):
            return
        x.position = x.high = world.agents[ref.agent].p.take_checkpoint(ref)
        x.dirty = False
        x.clean_by_protocol = False
        if x.first_effect is None:
            x.first_effect = world.now

    def consume(self, world: World, consumer: ExecRef, producer: ExecRef) -> None:
        c, p = self.execs[consumer], self.execs[producer]
        if c.status is not Status.ACTIVE or c.quiescent:
            return
        if p.status is Status.FAILED or p.quiescent:
            return
        if not (self.idle(world, consumer) and self.idle(world, producer)):
            return  # draft §8.1: a contained execution neither consumes nor forwards
        dep = Dependency(
            consumer=consumer,
            producer=producer,
            produced_after=p.position,
            consumed_after=c.position,
        )
        world.agents[producer.agent].p.record_dependency(dep)
        if consumer.agent != producer.agent:
            world.agents[consumer.agent].p.record_dependency(dep)
        c.effect(world.now)
        p.effect(world.now)
        self.edges.append((world.now, dep))

    def complete(self, world: World, ref: ExecRef) -> None:
        x = self.execs[ref]
        node = world.agents[ref.agent]
        if x.status is Status.ACTIVE and not x.quiescent and node.up:
            x.status = Status.COMPLETED
            node.p.set_status(ref, Status.COMPLETED)

    def fail(self, world: World, index: int, deadline: int) -> None:
        spec = self.scenario.failures[index]
        x = self.execs[spec.origin]
        if x.status is not Status.ACTIVE or x.quiescent:
            return
        if not self.idle(world, spec.origin):
            if world.now < deadline:  # contained or down: it fails once it runs again
                world.schedule(world.now + 1_000, partial(self.fail, world, index, deadline))
            return
        checkpoint = min(x.position, int(spec.last_good * (x.position + 1)))
        node = world.agents[spec.origin.agent]
        signal = node.p.signal_failure(
            execution=spec.origin,
            to=spec.coordinator,
            failure_type="execution-error",
            severity=Severity.ERROR,
            retryable=False,
            effect_state=EffectState.PARTIAL,
            checkpoint=checkpoint,
            now=world.now,
            evidence=("valid",) if spec.genuine else ("forged",),
        )
        if spec.genuine:
            x.status = Status.FAILED
        else:
            node.p.set_status(spec.origin, Status.ACTIVE)  # a false trigger: it runs on
        if self.first_signal is None:
            self.first_signal = world.now
        self.failures.append(
            _Failure(
                origin=spec.origin,
                genuine=spec.genuine,
                checkpoint=checkpoint,
                coordinator=spec.coordinator,
                at=world.now,
                signal=signal,
            )
        )
        world.pump(node)


@dataclass(slots=True)
class ScenarioResult:
    seed: str
    s1: int = 0
    s2: int = 0
    s3: int = 0
    s4: int = 0
    terminated: bool = True
    recoveries: int = 0
    results: Counter[str] = field(default_factory=Counter)
    escalations: Counter[str] = field(default_factory=Counter)
    rollbacks: int = 0
    unknown_recorded: int = 0
    superseding: int = 0
    takeovers: int = 0
    crashes: int = 0
    baseline_abort_all_needless: int = 0
    baseline_local_only_inconsistent: int = 0
    baseline_local_only_needless: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def safety_violations(self) -> int:
        return self.s1 + self.s2 + self.s3 + self.s4


def build_world(scenario: Scenario, *, loss: float, rng: random.Random) -> tuple[World, SimApp]:
    faults = Faults(
        loss=loss,
        duplicate=0.05,
        reorder=0.1,
        min_delay=1,
        max_delay=80,
        reorder_delay=2_000,
        until=scenario.faults_end,
    )
    app = SimApp(scenario, rng)
    world = World(network=InMemoryNetwork(faults=faults, seed=rng.randrange(2**32)), app=app)
    policy = EvidencePolicy()
    for name in scenario.agents:
        coordinating = name in scenario.coordinators
        bounds = Bounds(max_members=scenario.max_members.get(name)) if coordinating else None
        world.add_agent(name, coordinator=coordinating, policy=policy, bounds=bounds)
    for spec in scenario.executions:
        facts = Facts(status=Status.ACTIVE, reversibility=spec.reversibility, checkpoint=0)
        world.agents[spec.ref.agent].p.register_execution(spec.ref, facts, spec.authority)
        for c in spec.coordinators:
            world.agents[c].c.add_execution(spec.ref, spec.authority)
    for a in scenario.activities:
        if a.kind == "checkpoint":
            world.schedule(a.at, partial(app.checkpoint, world, a.execution))
        elif a.kind == "consume":
            assert a.producer is not None
            world.schedule(a.at, partial(app.consume, world, a.execution, a.producer))
        else:
            world.schedule(a.at, partial(app.complete, world, a.execution))
    for i, f in enumerate(scenario.failures):
        world.schedule(f.at, partial(app.fail, world, i, scenario.faults_end))
    for crash in scenario.crashes:
        world.schedule(crash.at, partial(world.crash, crash.agent))
        world.schedule(crash.at + crash.duration, partial(world.restart, crash.agent))
    return world, app


def run_scenario(seed: str, *, loss: float = 0.0, crashes: bool = True) -> ScenarioResult:
    """Run one scenario under the protocol; check S1 to S4 and L1; run the baselines."""
    scenario = generate(seed, crashes=crashes)
    rng = random.Random(f"run:{seed}")
    world, app = build_world(scenario, loss=loss, rng=rng)
    world.run(until=scenario.faults_end + DRAIN)
    result = ScenarioResult(seed=seed)
    result.crashes = sum(n.crashes for n in world.agents.values())
    stats = world.network.stats
    result.messages.update(
        sent=stats.sent, lost=stats.lost, duplicated=stats.duplicated, reordered=stats.reordered
    )
    _check(world, app, result)
    _baselines(scenario, app, result)
    return result


def _check(world: World, app: SimApp, result: ScenarioResult) -> None:
    edges = [dep for _, dep in app.edges]
    genuine = [f for f in app.failures if f.genuine]
    # L1: everything settled once faults stopped.
    coordinators = [world.agents[c] for c in app.scenario.coordinators]
    for node in world.agents.values():
        if not node.up:
            result.terminated = False
            result.problems.append(f"L1: {node.name} still down")
            continue
        for ref in node.p.executions():
            if node.p.state_of(ref) is not MemberState.IDLE:
                result.terminated = False
                result.problems.append(f"L1: {ref.exec} still contained")
        if node.p.get_timer() is not None:
            result.terminated = False
            result.problems.append(f"L1: {node.name} still signalling")
    for f in app.failures:
        if not f.acknowledged:
            result.terminated = False
            result.problems.append(f"L1: signal {f.signal} never answered")
    recovery_of: dict[str, str] = {}
    for node in coordinators:
        if not node.up:
            continue
        for rid in node.c.recoveries():
            result.recoveries += 1
            state = node.c.recovery_state(rid)
            if state not in TERMINAL_RECOVERY_STATES or node.c.busy(rid):
                result.terminated = False
                result.problems.append(f"L1: recovery {rid} in {state}")
            record = app.records.get(rid)
            if record is None:
                result.s3 += 1
                result.problems.append(f"S3: recovery {rid} has no record")
                continue
            recovery_of[record.trigger] = rid
            result.results[record.result.value] += 1
            for m in record.members:
                outcome = m.effective_outcome
                if outcome is None and record.result.value not in (*_NOT_ACTED, "rejected"):
                    result.s3 += 1
                    result.problems.append(f"S3: {m.execution.exec} without outcome in {rid}")
                if outcome in _DISCLOSED and not m.residual:
                    result.s3 += 1
                    result.problems.append(f"S3: {m.execution.exec} {outcome} undisclosed")

    # S1: every execution a genuine failure taints is undone or disclosed.
    disclosed: set[ExecRef] = set()
    for record in app.records.values():
        for m in record.members:
            if m.outcome is not None and OUTCOMES.effective(m.outcome) in _DISCLOSED:
                disclosed.add(m.execution)
    required: dict[ExecRef, int] = {}
    for f in genuine:
        closure = taint(f.origin, f.checkpoint, edges)
        opened = recovery_of.get(f.signal)
        latest = None if opened is None else app.records.get(opened)
        not_acted = latest is not None and latest.result.value in _NOT_ACTED
        for ref, target in closure.items():
            required[ref] = min(target, required.get(ref, target))
            x = app.execs[ref]
            if x.satisfied(target) or not_acted or ref in disclosed:
                continue
            result.s1 += 1
            result.problems.append(f"S1: {ref.exec} keeps tainted work after {target}")

    # S2: never undone twice.
    for (rid, ref), count in app.fresh.items():
        if count > 1:
            result.s2 += count - 1
            result.problems.append(f"S2: {ref.exec} asked {count} times by {rid}")
    if app.redundant:
        result.s2 += app.redundant
        result.problems.append(f"S2: {app.redundant} requests with nothing left to undo")

    # S4: no needless rollback.
    for ref, x in app.execs.items():
        result.rollbacks += x.undone
        if x.undone and (ref not in required or x.position < required[ref]):
            result.s4 += 1
            result.problems.append(f"S4: {ref.exec} undone needlessly")
    result.unknown_recorded = app.unknown_recorded
    result.superseding = app.superseding
    result.takeovers = app.takeovers
    result.escalations = app.escalations


def _baselines(scenario: Scenario, app: SimApp, result: ScenarioResult) -> None:
    """Abort-all and local-only handling of the same failures (draft Appendix: rationale)."""
    if not app.failures:
        return
    genuine = [f for f in app.failures if f.genuine]
    edges = [dep for _, dep in app.edges]
    tainted: set[ExecRef] = set()
    for f in genuine:
        tainted |= set(taint(f.origin, f.checkpoint, edges))
    # Abort everything on the first failure report (LRA cancel, a "fatal" policy):
    # every execution that had done anything is undone, needed or not.
    first = app.first_signal if app.first_signal is not None else 0
    touched = {
        r for r, x in app.execs.items() if x.first_effect is not None and x.first_effect < first
    }
    touched |= {f.origin for f in app.failures}
    result.baseline_abort_all_needless = len(touched - tainted)
    # Local-only: each failed agent restores its own execution; nobody is
    # contained, so the plan's later activity runs on tainted inputs.
    local_edges = _replay_without_containment(scenario, app)
    local_tainted: set[ExecRef] = set()
    for f in genuine:
        local_tainted |= set(taint(f.origin, f.checkpoint, local_edges))
    result.baseline_local_only_inconsistent = len(local_tainted - {f.origin for f in genuine})
    result.baseline_local_only_needless = sum(1 for f in app.failures if not f.genuine)


def _replay_without_containment(scenario: Scenario, app: SimApp) -> list[Dependency]:
    position = {s.ref: 0 for s in scenario.executions}
    status = {s.ref: Status.ACTIVE for s in scenario.executions}
    failed_at = {f.origin: f.at for f in app.failures if f.genuine}
    edges: list[Dependency] = []
    for a in scenario.activities:
        ref = a.execution
        if status[ref] is not Status.ACTIVE or failed_at.get(ref, a.at + 1) <= a.at:
            continue
        if a.kind == "checkpoint":
            position[ref] += 1
        elif a.kind == "complete":
            status[ref] = Status.COMPLETED
        else:
            assert a.producer is not None
            if failed_at.get(a.producer, a.at + 1) <= a.at:
                continue
            edges.append(
                Dependency(
                    consumer=ref,
                    producer=a.producer,
                    produced_after=position[a.producer],
                    consumed_after=position[ref],
                )
            )
    return edges


_SUMMED = (
    "crashes",
    "safety_violations",
    "s1_tainted_survivors",
    "s2_undone_twice",
    "s3_undisclosed",
    "s4_needless",
    "non_terminated",
    "needless_rollbacks",
    "recoveries",
    "rollbacks",
    "unknown_recorded",
    "superseding_records",
    "takeovers",
    "messages_sent",
    "messages_lost",
    "messages_duplicated",
    "messages_reordered",
    "baseline_abort_all_needless",
    "baseline_local_only_inconsistent",
    "baseline_local_only_needless",
)


def simulate(
    scenarios: int,
    *,
    seed: int = 0,
    loss: float = 0.0,
    crashes: bool = True,
    start: int = 0,
) -> dict[str, Any]:
    """Run scenarios ``start`` .. ``start + scenarios - 1``; return one JSON-able summary.

    Scenario ``i`` is seeded with ``"{seed}:{i}"``, so any slice of a run can
    be repeated alone, and slices run in parallel combine (:func:`combine`) to
    the same summary as one sequential run.
    """
    began = time.perf_counter()
    totals: Counter[str] = Counter()
    results: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    problems: list[str] = []
    for i in range(start, start + scenarios):
        r = run_scenario(f"{seed}:{i}", loss=loss, crashes=crashes)
        totals.update(
            {
                "crashes": r.crashes,
                "safety_violations": r.safety_violations,
                "s1_tainted_survivors": r.s1,
                "s2_undone_twice": r.s2,
                "s3_undisclosed": r.s3,
                "s4_needless": r.s4,
                "non_terminated": 0 if r.terminated else 1,
                "needless_rollbacks": r.s4,
                "recoveries": r.recoveries,
                "rollbacks": r.rollbacks,
                "unknown_recorded": r.unknown_recorded,
                "superseding_records": r.superseding,
                "takeovers": r.takeovers,
                "messages_sent": r.messages["sent"],
                "messages_lost": r.messages["lost"],
                "messages_duplicated": r.messages["duplicated"],
                "messages_reordered": r.messages["reordered"],
                "baseline_abort_all_needless": r.baseline_abort_all_needless,
                "baseline_local_only_inconsistent": r.baseline_local_only_inconsistent,
                "baseline_local_only_needless": r.baseline_local_only_needless,
            }
        )
        results.update(r.results)
        escalations.update(r.escalations)
        if r.problems and len(problems) < 20:
            problems.extend(f"{r.seed}: {p}" for p in r.problems[:5])
    summary: dict[str, Any] = {
        "scenarios": scenarios,
        "seed": seed,
        "loss": loss,
        "duplicate": 0.05,
        "reorder": 0.1,
    }
    summary.update({key: totals[key] for key in _SUMMED})
    summary["results"] = dict(sorted(results.items()))
    summary["escalation_reasons"] = dict(sorted(escalations.items()))
    summary["problems"] = problems[:20]
    summary["wall_seconds"] = round(time.perf_counter() - began, 3)
    return summary


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary from the summaries of consecutive slices of a run."""
    if not parts:
        raise ValueError("nothing to combine")
    out = dict(parts[0])
    out["scenarios"] = sum(p["scenarios"] for p in parts)
    for key in _SUMMED:
        out[key] = sum(p[key] for p in parts)
    results: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    for p in parts:
        results.update(p["results"])
        escalations.update(p["escalation_reasons"])
    out["results"] = dict(sorted(results.items()))
    out["escalation_reasons"] = dict(sorted(escalations.items()))
    out["problems"] = [x for p in parts for x in p["problems"]][:20]
    out["wall_seconds"] = max(p["wall_seconds"] for p in parts)
    return out
