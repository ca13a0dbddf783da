"""Requirements of the draft that no other test exercised (see conformance/requirements.json).

Each test names the requirement it covers and would fail if the implementation
broke it: real engines, real endpoints and a real HTTP server, no mocks.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from agent_recovery._coordinator import Coordinator
from agent_recovery._messages import (
    Ack,
    Error,
    FailureSignal,
    Halt,
    Message,
    Rollback,
    Status,
    StatusQuery,
)
from agent_recovery._model import (
    Action,
    EffectState,
    ExecRef,
    Facts,
    Reason,
    ReasonKind,
    Reversibility,
    Severity,
)
from agent_recovery._model import Status as ExecStatus
from agent_recovery._participant import Participant
from agent_recovery._state import Retry
from agent_recovery._wire import decode, encode
from agent_recovery.bindings import a2a
from agent_recovery.bindings.http import (
    JWS_MEDIA_TYPE,
    PROBLEM_MEDIA_TYPE,
    DeliveryError,
    RecoveryClient,
    listen,
    serving,
)
from agent_recovery.runtime import AgentRuntime, agent_app, parse_config, wall_clock
from agent_recovery.runtime._scenario import write_keys
from agent_recovery.security import Signer, Verifier, load_jwk_set
from agent_recovery.security.replay import DEFAULT_SKEW_MS, DEFAULT_WINDOW_MS

ATTACKS = Path(__file__).resolve().parents[1] / "conformance" / "attacks"


def _world_module() -> ModuleType:
    # The attack corpus's scripted world: real engines behind real endpoints.
    if "world" in sys.modules:
        return sys.modules["world"]
    sys.path.insert(0, str(ATTACKS))
    spec = importlib.util.spec_from_file_location("world", ATTACKS / "world.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["world"] = module
    spec.loader.exec_module(module)
    return module


w = _world_module()


def _codes(out: list[Message]) -> list[str]:
    return [m.code for m in out if isinstance(m, Error)]


# -- draft §5.1: identifiers are opaque ------------------------------------------------


def test_identifiers_are_compared_octet_by_octet() -> None:
    """R-model-ids-1: no case folding, no URI or percent-encoding normalization."""
    me, boss = "spiffe://example.org/worker", "spiffe://example.org/boss"
    job = ExecRef(agent=me, exec="Job-1")
    p = Participant(agent=me)
    facts = Facts(status=ExecStatus.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0)
    p.register_execution(job, facts, [boss])
    n = 0

    def halt(sender: str, recipient: str, execution: ExecRef) -> list[str]:
        nonlocal n
        n += 1
        message = Halt(
            id=f"h-{n}",
            sender=sender,
            recipient=recipient,
            iat=1_000,
            recovery=f"r-{n}",
            trigger=f"s-{n}",
            execution=execution,
            created=1_000,
        )
        p.receive(sender, message, 1_000)
        out = p.data_to_send()
        return _codes(out) or [type(out[0]).__name__]

    for alias in ("spiffe://EXAMPLE.org/worker", "spiffe://example.org/%77orker"):
        # Equal as URIs after normalization; different octets, so not this agent.
        assert halt(boss, alias, ExecRef(agent=alias, exec="Job-1")) == ["wrong-recipient"]
    assert halt(boss, me, ExecRef(agent=me, exec="job-1")) == ["unknown-execution"]
    for stranger in ("spiffe://EXAMPLE.org/boss", "spiffe://example.org/boss/"):
        assert halt(stranger, me, job) == ["unauthorized"]
    assert halt(boss, me, job) == ["Halted"]  # the exact octets are accepted


# -- draft §5.1, §9.3: message and recovery identifiers ---------------------------------


def test_message_ids_are_unique_per_sender() -> None:
    """R-model-ids-2, R-proc-replay-5: two recoveries' worth of traffic, every party.

    A retransmission repeats an identifier with the identical signed bytes; any
    other repetition would be a reuse.
    """
    world = w.fixture_second_recovery()
    seen: dict[tuple[str, str], bytes] = {}
    for sent in world.sent:
        key = (sent.message.sender, sent.message.id)
        assert seen.setdefault(key, sent.data) == sent.data, key
    senders = Counter(sender for sender, _ in seen)
    assert len(senders) >= 3 and min(senders.values()) >= 3


def test_recovery_ids_are_unique_per_coordinator() -> None:
    """R-model-ids-3: ten failure signals at once open ten recoveries, named apart."""
    world = w.fixture_signals_exhausted()
    opened = [
        s.message.recovery
        for s in world.sent
        if isinstance(s.message, Ack) and s.message.sender == w.ORCHESTRATOR and s.message.recovery
    ]
    assert len(set(opened)) == len(opened) == 10


# -- draft §6.2.3: an unrecognized failure type is never success --------------------------


@pytest.mark.parametrize("failure_type", ["quorum-lost", "execution-error"])
def test_an_unrecognized_failure_type_opens_a_recovery(failure_type: str) -> None:
    """R-msg-fs-processing-3: the signal is neither discarded nor taken for success."""
    origin = ExecRef(agent="a", exec="o")
    c = Coordinator(agent="c", ids=lambda n: f"c-{n}")
    c.add_execution(origin, ["c"])
    signal = FailureSignal(
        id="sig-1",
        sender="a",
        recipient="c",
        iat=1_000,
        execution=origin,
        failure_type=failure_type,
        severity=Severity.ERROR,
        retryable=False,
        effect_state=EffectState.PARTIAL,
        checkpoint=1,
    )
    c.receive("a", signal, 1_000)
    out = c.data_to_send()
    acks = [m for m in out if isinstance(m, Ack)]
    assert len(acks) == 1 and acks[0].recovery is not None and acks[0].trigger == "sig-1"
    assert [m.execution for m in out if isinstance(m, Halt)] == [origin]
    assert len(c.recoveries()) == 1


# -- draft §9.3: the freshness window ------------------------------------------------


def test_the_default_replay_window_exceeds_every_retransmission_interval() -> None:
    """R-proc-replay-6: W > the longest retransmission interval plus the skew, W <= 5 min.

    A retransmission later than W would be refused as stale and its reply lost.
    """
    retry = Retry()
    longest = max(retry.ceiling, retry.follow_up_interval)
    assert longest + DEFAULT_SKEW_MS < DEFAULT_WINDOW_MS
    assert DEFAULT_WINDOW_MS <= 5 * 60_000


# -- draft §12.2.1: the HTTP client -------------------------------------------------------


class _Recorder:
    """An ASGI app that redirects the recovery endpoint and records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Accept)

    async def redirect(self, request: Request) -> Response:
        self.requests.append((request.url.path, request.headers.get("accept", "")))
        return RedirectResponse("/elsewhere", status_code=307)

    async def elsewhere(self, request: Request) -> Response:
        self.requests.append((request.url.path, request.headers.get("accept", "")))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/agent-recovery", self.redirect, methods=["POST"]),
                Route("/elsewhere", self.elsewhere, methods=["POST"]),
            ]
        )


def _post_through_redirect() -> tuple[_Recorder, BaseException | None]:
    recorder = _Recorder()
    raised: list[BaseException] = []

    async def main() -> None:
        async with serving(recorder.app(), listen()) as url, RecoveryClient(timeout=10) as client:
            try:
                await client.send(url + "/.well-known/agent-recovery", b"e30.e30.c2ln")
            except DeliveryError as exc:
                raised.append(exc)

    asyncio.run(main())
    return recorder, raised[0] if raised else None


def test_the_http_client_does_not_follow_redirects() -> None:
    """R-http-requests-2: a redirect is not followed; the exchange is a failed delivery."""
    recorder, raised = _post_through_redirect()
    assert [path for path, _ in recorder.requests] == ["/.well-known/agent-recovery"]
    assert isinstance(raised, DeliveryError)


def test_the_http_client_asks_for_a_signed_reply_or_a_problem() -> None:
    """R-http-requests-1: Accept lists the JWS media type and problem+json."""
    recorder, _ = _post_through_redirect()
    (_, accept), *_ = recorder.requests
    listed = {part.split(";")[0].strip() for part in accept.split(",")}
    assert {JWS_MEDIA_TYPE, PROBLEM_MEDIA_TYPE} <= listed


# -- draft §6.6: an action that contradicts the declared reversibility -------------------

WORKER = "spiffe://t/worker"
BOSS = "spiffe://t/boss"
TICKET = ExecRef(agent=WORKER, exec="ticket-1")


def test_a_rollback_that_contradicts_the_declared_reversibility_is_refused(
    tmp_path: Path,
) -> None:
    """R-msg-rollback-3: "restore" of a compensable execution is refused, not performed."""
    write_keys(tmp_path / "keys", {"worker": WORKER, "boss": BOSS})
    doc = {
        "agent": WORKER,
        "key": "keys/worker.jwk",
        "trusted_keys": "keys/jwks.json",
        "state": "state.db",
        "resource": "resource.db",
        "executions": [{"id": "ticket-1", "reversibility": "compensable", "authority": [BOSS]}],
    }
    runtime = AgentRuntime(parse_config(doc, base=tmp_path))
    boss = Signer.from_file(tmp_path / "keys" / "boss.jwk")
    verifier = Verifier(load_jwk_set(tmp_path / "keys" / "jwks.json"))
    scope = {"sender": BOSS, "recipient": WORKER, "recovery": "r-1", "trigger": "s-1"}

    async def main() -> Status:
        await runtime.start()
        # The work changed something after checkpoint 0: there is something to undo.
        runtime.call(lambda p: p.record_effect(TICKET))
        try:
            async with (
                serving(agent_app(runtime), listen()) as url,
                RecoveryClient(timeout=10) as client,
            ):
                endpoint = url + "/.well-known/agent-recovery"

                async def send(message: Message) -> Message | None:
                    delivery = await client.send(endpoint, boss.sign(encode(message)))
                    if delivery.reply is None:
                        return None
                    return decode(verifier.verify(delivery.reply).payload)

                created = wall_clock()
                halt = Halt(id="h-1", iat=created, execution=TICKET, created=created, **scope)
                assert type(await send(halt)).__name__ == "Halted"
                rollback = Rollback(
                    id="rb-1",
                    iat=wall_clock(),
                    execution=TICKET,
                    target=0,
                    action=Action.RESTORE,
                    reason=Reason(kind=ReasonKind.ORIGIN),
                    **scope,
                )
                await send(rollback)
                for n in range(200):
                    query = StatusQuery(id=f"q-{n}", iat=wall_clock(), execution=TICKET, **scope)
                    status = await send(query)
                    assert isinstance(status, Status)
                    if status.state != "rolling-back":
                        return status
                    await asyncio.sleep(0.05)
                raise AssertionError("the rollback never finished")
        finally:
            await runtime.stop()

    status = asyncio.run(main())
    assert (status.state, status.outcome) == ("refused", "refused")


# -- draft §12.3.4: the parts of a carrying A2A Message are not input --------------------


class _Work(AgentExecutor):
    """The agent's own work: records every A2A message it is given as input."""

    def __init__(self) -> None:
        self.inputs: list[object] = []

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.inputs.append(context.message)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def test_the_parts_of_a_carrying_message_are_not_input() -> None:
    """R-a2a-carriage-3: a protocol message goes to the engine, never to the agent's work."""
    jws = "eyJhbGciOiJFZERTQSJ9.eyJ2IjoxfQ.c2ln"
    seen: list[str] = []
    work = _Work()

    def handle(carried: str) -> str | None:
        seen.append(carried)
        return None

    async def main() -> str | None:
        sock = a2a.listen()
        host, port = sock.getsockname()[:2]
        roles = (a2a.ExtensionRole.COORDINATOR, a2a.ExtensionRole.PARTICIPANT)
        card = a2a.agent_card(name="worker", url=f"http://{host}:{port}/", roles=roles)
        async with a2a.serving(
            a2a.build_app(card, a2a.RecoveryExecutor(handle, work)), sock
        ) as url:
            client = await a2a.RecoveryClient.connect(url)
            try:
                return await client.send(jws, role=a2a.ExtensionRole.PARTICIPANT)
            finally:
                await client.close()

    assert asyncio.run(asyncio.wait_for(main(), timeout=20)) is None
    assert seen == [jws]
    assert work.inputs == []
