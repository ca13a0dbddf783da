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

import ipaddress
import socket
from dataclasses import dataclass

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
                # Requests are written in parts; without TCP_NODELAY each part
                # after the first can wait for the peer's delayed ACK.
                transport=httpx.AsyncHTTPTransport(
                    socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                    limits=httpx.Limits(
                        max_connections=max_connections,
                        max_keepalive_connections=max_connections,
                    ),
                ),
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
