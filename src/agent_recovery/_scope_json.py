"""The scope graph file format: JSON to rollback-set inputs, and results to JSON.

One format serves the ``agent-recovery scope`` command and the conformance
vectors under ``conformance/scope/`` (``docs/scope-graph-format.md``): a
dependency graph, the facts known about its executions, a failure, optional
policy bounds and, in a vector, the expected result. Object shapes reuse the
protocol's JSON (ExecRef, Dependency and Facts of draft §5, the member and
escalation shapes of the recovery record, draft §11).

Pure functions over parsed JSON values; reading files is the caller's job.
Input is checked strictly, because a misspelt bound silently ignored would
compute a different set: unknown members are refused, as are duplicate
object names and executions listed twice. Every failure raises
:class:`LocalProtocolError` with code ``malformed`` and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ErrorCode, LocalProtocolError
from ._model import (
    MAX_CHECKPOINT,
    Action,
    Dependency,
    ExecRef,
    Facts,
    Reason,
    ReasonKind,
    Reversibility,
    Status,
)
from ._scope import ESCALATION_REASONS, Bounds, Escalation, Member, ScopeResult

__all__ = [
    "ScopeCase",
    "case_from_json",
    "case_to_json",
    "dependency_from_json",
    "dependency_to_json",
    "execref_to_json",
    "loads",
    "result_from_json",
    "result_to_json",
]

_CASE_MEMBERS = frozenset({"description", "failure", "bounds", "executions", "edges", "expected"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeCase:
    """One scope graph file: inputs of draft §7 and, for a vector, the expected result."""

    origin: ExecRef
    checkpoint: int
    edges: tuple[Dependency, ...]
    facts: Mapping[ExecRef, Facts] = field(default_factory=dict)
    bounds: Bounds = field(default_factory=Bounds)
    description: str = ""
    expected: ScopeResult | None = None


def _malformed(what: str) -> LocalProtocolError:
    return LocalProtocolError(ErrorCode.MALFORMED, f"scope graph: {what}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _malformed(f"duplicate member {key!r}")
        obj[key] = value
    return obj


def loads(text: str | bytes) -> Any:
    """Parse JSON text, refusing duplicate object member names."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _malformed(f"not JSON ({type(exc).__name__})") from None


def _object(
    raw: object, what: str, allowed: frozenset[str], required: frozenset[str]
) -> dict[str, Any]:
    if type(raw) is not dict:
        raise _malformed(f"{what}: not an object")
    unknown = raw.keys() - allowed
    if unknown:
        raise _malformed(f"{what}: unknown member {sorted(unknown)[0]!r}")
    missing = required - raw.keys()
    if missing:
        raise _malformed(f"{what}: missing member {sorted(missing)[0]!r}")
    return raw


def _list(raw: object, what: str) -> list[Any]:
    if type(raw) is not list:
        raise _malformed(f"{what}: not an array")
    return raw


def _uint(raw: object, what: str) -> int:
    if type(raw) is not int or raw < 0:
        raise _malformed(f"{what}: not an unsigned integer")
    return raw


def _checkpoint(raw: object, what: str) -> int:
    if type(raw) is not int or not 0 <= raw <= MAX_CHECKPOINT:
        raise _malformed(f"{what}: not a checkpoint number (0..2^53-1)")
    return raw


def _str(raw: object, what: str) -> str:
    if type(raw) is not str:
        raise _malformed(f"{what}: not a string")
    return raw


_EXECREF = frozenset({"agent", "exec"})
_DEPENDENCY = frozenset({"consumer", "producer", "produced_after", "consumed_after"})
_FACTS_ALL = frozenset({"status", "reversibility", "checkpoint", "domain"})
_FACTS_REQUIRED = frozenset({"status", "reversibility", "checkpoint"})


def execref_from_json(raw: object, what: str) -> ExecRef:
    obj = _object(raw, what, _EXECREF, _EXECREF)
    try:
        return ExecRef(agent=obj["agent"], exec=obj["exec"])
    except LocalProtocolError as exc:
        raise _malformed(f"{what}: {exc.detail}") from None


def execref_to_json(ref: ExecRef) -> dict[str, Any]:
    return {"agent": ref.agent, "exec": ref.exec}


def dependency_from_json(raw: object, what: str) -> Dependency:
    obj = _object(raw, what, _DEPENDENCY, _DEPENDENCY)
    try:
        return Dependency(
            consumer=execref_from_json(obj["consumer"], f"{what}.consumer"),
            producer=execref_from_json(obj["producer"], f"{what}.producer"),
            produced_after=_checkpoint(obj["produced_after"], f"{what}.produced_after"),
            consumed_after=_checkpoint(obj["consumed_after"], f"{what}.consumed_after"),
        )
    except LocalProtocolError as exc:
        raise _malformed(f"{what}: {exc.detail}") from None


def dependency_to_json(dep: Dependency) -> dict[str, Any]:
    return {
        "consumer": execref_to_json(dep.consumer),
        "producer": execref_to_json(dep.producer),
        "produced_after": dep.produced_after,
        "consumed_after": dep.consumed_after,
    }


def _enum(cls: Any, raw: object, what: str) -> Any:
    try:
        return cls(_str(raw, what))
    except ValueError:
        raise _malformed(f"{what}: unknown value {raw!r}") from None


def _facts_from_json(raw: object, what: str) -> Facts:
    obj = _object(raw, what, _FACTS_ALL, _FACTS_REQUIRED)
    try:
        return Facts(
            status=_enum(Status, obj["status"], f"{what}.status"),
            reversibility=_enum(Reversibility, obj["reversibility"], f"{what}.reversibility"),
            checkpoint=_checkpoint(obj["checkpoint"], f"{what}.checkpoint"),
            domain=None if obj.get("domain") is None else _str(obj["domain"], f"{what}.domain"),
        )
    except LocalProtocolError as exc:
        raise _malformed(f"{what}: {exc.detail}") from None


def _facts_to_json(facts: Facts) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": facts.status.value,
        "reversibility": facts.reversibility.value,
        "checkpoint": facts.checkpoint,
    }
    if facts.domain is not None:
        out["domain"] = facts.domain
    return out


_BOUNDS = frozenset({"max_members", "max_depth", "allowed_domains"})


def _bounds_from_json(raw: object) -> Bounds:
    obj = _object(raw, "bounds", _BOUNDS, frozenset())
    max_members = obj.get("max_members")
    max_depth = obj.get("max_depth")
    domains = obj.get("allowed_domains")
    try:
        return Bounds(
            max_members=None if max_members is None else _uint(max_members, "max_members"),
            max_depth=None if max_depth is None else _uint(max_depth, "max_depth"),
            allowed_domains=None
            if domains is None
            else frozenset(_str(d, "allowed_domains[]") for d in _list(domains, "allowed_domains")),
        )
    except LocalProtocolError as exc:
        raise _malformed(f"bounds: {exc.detail}") from None


def _bounds_to_json(bounds: Bounds) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if bounds.max_members is not None:
        out["max_members"] = bounds.max_members
    if bounds.max_depth is not None:
        out["max_depth"] = bounds.max_depth
    if bounds.allowed_domains is not None:
        out["allowed_domains"] = sorted(bounds.allowed_domains)
    return out


_FAILURE = frozenset({"execution", "checkpoint"})
_EXECUTION = frozenset({"execution", "facts"})


def case_from_json(raw: object) -> ScopeCase:
    """A scope graph file, parsed (``raw`` is the JSON value, e.g. from :func:`loads`)."""
    obj = _object(raw, "file", _CASE_MEMBERS, frozenset({"failure", "edges"}))
    failure = _object(obj["failure"], "failure", _FAILURE, _FAILURE)
    origin = execref_from_json(failure["execution"], "failure.execution")
    checkpoint = _checkpoint(failure["checkpoint"], "failure.checkpoint")
    edges = tuple(
        dependency_from_json(e, f"edges[{i}]") for i, e in enumerate(_list(obj["edges"], "edges"))
    )
    facts: dict[ExecRef, Facts] = {}
    for i, entry in enumerate(_list(obj.get("executions", []), "executions")):
        what = f"executions[{i}]"
        item = _object(entry, what, _EXECUTION, _EXECUTION)
        ref = execref_from_json(item["execution"], f"{what}.execution")
        if ref in facts:
            raise _malformed(f"{what}: execution listed twice")
        facts[ref] = _facts_from_json(item["facts"], f"{what}.facts")
    bounds = _bounds_from_json(obj["bounds"]) if obj.get("bounds") is not None else Bounds()
    description = _str(obj.get("description", ""), "description")
    expected = result_from_json(obj["expected"]) if "expected" in obj else None
    return ScopeCase(
        origin=origin,
        checkpoint=checkpoint,
        edges=edges,
        facts=facts,
        bounds=bounds,
        description=description,
        expected=expected,
    )


def case_to_json(case: ScopeCase) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if case.description:
        out["description"] = case.description
    out["failure"] = {"execution": execref_to_json(case.origin), "checkpoint": case.checkpoint}
    if not case.bounds.unbounded:
        out["bounds"] = _bounds_to_json(case.bounds)
    out["executions"] = [
        {"execution": execref_to_json(ref), "facts": _facts_to_json(f)}
        for ref, f in sorted(case.facts.items())
    ]
    out["edges"] = [dependency_to_json(e) for e in case.edges]
    if case.expected is not None:
        out["expected"] = result_to_json(case.expected)
    return out


def _reason_to_json(reason: Reason) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": reason.kind.value}
    if reason.via is not None:
        out["via"] = dependency_to_json(reason.via)
    return out


def result_to_json(result: ScopeResult) -> dict[str, Any]:
    """A result as JSON: member objects as in a recovery record (draft §11)."""
    escalation = result.escalation
    return {
        "members": [
            {
                "execution": execref_to_json(m.execution),
                "target": m.target,
                "action": None if m.action is None else m.action.value,
                "reason": _reason_to_json(m.reason),
                "depth": m.depth,
            }
            for m in result.members
        ],
        "waves": [[execref_to_json(r) for r in wave] for wave in result.waves],
        "escalation": None
        if escalation is None
        else {
            "reason": escalation.reason,
            "frontier": [execref_to_json(r) for r in escalation.frontier],
        },
        "undetermined": [execref_to_json(r) for r in result.undetermined],
    }


_RESULT = frozenset({"members", "waves", "escalation", "undetermined"})
_MEMBER = frozenset({"execution", "target", "action", "reason", "depth"})
_REASON_ALL = frozenset({"kind", "via"})
_ESCALATION = frozenset({"reason", "frontier"})


def _member_from_json(raw: object, what: str) -> Member:
    obj = _object(raw, what, _MEMBER, _MEMBER)
    why = _object(obj["reason"], f"{what}.reason", _REASON_ALL, frozenset({"kind"}))
    via = why.get("via")
    try:
        reason = Reason(
            kind=_enum(ReasonKind, why["kind"], f"{what}.reason.kind"),
            via=None if via is None else dependency_from_json(via, f"{what}.reason.via"),
        )
    except LocalProtocolError as exc:
        raise _malformed(f"{what}.reason: {exc.detail}") from None
    action = obj["action"]
    return Member(
        execution=execref_from_json(obj["execution"], f"{what}.execution"),
        target=_checkpoint(obj["target"], f"{what}.target"),
        action=None if action is None else _enum(Action, action, f"{what}.action"),
        reason=reason,
        depth=_uint(obj["depth"], f"{what}.depth"),
    )


def result_from_json(raw: object) -> ScopeResult:
    obj = _object(raw, "expected", _RESULT, _RESULT)
    escalation = None
    if obj["escalation"] is not None:
        esc = _object(obj["escalation"], "escalation", _ESCALATION, _ESCALATION)
        reason = _str(esc["reason"], "escalation.reason")
        if reason not in ESCALATION_REASONS:
            raise _malformed(f"escalation.reason: unknown value {reason!r}")
        escalation = Escalation(
            reason=reason,
            frontier=tuple(
                execref_from_json(r, "escalation.frontier[]")
                for r in _list(esc["frontier"], "escalation.frontier")
            ),
        )
    return ScopeResult(
        members=tuple(
            _member_from_json(m, f"members[{i}]")
            for i, m in enumerate(_list(obj["members"], "members"))
        ),
        waves=tuple(
            tuple(execref_from_json(r, "waves[][]") for r in _list(w, "waves[]"))
            for w in _list(obj["waves"], "waves")
        ),
        escalation=escalation,
        undetermined=tuple(
            execref_from_json(r, "undetermined[]")
            for r in _list(obj["undetermined"], "undetermined")
        ),
    )
