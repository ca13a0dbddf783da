"""``agent-recovery serve --config FILE --port P``: run one agent (draft §12.2).

The agent is a participant for the executions its configuration declares and
a coordinator where it is their recovery authority. It serves the recovery
endpoint at ``/.well-known/agent-recovery`` until SIGINT or SIGTERM; with
``--binding a2a`` it is an A2A agent instead, its Agent Card declaring the
recovery extension, and speaks A2A to its peers. Port 0 picks a free port;
``--ready FILE`` then tells whoever started it which one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .._errors import ProtocolError
from ..runtime import ConfigError, load_config, serve_agent
from ..store import StoreError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run one agent: its recovery endpoint, engines, store and work",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--config", required=True, type=Path, help="the agent's configuration")
    serve.add_argument("--port", required=True, type=int, help="TCP port (0: any free port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--ready", type=Path, help="write the agent's URL here once it serves")
    serve.add_argument(
        "--binding",
        choices=["http", "a2a"],
        default="http",
        help="http: the recovery endpoint (draft §12.2); a2a: an A2A agent (draft §12.3)",
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(
            serve_agent(
                config, host=args.host, port=args.port, ready=args.ready, binding=args.binding
            )
        )
    except (ProtocolError, StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
