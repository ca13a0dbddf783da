"""Per-agent rate limits on failure signals (draft §13.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery.security.ratelimit import DEFAULT_POLICIES, RateLimiter, RatePolicy

FS = "failure-signal"
T0 = 1_800_000_000_000


def _take(limiter: RateLimiter, agent: str, now: int, kind: str = FS) -> bool:
    try:
        limiter.check(agent, kind, now)
    except RemoteProtocolError as exc:
        assert exc.code is ErrorCode.RATE_LIMITED
        return False
    limiter.consume(agent, kind, now)
    return True


def test_burst_then_one_per_interval() -> None:
    limiter = RateLimiter({FS: RatePolicy(burst=3, interval_ms=1000)})
    assert [_take(limiter, "a", T0) for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after_ms("a", FS, T0) == 1000
    assert not _take(limiter, "a", T0 + 999)
    assert _take(limiter, "a", T0 + 1000)
    assert not _take(limiter, "a", T0 + 1000)


def test_agents_are_independent_and_other_types_are_unlimited() -> None:
    limiter = RateLimiter({FS: RatePolicy(burst=1, interval_ms=1000)})
    assert _take(limiter, "a", T0)
    assert not _take(limiter, "a", T0)
    assert _take(limiter, "b", T0)
    assert all(_take(limiter, "a", T0, "rollback-result") for _ in range(100))
    assert limiter.retry_after_ms("a", "rollback-result", T0) == 0


def test_check_consumes_nothing() -> None:
    limiter = RateLimiter({FS: RatePolicy(burst=1, interval_ms=1000)})
    for _ in range(10):
        limiter.check("a", FS, T0)
    assert limiter.snapshot(T0) == {}
    assert _take(limiter, "a", T0)


def test_full_bucket_is_forgotten_and_table_is_bounded() -> None:
    limiter = RateLimiter({FS: RatePolicy(burst=2, interval_ms=1000)}, max_tracked=2)
    assert _take(limiter, "a", T0) and _take(limiter, "b", T0)
    with pytest.raises(RemoteProtocolError) as info:
        limiter.check("c", FS, T0)
    assert info.value.code is ErrorCode.OVERLOADED
    # Still enforced for the agents it tracks:
    assert _take(limiter, "a", T0) and not _take(limiter, "a", T0)
    # After b's bucket refilled, its entry is swept to make room.
    assert _take(limiter, "c", T0 + 1000)
    assert len(limiter) == 2
    assert set(limiter.snapshot(T0 + 1000)) == {("a", FS), ("c", FS)}


def test_default_policy_limits_failure_signals_only() -> None:
    assert set(DEFAULT_POLICIES) == {FS}
    limiter = RateLimiter()
    burst = DEFAULT_POLICIES[FS].burst
    assert sum(_take(limiter, "a", T0) for _ in range(burst + 5)) == burst


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RatePolicy(burst=0, interval_ms=1)
    with pytest.raises(ValueError):
        RatePolicy(burst=1, interval_ms=0)
    with pytest.raises(ValueError):
        RateLimiter(max_tracked=0)


@given(
    st.integers(1, 5),
    st.integers(1, 5000),
    st.lists(st.integers(0, 20_000), min_size=1, max_size=200),
)
def test_admitted_never_exceeds_the_bound(burst: int, interval: int, offsets: list[int]) -> None:
    # The figure bench/flood.py relies on: in any span of d ms starting at the
    # first message, at most burst + d // interval messages are admitted.
    policy = RatePolicy(burst=burst, interval_ms=interval)
    limiter = RateLimiter({FS: policy})
    times = sorted(T0 + o for o in offsets)
    admitted = [t for t in times if _take(limiter, "a", t)]
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= policy.admitted(admitted[j] - start)


def test_overall_budget_applies_to_every_type() -> None:
    limiter = RateLimiter(
        {FS: RatePolicy(burst=1, interval_ms=1000), "*": RatePolicy(burst=3, interval_ms=1000)}
    )
    assert _take(limiter, "a", T0)  # failure-signal: both buckets
    assert not _take(limiter, "a", T0)  # its own bucket is empty
    assert _take(limiter, "a", T0, "ack") and _take(limiter, "a", T0, "ack")
    assert not _take(limiter, "a", T0, "ack")  # the overall bucket is empty
    assert limiter.retry_after_ms("a", FS, T0) == 1000
    assert _take(limiter, "b", T0, "ack")
