"""``agent-recovery conformance --target URL [--json]``: test an implementation from outside.

The target is any implementation of the HTTP binding (draft §12.2) that loaded
the fixture workload ``conformance/fixture.json`` (ours: ``agent-recovery
serve --config conformance/fixture.json --port P``). The runner plays the
agents around the target with the fixture's test keys and listens where the
fixture says the target sends their messages. It runs the HTTP checks, the
message vectors, the attack corpus, behavioural scenarios with the target as
participant and as coordinator, and the scope vectors; every check is listed
with its level (MUST, SHOULD, MAY) and draft section. Exit status 1 if any
MUST check fails, 2 if the run could not start; with ``--json`` the last line
is one JSON object with at least ``checks`` and ``must_failed``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..conformance_kit import FixtureError, load_fixture, run_conformance

_DEFAULT_FIXTURE = Path("conformance/fixture.json")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    conformance = subparsers.add_parser(
        "conformance",
        help="check an implementation of the HTTP binding from outside",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    conformance.add_argument("--target", required=True, help="the target's URL")
    conformance.add_argument(
        "--fixture", type=Path, help="fixture (default: conformance/fixture.json)"
    )
    conformance.add_argument("--vectors", type=Path, help="message vectors directory")
    conformance.add_argument("--attacks", type=Path, help="attack corpus directory")
    conformance.add_argument("--scope", type=Path, help="scope vectors directory")
    conformance.add_argument("--json", action="store_true", help="end with one JSON summary line")
    conformance.set_defaults(func=_conformance)


def _find(given: Path | None) -> Path | None:
    if given is not None:
        return given
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        if (base / _DEFAULT_FIXTURE).exists():
            return base / _DEFAULT_FIXTURE
    return None


def _conformance(args: argparse.Namespace) -> int:
    path = _find(args.fixture)
    if path is None:
        print(f"error: {_DEFAULT_FIXTURE} not found; give --fixture", file=sys.stderr)
        return 2
    try:
        fixture = load_fixture(path)
        report = asyncio.run(
            run_conformance(
                args.target, fixture, vectors=args.vectors, attacks=args.attacks, scope=args.scope
            )
        )
    except (FixtureError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    if args.json:
        print(report.to_json())
    return 1 if report.must_failed else 0
