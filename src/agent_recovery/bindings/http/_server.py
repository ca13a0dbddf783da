"""A thin Starlette app and uvicorn runner for the recovery endpoint (draft §12.2).

The app checks what only HTTP can check (method, media type, body size), hands
the body to a handler and sends back the :class:`~._mapping.Answer` it gets.
The handler is normally :func:`answer_inbound` around a
:class:`~agent_recovery.security.Endpoint`: that is where messages are
verified, decoded and given to the engine. Nothing here decides anything about
the protocol.

The server never stops serving because of a request: a handler that raises is
answered with ``500`` and an ``internal`` problem, and the next request is
served as if nothing happened.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from ..._errors import ErrorCode
from ...security.endpoint import Endpoint, InboundError
from ._mapping import (
    DEFAULT_PATH,
    MAX_BODY_SIZE,
    RESPONSE_HEADERS,
    Answer,
    answer_for_refusal,
    answer_for_reply,
    is_jws_media_type,
    method_not_allowed,
    not_found,
    retry_after_seconds,
    unsupported_media_type,
)

__all__ = ["Handler", "answer_inbound", "build_app", "listen", "serving", "to_response"]

# One request body (a compact JWS) in, one answer out.
Handler = Callable[[bytes], Awaitable[Answer]]

_log = logging.getLogger("agent_recovery.http")


def answer_inbound(
    endpoint: Endpoint, data: bytes, now: int, *, recovery_context: str | None = None
) -> Answer:
    """Give ``data`` to ``endpoint`` and map what happened to an HTTP answer.

    Synchronous and I/O-free: the caller runs the engine's follow-up (events,
    persistence, outbound messages) before sending the answer.
    """
    try:
        accepted = endpoint.receive(data, now, recovery_context=recovery_context)
    except InboundError as exc:
        wait: int | None = None
        if exc.code is ErrorCode.RATE_LIMITED and exc.agent and exc.message is not None:
            ms = endpoint.limiter.retry_after_ms(exc.agent, exc.message.TYPE, now)
            wait = retry_after_seconds(ms)
        return answer_for_refusal(
            exc.code, exc.detail, owner=exc.owner, signed_error=exc.reply, retry_after=wait
        )
    return answer_for_reply(accepted.reply)


def to_response(answer: Answer) -> Response:
    headers = dict(RESPONSE_HEADERS)
    headers.update(answer.headers)
    return Response(
        content=answer.body,
        status_code=answer.status,
        media_type=answer.content_type,
        headers=headers,
    )


async def _read_body(request: Request, limit: int) -> tuple[bytes | None, bool]:
    """(the body, or ``None`` once it exceeds ``limit``; whether it was read to its end).

    Nothing past ``limit`` is kept. The rest of an oversized body is read and
    dropped up to ``limit`` again, so a client that sends the whole body
    before reading the answer gets its 413 instead of a reset connection;
    beyond that the connection is closed.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > 2 * limit:
        return None, False
    body = bytearray()
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > 2 * limit:
            return None, False
        if seen <= limit:
            body += chunk
    return (bytes(body) if seen <= limit else None), True


def build_app(
    handle: Handler,
    *,
    path: str = DEFAULT_PATH,
    max_body: int = MAX_BODY_SIZE,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The agent's ASGI app: the recovery endpoint at ``path``, plus ``routes``."""

    async def recovery(request: Request) -> Response:
        if request.method != "POST":
            return to_response(method_not_allowed())
        content_type = request.headers.get("content-type")
        if not is_jws_media_type(content_type):
            return to_response(unsupported_media_type(content_type))
        body, complete = await _read_body(request, max_body)
        if body is None:
            # draft §12.2: refused without being kept, like draft §9 step 1.
            answer = answer_for_refusal(ErrorCode.TOO_LARGE, f"the limit is {max_body} octets")
            response = to_response(answer)
            if not complete:
                response.headers["Connection"] = "close"
            return response
        try:
            answer = await handle(body)
        except Exception:  # the server outlives any one request
            _log.exception("handler failed")
            answer = answer_for_refusal(ErrorCode.INTERNAL, "the receiver failed")
        return to_response(answer)

    async def missing(request: Request, exc: Exception) -> Response:
        return to_response(not_found())

    async def wrong_method(request: Request, exc: Exception) -> Response:
        return to_response(method_not_allowed())

    return Starlette(
        routes=[
            Route(path, recovery, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
            *routes,
        ],
        exception_handlers={404: missing, 405: wrong_method},
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
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise OSError("the HTTP server stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
