"""Thin glue between a2a-sdk and a protocol engine (draft §12.3).

Server side, :class:`RecoveryExecutor` is an a2a-sdk ``AgentExecutor``: the
protocol message an A2A message carries goes to a pluggable ``handle(jws)``
callable, whose reply goes back in the response message; any other A2A message
goes to the agent's own executor, which fails tasks with :func:`fail_task`.
Client side, :class:`RecoveryClient` sends a JWS to one peer and returns the
reply JWS. Neither decodes, verifies nor signs: the engine behind ``handle``
does (draft §9).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Final, TypeAlias

import httpx
import uvicorn
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.service_parameters import ServiceParametersFactory, with_a2a_extensions
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    SendMessageRequest,
)
from a2a.utils.constants import DEFAULT_RPC_URL, PROTOCOL_VERSION_CURRENT, TransportProtocol
from a2a.utils.errors import (
    A2AError,
    ExtensionSupportRequiredError,
    InternalError,
    InvalidParamsError,
    TaskNotCancelableError,
    UnsupportedOperationError,
)
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from ..._errors import ErrorCode, ProtocolError, RemoteProtocolError
from ._mapping import (
    EXTENSION_URI,
    ExtensionRole,
    carried_messages,
    extension_declaration,
    failure_status_message,
    is_activated,
    peer_roles,
    protocol_message,
    uses_extension,
)

__all__ = [
    "ERROR_CODE_KEY",
    "DeliveryError",
    "Handler",
    "RecoveryClient",
    "RecoveryExecutor",
    "activation_context",
    "agent_card",
    "build_app",
    "fail_task",
    "http_client",
    "listen",
    "serving",
]

# Handed one inbound JWS, returns its reply JWS, or None when it has none (a
# reply is not answered). May be a coroutine function.
Handler: TypeAlias = Callable[[str], str | Awaitable[str | None] | None]

# google.rpc.ErrorInfo metadata key naming our error code on an A2A error
# (ErrorInfo keys are short identifiers, so the extension URI cannot be one).
ERROR_CODE_KEY: Final = "agentRecoveryCode"


class DeliveryError(Exception):
    """No reply: the peer is unreachable, lacks the extension, or refused at the A2A level.

    To an engine this is a lost message; its timers decide what follows
    (draft §8.4). ``code`` is the peer's error code when it named one.
    """

    def __init__(self, detail: str, code: ErrorCode | None = None) -> None:
        super().__init__(detail)
        self.code = code


class RecoveryExecutor(AgentExecutor):
    """Routes A2A messages that carry protocol messages to ``handle``; others to ``work``."""

    def __init__(self, handle: Handler, work: AgentExecutor | None = None) -> None:
        self._handle = handle
        self._work = work

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        if message is None or not uses_extension(message):
            if self._work is None:
                raise UnsupportedOperationError(message="this agent serves only " + EXTENSION_URI)
            await self._work.execute(context, event_queue)
            return
        # draft §12.3.7: protocol data from a client that did not activate the
        # extension is refused whole and reaches no engine; the client has not
        # agreed to the extension's semantics.
        if not is_activated(context.requested_extensions):
            raise ExtensionSupportRequiredError(
                message=f"activate {EXTENSION_URI} with the {HTTP_EXTENSION_HEADER} header"
            )
        if context.current_task is not None:
            # draft §12.3.4: protocol messages are not turns of a task.
            raise InvalidParamsError(
                message="protocol messages must not name a task (use referenceTaskIds)",
                data={ERROR_CODE_KEY: ErrorCode.MALFORMED.value},
            )
        try:
            carried = carried_messages(message) or ()
            if len(carried) != 1:
                raise RemoteProtocolError(ErrorCode.MALFORMED, "a request carries one message")
            result = self._handle(carried[0])
            reply = await result if inspect.isawaitable(result) else result
            response = protocol_message(
                [] if reply is None else [reply],
                message_id=uuid.uuid4().hex,
                from_agent=True,
                context_id=context.context_id or "",
            )
        except RemoteProtocolError as exc:
            raise InvalidParamsError(
                message=str(exc), data={ERROR_CODE_KEY: exc.code.value}
            ) from exc
        except ProtocolError as exc:
            # A reply the engine built is ill-formed: our fault, not the peer's.
            raise InternalError(data={ERROR_CODE_KEY: ErrorCode.INTERNAL.value}) from exc
        # draft §12.3.6: a direct Message, not a Task; the exchange is synchronous.
        await event_queue.enqueue_event(response)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if self._work is None:
            raise TaskNotCancelableError(message="protocol exchanges create no tasks")
        await self._work.cancel(context, event_queue)


async def fail_task(
    context: RequestContext, updater: TaskUpdater, *, detail: str, signal: str | None
) -> None:
    """Move a delegated task to FAILED, attaching ``signal`` only if the client activated us.

    For ``work`` executors: the signal is the failure-signal JWS the engine made
    for this execution (draft §6.2); ``detail`` is the free text every A2A
    client sees.
    """
    activated = is_activated(context.requested_extensions)
    await updater.failed(
        failure_status_message(
            detail=detail,
            signal=signal if activated else None,
            message_id=uuid.uuid4().hex,
            task_id=updater.task_id,
            context_id=updater.context_id,
        )
    )


def agent_card(
    *,
    name: str,
    url: str,
    roles: Sequence[ExtensionRole],
    description: str = "An agent that takes part in coordinated recovery.",
    version: str = "1.0.0",
    skills: Sequence[AgentSkill] = (),
    streaming: bool = False,
) -> AgentCard:
    """A minimal JSON-RPC AgentCard that declares the extension with ``roles``.

    ``streaming`` lets a client follow a delegated task's status as it changes,
    which is how a failed task's signal reaches it without polling.
    """
    return AgentCard(
        name=name,
        description=description,
        version=version,
        supported_interfaces=[
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            )
        ],
        capabilities=AgentCapabilities(
            streaming=streaming, extensions=[extension_declaration(roles)]
        ),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=list(skills)
        or [
            AgentSkill(
                id="agent-recovery",
                name="Agent recovery",
                description="Failure signals, halt, rollback and resume.",
                tags=["recovery"],
            )
        ],
    )


class _EchoActivation:
    """Echoes the extension in the response's ``A2A-Extensions`` header when activated.

    A2A asks a server to list the extensions it activated; a2a-sdk 1.3 does not.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        header = HTTP_EXTENSION_HEADER.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == header]
        if not is_activated(get_requested_extensions(values)):
            await self._app(scope, receive, send)
            return

        async def send_echo(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                echoed = get_requested_extensions(headers.getlist(HTTP_EXTENSION_HEADER))
                if EXTENSION_URI not in echoed:
                    headers.append(HTTP_EXTENSION_HEADER, EXTENSION_URI)
            await send(message)

        await self._app(scope, receive, send_echo)


def build_app(
    card: AgentCard,
    executor: AgentExecutor,
    *,
    task_store: TaskStore | None = None,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The agent's ASGI app: its card at the well-known path, JSON-RPC at ``/``.

    ``routes`` are the agent's own, outside A2A (an operator's API, say).
    """
    handler = DefaultRequestHandler(
        agent_executor=executor,
        task_store=task_store if task_store is not None else InMemoryTaskStore(),
        agent_card=card,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await handler.aclose()

    return Starlette(
        routes=[
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, rpc_url=DEFAULT_RPC_URL),
            *routes,
        ],
        middleware=[Middleware(_EchoActivation)],
        lifespan=lifespan,
    )


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound socket; port 0 picks a free port, so parallel runs never collide.

    The protocol is given explicitly: asyncio turns Nagle's algorithm off only
    on sockets whose ``proto`` is TCP, and with it on, a response written in
    two parts (head, then body) waits for the peer's delayed ACK, 40 ms each.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@asynccontextmanager
async def serving(app: ASGIApp, sock: socket.socket) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on ``sock`` until the block exits; yields the base URL."""
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise OSError("the A2A server stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


def http_client(*, timeout: float | None = 10.0, read: float | None = 10.0) -> httpx.AsyncClient:
    """An httpx client for A2A calls: TCP_NODELAY, no redirects, no proxy from the environment.

    ``read`` is the longest wait for the next bytes of a response; ``None``
    suits a task's event stream, which may be silent for as long as the task runs.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, read=read, pool=None),
        # Peers are named by configuration; a redirect would send a signed
        # message somewhere nobody configured.
        follow_redirects=False,
        trust_env=False,
        # Requests are written in parts; without TCP_NODELAY each part after
        # the first can wait for the peer's delayed ACK (40 ms).
        transport=httpx.AsyncHTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        ),
    )


def activation_context(timeout: float | None = None) -> ClientCallContext:
    """A call context whose requests activate the extension (``A2A-Extensions``)."""
    parameters = ServiceParametersFactory.create([with_a2a_extensions([EXTENSION_URI])])
    return ClientCallContext(service_parameters=parameters, timeout=timeout)


class RecoveryClient:
    """Sends protocol messages to one peer agent over A2A JSON-RPC."""

    def __init__(
        self, card: AgentCard, httpx_client: httpx.AsyncClient, *, owns_httpx: bool
    ) -> None:
        self.card = card
        self.roles = peer_roles(card)
        factory = ClientFactory(ClientConfig(streaming=False, httpx_client=httpx_client))
        self._client = factory.create(card)
        self._httpx = httpx_client
        self._owns_httpx = owns_httpx

    @classmethod
    async def connect(
        cls, url: str, *, httpx_client: httpx.AsyncClient | None = None
    ) -> RecoveryClient:
        """Fetch the peer's AgentCard from ``url`` and make a client for it."""
        own = httpx_client is None
        client = http_client() if httpx_client is None else httpx_client
        try:
            card = await A2ACardResolver(client, url).get_agent_card()
        except A2AError as exc:
            if own:
                await client.aclose()
            raise DeliveryError(f"cannot fetch the agent card: {exc}") from exc
        return cls(card, client, owns_httpx=own)

    async def send(
        self,
        jws: str,
        *,
        role: ExtensionRole | None,
        reference_task_ids: Sequence[str] = (),
        timeout: float | None = None,
    ) -> str | None:
        """Send one JWS to a peer that declares ``role``; return its reply JWS, if any.

        ``role`` is what the message needs of the peer: ``coordinator`` for a
        failure signal, ``participant`` for the other messages a sender
        initiates (draft §12.3.2); ``None``, for a reply sent later, asks only
        that the peer declare the extension. A peer whose card lacks it is
        never sent anything: an agent that does not know the extension would
        take the message for ordinary input.
        """
        if not self.roles if role is None else role not in self.roles:
            raise DeliveryError(f"the peer does not declare {EXTENSION_URI} with role {role}")
        request = SendMessageRequest(
            message=protocol_message(
                [jws],
                message_id=uuid.uuid4().hex,
                from_agent=False,
                reference_task_ids=reference_task_ids,
            )
        )
        try:
            events = [
                event
                async for event in self._client.send_message(
                    request, context=activation_context(timeout)
                )
            ]
        except A2AError as exc:
            raise DeliveryError(str(exc), _error_code(exc.data)) from exc
        # draft §12.3.6: the answer is one direct Message holding the carrier; a
        # malformed carrier raises RemoteProtocolError, the peer's fault.
        first = events[0] if events else None
        replies = carried_messages(first.message) if first and first.HasField("message") else None
        if replies is None:
            raise DeliveryError("the peer did not answer with " + EXTENSION_URI)
        return replies[0] if replies else None

    async def close(self) -> None:
        await self._client.close()
        if self._owns_httpx:
            await self._httpx.aclose()


def _error_code(data: object) -> ErrorCode | None:
    value = data.get(ERROR_CODE_KEY) if isinstance(data, dict) else None
    try:
        return ErrorCode(value) if isinstance(value, str) else None
    except ValueError:
        return None
