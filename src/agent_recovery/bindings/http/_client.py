"""An httpx client for the recovery endpoint (draft §12.2).

:meth:`RecoveryClient.send` posts one signed message and returns what came
back as a :class:`Delivery`: the peer's signed reply, if any (a reply JWS, or
the signed ``error`` inside a problem document), and the problem document
itself. The caller verifies the reply like any inbound message; this module
neither signs nor verifies. A peer that cannot be reached, or answers with
something that is neither, raises :class:`DeliveryError`: to an engine that is
a lost message, and its timers decide what follows (draft §8.4).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpcore
import httpx

from ..._errors import ErrorCode
from ._mapping import (
    JWS_MEDIA_TYPE,
    MAX_BODY_SIZE,
    PROBLEM_MEDIA_TYPE,
    Problem,
    parse_problem,
)

__all__ = ["Delivery", "DeliveryError", "RecoveryClient", "same_host_or_https"]

_ACCEPT = f"{JWS_MEDIA_TYPE}, {PROBLEM_MEDIA_TYPE}"


class DeliveryError(Exception):
    """No usable answer: unreachable peer, timeout, or an answer without a signed reply.

    ``problem`` is the peer's problem document when it sent one (an
    unauthenticated refusal, for example ``unsigned`` or ``too-large``).
    """

    def __init__(self, detail: str, *, problem: Problem | None = None) -> None:
        super().__init__(detail)
        self.problem = problem

    @property
    def code(self) -> ErrorCode | None:
        return None if self.problem is None else self.problem.code

    @property
    def retry_after(self) -> int | None:
        return None if self.problem is None else self.problem.retry_after


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What one POST returned: ``reply`` to verify (or ``None``: no reply), and the problem."""

    status: int
    reply: bytes | None
    problem: Problem | None = None


def _is(content_type: str | None, media_type: str) -> bool:
    return content_type is not None and content_type.split(";")[0].strip().lower() == media_type


# httpcore's exceptions as httpx raises them (httpx maps them the same way).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Pool(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections: a stack of idle ones per origin, a cap on requests.

    httpcore's own pool looks at every connection, asking each whether its
    peer closed it (a system call), whenever a request starts or ends: with a
    hundred connections busy, that was most of a coordinator's time. Here a
    request takes the most recently used idle connection to its origin (the
    one least likely to have expired), checks only that one, and gives it back
    when its response is closed; a request beyond ``limit`` in flight waits
    for a slot (no pool timeout: a queued message is not lost).
    """

    def __init__(self, *, limit: int, keepalive_expiry: float = 5.0) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._keep = limit  # idle connections kept per origin
        self._expiry = keepalive_expiry
        # By origin (httpcore's Origin is not hashable: its scheme, host and port).
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def _connection(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.get(_key(origin))
        while idle:
            connection = idle.pop()
            if not connection.has_expired():
                return connection
            await connection.aclose()
        if origin.scheme == b"https" and self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
        return httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self._ssl if origin.scheme == b"https" else None,
            keepalive_expiry=self._expiry,
            # Requests are written in parts; without TCP_NODELAY each part
            # after the first can wait for the peer's delayed ACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        if self._closed:
            raise httpx.TransportError("the client is closed")
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        await self._slots.acquire()
        connection: httpcore.AsyncHTTPConnection | None = None
        try:
            connection = await self._connection(core.url.origin)
            with _mapped():
                response = await connection.handle_async_request(core)
        except BaseException:
            self._slots.release()
            if connection is not None:
                await connection.aclose()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(self, core.url.origin, connection, response.stream),
            extensions=response.extensions,
        )

    async def _release(
        self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection
    ) -> None:
        self._slots.release()
        idle = self._idle.setdefault(_key(origin), [])
        if not self._closed and connection.is_idle() and len(idle) < self._keep:
            idle.append(connection)
        else:
            await connection.aclose()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


class _Body(httpx.AsyncByteStream):
    """A response body; closing it gives its connection back to the pool, once."""

    def __init__(
        self,
        pool: _Pool,
        origin: httpcore.Origin,
        connection: httpcore.AsyncHTTPConnection,
        stream: AsyncIterable[bytes],
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: httpcore.AsyncHTTPConnection | None = connection
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                with _mapped():
                    await close()
        finally:
            await self._pool._release(self._origin, connection)


class RecoveryClient:
    """Posts signed messages to recovery endpoints over one connection pool."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns = client is None
        self._client = (
            client
            if client is not None
            else httpx.AsyncClient(
                # No pool timeout: a message waiting for a free connection is
                # not lost, it is queued; the other timeouts still apply.
                timeout=httpx.Timeout(timeout, pool=None),
                # The binding's endpoints are named by configuration; a redirect
                # would send a signed message somewhere nobody configured.
                follow_redirects=False,
                trust_env=False,
                transport=_Pool(limit=max_connections),
            )
        )

    async def __aenter__(self) -> RecoveryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns:
            await self._client.aclose()

    async def post(
        self, url: str, body: bytes, *, content_type: str = JWS_MEDIA_TYPE
    ) -> httpx.Response:
        """The raw exchange, for tests and the conformance runner (any body, any type)."""
        return await self._client.post(
            url, content=body, headers={"Content-Type": content_type, "Accept": _ACCEPT}
        )

    async def send(self, url: str, jws: bytes) -> Delivery:
        """POST one message (draft §12.2); see the module docstring for the outcomes."""
        if not same_host_or_https(url):
            # draft §12.2: "http" only between endpoints on the same host; a
            # loopback address is the only one we can know to be that.
            raise DeliveryError(f"{url}: 'http' is allowed only to a loopback address")
        try:
            response = await self.post(url, jws)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{url}: {type(exc).__name__}: {exc}") from exc
        return read_response(
            response.status_code,
            response.headers.get("content-type"),
            response.content,
            response.headers.get("retry-after"),
        )


def same_host_or_https(url: str) -> bool:
    """Whether the binding may send to ``url``: any "https" URL, or "http" on loopback."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    if parsed.scheme == "https":
        return True
    if parsed.scheme != "http":
        return False
    host = parsed.host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_response(
    status: int, content_type: str | None, body: bytes, retry_after: str | None = None
) -> Delivery:
    """Classify one response of a recovery endpoint (draft §12.2)."""
    if status == 200 and _is(content_type, JWS_MEDIA_TYPE):
        if len(body) > MAX_BODY_SIZE:
            raise DeliveryError("reply exceeds the size limit")
        return Delivery(status=status, reply=body)
    if status == 204:
        return Delivery(status=status, reply=None)
    if status >= 400 and _is(content_type, PROBLEM_MEDIA_TYPE):
        problem = parse_problem(body, status, retry_after)
        if problem.signed_error is not None:
            return Delivery(status=status, reply=problem.signed_error, problem=problem)
        raise DeliveryError(
            f"{status} {problem.code or problem.type}: {problem.detail}", problem=problem
        )
    raise DeliveryError(f"unexpected answer: {status} {content_type or '(no type)'}")
