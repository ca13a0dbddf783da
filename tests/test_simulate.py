"""The fault-injection simulator: the procedure holds S1-S4 and L1 under faults (draft §8).

The full run is ``agent-recovery simulate --scenarios 10000 --loss 0.2 --json``;
the default test run uses 200 scenarios. Mutants of the application, the
coordinator and the participant show that each property check can fail.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from agent_recovery import cli
from agent_recovery._coordinator import Coordinator
from agent_recovery._messages import Halt
from agent_recovery._model import ExecRef
from agent_recovery._participant import Participant
from agent_recovery.testing._network import Faults, InMemoryNetwork
from agent_recovery.testing._scenario import generate
from agent_recovery.testing._simulate import SimApp, combine, run_scenario, simulate, taint

REQUIRED = (
    "scenarios",
    "safety_violations",
    "non_terminated",
    "needless_rollbacks",
    "baseline_abort_all_needless",
    "baseline_local_only_inconsistent",
)


def test_two_hundred_scenarios_under_loss_duplication_reordering_and_crashes() -> None:
    summary = simulate(200, seed=0, loss=0.2)
    assert summary["safety_violations"] == 0, summary["problems"]
    assert summary["non_terminated"] == 0, summary["problems"]
    assert summary["needless_rollbacks"] == 0
    # The run exercised what it claims to.
    assert summary["messages_lost"] > 1000 and summary["messages_duplicated"] > 100
    assert summary["crashes"] > 50 and summary["takeovers"] > 0
    assert set(summary["results"]) >= {"completed", "partial", "escalated", "rejected"}
    # The baselines leave work undone needlessly or tainted work standing.
    assert summary["baseline_abort_all_needless"] > 0
    assert summary["baseline_local_only_inconsistent"] > 0
    print(json.dumps({k: summary[k] for k in REQUIRED}))


def test_long_outages_give_unknowns_that_are_resolved() -> None:
    # Scenarios with an outage longer than every retransmission budget.
    seeds = [s for s in (f"7:{i}" for i in range(1000)) if _long_outage(s)][:6]
    assert seeds
    results = [run_scenario(s, loss=0.2) for s in seeds]
    assert sum(r.safety_violations for r in results) == 0
    assert all(r.terminated for r in results), [r.problems for r in results]


def _long_outage(seed: str) -> bool:
    return any(c.duration > 100_000 for c in generate(seed).crashes)


def test_runs_are_repeatable_and_slices_combine() -> None:
    a = run_scenario("3:14", loss=0.3)
    b = run_scenario("3:14", loss=0.3)
    assert (a.recoveries, a.rollbacks, a.messages, a.results) == (
        b.recoveries,
        b.rollbacks,
        b.messages,
        b.results,
    )
    whole = simulate(20, seed=5, loss=0.1)
    parts = combine([simulate(10, seed=5, loss=0.1), simulate(10, seed=5, loss=0.1, start=10)])
    for key in ("recoveries", "rollbacks", "messages_sent", "results", "safety_violations"):
        assert whole[key] == parts[key]


def test_ground_truth_taint() -> None:
    from agent_recovery._model import Dependency

    a, b, c = (ExecRef(agent=x, exec=x) for x in "abc")
    edges = [
        Dependency(consumer=b, producer=a, produced_after=2, consumed_after=1),
        Dependency(consumer=c, producer=b, produced_after=1, consumed_after=3),
        Dependency(consumer=c, producer=a, produced_after=0, consumed_after=0),  # before 2
    ]
    assert taint(a, 2, edges) == {a: 2, b: 1, c: 3}


# -- the checks can fail --------------------------------------------------------------


def _run(n: int, loss: float = 0.0) -> dict[str, Any]:
    return simulate(n, seed=11, loss=loss)


def test_s1_catches_an_application_that_lies(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SimApp._undo

    def lie(self: SimApp, x: Any, event: Any) -> Any:
        kept = (x.position, x.dirty, x.undone)
        answer = original(self, x, event)
        x.position, x.dirty, x.undone = kept  # reports the undo, does nothing
        return answer

    monkeypatch.setattr(SimApp, "_undo", lie)
    assert _run(30)["s1_tainted_survivors"] > 0


def test_s1_catches_a_coordinator_that_does_not_discover(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Coordinator._learn

    def blind(self: Coordinator, rec: Any, track: Any, message: Any, now: int) -> None:
        original(self, rec, track, dataclasses.replace(message, dependents=()), now)

    monkeypatch.setattr(Coordinator, "_learn", blind)
    assert _run(30)["s1_tainted_survivors"] > 0


def test_s2_catches_a_participant_that_undoes_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Participant._start

    def forgetful(self: Participant, x: Any, claim: Any, message: Any, now: int) -> None:
        x.clean = False  # forgets that an earlier recovery already restored it
        original(self, x, claim, message, now)

    monkeypatch.setattr(Participant, "_start", forgetful)
    assert _run(40, loss=0.1)["s2_undone_twice"] > 0


def test_l1_catches_a_participant_that_ignores_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Participant, "_release", lambda self, x, claim: None)
    assert _run(20)["non_terminated"] > 0


def test_s4_catches_needless_rollback(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_recovery.testing import _simulate

    monkeypatch.setattr(_simulate.EvidencePolicy, "appraise", lambda self, s, scope: "accept")
    summary = _run(100)
    assert summary["s4_needless"] > 0  # false triggers acted on


# -- the test kit ----------------------------------------------------------------------


def test_network_faults_stop_when_told() -> None:
    net = InMemoryNetwork(faults=Faults(loss=0.5, duplicate=0.5, until=1_000), seed=1)
    ref = ExecRef(agent="b", exec="e")
    halt = Halt(
        id="h",
        sender="a",
        recipient="b",
        iat=1,
        recovery="r",
        trigger="t",
        execution=ref,
        created=1,
    )
    for _ in range(200):
        net.send(halt, 0)
    assert net.stats.lost > 50 and net.stats.duplicated > 20
    before = net.stats.sent
    for _ in range(100):
        net.send(halt, 2_000)
    assert net.stats.sent == before + 100
    net.set_down("b", True)
    assert net.pop_due(10_000) == [] and net.stats.dropped_down > 0
    with pytest.raises(ValueError):
        Faults(loss=2.0)


def test_cli_simulate_prints_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", "--scenarios", "12", "--loss", "0.2", "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["scenarios"] == 12 and all(key in summary for key in REQUIRED)
    assert cli.main(["simulate", "--scenarios", "4", "--jobs", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scenarios"] == 4
    assert cli.main(["simulate", "--explore", "chain", "--faults", "0", "--crashes", "0"]) == 0
    assert "states: " in capsys.readouterr().out


def test_the_fake_clock_only_moves_forward() -> None:
    from agent_recovery.testing import FakeClock

    clock = FakeClock(5)
    assert clock() == 5 and clock.advance(10) == 15 and clock.set(20) == 20
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(3)
