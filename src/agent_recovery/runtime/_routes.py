"""The agent's HTTP app: the recovery endpoint, the work API and a local admin API.

- ``POST /.well-known/agent-recovery``: the protocol (draft §12.2), see
  ``bindings.http``.
- ``POST /work/consume``: another agent takes one of this agent's outputs.
  This is the application's own traffic, not the protocol; it exists so the
  dependency edges the protocol relies on are learnt the way draft §5.4 says
  (both parties, when the output is consumed). A contained execution forwards
  no output (draft §8.1): ``423``.
- ``GET /admin/state``, ``GET /admin/records?since=N`` and ``POST /admin/fail``:
  the operator's view, this agent's chain of recovery records (JWS, from
  ``seq`` N), and the failure injection the demo uses. Loopback clients only.
- ``POST /operator/override``: one operator override (draft §8.7), a compact
  JWS signed with an operator key (``security.override``); a coordinator
  configured with ``operators`` only. ``200`` with the override applied, or
  problem details with its error code; the instruction authenticates itself,
  so this route is not limited to loopback clients.

The work and admin APIs are unauthenticated and meant for a loopback
deployment like the demo's; a real agent has its own application protocol
and operator interface (draft §3 leaves both out of scope).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._errors import ProtocolError
from .._model import Dependency, ExecRef
from ..bindings.http import answer_for_refusal, build_app
from ..security.override import MAX_OVERRIDE_SIZE
from ._agent import AgentRuntime
from ._config import ConfigError, failure_spec

__all__ = ["admin_routes", "agent_app", "operator_routes", "serve_output"]

_LOOPBACK = frozenset({"127.0.0.1", "::1"})
_MAX_WORK_BODY = 64 * 1024


def agent_app(runtime: AgentRuntime) -> Starlette:
    """The HTTP binding's app: the recovery endpoint, the work API and the admin API."""

    async def consume(request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_WORK_BODY:
            return JSONResponse({"error": "too large"}, status_code=413)
        try:
            doc = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "malformed"}, status_code=400)
        status, answer = serve_output(runtime, doc)
        return JSONResponse(answer, status_code=status)

    routes = [
        Route("/work/consume", consume, methods=["POST"]),
        *admin_routes(runtime),
        *operator_routes(runtime),
    ]
    return build_app(runtime.handle, routes=routes)


def operator_routes(runtime: AgentRuntime) -> list[Route]:
    """``POST /operator/override``, if the agent coordinates and has operator keys."""

    async def override(request: Request) -> Response:
        # Keep no more than one octet past the limit: the endpoint then refuses
        # the instruction as too-large (and records it) without holding the rest.
        body = bytearray()
        async for chunk in request.stream():
            body += chunk[: MAX_OVERRIDE_SIZE + 1 - len(body)]
            if len(body) > MAX_OVERRIDE_SIZE:
                break
        try:
            applied = runtime.operate(bytes(body))
        except ProtocolError as exc:
            answer = answer_for_refusal(exc.code, exc.detail)
            headers = dict(answer.headers)
            if answer.content_type is not None:
                headers["content-type"] = answer.content_type
            return Response(answer.body, status_code=answer.status, headers=headers)
        return JSONResponse(
            {"applied": applied.action.value, "override": applied.id, "recovery": applied.recovery}
        )

    if runtime.override is None:
        return []
    return [Route("/operator/override", override, methods=["POST"])]


def serve_output(runtime: AgentRuntime, doc: object) -> tuple[int, dict[str, Any]]:
    """Give one output to a consumer and record the edge (draft §5.4); (status, answer).

    ``doc`` is ``{"producer", "output", "consumer": {"agent", "exec"},
    "consumed_after"}``; the answer is ``{"value", "produced_after"}`` or
    ``{"error"}`` with an HTTP status. Every binding's work API uses it.
    """
    try:
        if not isinstance(doc, dict):
            raise TypeError("not an object")
        exec_id = str(doc["producer"])
        name = str(doc["output"])
        consumer = ExecRef(agent=doc["consumer"]["agent"], exec=doc["consumer"]["exec"])
        consumed_after = _counter(doc["consumed_after"])
    except (ValueError, KeyError, TypeError, ProtocolError):
        return 400, {"error": "malformed"}
    if exec_id not in runtime.executions:
        return 404, {"error": "unknown execution"}
    if runtime.contained(exec_id):
        return 423, {"error": "contained"}
    output = runtime.resource.output(exec_id, name)
    if output is None:
        return 409, {"error": "not produced yet"}
    value, produced_after = output
    try:
        edge = Dependency(
            consumer=consumer,
            producer=runtime.ref(exec_id),
            produced_after=produced_after,
            consumed_after=consumed_after,
        )
        runtime.call(lambda p: p.record_dependency(edge))
    except ProtocolError as exc:
        return 409, {"error": str(exc)}
    runtime.trace(
        runtime.clock(),
        "served",
        exec=exec_id,
        output=name,
        consumer=[consumer.agent, consumer.exec],
        produced_after=produced_after,
    )
    return 200, {"value": value, "produced_after": produced_after}


def admin_routes(runtime: AgentRuntime) -> list[Route]:
    """``/admin/state``, ``/admin/records`` and ``/admin/fail``, if the config enables them."""

    async def state(request: Request) -> Response:
        if not _local(request):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        return JSONResponse(runtime.state())

    async def fail(request: Request) -> Response:
        if not _local(request):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        try:
            doc: dict[str, Any] = json.loads(await request.body())
            exec_id = str(doc.pop("exec"))
            spec = failure_spec(doc, "request")
        except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if exec_id not in runtime.executions:
            return JSONResponse({"error": "unknown execution"}, status_code=404)
        try:
            signal = runtime.signal_failure(exec_id, spec)
        except ProtocolError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"signal": signal}, status_code=202)

    async def records(request: Request) -> Response:
        if not _local(request):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        since = request.query_params.get("since", "0")
        start = int(since) if since.isdigit() else 0
        tokens = [
            e.token.decode("ascii") for e in runtime.store.entries(runtime.agent, start=start)
        ]
        return JSONResponse({"agent": runtime.agent, "since": start, "records": tokens})

    if not runtime.config.admin:
        return []
    return [
        Route("/admin/state", state, methods=["GET"]),
        Route("/admin/records", records, methods=["GET"]),
        Route("/admin/fail", fail, methods=["POST"]),
    ]


def _counter(value: object) -> int:
    """A checkpoint counter: a JSON integer, or its decimal string (A2A data is doubles)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)
    raise ValueError("not a counter")


def _local(request: Request) -> bool:
    return request.client is not None and request.client.host in _LOOPBACK
