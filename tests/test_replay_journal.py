"""A replay cache that survives a restart, and one that knows when it is complete (draft §9.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery.security.replay import ReplayCache
from agent_recovery.store import Store
from agent_recovery.store._replay import ReplayJournal

T0 = 1_800_000_000_000
W = 300_000


def _check(cache: ReplayCache, *, mid: str, iat: int, data: bytes, now: int) -> object:
    return cache.check(sender="a", message_id=mid, iat=iat, recovery="r", data=data, now=now)


def _commit(cache: ReplayCache, *, mid: str, iat: int, data: bytes, now: int) -> None:
    cache.commit(
        sender="a", message_id=mid, iat=iat, recovery="r", data=data, reply=b"ack-" + data, now=now
    )


def _stale(cache: ReplayCache, **kw: object) -> bool:
    try:
        _check(cache, **kw)  # type: ignore[arg-type]
    except RemoteProtocolError as exc:
        return exc.code is ErrorCode.STALE
    return False


def test_a_journal_for_an_agent_that_kept_none_before(tmp_path: Path) -> None:
    journal = ReplayJournal(tmp_path / "state.db", now=T0 + 5, lost_before=T0)
    assert journal.complete_since == T0
    journal.close()


def test_a_cache_refuses_what_it_cannot_know() -> None:
    # A receiver that lost its cache refuses as stale every message issued
    # before the time from which its cache is complete, inside the window too.
    cache = ReplayCache(complete_since=T0)
    assert _stale(cache, mid="m1", iat=T0 - 1, data=b"x", now=T0 + 10)
    assert _check(cache, mid="m1", iat=T0, data=b"x", now=T0 + 10) is None
    assert _check(ReplayCache(), mid="m1", iat=T0 - 1, data=b"x", now=T0 + 10) is None


def test_the_journal_keeps_the_cache_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()  # the agent's store file: the journal shares it
    journal = ReplayJournal(path, now=T0)
    assert journal.complete_since == 0  # a new journal has lost nothing
    cache = ReplayCache(journal=journal, complete_since=journal.complete_since)
    journal.begin(T0 + 100)
    assert _check(cache, mid="m1", iat=T0 + 5, data=b"one", now=T0 + 10) is None
    _commit(cache, mid="m1", iat=T0 + 5, data=b"one", now=T0 + 10)
    _commit(cache, mid="m2", iat=T0 + 6, data=b"two", now=T0 + 10)
    assert cache.update_reply(sender="a", message_id="m2", reply=b"result")
    journal.commit(T0 + 10)
    assert cache.update_reply(sender="a", message_id="m1", reply=b"later")  # after commit
    journal.commit(T0 + 20)
    journal.close()

    again = ReplayJournal(path, now=T0 + 1_000)
    assert again.complete_since == 0  # nothing was lost
    restored = ReplayCache(journal=again, complete_since=again.complete_since)
    assert restored.restore(again.entries(T0 + 1_000), T0 + 1_000) == 2
    one = _check(restored, mid="m1", iat=T0 + 5, data=b"one", now=T0 + 1_000)
    two = _check(restored, mid="m2", iat=T0 + 6, data=b"two", now=T0 + 1_000)
    assert getattr(one, "reply", None) == b"later"
    assert getattr(two, "reply", None) == b"result"
    with pytest.raises(RemoteProtocolError) as refused:  # same id, other content
        _check(restored, mid="m1", iat=T0 + 5, data=b"forged", now=T0 + 1_000)
    assert refused.value.code is ErrorCode.CONFLICT
    # Expired entries are not restored (the window refuses them anyway).
    later = ReplayCache()
    assert later.restore(again.entries(T0 + W + 100), T0 + W + 100) == 0
    again.close()


def test_a_batch_cut_short_makes_the_cache_complete_only_from_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    journal = ReplayJournal(path, now=T0)
    cache = ReplayCache(journal=journal, complete_since=journal.complete_since)
    journal.begin(T0 + 500)  # a batch starts...
    _commit(cache, mid="m1", iat=T0 + 5, data=b"one", now=T0 + 10)
    journal.close()  # ...and the process dies before its entries are written
    again = ReplayJournal(path, now=T0 + 1_000)
    assert again.complete_since == T0 + 500
    restored = ReplayCache(journal=again, complete_since=again.complete_since)
    assert restored.restore(again.entries(T0 + 1_000), T0 + 1_000) == 0
    # The lost message cannot be replayed: it is refused as stale.
    assert _stale(restored, mid="m1", iat=T0 + 5, data=b"one", now=T0 + 1_000)
    assert _check(restored, mid="m3", iat=T0 + 600, data=b"new", now=T0 + 1_000) is None
    again.close()
    # The bound is remembered: a third start does not forget it.
    third = ReplayJournal(path, now=T0 + 2_000)
    assert third.complete_since == T0 + 500
    third.close()


def test_an_agent_answers_a_duplicate_the_same_way_after_a_restart(tmp_path: Path) -> None:
    # Real runtime, real store file, two processes' worth of lifetimes.
    import asyncio

    from agent_recovery._messages import Halt
    from agent_recovery._model import ExecRef
    from agent_recovery._wire import encode
    from agent_recovery.runtime import AgentRuntime, parse_config
    from agent_recovery.runtime._scenario import write_keys
    from agent_recovery.security import Signer

    boss, worker = "spiffe://t.example/boss", "spiffe://t.example/worker"
    write_keys(tmp_path / "keys", {"boss": boss, "worker": worker})
    doc = {
        "agent": worker,
        "key": "keys/worker.jwk",
        "trusted_keys": "keys/jwks.json",
        "state": "worker.db",
        "resource": "resource.db",
        "executions": [{"id": "a", "reversibility": "restorable", "authority": [boss]}],
    }
    signer = Signer.from_file(tmp_path / "keys" / "boss.jwk")

    def halt(iat: int, mid: str = "h-1") -> bytes:
        return signer.sign(
            encode(
                Halt(
                    id=mid,
                    sender=boss,
                    recipient=worker,
                    iat=iat,
                    recovery="r-1",
                    trigger="s-1",
                    execution=ExecRef(agent=worker, exec="a"),
                    created=iat,
                )
            )
        )

    async def life(token: bytes, *, cut_short: bool = False) -> tuple[int, bytes]:
        runtime = AgentRuntime(parse_config(doc, base=tmp_path))
        await runtime.start()
        try:
            (answer,) = runtime._process([token])
            if cut_short:
                # Killed inside the next batch, before its entries are written.
                runtime.replay_journal.begin(runtime.clock() + 30_001)
                runtime.replay_journal.close()
                runtime.replay_journal = ReplayJournal(tmp_path / "spare.db", now=0)
            return answer.status, answer.body
        finally:
            await runtime.stop()

    first = halt(iat=_now())
    status, reply = asyncio.run(life(first))
    assert status == 200
    # After a restart the exact duplicate gets the exact reply from the cache.
    assert asyncio.run(life(first)) == (200, reply)
    # A batch cut short by a crash: what was issued before it is refused as stale.
    asyncio.run(life(halt(iat=_now(), mid="h-2"), cut_short=True))
    status, body = asyncio.run(life(halt(iat=_now() - 1_000, mid="h-3")))
    assert status == 400 and b"stale" in body


def _now() -> int:
    import time

    return time.time_ns() // 1_000_000
