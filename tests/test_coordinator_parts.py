"""The coordinator's state in parts (draft §11.2): what a store rewrites after each step.

A durable store keeps the coordinator as parts and rewrites only those a step
changed (``snapshot_changes``). A change the engine forgot to name would be lost
at the next restart, so :func:`checked` wraps every input of a coordinator and
checks, after each one, that the parts as a store would hold them make up
exactly ``snapshot()``. The simulator's scenarios (loss, duplication,
reordering, crashes, bounds) then run under that check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent_recovery._coordinator import Coordinator
from agent_recovery._coordinator_records import assemble
from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._events import RollbackRequested
from agent_recovery._messages import RecoveryRecord
from agent_recovery._model import (
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    Reversibility,
    Severity,
)
from agent_recovery._model import Status as ExecStatus
from agent_recovery._participant import Participant
from agent_recovery._scope import ScopeBuilder
from agent_recovery.testing._simulate import run_scenario

_INPUTS = ("receive", "handle_timer", "decide", "abort", "add_execution")


def _json(data: Any) -> Any:
    return json.loads(json.dumps(data))


class PartsChecker:
    """A store's view of each coordinator: parts, updated only by ``snapshot_changes``."""

    def __init__(self) -> None:
        # Keyed by id, holding the engine so that no other engine reuses the id.
        self.stores: dict[int, tuple[Coordinator, dict[str, Any]]] = {}
        self.checks = 0

    def after(self, engine: Coordinator) -> None:
        parts = self.stores.get(id(engine), (engine, None))[1]
        if parts is None:
            parts = _json(engine.snapshot_parts())
            self.stores[id(engine)] = (engine, parts)
        else:
            parts.update(_json(engine.snapshot_changes()))
        assert assemble(parts) == _json(engine.snapshot())
        self.checks += 1


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[PartsChecker]:
    checker = PartsChecker()
    for name in _INPUTS:
        original = getattr(Coordinator, name)

        def wrapper(
            self: Coordinator, *args: Any, _original: Callable[..., Any] = original, **kw: Any
        ) -> Any:
            value = _original(self, *args, **kw)
            checker.after(self)
            return value

        monkeypatch.setattr(Coordinator, name, wrapper)
    yield checker


@pytest.mark.parametrize("batch", range(4))
def test_parts_follow_every_step_of_lossy_scenarios_with_crashes(
    checked: PartsChecker, batch: int
) -> None:
    for i in range(batch * 10, batch * 10 + 10):
        result = run_scenario(f"parts-{i}", loss=0.2)
        assert result.safety_violations == 0, result.problems
    assert checked.checks > 100


def run_star(size: int) -> RecoveryRecord:
    """An origin whose ``size - 1`` consumers live on three agents: one whole recovery.

    Messages are delivered in batches, FIFO, as a runtime would; every
    rollback is carried out at once.
    """
    origin = ExecRef(agent="a0", exec="o")
    facts = Facts(status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0)
    c = Coordinator(agent="c", ids=lambda n: f"c-{n}")
    c.add_execution(origin, ["c"])
    ps = {f"a{i}": Participant(agent=f"a{i}", ids=lambda n, i=i: f"a{i}-{n}") for i in range(4)}
    ps["a0"].register_execution(origin, facts, ["c"])
    ps["a0"].take_checkpoint(origin)
    ps["a0"].take_checkpoint(origin)
    for m in range(1, size):
        p = ps[f"a{1 + m % 3}"]
        ref = ExecRef(agent=p.agent, exec=f"m{m}")
        edge = Dependency(consumer=ref, producer=origin, produced_after=2, consumed_after=1)
        p.register_execution(ref, facts, ["c"])
        p.take_checkpoint(ref)
        p.record_dependency(edge)
        ps["a0"].record_dependency(edge)
    ps["a0"].signal_failure(
        execution=origin,
        to="c",
        failure_type="execution-error",
        severity=Severity.ERROR,
        retryable=False,
        effect_state=EffectState.COMPLETE,
        checkpoint=1,
        now=1,
    )
    engines: dict[str, Coordinator | Participant] = {"c": c, **ps}
    queue = list(ps["a0"].data_to_send())
    records: list[RecoveryRecord] = []
    while queue:
        batch, queue = queue[:50], queue[50:]
        for message in batch:
            engines[message.recipient].receive(message.sender, message, 2)
        for p in ps.values():
            while (event := p.next_event()) is not None:
                if isinstance(event, RollbackRequested):
                    p.rollback_done(event.execution, Outcome.RESTORED, checkpoint=1, now=2)
        for engine in engines.values():
            queue.extend(engine.data_to_send())
        records.extend(c.records())
    assert len(records) == 1
    return records[0]


def test_parts_round_trip_through_from_snapshot(checked: PartsChecker) -> None:
    result = run_scenario("parts-round-trip", loss=0.1)
    assert result.safety_violations == 0
    c = Coordinator(agent="c", ids=lambda n: f"c-{n}")
    c.add_execution(ExecRef(agent="a", exec="o"), ["c"])
    parts = _json(c.snapshot_parts())
    again = Coordinator.from_snapshot({"parts": parts}, ids=lambda n: f"c-{n}")
    assert again.snapshot() == c.snapshot()
    assert again.snapshot_changes() == {}  # a rebuilt engine owes the store nothing


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.pop('["engine"]'),
        lambda p: p.__setitem__('["unknown"]', 1),
        lambda p: p.__setitem__('["track","nope","a","x"]', {}),
        lambda p: p.__setitem__("not json", 1),
    ],
)
def test_damaged_parts_are_refused_with_a_typed_error(damage: Callable[[Any], None]) -> None:
    c = Coordinator(agent="c")
    c.add_execution(ExecRef(agent="a", exec="o"), ["c"])
    parts = _json(c.snapshot_parts())
    damage(parts)
    with pytest.raises(LocalProtocolError) as info:
        Coordinator.from_snapshot({"parts": parts})
    assert info.value.code is ErrorCode.MALFORMED


def test_parts_follow_every_step_of_a_star(checked: PartsChecker) -> None:
    record = run_star(30)
    assert record.result.value == "completed"
    assert checked.checks > 60


def test_replies_that_only_report_facts_do_not_recompute_the_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thousand halted replies must not cost a thousand rollback-set passes (draft §8.1)."""
    calls = 0
    original = ScopeBuilder.result

    def counting(self: ScopeBuilder) -> Any:
        nonlocal calls
        calls += 1
        return original(self)

    monkeypatch.setattr(ScopeBuilder, "result", counting)
    record = run_star(200)
    assert record.result.value == "completed"
    assert len(record.members) == 200
    # Once when the origin's dependents arrive, once when actions are first read.
    assert calls <= 4
