"""One agent over the A2A binding: the same engines, carried by a2a-sdk (draft §12.3).

The runtime (:class:`~._agent.AgentRuntime`) does not change with the
binding: its endpoint verifies, its engines decide, its store commits. This
module moves its messages over A2A instead of plain HTTP:

- inbound, the a2a-sdk server's :class:`~..bindings.a2a.RecoveryExecutor`
  hands the JWS a SendMessage carries to ``AgentRuntime.handle`` and returns
  the reply in the response message (:func:`answer_handler`);
- outbound, :class:`A2ATransport` is the runtime's transport: each message
  goes in a SendMessage request of its own to the peer's A2A agent (draft
  §12.3.6), except a failure signal for a task delegated by its recipient,
  which fails that task instead (draft §12.3.5, ``_a2a_work``).

The peers file names each agent's origin, as for HTTP; the HTTP binding posts
to its default path there, the A2A binding reads the Agent Card there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeAlias

import httpx
import uvicorn

from .._errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from .._messages import Message
from .._model import ExecRef
from ..bindings.a2a import (
    DeliveryError as A2ADeliveryError,
)
from ..bindings.a2a import (
    ExtensionRole,
    Handler,
    RecoveryClient,
    RecoveryExecutor,
    agent_card,
    build_app,
    http_client,
    listen,
)
from ..bindings.http import Answer, Delivery, DeliveryError, parse_problem, peek
from ._agent import AgentRuntime
from ._config import AgentConfig
from ._routes import admin_routes
from ._serve import write_ready

__all__ = ["A2AAgent", "A2ATransport", "answer_handler", "origin_of", "role_for", "serve_a2a_agent"]

_log = logging.getLogger("agent_recovery.runtime")

# Offered each outbound message first; True if it took it off the message path
# (``_a2a_work.DelegatedTasks.divert``).
Divert: TypeAlias = Callable[[Message, bytes], Awaitable[bool]]

# draft §12.3.2: the role a message needs of its recipient. Replies sent later
# (rollback-result, ack, error) need only that the peer declare the extension.
_NEEDS = {
    "failure-signal": ExtensionRole.COORDINATOR,
    "halt": ExtensionRole.PARTICIPANT,
    "rollback": ExtensionRole.PARTICIPANT,
    "resume": ExtensionRole.PARTICIPANT,
    "status-query": ExtensionRole.PARTICIPANT,
}


def role_for(message: Message) -> ExtensionRole | None:
    """The role the recipient of ``message`` must declare in its Agent Card (draft §12.3.2)."""
    return _NEEDS.get(message.TYPE)


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL: where an agent's Agent Card is found."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def reply_of(answer: Answer) -> str | None:
    """The reply JWS in the runtime's answer, or the A2A-level refusal it stands for.

    draft §12.3.8: a refusal the endpoint could sign is a reply like any other,
    and the A2A call succeeds; one it could not sign raises
    :class:`RemoteProtocolError` (the A2A invalid-parameters error), and a
    failure of this agent :class:`LocalProtocolError` (the internal error).
    """
    if answer.status == 204:
        return None
    if answer.status == 200:
        return answer.body.decode("ascii")
    problem = parse_problem(answer.body, answer.status)
    if problem.signed_error is not None:
        return problem.signed_error.decode("ascii")
    code = problem.code or ErrorCode.INTERNAL
    if code is ErrorCode.INTERNAL:
        raise LocalProtocolError(code, problem.detail)
    raise RemoteProtocolError(code, problem.detail)


def answer_handler(runtime: AgentRuntime) -> Handler:
    """The ``handle`` of a RecoveryExecutor: one JWS into the runtime, its reply out."""

    async def handle(jws: str) -> str | None:
        # The carrier was checked (a JWS compact serialization: ASCII).
        return reply_of(await runtime.handle(jws.encode("ascii")))

    return handle


class A2ATransport:
    """The runtime's transport over A2A: one RecoveryClient per peer origin.

    ``send`` has the HTTP client's contract (``Delivery`` or ``DeliveryError``),
    so the runtime cannot tell the bindings apart. ``task_ids`` maps an
    execution to the A2A Task it was delegated as, which messages about it
    name in ``referenceTaskIds`` (draft §12.3.4). ``divert``, if set, is
    offered each failure signal first and returns True if it took it (it
    failed the delegated task instead, draft §12.3.5).
    """

    def __init__(self) -> None:
        self._http = http_client()
        self._peers: dict[str, RecoveryClient] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.task_ids: dict[ExecRef, str] = {}
        self.divert: Divert | None = None

    async def peer(self, origin: str) -> RecoveryClient:
        """The client for the agent at ``origin``, its Agent Card fetched once."""
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            client = self._peers.get(origin)
            if client is None:
                try:
                    client = await RecoveryClient.connect(origin, httpx_client=self._http)
                except (A2ADeliveryError, httpx.HTTPError) as exc:
                    raise DeliveryError(f"{origin}: {exc}") from exc
                self._peers[origin] = client
            return client

    async def send(self, url: str, jws: bytes) -> Delivery:
        message = peek(jws)
        if self.divert is not None and await self.divert(message, jws):
            # Delivered in the failed task's status; the ack comes back as a
            # message of its own (draft §12.3.5).
            return Delivery(status=202, reply=None)
        origin = origin_of(url)
        client = await self.peer(origin)
        execution = getattr(message, "execution", None)
        task = self.task_ids.get(execution) if isinstance(execution, ExecRef) else None
        try:
            reply = await client.send(
                jws.decode("ascii"),
                role=role_for(message),
                reference_task_ids=() if task is None else (task,),
            )
        except A2ADeliveryError as exc:
            if exc.code is None:
                # Perhaps the peer restarted: read its card again next time.
                self._peers.pop(origin, None)
            raise DeliveryError(f"{origin}: {exc}") from exc
        except ProtocolError as exc:  # a malformed carrier in the response
            raise DeliveryError(f"{origin}: {exc}") from exc
        return Delivery(
            status=204 if reply is None else 200,
            reply=None if reply is None else reply.encode("ascii"),
        )

    async def close(self) -> None:
        for client in self._peers.values():
            await client.close()
        self._peers.clear()
        await self._http.aclose()


class A2AAgent:
    """One agent as an A2A agent at ``url``: its runtime, its work, its a2a-sdk app.

    The Agent Card declares the extension with the roles the agent plays
    (draft §12.3.2) and streaming, so that a client that delegated a task
    follows its status; JSON-RPC is at ``/``, the admin API beside it.
    """

    def __init__(self, config: AgentConfig, url: str) -> None:
        from ._a2a_work import A2AWork  # the work is the agent's, not the binding's

        self.url = url
        self.transport = A2ATransport()
        self.runtime = AgentRuntime(config, client=self.transport)
        self.work = A2AWork(self.runtime, self.transport)
        roles = [ExtensionRole.PARTICIPANT]
        if self.runtime.coordinator is not None:
            roles.append(ExtensionRole.COORDINATOR)
        self.card = agent_card(name=config.agent, url=url + "/", roles=roles, streaming=True)
        executor = RecoveryExecutor(answer_handler(self.runtime), self.work.executor)
        self.app = build_app(self.card, executor, routes=admin_routes(self.runtime))

    async def start(self, *, work: bool = True) -> None:
        """Start the engines, then (``work``) the plans and the delegations."""
        await self.runtime.start()
        if work:
            self.work.start()

    async def stop(self) -> None:
        await self.work.stop()
        await self.runtime.stop()
        await self.transport.close()


async def serve_a2a_agent(
    config: AgentConfig, *, host: str = "127.0.0.1", port: int = 0, ready: Path | None = None
) -> None:
    """``agent-recovery serve --binding a2a``: serve until SIGINT or SIGTERM."""
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    agent = A2AAgent(config, f"http://{bound_host}:{bound_port}")
    server = uvicorn.Server(
        uvicorn.Config(
            agent.app,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            # A delegated task's event stream stays open while the task runs.
            timeout_graceful_shutdown=2,
        )
    )
    await agent.start()
    try:
        if ready is not None:
            write_ready(ready, agent=config.agent, url=agent.url, endpoint=agent.url + "/")
        await server.serve(sockets=[sock])
    finally:
        await agent.stop()
