"""The ``agent-recovery`` command line.

Each subcommand lives in its own module under ``agent_recovery._cli`` and exposes
``register(subparsers)``; this file only assembles them, so commands can be added
without touching each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, in the order ``--help`` lists them.
_COMMANDS: tuple[str, ...] = (
    "keys",
    "records",
    "serve",
    "override",
    "demo",
    "simulate",
    "conformance",
    "scope",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-recovery",
        description="Failure signaling and coordinated rollback for cooperating agents.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        module = importlib.import_module(f"agent_recovery._cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
