"""The replay rule of draft §9.3, step by step, and its memory bound."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_recovery._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from agent_recovery.security.replay import ENTRY_OVERHEAD, ReplayCache

W, S = 300_000, 30_000
T0 = 1_800_000_000_000


def _cache(**kwargs: int) -> ReplayCache:
    return ReplayCache(window_ms=W, skew_ms=S, **kwargs)


def _check(
    cache: ReplayCache,
    *,
    sender: str = "a",
    mid: str = "m1",
    iat: int = T0,
    recovery: str | None = "r1",
    data: bytes = b"x",
    now: int = T0,
) -> object:
    return cache.check(
        sender=sender, message_id=mid, iat=iat, recovery=recovery, data=data, now=now
    )


def _accept(cache: ReplayCache, **kw: object) -> None:
    args = {"sender": "a", "mid": "m1", "iat": T0, "recovery": "r1", "data": b"x", "now": T0}
    args.update(kw)
    assert _check(cache, **args) is None  # type: ignore[arg-type]
    cache.commit(
        sender=args["sender"],  # type: ignore[arg-type]
        message_id=args["mid"],  # type: ignore[arg-type]
        iat=args["iat"],  # type: ignore[arg-type]
        recovery=args["recovery"],  # type: ignore[arg-type]
        data=args["data"],  # type: ignore[arg-type]
        reply=b"reply-to-" + args["data"],  # type: ignore[operator]
        now=args["now"],  # type: ignore[arg-type]
    )


def _code(cache: ReplayCache, **kw: object) -> ErrorCode:
    with pytest.raises(RemoteProtocolError) as info:
        _check(cache, **kw)  # type: ignore[arg-type]
    return info.value.code


@pytest.mark.parametrize(
    ("iat", "fresh"),
    [
        (T0 - W, True),
        (T0 - W - 1, False),
        (T0 + S, True),
        (T0 + S + 1, False),
        (T0, True),
    ],
)
def test_freshness_window_edges(iat: int, fresh: bool) -> None:
    cache = _cache()
    if fresh:
        assert _check(cache, iat=iat) is None
    else:
        assert _code(cache, iat=iat) is ErrorCode.STALE


def test_exact_duplicate_returns_the_cached_reply() -> None:
    cache = _cache()
    _accept(cache)
    entry = _check(cache, now=T0 + 1000)
    assert entry is not None and entry.reply == b"reply-to-x"  # type: ignore[attr-defined]


def test_same_id_other_content_is_a_conflict() -> None:
    cache = _cache()
    _accept(cache)
    assert _code(cache, data=b"y") is ErrorCode.CONFLICT


def test_same_id_other_recovery_is_wrong_recovery() -> None:
    cache = _cache()
    _accept(cache)
    assert _code(cache, data=b"y", recovery="r2") is ErrorCode.WRONG_RECOVERY
    assert _code(cache, data=b"y", recovery=None) is ErrorCode.WRONG_RECOVERY


def test_ids_are_per_sender() -> None:
    cache = _cache()
    _accept(cache)
    assert _check(cache, sender="b", data=b"y") is None


def test_stale_is_checked_before_the_cache() -> None:
    cache = _cache()
    _accept(cache)
    # The exact same message, once the window has passed: stale, not a duplicate.
    assert _code(cache, now=T0 + W + 1) is ErrorCode.STALE


def test_entries_expire_with_the_window() -> None:
    cache = _cache()
    _accept(cache)
    assert len(cache) == 1
    assert cache.snapshot(T0 + W) != {}
    cache.expire(T0 + W)
    assert len(cache) == 1  # iat + window is still fresh
    cache.expire(T0 + W + 1)
    assert len(cache) == 0 and cache.bytes_used == 0


def test_full_cache_refuses_rather_than_forgets() -> None:
    cache = _cache(capacity=3)
    for i in range(3):
        _accept(cache, mid=f"m{i}", iat=T0 + i, now=T0 + i)
    assert _code(cache, mid="new", now=T0 + 10) is ErrorCode.OVERLOADED
    # Old entries are still enforced while full.
    assert _code(cache, mid="m0", data=b"other", now=T0 + 10) is ErrorCode.CONFLICT
    # Once the oldest is stale anyway, room is made.
    assert _check(cache, mid="new", iat=T0 + W + 1, now=T0 + W + 1) is None
    assert len(cache) == 2


def test_byte_bound() -> None:
    cache = _cache(max_bytes=3 * ENTRY_OVERHEAD)
    n = 0
    while True:
        try:
            _accept(cache, mid=f"m{n}")
        except AssertionError:
            raise
        except RemoteProtocolError as exc:
            assert exc.code is ErrorCode.OVERLOADED
            break
        n += 1
    assert n == 3
    assert cache.bytes_used < cache.max_bytes + ENTRY_OVERHEAD + 100


def test_check_changes_nothing() -> None:
    cache = _cache()
    _accept(cache)
    before = cache.snapshot(T0)
    for kw in ({"data": b"y"}, {"iat": 0}, {"recovery": "r9", "data": b"z"}, {}):
        with contextlib.suppress(RemoteProtocolError):
            _check(cache, **kw)
    assert cache.snapshot(T0) == before and len(cache) == 1


def test_commit_twice_is_a_local_error() -> None:
    cache = _cache()
    _accept(cache)
    with pytest.raises(LocalProtocolError):
        cache.commit(
            sender="a", message_id="m1", iat=T0, recovery="r1", data=b"x", reply=None, now=T0
        )


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReplayCache(window_ms=0)
    with pytest.raises(ValueError):
        ReplayCache(capacity=0)


# A model of the rule with an unbounded memory: the bounded cache must agree
# with it whenever it does not answer ``overloaded``, and must never hold more
# entries than its capacity.
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),  # sender
        st.sampled_from(["m1", "m2", "m3", "m4"]),  # id
        st.sampled_from([b"x", b"y"]),  # content
        st.sampled_from(["r1", "r2", None]),  # recovery
        st.integers(-W - 10, S + 10),  # iat offset from now
        st.integers(0, W // 2),  # time step
    ),
    max_size=40,
)


@given(_OPS, st.integers(1, 5))
def test_bounded_cache_agrees_with_the_unbounded_rule(
    ops: list[tuple[str, str, bytes, str | None, int, int]], capacity: int
) -> None:
    cache = _cache(capacity=capacity)
    model: dict[tuple[str, str], tuple[bytes, str | None, int]] = {}
    now = T0
    for sender, mid, content, recovery, offset, step in ops:
        data = content + (recovery or "").encode()  # the recovery id is inside the bytes
        now += step
        iat = now + offset
        if not now - W <= iat <= now + S:
            expected: object = ErrorCode.STALE
        else:
            seen = model.get((sender, mid))
            if seen is not None and seen[2] + W >= now:
                if seen[0] == data and seen[1] == recovery:
                    expected = "duplicate"
                elif seen[1] != recovery:
                    expected = ErrorCode.WRONG_RECOVERY
                else:
                    expected = ErrorCode.CONFLICT
            else:
                expected = "new"
        try:
            got = _check(
                cache, sender=sender, mid=mid, iat=iat, recovery=recovery, data=data, now=now
            )
            verdict: object = "new" if got is None else "duplicate"
        except RemoteProtocolError as exc:
            verdict = exc.code
        if verdict is ErrorCode.OVERLOADED:
            assert expected == "new"
            assert len(cache) == capacity
            continue
        assert verdict == expected
        if verdict == "new":
            cache.commit(
                sender=sender,
                message_id=mid,
                iat=iat,
                recovery=recovery,
                data=data,
                reply=None,
                now=now,
            )
            model[(sender, mid)] = (data, recovery, iat)
        assert len(cache) <= capacity


def test_one_sender_cannot_fill_the_cache_for_everyone() -> None:
    cache = _cache(capacity=10)
    cache.max_per_sender = 3
    for i in range(3):
        _accept(cache, sender="flooder", mid=f"m{i}")
    assert _code(cache, sender="flooder", mid="m9") is ErrorCode.OVERLOADED
    _accept(cache, sender="other", mid="m9")
    cache.expire(T0 + W + 1)
    assert len(cache) == 0
    _accept(cache, sender="flooder", mid="m9", iat=T0 + W + 1, now=T0 + W + 1)
