"""A small run of bench/flood.py: the rate limit bounds what a flood of signals can do.

The full run (100,000 signals) is ``python bench/flood.py``; this one checks
the same invariants on 400 signals, without timing assertions.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _flood() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flood_bench", ROOT / "bench" / "flood.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flood_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_a_flood_is_bounded_by_the_rate_limit_and_never_rolls_back() -> None:
    flood = _flood()
    run = flood.simulate(signals=400, duration_ms=12_000, legit_at_ms=6_000)
    w = flood.w
    policy = w.FAILURE_SIGNAL_POLICY
    span = run.flood_span[1] - run.flood_span[0]
    accepted = run.flood_outcomes["accepted"]
    assert run.flood_sent == 400
    assert accepted + run.flood_outcomes["rate-limited"] == 400
    assert 0 < accepted <= policy.admitted(span)
    halts, rollbacks = run.halts()
    assert 0 < halts <= accepted * flood.MAX_SET
    assert rollbacks == 0  # false signals fail appraisal: a pause, never a rollback
    assert run.legit_result is flood.RecordResult.COMPLETED
    # Refused signals left nothing behind: only accepted messages are cached.
    cache = run.world.endpoints[w.ORCHESTRATOR].replay
    assert sum(1 for sender, _ in cache.snapshot(run.world.now) if sender == w.FLOODER) <= (
        accepted + 4 * len(run.flood_recoveries)
    )
