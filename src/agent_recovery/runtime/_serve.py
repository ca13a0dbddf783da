"""Run one agent until it is told to stop (``agent-recovery serve``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import uvicorn

from ..bindings.http import DEFAULT_PATH, listen
from ._agent import AgentRuntime
from ._config import AgentConfig
from ._plans import start_plans
from ._routes import agent_app

__all__ = ["Binding", "serve_agent", "write_ready"]

Binding = Literal["http", "a2a"]


async def serve_agent(
    config: AgentConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Path | None = None,
    binding: Binding = "http",
) -> None:
    """Serve ``config``'s agent on ``host:port`` (0: any free port) until SIGINT or SIGTERM.

    ``binding`` is how it speaks to its peers: the HTTP binding (draft §12.2)
    or the A2A binding (draft §12.3). ``ready``, if given, is written
    (atomically) once the agent accepts requests: ``{"agent", "url",
    "endpoint", "pid"}``. Whoever started the process learns its port from it.
    """
    if binding == "a2a":
        # Imported here: a2a-sdk is only needed by agents that speak A2A.
        from ._a2a import serve_a2a_agent

        await serve_a2a_agent(config, host=host, port=port, ready=ready)
        return
    runtime = AgentRuntime(config)
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{bound_host}:{bound_port}"
    server = uvicorn.Server(
        uvicorn.Config(
            agent_app(runtime),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
    )
    await runtime.start()
    try:
        start_plans(runtime)
        if ready is not None:
            write_ready(ready, agent=config.agent, url=url, endpoint=url + DEFAULT_PATH)
        await server.serve(sockets=[sock])
    finally:
        await runtime.stop()


def write_ready(ready: Path, *, agent: str, url: str, endpoint: str) -> None:
    """Tell whoever started this process where it serves (written atomically)."""
    info = {"agent": agent, "url": url, "endpoint": endpoint, "pid": os.getpid()}
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
    tmp.replace(ready)
