"""The scope graph file format and the ``agent-recovery scope`` command.

Bad files are refused as a whole with a ``malformed`` error that says where;
the command reports them on stderr with exit status 1 and prints nothing else.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._model import Action, ExecRef, ReasonKind
from agent_recovery._scope import Bounds, compute_rollback_set
from agent_recovery._scope_json import case_from_json, loads, result_from_json
from agent_recovery.cli import main

A = {"agent": "spiffe://example.org/a", "exec": "a1"}
B = {"agent": "spiffe://example.org/b", "exec": "b1"}
C = {"agent": "spiffe://example.org/c", "exec": "c1"}
FACTS = {"status": "active", "reversibility": "restorable", "checkpoint": 3}

GOOD: dict[str, Any] = {
    "description": "two members",
    "failure": {"execution": A, "checkpoint": 2},
    "bounds": {"max_members": 5, "max_depth": 3, "allowed_domains": ["example.org"]},
    "executions": [
        {"execution": A, "facts": {**FACTS, "domain": "example.org"}},
        {"execution": B, "facts": {**FACTS, "domain": "example.org"}},
    ],
    "edges": [
        {"consumer": B, "producer": A, "produced_after": 2, "consumed_after": 1},
        {"consumer": C, "producer": A, "produced_after": 1, "consumed_after": 0},
    ],
}


def test_good_file() -> None:
    case = case_from_json(GOOD)
    assert case.origin == ExecRef(agent="spiffe://example.org/a", exec="a1")
    assert case.checkpoint == 2
    assert case.bounds == Bounds(
        max_members=5, max_depth=3, allowed_domains=frozenset({"example.org"})
    )
    assert len(case.edges) == 2 and len(case.facts) == 2
    assert case.expected is None
    minimal = case_from_json({"failure": GOOD["failure"], "edges": [], "bounds": None})
    assert minimal.bounds == Bounds() and not minimal.facts


def _broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("failure",), KeyError, "failure"),
        (("edges",), KeyError, "edges"),
        (("edges",), {}, "edges"),
        (("extra",), 1, "extra"),
        (("bounds", "max_member"), 3, "max_member"),  # a misspelt bound
        (("bounds", "max_members"), 0, "max_members"),
        (("bounds", "max_depth"), -1, "max_depth"),
        (("bounds", "max_depth"), True, "max_depth"),
        (("bounds", "allowed_domains"), "example.org", "allowed_domains"),
        (("failure", "checkpoint"), -1, "failure.checkpoint"),
        (("failure", "checkpoint"), 1.0, "failure.checkpoint"),
        (("failure", "checkpoint"), 2**53, "failure"),
        (("failure", "execution", "agent"), "", "failure.execution"),
        (("failure", "execution", "exec"), "has space", "failure.execution"),
        (("edges", 0, "produced_after"), "2", "edges[0].produced_after"),
        (("edges", 1, "consumer"), ["c"], "edges[1].consumer"),
        (("edges", 1, "weight"), 1, "edges[1]"),
        (("executions", 0, "facts", "status"), "running", "executions[0].facts.status"),
        (("executions", 0, "facts", "reversibility"), 1, "executions[0].facts"),
        (("executions", 1, "execution"), A, "executions[1]"),  # listed twice
        (("executions", 1, "facts", "domain"), "", "executions[1].facts"),
        (("description",), 7, "description"),
        (("expected",), {"members": []}, "expected"),
    ],
)
def test_bad_files_are_refused(path: tuple[Any, ...], value: Any, where: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        case_from_json(_broken(path, value))
    assert info.value.code is ErrorCode.MALFORMED
    assert where in info.value.detail


@pytest.mark.parametrize(
    "text",
    ['{"failure": 1, "failure": 2}', "[1, 2", "", '{"edges": [], ' * 2000, "[" * 100_000],
)
def test_bad_json_is_refused(text: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        case_from_json(loads(text))
    assert info.value.code is ErrorCode.MALFORMED


def test_expected_result_shapes() -> None:
    member = {
        "execution": A,
        "target": 1,
        "action": "restore",
        "reason": {"kind": "origin"},
        "depth": 0,
    }
    good = {"members": [member], "waves": [[A]], "escalation": None, "undetermined": []}
    assert len(result_from_json(good).members) == 1
    for broken in (
        {**good, "escalation": {"reason": "too-big", "frontier": []}},
        {**good, "members": [{**member, "action": "undo"}]},
        {**good, "members": [{**member, "reason": {"kind": "direct"}}]},  # no edge
        {**good, "members": [{**member, "reason": {"kind": "origin", "edge": 1}}]},
        {**good, "waves": [A]},
    ):
        with pytest.raises(LocalProtocolError):
            result_from_json(broken)


# ---------------------------------------------------------------- the command


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(doc))
    return path


def test_cli_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scope", str(_write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "2 member(s), 2 wave(s)" in out
    assert "spiffe://example.org/b b1  1       cancel-restore  direct" in out
    assert "wave 0: spiffe://example.org/b b1" in out
    assert "c1" not in out  # its input was made before checkpoint 2


def test_cli_incomplete_sets_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _broken(("bounds", "max_members"), 1)
    assert main(["scope", str(_write(tmp_path, doc))]) == 3
    assert "escalation (max-members): not entered: spiffe://example.org/b b1" in (
        capsys.readouterr().out
    )
    doc = _broken(("executions",), [])
    assert main(["scope", str(_write(tmp_path, doc))]) == 3
    assert "undetermined (facts unknown)" in capsys.readouterr().out


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD)
    assert main(["scope", str(path), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    path = _write(tmp_path, {**GOOD, "expected": expected})
    assert main(["scope", str(path), "--check"]) == 0
    capsys.readouterr()
    expected["members"][1]["target"] = 0
    path = _write(tmp_path, {**GOOD, "expected": expected})
    assert main(["scope", str(path), "--check"]) == 4
    assert "differs from 'expected'" in capsys.readouterr().err
    assert main(["scope", str(_write(tmp_path, GOOD)), "--check"]) == 1
    assert "no 'expected' result" in capsys.readouterr().err


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scope", str(tmp_path / "missing.json")]) == 1
    captured = capsys.readouterr()
    assert "missing.json" in captured.err and captured.out == ""
    bad = _broken(("bounds", "max_member"), 3)
    assert main(["scope", str(_write(tmp_path, bad))]) == 1
    captured = capsys.readouterr()
    assert "malformed" in captured.err and "max_member" in captured.err
    assert captured.out == ""


def test_documented_example() -> None:
    # The example of docs/scope-graph-format.md is a valid file with the result its
    # text describes.
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scope-graph-format.md").read_text()
    example = doc.split("## Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    case = case_from_json(loads(example))
    result = compute_rollback_set(
        origin=case.origin,
        checkpoint=case.checkpoint,
        edges=case.edges,
        facts=case.facts,
        bounds=case.bounds,
    )
    got = [(m.execution.exec, m.target, m.action, m.reason.kind) for m in result.members]
    assert got == [
        ("a1", 2, Action.RESTORE, ReasonKind.ORIGIN),
        ("b1", 1, Action.CANCEL_RESTORE, ReasonKind.DIRECT),
    ]
    assert [[r.exec for r in w] for w in result.waves] == [["b1"], ["a1"]]
