"""Run one agent until it is told to stop (``agent-recovery serve``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import uvicorn

from ..bindings.http import DEFAULT_PATH, listen
from ._agent import AgentRuntime
from ._config import AgentConfig
from ._plans import start_plans
from ._routes import agent_app

__all__ = ["serve_agent"]


async def serve_agent(
    config: AgentConfig, *, host: str = "127.0.0.1", port: int = 0, ready: Path | None = None
) -> None:
    """Serve ``config``'s agent on ``host:port`` (0: any free port) until SIGINT or SIGTERM.

    ``ready``, if given, is written (atomically) once the agent accepts
    requests: ``{"agent", "url", "endpoint", "pid"}``. Whoever started the
    process learns its port from it.
    """
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
            info = {
                "agent": config.agent,
                "url": url,
                "endpoint": url + DEFAULT_PATH,
                "pid": os.getpid(),
            }
            tmp = ready.with_name(ready.name + ".tmp")
            tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
            tmp.replace(ready)
        await server.serve(sockets=[sock])
    finally:
        await runtime.stop()
