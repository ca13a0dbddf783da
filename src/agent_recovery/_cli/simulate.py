"""``agent-recovery simulate``: the fault-injection simulator and the exhaustive explorer.

Runs random workflows (agent dependency graphs, a mix of reversibility, active
and completed members, concurrent failures and false triggers) under message
loss, duplication, reordering and crashes, and checks after each run that
no surviving execution kept tainted work (S1), nothing was undone twice (S2),
every member ends with a disclosed outcome (S3), nothing outside the rollback
set was undone (S4) and every recovery terminated once faults stopped (L1).
The same scenarios are also handled by two baselines: abort everything, and
local-only recovery. With ``--json`` the last line is one JSON object.

``--explore NAME`` instead enumerates every interleaving of a small
configuration: ``chain`` (three participants in a chain and a bystander) with
``--faults`` losses or duplications and ``--crashes`` coordinator crashes, or
``concurrent`` (two coordinators recovering overlapping sets at once).

Exits 1 if any property is violated.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ..testing._explore import chain_config, concurrent_config, explore
from ..testing._simulate import combine, simulate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="check the recovery procedure under injected faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenarios", type=_positive, default=1000, help="how many (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--loss", type=_probability, default=0.0, help="loss probability")
    p.add_argument("--no-crashes", action="store_true", help="inject no crashes")
    p.add_argument("--jobs", type=_positive, default=1, help="worker processes (default 1)")
    p.add_argument("--explore", choices=("chain", "concurrent"), help="explore exhaustively")
    p.add_argument("--faults", type=int, default=1, help="chain: losses or duplications")
    p.add_argument("--crashes", type=int, default=1, help="chain: coordinator crashes")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.set_defaults(func=_run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _slice(job: tuple[int, int, int, float, bool]) -> dict[str, Any]:
    start, count, seed, loss, crashes = job
    return simulate(count, seed=seed, loss=loss, crashes=crashes, start=start)


def _run(args: argparse.Namespace) -> int:
    if args.explore is not None:
        config = (
            chain_config(faults=args.faults, crashes=args.crashes)
            if args.explore == "chain"
            else concurrent_config()
        )
        report = explore(config)
        summary: dict[str, Any] = {"configuration": args.explore, **report.as_dict()}
        if args.explore == "chain":
            summary.update(faults=args.faults, crashes=args.crashes)
        for problem in report.violations[:20]:
            print(f"violation: {problem}")
        bad = bool(report.violations)
    else:
        crashes = not args.no_crashes
        jobs = min(args.jobs, args.scenarios)
        size = -(-args.scenarios // jobs)
        slices = [
            (start, min(size, args.scenarios - start), args.seed, args.loss, crashes)
            for start in range(0, args.scenarios, size)
        ]
        if jobs == 1:
            summary = _slice(slices[0])
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                summary = combine(list(pool.map(_slice, slices)))
        for problem in summary["problems"]:
            print(f"violation: {problem}")
        bad = bool(summary["safety_violations"] or summary["non_terminated"])
    if args.json:
        print(json.dumps(summary, sort_keys=False))
    else:
        for key, value in summary.items():
            if key != "problems":
                print(f"{key}: {value}")
    return 1 if bad else 0
