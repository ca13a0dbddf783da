"""The A2A binding over a real a2a-sdk server (uvicorn, loopback) and client (draft §12.3).

Every test starts its own agent on a free port and talks to it with the real
a2a-sdk JSON-RPC client; the only stand-in is the engine behind ``handle``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers import new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import (
    GetTaskRequest,
    Message,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import (
    A2AError,
    ExtensionSupportRequiredError,
    InvalidParamsError,
    UnsupportedOperationError,
)
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery.bindings.a2a import (
    ERROR_CODE_KEY,
    EXTENSION_URI,
    DeliveryError,
    ExtensionRole,
    Handler,
    RecoveryClient,
    RecoveryExecutor,
    activation_context,
    agent_card,
    build_app,
    fail_task,
    failure_signal,
    http_client,
    listen,
    protocol_message,
    serving,
)

T = TypeVar("T")
BOTH = (ExtensionRole.COORDINATOR, ExtensionRole.PARTICIPANT)
_KEY = ed25519.Ed25519PrivateKey.generate()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jws(payload: dict[str, object]) -> str:
    """A real EdDSA JWS compact serialization (RFC 7515 §7.1) of ``payload``."""
    header = _b64(b'{"alg":"EdDSA","kid":"test","typ":"agent-recovery+jws"}')
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _KEY.sign(f"{header}.{body}".encode("ascii"))
    return f"{header}.{body}.{_b64(signature)}"


HALT = _jws({"v": 1, "type": "halt", "id": "h1", "from": "coord", "to": "worker"})
# 2**53 + 1 is not a double: carried as JSON text inside the JWS, it stays exact.
RESUME = _jws({"v": 1, "type": "resume", "id": "r1", "checkpoint": 2**53 + 1})
SIGNAL = _jws({"v": 1, "type": "failure-signal", "id": "s1", "failure_type": "tool-error"})


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=20))


class Recorder:
    """The engine stand-in: records what arrives, answers with ``answer(jws)`` (an echo)."""

    def __init__(self, answer: Callable[[str], str | None] = lambda jws: jws) -> None:
        self.seen: list[str] = []
        self._answer = answer

    def __call__(self, jws: str) -> str | None:
        self.seen.append(jws)
        return self._answer(jws)


class FailingWork(AgentExecutor):
    """An agent's own work: every delegated task fails, with ``SIGNAL`` as its cause."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        await fail_task(context, updater, detail="inventory service unreachable", signal=SIGNAL)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


class WaitingWork(AgentExecutor):
    """An agent's own work that stops to wait for input: the task stays open."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        await TaskUpdater(event_queue, task.id, task.context_id).requires_input()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


@asynccontextmanager
async def agent(
    handle: Handler,
    *,
    work: AgentExecutor | None = None,
    roles: Sequence[ExtensionRole] = BOTH,
) -> AsyncIterator[str]:
    sock = listen()
    host, port = sock.getsockname()
    card = agent_card(name="worker", url=f"http://{host}:{port}/", roles=roles)
    async with serving(build_app(card, RecoveryExecutor(handle, work)), sock) as url:
        yield url


@asynccontextmanager
async def plain_client(url: str) -> AsyncIterator[ClientFactory]:
    """An ordinary a2a-sdk client, for what the binding's client would never send."""
    async with httpx.AsyncClient() as http:
        yield ClientFactory(ClientConfig(streaming=False, httpx_client=http))


async def _delegate(url: str, *, activate: bool) -> tuple[Task, Task]:
    """Delegate a task with a plain a2a-sdk client; return the response and GetTask's view."""
    async with plain_client(url) as factory:
        client = await factory.create_from_url(url)
        context = activation_context() if activate else None
        request = SendMessageRequest(
            message=new_text_message("reserve 3 units", role=Role.ROLE_USER)
        )
        responses = [r async for r in client.send_message(request, context=context)]
        assert len(responses) == 1 and responses[0].HasField("task")
        task = responses[0].task
        fetched = await client.get_task(GetTaskRequest(id=task.id), context=context)
        await client.close()
        return task, fetched


async def _send_raw(url: str, message: Message, *, activate: bool) -> None:
    async with plain_client(url) as factory:
        client = await factory.create_from_url(url)
        context = activation_context() if activate else None
        try:
            async for _ in client.send_message(
                SendMessageRequest(message=message), context=context
            ):
                pass
        finally:
            await client.close()


def test_the_card_declares_the_extension_with_roles() -> None:
    async def scenario() -> tuple[frozenset[ExtensionRole], dict[str, object]]:
        async with agent(Recorder()) as url:
            client = await RecoveryClient.connect(url)
            roles = client.roles
            await client.close()
            async with httpx.AsyncClient() as http:
                card = (await http.get(url + "/.well-known/agent-card.json")).json()
        return roles, card

    roles, card = run(scenario)
    assert roles == set(BOTH)
    (declared,) = card["capabilities"]["extensions"]  # type: ignore[index]
    assert declared["uri"] == EXTENSION_URI
    assert declared.get("required", False) is False
    assert declared["params"]["versions"] == ["1"]
    assert declared["params"]["roles"] == ["coordinator", "participant"]


def test_an_activating_client_round_trips_jws_strings_unchanged() -> None:
    recorder = Recorder()
    echoed: list[str] = []

    async def on_response(response: httpx.Response) -> None:
        if response.request.method == "POST":
            echoed.append(response.headers.get("A2A-Extensions", ""))

    async def scenario() -> list[str | None]:
        hooks = {"response": [on_response]}
        async with agent(recorder) as url, httpx.AsyncClient(event_hooks=hooks) as http:
            client = await RecoveryClient.connect(url, httpx_client=http)
            replies = [
                await client.send(jws, role=ExtensionRole.PARTICIPANT, reference_task_ids=["t"])
                for jws in (HALT, RESUME)
            ]
            await client.close()
        return replies

    assert run(scenario) == [HALT, RESUME]
    assert recorder.seen == [HALT, RESUME]
    # A2A: the server lists the extensions it activated for the request.
    assert echoed == [EXTENSION_URI, EXTENSION_URI]


def test_an_async_handler_and_an_empty_reply_work() -> None:
    seen: list[str] = []

    async def handle(jws: str) -> str | None:
        seen.append(jws)
        await asyncio.sleep(0)
        return None  # e.g. the inbound message was itself a reply

    async def scenario() -> str | None:
        async with agent(handle) as url:
            client = await RecoveryClient.connect(url)
            reply = await client.send(RESUME, role=ExtensionRole.PARTICIPANT)
            await client.close()
        return reply

    assert run(scenario) is None
    assert seen == [RESUME]


def test_a_failed_delegated_task_carries_the_failure_signal() -> None:
    async def scenario() -> tuple[Task, Task]:
        async with agent(Recorder(), work=FailingWork()) as url:
            return await _delegate(url, activate=True)

    task, fetched = run(scenario)
    for view in (task, fetched):
        assert view.status.state == TaskState.TASK_STATE_FAILED
        assert view.status.message.parts[0].text == "inventory service unreachable"
        assert list(view.status.message.extensions) == [EXTENSION_URI]
        assert failure_signal(view) == SIGNAL


def test_a_non_activating_client_gets_a_plain_a2a_failure() -> None:
    async def scenario() -> tuple[Task, Task]:
        async with agent(Recorder(), work=FailingWork()) as url:
            return await _delegate(url, activate=False)

    task, fetched = run(scenario)
    for view in (task, fetched):
        assert view.status.state == TaskState.TASK_STATE_FAILED
        assert view.status.message.parts[0].text == "inventory service unreachable"
        assert failure_signal(view) is None
        assert not view.status.message.metadata.fields
        assert EXTENSION_URI not in view.metadata.fields


def test_a_non_activating_client_cannot_send_protocol_messages() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        async with agent(recorder) as url:
            message = protocol_message([HALT], message_id="m1", from_agent=False)
            await _send_raw(url, message, activate=False)

    with pytest.raises(ExtensionSupportRequiredError):
        run(scenario)
    assert recorder.seen == []


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"messages": [7]}, "malformed"),  # a number: it would have been a double
        ({"messages": []}, "malformed"),  # a request carries exactly one message
        ({"messages": [HALT, RESUME]}, "too-large"),  # no batches: refused whole
    ],
)
def test_a_bad_carrier_is_refused_before_the_engine(value: object, code: str) -> None:
    recorder = Recorder()
    message = protocol_message([HALT], message_id="m1", from_agent=False)
    message.metadata.update({EXTENSION_URI: value})

    async def scenario() -> None:
        async with agent(recorder) as url:
            await _send_raw(url, message, activate=True)

    with pytest.raises(InvalidParamsError) as info:
        run(scenario)
    assert info.value.data == {ERROR_CODE_KEY: code}
    assert recorder.seen == []


def test_protocol_messages_sent_as_a_turn_of_a_task_are_refused() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        async with agent(recorder, work=WaitingWork()) as url:
            async with plain_client(url) as factory:
                client = await factory.create_from_url(url)
                request = SendMessageRequest(
                    message=new_text_message("reserve 3 units", role=Role.ROLE_USER)
                )
                (response,) = [r async for r in client.send_message(request)]
                await client.close()
            assert response.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
            message = protocol_message(
                [HALT], message_id="m1", from_agent=False, task_id=response.task.id
            )
            await _send_raw(url, message, activate=True)

    with pytest.raises(InvalidParamsError) as info:
        run(scenario)
    assert info.value.data == {ERROR_CODE_KEY: "malformed"}
    assert recorder.seen == []


def test_an_engine_refusal_reaches_the_client_with_its_code() -> None:
    def refuse(jws: str) -> str | None:
        raise RemoteProtocolError(ErrorCode.BAD_SIGNATURE, "signature does not verify")

    async def scenario() -> None:
        async with agent(Recorder(refuse)) as url:
            client = await RecoveryClient.connect(url)
            try:
                await client.send(HALT, role=ExtensionRole.PARTICIPANT)
            finally:
                await client.close()

    with pytest.raises(DeliveryError) as info:
        run(scenario)
    assert info.value.code is ErrorCode.BAD_SIGNATURE


def test_nothing_is_sent_to_a_peer_without_the_needed_role() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        async with agent(recorder, roles=[ExtensionRole.COORDINATOR]) as url:
            client = await RecoveryClient.connect(url)
            try:
                await client.send(HALT, role=ExtensionRole.PARTICIPANT)
            finally:
                await client.close()

    with pytest.raises(DeliveryError):
        run(scenario)
    assert recorder.seen == []


class Oblivious(AgentExecutor):
    """An agent that declares the extension but answers everything with plain text."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        await event_queue.enqueue_event(new_text_message("ok", role=Role.ROLE_AGENT))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def test_an_answer_without_the_carrier_is_not_a_delivery() -> None:
    async def scenario() -> None:
        sock = listen()
        host, port = sock.getsockname()
        card = agent_card(name="liar", url=f"http://{host}:{port}/", roles=BOTH)
        async with serving(build_app(card, Oblivious()), sock) as url:
            client = await RecoveryClient.connect(url)
            try:
                await client.send(HALT, role=ExtensionRole.PARTICIPANT)
            finally:
                await client.close()

    with pytest.raises(DeliveryError, match="did not answer"):
        run(scenario)


def test_ordinary_input_to_a_recovery_only_agent_is_unsupported() -> None:
    async def scenario() -> None:
        async with agent(Recorder()) as url:
            await _send_raw(url, new_text_message("hello", role=Role.ROLE_USER), activate=True)

    with pytest.raises(UnsupportedOperationError):
        run(scenario)


def test_an_unreachable_peer_is_a_delivery_error() -> None:
    async def scenario() -> None:
        sock = listen()
        host, port = sock.getsockname()
        sock.close()
        await RecoveryClient.connect(f"http://{host}:{port}")

    with pytest.raises(DeliveryError):
        run(scenario)


def test_delivery_errors_are_not_a2a_errors() -> None:
    # Callers catch one type for "no reply"; a2a-sdk's errors stay inside the adapter.
    assert not issubclass(DeliveryError, A2AError)


def test_nagle_is_off_on_the_sockets_the_server_accepts() -> None:
    """A response written in parts must not wait 40 ms for the client's delayed ACK."""

    async def scenario() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            accepted.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        # asyncio sets TCP_NODELAY on accepted sockets only when ``proto`` is TCP.
        server = await asyncio.start_server(on_connect, sock=listen())
        host, port = server.sockets[0].getsockname()[:2]
        async with http_client() as http:
            with contextlib.suppress(httpx.HTTPError):
                await http.get(f"http://{host}:{port}/")
        server.close()
        return await accepted

    assert run(scenario) != 0
