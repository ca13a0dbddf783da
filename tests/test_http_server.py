"""The HTTP binding over a real uvicorn server on 127.0.0.1 (draft §12.2).

One agent (a participant for ``job-1``, and the coordinator of ``task-1``)
runs in-process behind the real Starlette app; the test plays its peers with
their own keys and a real httpx client. Every refusal must be a problem
document of the right type, and the server must keep serving after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from agent_recovery._errors import ErrorCode
from agent_recovery._messages import FailureSignal, Halt, Halted, Message
from agent_recovery._model import EffectState, ExecRef, Severity
from agent_recovery._wire import decode, encode
from agent_recovery.bindings.http import (
    JWS_MEDIA_TYPE,
    MAX_BODY_SIZE,
    PROBLEM_MEDIA_TYPE,
    Answer,
    build_app,
    listen,
    parse_problem,
    serving,
)
from agent_recovery.runtime import AgentRuntime, agent_app, parse_config, wall_clock
from agent_recovery.runtime._scenario import write_keys
from agent_recovery.security import Signer, Verifier, load_jwk_set

WORKER = "spiffe://t/worker"
BOSS = "spiffe://t/boss"
BOSS2 = "spiffe://t/boss2"
INTRUDER = "spiffe://t/intruder"
JOB = ExecRef(agent=WORKER, exec="job-1")


class Peer:
    """The test's side: signs as any of the test agents, posts, verifies replies."""

    def __init__(self, keys: Path, url: str, client: httpx.AsyncClient) -> None:
        self.signers = {
            agent: Signer.from_file(keys / f"{name}.jwk")
            for name, agent in (("boss", BOSS), ("boss2", BOSS2), ("intruder", INTRUDER))
        }
        self.verifier = Verifier(load_jwk_set(keys / "jwks.json"))
        self.url = url + "/.well-known/agent-recovery"
        self.client = client
        self.seq = 0

    def sign(self, message: Message) -> bytes:
        return self.signers[message.sender].sign(encode(message))

    def halt(self, sender: str, recovery: str, created: int) -> Halt:
        self.seq += 1
        return Halt(
            id=f"h-{self.seq}",
            sender=sender,
            recipient=WORKER,
            iat=wall_clock(),
            recovery=recovery,
            trigger=f"s-{recovery}",
            execution=JOB,
            created=created,
        )

    async def post(self, body: bytes, content_type: str = JWS_MEDIA_TYPE) -> httpx.Response:
        return await self.client.post(
            self.url, content=body, headers={"Content-Type": content_type}
        )

    def reply(self, response: httpx.Response) -> Message:
        return decode(self.verifier.verify(response.content).payload)


def _config(tmp: Path) -> AgentRuntime:
    write_keys(tmp / "keys", {"worker": WORKER, "boss": BOSS, "boss2": BOSS2, "intruder": INTRUDER})
    doc = {
        "agent": WORKER,
        "key": "keys/worker.jwk",
        "trusted_keys": "keys/jwks.json",
        "state": "state.db",
        "resource": "resource.db",
        "coordinator": {"executions": [{"agent": BOSS, "exec": "task-1", "authority": []}]},
        "executions": [{"id": "job-1", "reversibility": "restorable", "authority": [BOSS, BOSS2]}],
    }
    return AgentRuntime(parse_config(doc, base=tmp))


@asynccontextmanager
async def _agent(tmp: Path) -> AsyncIterator[Peer]:
    runtime = _config(tmp)
    await runtime.start()
    try:
        async with (
            serving(agent_app(runtime), listen()) as url,
            httpx.AsyncClient(timeout=10, trust_env=False) as client,
        ):
            yield Peer(tmp / "keys", url, client)
    finally:
        await runtime.stop()


def run(tmp: Path, scenario: Callable[[Peer], Awaitable[None]]) -> None:
    async def main() -> None:
        async with _agent(tmp) as peer:
            await scenario(peer)

    asyncio.run(main())


def _problem(response: httpx.Response, code: ErrorCode) -> dict[str, object]:
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    doc: dict[str, object] = response.json()
    assert doc["type"] == code.type_uri, doc
    assert doc["code"] == code.value
    assert response.headers["cache-control"] == "no-store"
    assert doc["status"] == response.status_code
    return doc


async def _still_serving(peer: Peer) -> None:
    halt = peer.halt(BOSS, f"r-alive-{peer.seq}", wall_clock())
    response = await peer.post(peer.sign(halt))
    # A halt from a second recovery of the same authority may be busy; either way
    # it is a verified, signed protocol answer from a live server.
    assert response.status_code in (200, 409)
    if response.status_code == 200:
        assert isinstance(peer.reply(response), Halted)


def test_a_signed_halt_is_answered_with_the_signed_halted_reply(tmp_path: Path) -> None:
    async def scenario(peer: Peer) -> None:
        halt = peer.halt(BOSS, "r-1", wall_clock())
        response = await peer.post(peer.sign(halt))
        assert response.status_code == 200
        assert response.headers["content-type"] == JWS_MEDIA_TYPE
        assert response.headers["cache-control"] == "no-store"
        reply = peer.reply(response)
        assert isinstance(reply, Halted)
        assert (reply.reply_to, reply.recipient, reply.execution) == (halt.id, BOSS, JOB)
        # draft §9.3: an exact duplicate is answered with the very same reply.
        again = await peer.post(peer.sign(halt))
        assert again.status_code == 200 and again.content == response.content

    run(tmp_path, scenario)


def test_malformed_oversized_and_unsigned_requests_leave_the_server_serving(
    tmp_path: Path,
) -> None:
    async def scenario(peer: Peer) -> None:
        _problem(await peer.post(b"garbage"), ErrorCode.UNSIGNED)
        halt = peer.halt(BOSS, "r-1", wall_clock())
        # A bare JSON message, no signature at all: refused before it is decoded.
        _problem(await peer.post(b'{"v":1,"type":"halt"}'), ErrorCode.UNSIGNED)
        bare = await peer.post(encode(halt))
        assert bare.status_code == 400
        assert parse_problem(bare.content, 400).code in (ErrorCode.UNSIGNED, ErrorCode.MALFORMED)
        # A JWS whose payload is not a message: signed, but malformed.
        signed_junk = peer.signers[BOSS].sign(b'{"v":1,"type":"halt"')
        assert (await peer.post(signed_junk)).status_code == 400
        _problem(await peer.post(signed_junk), ErrorCode.MALFORMED)
        # Too large: refused from Content-Length, and while streaming (no length).
        big = b"a" * (MAX_BODY_SIZE + 1)
        response = await peer.post(big)
        assert response.status_code == 413
        _problem(response, ErrorCode.TOO_LARGE)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY_SIZE // 65536 + 2):
                yield b"b" * 65536

        streamed = await peer.client.post(
            peer.url, content=chunks(), headers={"Content-Type": JWS_MEDIA_TYPE}
        )
        assert streamed.status_code == 413
        _problem(streamed, ErrorCode.TOO_LARGE)
        # A signature by a key nobody trusts.
        rogue = Signer.from_file(Path(__file__).parents[1] / "conformance/keys/rogue-1.jwk")
        _problem(await peer.post(rogue.sign(encode(halt))), ErrorCode.UNKNOWN_KEY)
        await _still_serving(peer)

    run(tmp_path, scenario)


def test_http_level_refusals(tmp_path: Path) -> None:
    async def scenario(peer: Peer) -> None:
        halt = peer.sign(peer.halt(BOSS, "r-1", wall_clock()))
        response = await peer.post(halt, content_type="application/json")
        assert response.status_code == 415
        assert response.headers["accept-post"] == JWS_MEDIA_TYPE
        _problem(response, ErrorCode.MALFORMED)
        response = await peer.client.get(peer.url)
        assert (response.status_code, response.headers["allow"]) == (405, "POST")
        response = await peer.client.post(peer.url.replace("agent-recovery", "other"))
        assert response.status_code == 404
        assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        await _still_serving(peer)

    run(tmp_path, scenario)


def test_an_authenticated_refusal_carries_the_signed_error(tmp_path: Path) -> None:
    async def scenario(peer: Peer) -> None:
        halt = peer.halt(INTRUDER, "r-9", wall_clock())
        response = await peer.post(peer.sign(halt))
        assert response.status_code == 403
        doc = _problem(response, ErrorCode.UNAUTHORIZED)
        signed = str(doc["signed_error"]).encode()
        error = decode(peer.verifier.verify(signed).payload)
        assert error.TYPE == "error"
        assert error.reply_to == halt.id
        assert error.code == "unauthorized"
        await _still_serving(peer)

    run(tmp_path, scenario)


def test_busy_names_the_owner_and_says_when_to_retry(tmp_path: Path) -> None:
    async def scenario(peer: Peer) -> None:
        now = wall_clock()
        first = await peer.post(peer.sign(peer.halt(BOSS, "r-old", now)))
        assert first.status_code == 200
        # draft §8.5: a younger recovery is refused with busy and the owner.
        second = await peer.post(peer.sign(peer.halt(BOSS2, "r-young", now + 1000)))
        assert second.status_code == 409
        doc = _problem(second, ErrorCode.BUSY)
        assert isinstance(doc["owner"], dict) and doc["owner"]["recovery"] == "r-old"
        assert int(second.headers["retry-after"]) >= 1
        problem = parse_problem(second.content, 409, second.headers["retry-after"])
        assert problem.owner is not None and problem.owner.created == now

    run(tmp_path, scenario)


def test_too_many_failure_signals_are_rate_limited_with_retry_after(tmp_path: Path) -> None:
    async def scenario(peer: Peer) -> None:
        statuses = []
        for n in range(11):
            signal = FailureSignal(
                id=f"w-{n}",
                sender=BOSS,
                recipient=WORKER,
                iat=wall_clock(),
                execution=ExecRef(agent=BOSS, exec="task-1"),
                failure_type="timeout",
                severity=Severity.WARNING,
                retryable=True,
                effect_state=EffectState.NONE,
                checkpoint=0,
            )
            response = await peer.post(peer.sign(signal))
            statuses.append(response.status_code)
        # draft §13.4: ten at once, then one per interval; warnings cost a token too.
        assert statuses == [200] * 10 + [429]
        _problem(response, ErrorCode.RATE_LIMITED)
        assert int(response.headers["retry-after"]) >= 1

    run(tmp_path, scenario)


def test_a_failing_handler_is_an_internal_problem_and_the_server_goes_on() -> None:
    calls = []

    async def handle(body: bytes) -> Answer:
        calls.append(body)
        if body == b"boom":
            raise RuntimeError("handler bug")
        return Answer(status=204)

    async def main() -> None:
        async with (
            serving(build_app(handle), listen()) as url,
            httpx.AsyncClient(trust_env=False) as client,
        ):
            endpoint = url + "/.well-known/agent-recovery"
            headers = {"Content-Type": JWS_MEDIA_TYPE}
            response = await client.post(endpoint, content=b"boom", headers=headers)
            assert response.status_code == 500
            assert response.json()["type"] == ErrorCode.INTERNAL.type_uri
            response = await client.post(endpoint, content=b"fine", headers=headers)
            assert response.status_code == 204

    asyncio.run(main())
    assert calls == [b"boom", b"fine"]


@pytest.mark.parametrize("port", [0])
def test_listen_picks_a_free_loopback_port(port: int) -> None:
    sock = listen(port=port)
    try:
        host, bound = sock.getsockname()[:2]
        assert host == "127.0.0.1" and bound > 0
    finally:
        sock.close()
