"""Retry-After over a real server: the three "not now" refusals (draft §12.2).

One agent runtime (a participant for ``job-1``, coordinator of ``task-1``) is
served by uvicorn on loopback behind the HTTP binding's app, with a clock the
test moves, so that the wait a rate-limited refusal announces can be checked
against the time the next message of that type is actually taken. The peers
sign with their own keys and post with a real httpx client.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from agent_recovery._errors import ErrorCode
from agent_recovery._messages import FailureSignal, Halt, Message
from agent_recovery._model import EffectState, ExecRef, Severity
from agent_recovery._wire import encode
from agent_recovery.bindings.http import JWS_MEDIA_TYPE, PROBLEM_MEDIA_TYPE, listen, serving
from agent_recovery.runtime import AgentRuntime, agent_app, parse_config, wall_clock
from agent_recovery.runtime._scenario import write_keys
from agent_recovery.security import Signer
from agent_recovery.security.replay import ReplayCache

WORKER = "spiffe://t/worker"
BOSS = "spiffe://t/boss"
BOSS2 = "spiffe://t/boss2"
JOB = ExecRef(agent=WORKER, exec="job-1")
TASK = ExecRef(agent=BOSS, exec="task-1")
# Two failure signals at once, then one every 1.5 s: a wait that is not a whole
# number of seconds, so rounding shows.
BURST, INTERVAL_MS = 2, 1500
DELAY_SECONDS = re.compile(r"[0-9]+")  # RFC 9110 §10.2.3, delay-seconds


class Clock:
    """The agent's clock, in milliseconds; it moves only when the test says so."""

    def __init__(self) -> None:
        self.now = wall_clock()

    def __call__(self) -> int:
        return self.now


class Peer:
    """The test's side: signs as the coordinators and posts to the agent."""

    def __init__(self, keys: Path, url: str, client: httpx.AsyncClient, clock: Clock) -> None:
        self.signers = {
            agent: Signer.from_file(keys / f"{name}.jwk")
            for name, agent in (("boss", BOSS), ("boss2", BOSS2))
        }
        self.url = url + "/.well-known/agent-recovery"
        self.client = client
        self.clock = clock
        self.seq = 0

    def _id(self) -> str:
        self.seq += 1
        return f"m-{self.seq}"

    def signal(self) -> FailureSignal:
        # A warning about the boss's own execution: accepted, and costs a token.
        return FailureSignal(
            id=self._id(),
            sender=BOSS,
            recipient=WORKER,
            iat=self.clock.now,
            execution=TASK,
            failure_type="timeout",
            severity=Severity.WARNING,
            retryable=True,
            effect_state=EffectState.NONE,
            checkpoint=0,
        )

    def halt(self, sender: str, recovery: str, created: int) -> Halt:
        return Halt(
            id=self._id(),
            sender=sender,
            recipient=WORKER,
            iat=self.clock.now,
            recovery=recovery,
            trigger=f"s-{recovery}",
            execution=JOB,
            created=created,
        )

    async def post(self, message: Message) -> httpx.Response:
        body = self.signers[message.sender].sign(encode(message))
        return await self.client.post(
            self.url, content=body, headers={"Content-Type": JWS_MEDIA_TYPE}
        )


def _runtime(tmp: Path, clock: Clock) -> AgentRuntime:
    write_keys(tmp / "keys", {"worker": WORKER, "boss": BOSS, "boss2": BOSS2})
    doc = {
        "agent": WORKER,
        "key": "keys/worker.jwk",
        "trusted_keys": "keys/jwks.json",
        "state": "state.db",
        "resource": "resource.db",
        "rate_limits": {"failure-signal": {"burst": BURST, "interval_ms": INTERVAL_MS}},
        "coordinator": {"executions": [{"agent": BOSS, "exec": "task-1", "authority": []}]},
        "executions": [{"id": "job-1", "reversibility": "restorable", "authority": [BOSS, BOSS2]}],
    }
    return AgentRuntime(parse_config(doc, base=tmp), clock=clock)


@asynccontextmanager
async def _served(
    tmp: Path, prepare: Callable[[AgentRuntime], None] | None = None
) -> AsyncIterator[Peer]:
    clock = Clock()
    runtime = _runtime(tmp, clock)
    if prepare is not None:
        prepare(runtime)
    await runtime.start()
    try:
        async with (
            serving(agent_app(runtime), listen()) as url,
            httpx.AsyncClient(timeout=10, trust_env=False) as client,
        ):
            yield Peer(tmp / "keys", url, client, clock)
    finally:
        await runtime.stop()


def run(
    tmp: Path,
    scenario: Callable[[Peer], Awaitable[None]],
    prepare: Callable[[AgentRuntime], None] | None = None,
) -> None:
    async def main() -> None:
        async with _served(tmp, prepare) as peer:
            await scenario(peer)

    asyncio.run(asyncio.wait_for(main(), timeout=30))


def retry_after(response: httpx.Response, code: ErrorCode, status: int) -> int:
    """The refusal's Retry-After in seconds, after checking it is a ``code`` problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    doc = response.json()
    assert (doc["type"], doc["code"], doc["status"]) == (code.type_uri, code.value, status)
    value = response.headers.get("retry-after")
    assert value is not None, f"{code.value} without Retry-After"
    assert DELAY_SECONDS.fullmatch(value), f"Retry-After {value!r} is not delay-seconds"
    # The problem document repeats the wait (draft §12.2).
    assert doc["retry_after"] == int(value)
    return int(value)


def test_rate_limited_says_how_long_until_the_next_signal_conforms(tmp_path: Path) -> None:
    async def scenario(peer: Peer) -> None:
        start = peer.clock.now
        for _ in range(BURST):
            assert (await peer.post(peer.signal())).status_code == 200
        # The bucket is empty: the next failure signal conforms INTERVAL_MS from now.
        refused = await peer.post(peer.signal())
        wait = retry_after(refused, ErrorCode.RATE_LIMITED, 429)
        assert wait == math.ceil(INTERVAL_MS / 1000) == 2
        # Waiting one second less than that is not enough ...
        peer.clock.now = start + (wait - 1) * 1000
        refused = await peer.post(peer.signal())
        # ... and the refusal says how much is left: 500 ms, rounded up.
        assert retry_after(refused, ErrorCode.RATE_LIMITED, 429) == 1
        # The moment the limit allows it, a signal is taken, well within the wait.
        peer.clock.now = start + INTERVAL_MS
        assert (await peer.post(peer.signal())).status_code == 200
        # The bucket is empty again: the next one conforms a whole interval later.
        refused = await peer.post(peer.signal())
        assert retry_after(refused, ErrorCode.RATE_LIMITED, 429) == 2
        peer.clock.now = start + INTERVAL_MS + 2 * 1000
        assert (await peer.post(peer.signal())).status_code == 200
        # The limit is per message type: a halt is not charged to failure signals.
        halt = peer.halt(BOSS, "r-1", peer.clock.now)
        assert (await peer.post(halt)).status_code == 200

    run(tmp_path, scenario)


def test_overloaded_carries_retry_after(tmp_path: Path) -> None:
    def tiny_replay_cache(runtime: AgentRuntime) -> None:
        # Room for one accepted message: the second new one cannot be remembered.
        runtime.endpoint.replay = ReplayCache(capacity=1)

    async def scenario(peer: Peer) -> None:
        first = peer.signal()
        assert (await peer.post(first)).status_code == 200
        refused = await peer.post(peer.halt(BOSS, "r-1", peer.clock.now))
        assert retry_after(refused, ErrorCode.OVERLOADED, 503) >= 0
        # A duplicate needs no room: it is answered from the cache.
        assert (await peer.post(first)).status_code == 200

    run(tmp_path, scenario, tiny_replay_cache)


def test_busy_carries_retry_after(tmp_path: Path) -> None:
    async def scenario(peer: Peer) -> None:
        now = peer.clock.now
        assert (await peer.post(peer.halt(BOSS, "r-old", now))).status_code == 200
        # draft §8.5: a younger recovery waits for the one that holds the execution.
        refused = await peer.post(peer.halt(BOSS2, "r-young", now + 1000))
        assert retry_after(refused, ErrorCode.BUSY, 409) >= 0
        assert refused.json()["owner"]["recovery"] == "r-old"

    run(tmp_path, scenario)
