"""Exhaustive exploration of every interleaving of a small configuration (draft §8).

Where the simulator samples, the explorer enumerates. A configuration fixes
agents, executions, dependency edges and failure signals; a state is the
persisted form of every engine (``snapshot()``), the messages in flight (a
multiset: any of them may be delivered next, which is every reordering), the
application's pending undo work, the ground truth of each execution, and the
faults left to inject. From each state every enabled action is taken:

- deliver any message in flight;
- lose or duplicate any message in flight (while the fault budget lasts);
- crash a coordinator: messages in flight to it are lost and it is rebuilt
  from its snapshot (while the crash budget lasts);
- let the application finish any pending undo;
- when nothing is in flight and no undo is pending, fire the earliest timer
  (timeouts are longer than any delay: a timer fires only for a real loss).

States are deduplicated by their canonical JSON form. Every terminal state
(no action enabled) must satisfy S1 to S4 and L1 (see ``_simulate.py``); any
exception an engine raises is a violation too.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .._coordinator import Coordinator
from .._events import RollbackRequested
from .._messages import Message
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
from .._participant import Participant
from .._registry import OUTCOMES
from .._state import TERMINAL_RECOVERY_STATES, MemberState, Retry
from .._wire import decode, encode
from ._simulate import taint

__all__ = ["ExploreConfig", "ExploreReport", "chain_config", "concurrent_config", "explore"]

# Short timers: only their order matters here, and small numbers keep states few.
EXPLORE_RETRY = Retry(
    initial=10, ceiling=20, attempts=3, patience=200, follow_up_interval=40, follow_up=400
)
_DISCLOSED = frozenset({Outcome.IRREVERSIBLE, Outcome.FAILED, Outcome.REFUSED, Outcome.UNKNOWN})


@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreConfig:
    """A small world: who runs what, who depends on whom, and who fails."""

    coordinators: tuple[str, ...]
    executions: tuple[tuple[ExecRef, Reversibility, int], ...]  # ref, reversibility, checkpoint
    edges: tuple[Dependency, ...]
    failures: tuple[tuple[ExecRef, int, str], ...]  # origin, last good checkpoint, coordinator
    faults: int = 0  # losses or duplications to inject, in total
    crashes: int = 0  # coordinator crashes to inject, in total

    @property
    def participants(self) -> tuple[str, ...]:
        return tuple(sorted({ref.agent for ref, _, _ in self.executions}))


def chain_config(*, faults: int = 1, crashes: int = 1) -> ExploreConfig:
    """Three participants in a chain, and one bystander outside the rollback set.

    ``p1/e1`` fails back to checkpoint 1; ``p2/e2`` consumed its output made
    after 1, ``p3/e3`` consumed ``e2``'s; ``p3/e4`` consumed ``e1``'s output made
    before 1 and must be left alone. ``e3`` is compensable.
    """
    e1, e2, e3, e4 = (
        ExecRef(agent=f"p{a}", exec=f"e{i}") for a, i in ((1, 1), (2, 2), (3, 3), (3, 4))
    )
    return ExploreConfig(
        coordinators=("c",),
        executions=(
            (e1, Reversibility.RESTORABLE, 2),
            (e2, Reversibility.RESTORABLE, 1),
            (e3, Reversibility.COMPENSABLE, 1),
            (e4, Reversibility.RESTORABLE, 1),
        ),
        edges=(
            Dependency(consumer=e2, producer=e1, produced_after=1, consumed_after=0),
            Dependency(consumer=e3, producer=e2, produced_after=1, consumed_after=0),
            Dependency(consumer=e4, producer=e1, produced_after=0, consumed_after=1),
        ),
        failures=((e1, 1, "c"),),
        faults=faults,
        crashes=crashes,
    )


def concurrent_config() -> ExploreConfig:
    """Two coordinators recovering overlapping sets at once (draft §8.5).

    ``e1`` and ``e3`` fail at the same time and are reported to different
    coordinators; ``e2`` consumed both, ``e3`` also consumed ``e1``. Every
    interleaving of the two recoveries' messages is explored.
    """
    e1, e2, e3 = (ExecRef(agent=f"p{i}", exec=f"e{i}") for i in (1, 2, 3))
    return ExploreConfig(
        coordinators=("c1", "c2"),
        executions=(
            (e1, Reversibility.RESTORABLE, 1),
            (e2, Reversibility.RESTORABLE, 1),
            (e3, Reversibility.RESTORABLE, 1),
        ),
        edges=(
            Dependency(consumer=e2, producer=e1, produced_after=0, consumed_after=0),
            Dependency(consumer=e2, producer=e3, produced_after=0, consumed_after=1),
            Dependency(consumer=e3, producer=e1, produced_after=0, consumed_after=0),
        ),
        failures=((e1, 0, "c1"), (e3, 0, "c2")),
    )


@dataclass(slots=True)
class ExploreReport:
    states: int = 0
    transitions: int = 0
    terminal: int = 0
    violations: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "states": self.states,
            "transitions": self.transitions,
            "terminal_states": self.terminal,
            "violations": len(self.violations),
            "outcomes": dict(sorted(self.outcomes.items())),
        }


@functools.lru_cache(maxsize=65_536)
def _decode(raw: str) -> Message:
    # Messages are immutable values: one decoded object serves every state.
    return decode(raw.encode("utf-8"))


def _ids(prefix: str) -> Any:
    return lambda n: f"{prefix}{n}"


Engine = Coordinator | Participant


@dataclass(frozen=True, slots=True)
class _State:
    """One explored state; immutable and hashable, sharing unchanged snapshots."""

    engines: tuple[tuple[str, str], ...]  # (agent, snapshot as canonical JSON)
    timers: tuple[tuple[str, int | None], ...]
    flight: tuple[str, ...]  # encoded messages, sorted (a multiset)
    tasks: tuple[tuple[str, str, int, str], ...]  # pending undo: agent, exec, target, action
    world: tuple[tuple[str, int, bool, int], ...]  # exec, position, dirty, undone
    records: tuple[tuple[str, str, tuple[tuple[str, str | None, bool], ...]], ...]
    asked: tuple[str, ...]
    faults: int
    crashes: int
    now: int


@dataclass(frozen=True, slots=True)
class _Step:
    """What one input did to one engine: its new snapshot and everything it output."""

    snapshot: str
    timer: int | None
    sent: tuple[str, ...]
    records: tuple[tuple[str, str, tuple[tuple[str, str | None, bool], ...]], ...]
    asked: tuple[
        tuple[str, str, int, str], ...
    ]  # rollback requests: recovery, exec, target, action


class _Engines:
    """Engine steps, memoized: engines are deterministic, so (snapshot, input) decides all.

    Many explored states share an engine's snapshot and a message in flight;
    the step is computed once and reused, which is what makes exhaustive
    exploration affordable.
    """

    def __init__(self, config: ExploreConfig) -> None:
        self.config = config
        self.memo: dict[tuple[str, str, tuple[Any, ...]], _Step] = {}
        names = sorted({*config.coordinators, *config.participants})
        self.index = {name: i for i, name in enumerate(names)}

    def build(self, name: str, snapshot: str) -> Engine:
        data = json.loads(snapshot)
        if name in self.config.coordinators:
            return Coordinator.from_snapshot(data, ids=_ids(f"{name}."), retry=EXPLORE_RETRY)
        engine = Participant.from_snapshot(data, ids=_ids(f"{name}."), retry=EXPLORE_RETRY)
        while engine.next_event() is not None:
            pass  # the rebuild's reminders; the pending work is kept in the state
        return engine

    def step(self, name: str, snapshot: str, op: tuple[Any, ...]) -> _Step:
        key = (name, snapshot, op)
        done = self.memo.get(key)
        if done is None:
            engine = self.build(name, snapshot)
            kind = op[0]
            if kind == "receive":
                message = _decode(op[1])
                engine.receive(message.sender, message, op[2])
            elif kind == "done":
                assert isinstance(engine, Participant)
                _, exec_id, outcome, checkpoint, residual, now = op
                engine.rollback_done(
                    ExecRef(agent=name, exec=exec_id),
                    Outcome(outcome),
                    checkpoint=checkpoint,
                    residual=tuple(Residual(description=r) for r in residual),
                    now=now,
                )
            elif kind == "timer":
                engine.handle_timer(op[1])
            # "restart": the rebuild from the snapshot is the whole of it
            done = self.memo[key] = self._outputs(engine)
        return done

    @staticmethod
    def _outputs(engine: Engine) -> _Step:
        sent = tuple(encode(m).decode("utf-8") for m in engine.data_to_send())
        records: list[tuple[str, str, tuple[tuple[str, str | None, bool], ...]]] = []
        asked: list[tuple[str, str, int, str]] = []
        if isinstance(engine, Coordinator):
            for record in engine.records():
                members = tuple(
                    (m.execution.exec, m.outcome, bool(m.residual)) for m in record.members
                )
                records.append((record.recovery, record.result.value, members))
        else:
            engine.records()
        while (event := engine.next_event()) is not None:
            if isinstance(event, RollbackRequested):
                asked.append(
                    (event.recovery, event.execution.exec, event.target, event.action.value)
                )
        return _Step(
            snapshot=json.dumps(engine.snapshot(), sort_keys=True),
            timer=engine.get_timer(),
            sent=sent,
            records=tuple(records),
            asked=tuple(asked),
        )


class _Model:
    """A state being changed by one action; fields are copied only when written."""

    def __init__(self, engines: _Engines, state: _State) -> None:
        self.engines = engines
        self.config = engines.config
        self.state = state
        self.index = engines.index
        self.snapshots: list[tuple[str, str]] | None = None
        self.timers: list[tuple[str, int | None]] | None = None
        self.flight = list(state.flight)
        self.added = False  # messages appended: the flight needs sorting again
        self.tasks = list(state.tasks)
        self.world: dict[str, list[Any]] | None = None
        self.records: dict[str, tuple[str, Any]] | None = None
        self.asked: list[str] | None = None
        self.faults = state.faults
        self.crashes = state.crashes
        self.now = state.now
        self.violations: list[str] = []

    def snapshot_of(self, name: str) -> str:
        source = self.state.engines if self.snapshots is None else self.snapshots
        return source[self.index[name]][1]

    def engine(self, name: str) -> Engine:
        return self.engines.build(name, self.snapshot_of(name))

    def run(self, name: str, op: tuple[Any, ...]) -> None:
        step = self.engines.step(name, self.snapshot_of(name), op)
        if self.snapshots is None:
            self.snapshots = list(self.state.engines)
            self.timers = list(self.state.timers)
        assert self.timers is not None
        i = self.index[name]
        self.snapshots[i] = (name, step.snapshot)
        self.timers[i] = (name, step.timer)
        if step.sent:
            self.flight.extend(step.sent)
            self.added = True
        if step.records:
            if self.records is None:
                self.records = {r[0]: r[1:] for r in self.state.records}
            for rid, result, members in step.records:
                self.records[rid] = (result, members)
        for rid, exec_id, target, action in step.asked:
            if self.asked is None:
                self.asked = list(self.state.asked)
            key = f"{rid}/{exec_id}"
            if key in self.asked:
                self.violations.append(f"S2: {key} asked twice")
            self.asked.append(key)
            self.tasks.append((name, exec_id, target, action))

    def world_of(self) -> dict[str, list[Any]]:
        if self.world is None:
            return {w[0]: list(w[1:]) for w in self.state.world}
        return self.world

    def freeze(self) -> _State:
        s = self.state
        return _State(
            engines=s.engines if self.snapshots is None else tuple(self.snapshots),
            timers=s.timers if self.timers is None else tuple(self.timers),
            flight=tuple(sorted(self.flight)) if self.added else tuple(self.flight),
            tasks=tuple(sorted(self.tasks)),
            world=s.world
            if self.world is None
            else tuple(sorted((k, v[0], bool(v[1]), v[2]) for k, v in self.world.items())),
            records=s.records
            if self.records is None
            else tuple(sorted((k, *v) for k, v in self.records.items())),
            asked=s.asked if self.asked is None else tuple(sorted(self.asked)),
            faults=self.faults,
            crashes=self.crashes,
            now=self.now,
        )

    def deliver(self, raw: str) -> None:
        self.run(_decode(raw).recipient, ("receive", raw, self.now))

    def finish(self, task: tuple[str, str, int, str]) -> None:
        agent, exec_id, target, action = task
        world = self.world = self.world_of()
        position, dirty, undone = world[exec_id]
        residual: tuple[str, ...] = ()
        if Action(action) is Action.NONE:
            outcome, residual, checkpoint = Outcome.IRREVERSIBLE, ("stands",), position
        elif position < target or (position == target and not dirty):
            outcome, checkpoint = Outcome.NOT_NEEDED, position
        else:
            kind = {r.exec: v for r, v, _ in self.config.executions}[exec_id]
            compensable = kind is Reversibility.COMPENSABLE
            outcome = Outcome.COMPENSATED if compensable else Outcome.RESTORED
            checkpoint = target
            world[exec_id] = [target, False, undone + 1]
        self.run(agent, ("done", exec_id, outcome.value, checkpoint, residual, self.now))

    def fire_timer(self) -> None:
        at = min(t for _, t in self.state.timers if t is not None)
        self.now = max(self.now, at)
        for name, t in self.state.timers:
            if t == at:
                self.run(name, ("timer", self.now))


def _initial(config: ExploreConfig) -> _State:
    coordinators = {
        n: Coordinator(agent=n, ids=_ids(f"{n}."), retry=EXPLORE_RETRY) for n in config.coordinators
    }
    participants = {
        n: Participant(agent=n, ids=_ids(f"{n}."), retry=EXPLORE_RETRY) for n in config.participants
    }
    world: list[tuple[str, int, bool, int]] = []
    dirty = {ref.exec for e in config.edges for ref in (e.producer, e.consumer)}
    for ref, reversibility, checkpoint in config.executions:
        facts = Facts(status=Status.ACTIVE, reversibility=reversibility, checkpoint=0)
        p = participants[ref.agent]
        p.register_execution(ref, facts, config.coordinators)
        for _ in range(checkpoint):
            p.take_checkpoint(ref)
        for c in coordinators.values():
            c.add_execution(ref, config.coordinators)
        world.append((ref.exec, checkpoint, ref.exec in dirty, 0))
    for edge in config.edges:
        for agent in sorted({edge.producer.agent, edge.consumer.agent}):
            participants[agent].record_dependency(edge)
    engines: dict[str, Engine] = {**coordinators, **participants}
    flight: list[str] = []
    for origin, checkpoint, coordinator in config.failures:
        participants[origin.agent].signal_failure(
            execution=origin,
            to=coordinator,
            failure_type="execution-error",
            severity=Severity.ERROR,
            retryable=False,
            effect_state=EffectState.PARTIAL,
            checkpoint=checkpoint,
            now=0,
        )
        flight.extend(encode(m).decode("utf-8") for m in participants[origin.agent].data_to_send())
    return _State(
        engines=tuple(
            sorted((n, json.dumps(e.snapshot(), sort_keys=True)) for n, e in engines.items())
        ),
        timers=tuple(sorted((n, e.get_timer()) for n, e in engines.items())),
        flight=tuple(sorted(flight)),
        tasks=(),
        world=tuple(sorted(world)),
        records=(),
        asked=(),
        faults=config.faults,
        crashes=config.crashes,
        now=0,
    )


def _actions(config: ExploreConfig, state: _State) -> Iterator[tuple[str, Any]]:
    flight = state.flight
    for i, raw in enumerate(flight):
        if i and raw == flight[i - 1]:
            continue  # copies of one message lead to the same states
        yield "deliver", raw
        if state.faults:
            yield "lose", raw
            yield "duplicate", raw
    for task in state.tasks:
        yield "finish", task
    if state.crashes:
        for name in config.coordinators:
            yield "crash", name
    if not flight and not state.tasks and any(t is not None for _, t in state.timers):
        yield "timer", None


def _apply(engines: _Engines, state: _State, action: str, arg: Any) -> _Model:
    model = _Model(engines, state)
    if action == "deliver":
        model.flight.remove(arg)
        model.deliver(arg)
    elif action == "lose":
        model.flight.remove(arg)
        model.faults -= 1
    elif action == "duplicate":
        model.flight.append(arg)
        model.added = True
        model.faults -= 1
    elif action == "finish":
        model.tasks.remove(arg)
        model.finish(arg)
    elif action == "crash":
        # Down long enough to lose what was in flight to it; back from its snapshot.
        model.crashes -= 1
        model.flight = [r for r in model.flight if _decode(r).recipient != arg]
        model.run(arg, ("restart",))
    else:
        model.fire_timer()
    return model


def _check_terminal(config: ExploreConfig, model: _Model, report: ExploreReport) -> None:
    problems: list[str] = []
    recoveries = 0
    for name, _ in model.state.engines:
        engine = model.engine(name)
        if isinstance(engine, Coordinator):
            for rid in engine.recoveries():
                recoveries += 1
                state = engine.recovery_state(rid)
                if state not in TERMINAL_RECOVERY_STATES or engine.busy(rid):
                    problems.append(f"L1: {name} {rid} in {state}")
            continue
        if engine.get_timer() is not None:
            problems.append(f"L1: {name} still signalling")
        for ref in engine.executions():
            if engine.state_of(ref) is not MemberState.IDLE:
                problems.append(f"L1: {ref.exec} left {engine.state_of(ref)}")
    disclosed = set()
    not_acted = False
    records = {r[0]: r[1:] for r in model.state.records}
    for result, members in records.values():
        report.outcomes[result] = report.outcomes.get(result, 0) + 1
        not_acted |= result in ("escalated", "aborted")
        for exec_id, outcome, has_residual in members:
            effective = None if outcome is None else OUTCOMES.effective(outcome)
            if effective in _DISCLOSED:
                disclosed.add(exec_id)
                if not has_residual:
                    problems.append(f"S3: {exec_id} {outcome} without residual")
            if effective is None and result not in ("escalated", "rejected", "aborted"):
                problems.append(f"S3: {exec_id} without outcome")
    if len(records) != recoveries:
        problems.append("S3: a recovery without a record")
    required: dict[str, int] = {}
    for origin, checkpoint, _ in config.failures:
        for ref, target in taint(origin, checkpoint, config.edges).items():
            required[ref.exec] = min(target, required.get(ref.exec, target))
    for exec_id, (position, dirty, undone) in model.world_of().items():
        needed = required.get(exec_id)
        if needed is not None:
            ok = position < needed or (position == needed and not dirty)
            if not ok and not not_acted and exec_id not in disclosed:
                problems.append(f"S1: {exec_id} keeps tainted work after {needed}")
        if undone and (needed is None or position < needed):
            problems.append(f"S4: {exec_id} undone needlessly")
    report.violations.extend(problems)


def explore(config: ExploreConfig, *, max_states: int = 2_000_000) -> ExploreReport:
    """Visit every state reachable from the configuration's failure signals."""
    report = ExploreReport()
    engines = _Engines(config)
    start = _initial(config)
    seen = {start}
    queue: deque[_State] = deque([start])
    while queue:
        state = queue.popleft()
        report.states += 1
        if report.states > max_states:
            report.violations.append(f"state space larger than {max_states}")
            break
        enabled = list(_actions(config, state))
        if not enabled:
            _check_terminal(config, _Model(engines, state), report)
            report.terminal += 1
            continue
        for action, arg in enabled:
            report.transitions += 1
            try:
                model = _apply(engines, state, action, arg)
            except Exception as exc:  # any engine exception is a finding
                report.violations.append(f"{action}: {type(exc).__name__}: {exc}")
                continue
            report.violations.extend(model.violations)
            nxt = model.freeze()
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return report
