"""``agent-recovery scope GRAPH.json``: compute a rollback set from a graph file (draft §7).

GRAPH.json is the scope graph format (docs/scope-graph-format.md): a failure,
dependency edges, the facts known about each execution and optional policy
bounds. Prints the members with their target checkpoints, actions and reasons,
the rollback waves and, when a bound stopped the set, the escalation. With
``--json``, prints the result object of the same format instead. A conformance
vector is a graph file too; with ``--check`` its ``expected`` result is compared
with the computed one.

Exit status: 0 the set is complete; 3 the set is escalated or has members whose
facts are unknown (the coordinator could not act on it yet); 4 ``--check`` found
a difference; 1 the file could not be read or is not a valid graph file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .._errors import ProtocolError
from .._model import ExecRef
from .._scope import ScopeResult, compute_rollback_set
from .._scope_json import ScopeCase, case_from_json, loads, result_to_json

EXIT_INCOMPLETE = 3
EXIT_MISMATCH = 4


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scope",
        help="compute a rollback set from a dependency graph file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("graph", type=Path, metavar="GRAPH.json", help="scope graph file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--check", action="store_true", help="compare with the file's 'expected' result"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    path: Path = args.graph
    try:
        case = case_from_json(loads(path.read_bytes()))
        result = compute_rollback_set(
            origin=case.origin,
            checkpoint=case.checkpoint,
            edges=case.edges,
            facts=case.facts,
            bounds=case.bounds,
        )
    except OSError as exc:
        print(f"agent-recovery scope: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ProtocolError as exc:
        print(f"agent-recovery scope: {path}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result_to_json(result), indent=2))
    else:
        print(_text(case, result))
    if args.check:
        if case.expected is None:
            print(f"agent-recovery scope: {path}: no 'expected' result", file=sys.stderr)
            return 1
        if result_to_json(case.expected) != result_to_json(result):
            print(f"agent-recovery scope: {path}: differs from 'expected'", file=sys.stderr)
            return EXIT_MISMATCH
    return 0 if result.complete else EXIT_INCOMPLETE


def _ref(ref: ExecRef) -> str:
    return f"{ref.agent} {ref.exec}"


def _text(case: ScopeCase, result: ScopeResult) -> str:
    lines = [
        f"rollback set of {_ref(case.origin)} restored to checkpoint {case.checkpoint}: "
        f"{len(result.members)} member(s), {len(result.waves)} wave(s)"
    ]
    rows = [("execution", "target", "action", "reason", "depth", "via")]
    for m in result.members:
        via = m.reason.via
        rows.append(
            (
                _ref(m.execution),
                str(m.target),
                "(undetermined)" if m.action is None else m.action.value,
                m.reason.kind.value,
                str(m.depth),
                ""
                if via is None
                else f"{_ref(via.producer)} after {via.produced_after}, "
                f"consumed after {via.consumed_after}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        lines.append("  " + "  ".join([*cells, row[5]]).rstrip())
    for w, wave in enumerate(result.waves):
        lines.append(f"wave {w}: " + ", ".join(_ref(r) for r in wave))
    if result.undetermined:
        lines.append(
            "undetermined (facts unknown): " + ", ".join(_ref(r) for r in result.undetermined)
        )
    if result.escalation is not None:
        lines.append(
            f"escalation ({result.escalation.reason}): not entered: "
            + ", ".join(_ref(r) for r in result.escalation.frontier)
        )
    return "\n".join(lines)
