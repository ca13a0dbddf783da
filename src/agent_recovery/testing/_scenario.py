"""Random workflows for the simulator: agents, executions, dependencies, failures, faults.

A scenario is plain data, generated from a seed: which agents exist (some of
them coordinators), which executions each runs with what reversibility and
recovery authority, a time-ordered plan of application activity (checkpoints,
consumptions, completions) that runs before and after the failures, the
failures themselves (most genuine, some false triggers), and the crashes.
The same scenario is run under the protocol and under the baselines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .._model import ExecRef, Reversibility

__all__ = ["Activity", "Crash", "ExecSpec", "FailureSpec", "Scenario", "generate"]

# Times, in milliseconds from the start of a run.
ACTIVITY_END = 10_000  # activity before the first failure
FAILURE_START = 10_000
FAILURE_END = 14_000
LATE_ACTIVITY_END = 25_000  # activity continues, racing containment
FAULTS_END = 60_000  # loss, duplication, reordering and ordinary crashes stop here


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecSpec:
    ref: ExecRef
    reversibility: Reversibility
    authority: frozenset[str]
    coordinators: tuple[str, ...]  # the coordinators among its authority


@dataclass(frozen=True, slots=True, kw_only=True)
class Activity:
    at: int
    kind: str  # "checkpoint", "consume", "complete"
    execution: ExecRef
    producer: ExecRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureSpec:
    at: int
    origin: ExecRef
    genuine: bool  # False: a false trigger, which appraisal must reject
    last_good: float  # where the last good checkpoint lies, as a fraction of the position
    coordinator: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Crash:
    agent: str
    at: int
    duration: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    seed: str
    agents: tuple[str, ...]
    coordinators: tuple[str, ...]
    executions: tuple[ExecSpec, ...]
    activities: tuple[Activity, ...]
    failures: tuple[FailureSpec, ...]
    crashes: tuple[Crash, ...]
    max_members: dict[str, int | None] = field(default_factory=dict)
    faults_end: int = FAULTS_END

    def spec(self, ref: ExecRef) -> ExecSpec:
        return next(e for e in self.executions if e.ref == ref)


def _reversibility(rng: random.Random) -> Reversibility:
    roll = rng.random()
    if roll < 0.6:
        return Reversibility.RESTORABLE
    if roll < 0.85:
        return Reversibility.COMPENSABLE
    return Reversibility.IRREVERSIBLE


def generate(seed: str, *, crashes: bool = True) -> Scenario:
    """One random scenario; the same seed always gives the same scenario."""
    rng = random.Random(seed)
    coordinators = ("c0", "c1") if rng.random() < 0.3 else ("c0",)
    workers = tuple(f"a{i}" for i in range(rng.randint(2, 5)))
    agents = coordinators + workers
    hosts = workers + coordinators  # coordinators run executions of their own, too
    specs: list[ExecSpec] = []
    for i in range(rng.randint(3, 10)):
        ref = ExecRef(agent=rng.choice(hosts), exec=f"e{i}")
        # Rarely, an execution whose authority excludes every coordinator here:
        # a halt from them is refused as unauthorized (draft §9.2).
        outside = rng.random() < 0.04
        authority = frozenset({"x-outside"}) if outside else frozenset(coordinators)
        specs.append(
            ExecSpec(
                ref=ref,
                reversibility=_reversibility(rng),
                authority=authority,
                coordinators=tuple(sorted(authority & set(coordinators))),
            )
        )
    refs = [s.ref for s in specs]
    activities: list[Activity] = []

    def activity(start: int, end: int, count: int) -> None:
        for _ in range(count):
            at = rng.randint(start, end)
            consumer = rng.choice(refs)
            if rng.random() < 0.35:
                activities.append(Activity(at=at, kind="checkpoint", execution=consumer))
            else:
                producer = rng.choice([r for r in refs if r != consumer])
                activities.append(
                    Activity(at=at, kind="consume", execution=consumer, producer=producer)
                )

    activity(0, ACTIVITY_END, 3 * len(specs))
    activity(FAILURE_START, LATE_ACTIVITY_END, 2 * len(specs))
    for ref in refs:
        if rng.random() < 0.3:
            at = rng.randint(ACTIVITY_END // 2, LATE_ACTIVITY_END)
            activities.append(Activity(at=at, kind="complete", execution=ref))
    activities.sort(key=lambda a: (a.at, a.kind, a.execution))

    candidates = [s for s in specs if s.coordinators]
    failures: list[FailureSpec] = []
    count = 1 if rng.random() < 0.7 else (2 if rng.random() < 0.85 else 3)
    for _ in range(count if candidates else 0):
        spec = rng.choice(candidates)
        failures.append(
            FailureSpec(
                at=rng.randint(FAILURE_START, FAILURE_END),
                origin=spec.ref,
                genuine=rng.random() < 0.9,
                last_good=rng.random(),
                coordinator=rng.choice(spec.coordinators),
            )
        )
    failures.sort(key=lambda f: (f.at, f.origin))

    crash_list: list[Crash] = []
    if crashes and rng.random() < 0.5:
        for _ in range(rng.randint(1, 2)):
            crash_list.append(
                Crash(
                    agent=rng.choice(agents),
                    at=rng.randint(FAILURE_START, FAULTS_END - 10_000),
                    duration=rng.randint(100, 20_000),
                )
            )
    if crashes and rng.random() < 0.03:
        # A long outage: longer than any retransmission budget, so requests to
        # this agent time out (unreachable, unknown) and are resolved later.
        crash_list.append(
            Crash(
                agent=rng.choice(agents),
                at=rng.randint(FAILURE_START, FAILURE_END + 5_000),
                duration=rng.randint(150_000, 300_000),
            )
        )
    crash_list.sort(key=lambda c: (c.at, c.agent))
    end = max([FAULTS_END] + [c.at + c.duration for c in crash_list])
    max_members = {c: (3 if rng.random() < 0.05 else None) for c in coordinators}
    return Scenario(
        seed=seed,
        agents=agents,
        coordinators=coordinators,
        executions=tuple(specs),
        activities=tuple(activities),
        failures=tuple(failures),
        crashes=tuple(crash_list),
        max_members=max_members,
        faults_end=end,
    )
