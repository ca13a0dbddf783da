"""Exhaustive exploration of every interleaving of small configurations (draft §8).

Default run: the three-participant chain (plus a bystander outside the
rollback set) with one coordinator crash, and with at most one loss or
duplication and one coordinator crash. Two coordinators recovering
overlapping sets at once is marked slow; run it with

    .venv/bin/python -m pytest -m slow tests/test_explore.py -s
    agent-recovery simulate --explore concurrent
    agent-recovery simulate --explore chain --faults 1 --crashes 1

Every test reports the number of states explored.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agent_recovery import _state
from agent_recovery._model import Dependency, ExecRef, Reversibility
from agent_recovery._state import (
    MemberEffect,
    MemberInput,
    MemberReply,
    MemberState,
    MemberStep,
    Relation,
)
from agent_recovery.testing._explore import (
    ExploreConfig,
    ExploreReport,
    chain_config,
    concurrent_config,
    explore,
)


@pytest.fixture
def slow_selected(request: pytest.FixtureRequest) -> None:
    # Each takes a minute or more: run only when asked for with ``-m slow``.
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("exhaustive run of a minute or more; select it with -m slow")


def _report(
    name: str, report: ExploreReport, record_property: Callable[[str, object], None]
) -> None:
    figures = {"configuration": name, **report.as_dict()}
    record_property("exploration", figures)
    print(json.dumps(figures))
    assert report.violations == [], report.violations[:10]
    assert report.terminal > 0


def test_chain_with_a_coordinator_crash(record_property: Callable[[str, object], None]) -> None:
    report = explore(chain_config(faults=0, crashes=1))
    _report("chain, 1 coordinator crash", report, record_property)
    assert report.states > 1_000
    assert report.outcomes == {"completed": report.terminal}


@pytest.mark.no_cover  # 850,000 transitions under the coverage tracer cost a minute
def test_chain_with_a_fault_and_a_crash(record_property: Callable[[str, object], None]) -> None:
    # Every interleaving with at most one loss or duplication (of any message,
    # at any moment) and at most one coordinator crash: a superset of each alone.
    report = explore(chain_config(faults=1, crashes=1))
    _report("chain, 1 loss or duplication, 1 coordinator crash", report, record_property)
    assert report.states > 100_000


@pytest.mark.slow
@pytest.mark.no_cover
@pytest.mark.usefixtures("slow_selected")
def test_two_concurrent_recoveries(record_property: Callable[[str, object], None]) -> None:
    # draft §8.5: no interleaving deadlocks, undoes anything twice or leaves taint.
    report = explore(concurrent_config())
    _report("two coordinators, overlapping sets", report, record_property)
    assert report.outcomes == {"completed": 2 * report.terminal}


def _tiny(faults: int) -> ExploreConfig:
    a, b = ExecRef(agent="p1", exec="e1"), ExecRef(agent="p2", exec="e2")
    return ExploreConfig(
        coordinators=("c",),
        executions=((a, Reversibility.RESTORABLE, 1), (b, Reversibility.RESTORABLE, 1)),
        edges=(Dependency(consumer=b, producer=a, produced_after=0, consumed_after=1),),
        failures=((a, 0, "c"),),
        faults=faults,
    )


def test_the_explorer_finds_an_obeyed_late_halt(monkeypatch: pytest.MonkeyPatch) -> None:
    # Mutant: a participant that obeys a halt from a recovery that already
    # released it (the WS-BusinessActivity class of bug). A duplicated halt
    # delivered after the resume then contains the execution for good.
    table = dict(_state.MEMBER_TRANSITIONS)
    for relation in (Relation.RELEASED, Relation.FINISHED):
        table[MemberState.IDLE, MemberInput.HALT, relation] = MemberStep(
            next=MemberState.HALTED, reply=MemberReply.HALTED, effect=MemberEffect.CLAIM
        )
    monkeypatch.setattr(_state, "MEMBER_TRANSITIONS", table)
    report = explore(_tiny(faults=1))
    assert any(v.startswith("L1") for v in report.violations), report.as_dict()


def test_the_mutant_is_harmless_without_faults() -> None:
    assert explore(_tiny(faults=0)).violations == []
