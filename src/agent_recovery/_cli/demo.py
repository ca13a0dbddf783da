"""``agent-recovery demo [--json]``: the whole protocol, end to end, on this machine.

Starts one ``agent-recovery serve`` process per agent of a scenario (by default
``examples/network-change/scenario.json``: a planner, a verifier, three
configuration pushers, a ticketing agent and a notifier) on 127.0.0.1, lets
them carry out a network change on real state (device configurations,
tickets, notifications in SQLite files), injects the scenario's failure, and
runs the recovery over real HTTP (``--binding http``) or over A2A
(``--binding a2a``: every agent an a2a-sdk server, the work delegated as A2A
tasks, the failure reported in the failed task's status): containment, the rollback set found hop by
hop, restore in reverse dependency order, compensation, disclosure of what
cannot be undone, release, and the signed recovery records.

Prints the timeline; writes under ``--out`` (default ``build/demo``) the
verified recovery log (``recovery-log.jsonl``), the picture of the dependency
graph and the rollback set (``rollback-set.svg``), the timeline, the agents'
state before and after, and every agent's configuration, keys, store and
trace. Stops every process. Exit status 0 if the recovery finished and its
records verify. With ``--json`` the last line is one JSON object summarizing
the outcome, the members per outcome, the record verification and the paths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..runtime import ConfigError
from ..runtime._cluster import ClusterError
from ..runtime._demo import run_demo

_DEFAULT_SCENARIO = Path("examples/network-change/scenario.json")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run several agents on loopback through a failure and its recovery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--scenario", type=Path, help="scenario file (default: the network change)")
    demo.add_argument("--out", type=Path, default=Path("build/demo"), help="output directory")
    demo.add_argument(
        "--binding",
        choices=["http", "a2a"],
        default="http",
        help="http: the recovery endpoint; a2a: the A2A extension over a2a-sdk",
    )
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds per phase")
    demo.add_argument("--json", action="store_true", help="end with one JSON summary line")
    demo.set_defaults(func=_demo)


def _scenario(given: Path | None) -> Path | None:
    if given is not None:
        return given
    # The scenario ships with the repository; look from here and from the package.
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base / _DEFAULT_SCENARIO
        if candidate.exists():
            return candidate
    return None


def _demo(args: argparse.Namespace) -> int:
    scenario = _scenario(args.scenario)
    if scenario is None:
        print(f"error: {_DEFAULT_SCENARIO} not found; give --scenario", file=sys.stderr)
        return 2
    try:
        result = run_demo(scenario, args.out, timeout=args.timeout, binding=args.binding)
    except (ConfigError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("== outcome")
    print(f"   recovery {result.recovery}: {result.result} in {result.elapsed_ms} ms")
    for outcome, execs in result.by_outcome().items():
        print(f"   {outcome:<13} {', '.join(execs) or '-'}")
    verdict = "verified" if result.verified else "NOT VERIFIED"
    print(f"   records: {result.records} in {result.chains} chains, {verdict}")
    for name, path in result.paths.items():
        print(f"   {name:<9} {path}")
    if not result.verified:
        print(result.verify_output, file=sys.stderr)
    if args.json:
        print(json.dumps(result.summary(), separators=(",", ":")))
    return 0 if result.ok else 1
