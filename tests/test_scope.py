"""The rollback-set API (draft §7): inputs refused, incremental discovery, scale.

The rule itself is checked by the vectors (``test_scope_vectors``) and by the
properties (``test_scope_properties``); this file checks the API around it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery._model import (
    Action,
    Dependency,
    ExecRef,
    Facts,
    Reason,
    ReasonKind,
    Reversibility,
    Status,
)
from agent_recovery._scope import (
    Bounds,
    DependencyGraph,
    Member,
    ScopeBuilder,
    action_for,
    compute_rollback_set,
)

A, B, C, D, E = (ExecRef(agent=f"spiffe://example.org/{x}", exec=f"{x}1") for x in "abcde")


def edge(consumer: ExecRef, producer: ExecRef, pa: int, ca: int) -> Dependency:
    return Dependency(consumer=consumer, producer=producer, produced_after=pa, consumed_after=ca)


def facts(
    status: Status = Status.COMPLETED,
    reversibility: Reversibility = Reversibility.RESTORABLE,
    domain: str | None = None,
) -> Facts:
    return Facts(status=status, reversibility=reversibility, checkpoint=5, domain=domain)


# ---------------------------------------------------------------- the action rule


@pytest.mark.parametrize(
    ("status", "reversibility", "action"),
    [
        (Status.ACTIVE, Reversibility.RESTORABLE, Action.CANCEL_RESTORE),
        (Status.COMPLETED, Reversibility.RESTORABLE, Action.RESTORE),
        (Status.FAILED, Reversibility.RESTORABLE, Action.RESTORE),
        (Status.ACTIVE, Reversibility.COMPENSABLE, Action.COMPENSATE),
        (Status.COMPLETED, Reversibility.COMPENSABLE, Action.COMPENSATE),
        (Status.FAILED, Reversibility.COMPENSABLE, Action.COMPENSATE),
        (Status.ACTIVE, Reversibility.IRREVERSIBLE, Action.NONE),
        (Status.COMPLETED, Reversibility.IRREVERSIBLE, Action.NONE),
        (Status.FAILED, Reversibility.IRREVERSIBLE, Action.NONE),
    ],
)
def test_action_for(status: Status, reversibility: Reversibility, action: Action) -> None:
    assert action_for(facts(status, reversibility)) is action
    # The result uses the same rule.
    result = compute_rollback_set(
        origin=A, checkpoint=0, edges=[], facts={A: facts(status, reversibility)}
    )
    assert result.members[0].action is action


# ---------------------------------------------------------------- inputs refused


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_members": 0},
        {"max_members": -1},
        {"max_members": True},
        {"max_members": 1.5},
        {"max_depth": -1},
        {"max_depth": False},
        {"allowed_domains": {"example.org"}},  # a set, not a frozenset
        {"allowed_domains": frozenset({"has space"})},
        {"allowed_domains": frozenset({""})},
    ],
)
def test_bad_bounds_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError) as info:
        Bounds(**kwargs)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.MALFORMED


def test_bounds_accept_their_limits() -> None:
    assert Bounds(max_members=1, max_depth=0, allowed_domains=frozenset()).unbounded is False
    assert Bounds().unbounded is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ("spiffe://example.org/a", "a1")},
        {"checkpoint": -1},
        {"checkpoint": 2**53},
        {"checkpoint": True},
        {"edges": [("b", "a", 0, 0)]},
        {"facts": {A: "restorable"}},
        {"facts": {("agent", "exec"): facts()}},
        {"bounds": {"max_members": 3}},
    ],
)
def test_bad_inputs_are_refused(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "origin": A,
        "checkpoint": 0,
        "edges": [edge(B, A, 0, 0)],
        "facts": {},
        "bounds": Bounds(),
    }
    args.update(kwargs)
    with pytest.raises(LocalProtocolError) as info:
        compute_rollback_set(**args)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.MALFORMED


def test_a_bad_edge_changes_nothing() -> None:
    builder = ScopeBuilder(origin=A, checkpoint=0)
    with pytest.raises(LocalProtocolError):
        builder.add_edges([edge(B, A, 0, 1), "not an edge"])  # type: ignore[list-item]
    assert [m.execution for m in builder.result().members] == [A]
    assert builder.add_edges([edge(B, A, 0, 1)]) == (B,)
    graph = DependencyGraph([edge(B, A, 0, 1)])
    with pytest.raises(LocalProtocolError):
        graph.add_edges([edge(C, B, 0, 0), None])  # type: ignore[list-item]
    assert graph.edges == 1 and graph.executions == 2


def test_builder_refuses_bad_facts() -> None:
    builder = ScopeBuilder(origin=A, checkpoint=0)
    with pytest.raises(LocalProtocolError):
        builder.set_facts(A, "completed")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        builder.set_facts("a1", facts())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ScopeBuilder(origin=A, checkpoint=-3)


# ---------------------------------------------------------------- the result


def test_member_lookup_and_completeness() -> None:
    result = compute_rollback_set(
        origin=A, checkpoint=1, edges=[edge(B, A, 1, 0), edge(C, A, 0, 0)], facts={A: facts()}
    )
    b = result.member(B)
    assert b == Member(
        execution=B,
        target=0,
        action=None,
        reason=Reason(kind=ReasonKind.DIRECT, via=edge(B, A, 1, 0)),
        depth=1,
    )
    assert result.member(C) is None  # consumed an output made before checkpoint 1
    assert result.member(E) is None  # never mentioned
    assert result.undetermined == (B,)
    assert not result.complete
    assert compute_rollback_set(origin=A, checkpoint=1, edges=[], facts={}).complete is False
    assert compute_rollback_set(origin=A, checkpoint=1, edges=[], facts={A: facts()}).complete


def test_origin_that_no_edge_names() -> None:
    graph = DependencyGraph([edge(C, B, 0, 0)])
    result = graph.rollback_set(origin=A, checkpoint=2, facts={})
    assert [(m.execution, m.target, m.depth) for m in result.members] == [(A, 2, 0)]
    assert result.waves == ((A,),)
    assert graph.executions == 2  # a query does not change the graph


def test_graph_answers_queries_for_any_origin_and_grows() -> None:
    graph = DependencyGraph([edge(B, A, 0, 1), edge(C, B, 1, 0)])
    assert [m.execution for m in graph.rollback_set(origin=B, checkpoint=0, facts={}).members] == [
        B,
        C,
    ]
    graph.add_edges([edge(D, C, 0, 0)])
    result = graph.rollback_set(origin=A, checkpoint=0, facts={})
    assert [m.execution for m in result.members] == [A, B, C, D]
    assert result.waves == ((D,), (C,), (B,), (A,))


# ---------------------------------------------------------------- hop by hop


def test_builder_announces_each_member_once_in_order() -> None:
    builder = ScopeBuilder(origin=A, checkpoint=0)
    assert builder.origin == A
    assert builder.add_edges([]) == ()
    assert builder.add_edges([edge(C, A, 0, 1), edge(B, A, 0, 2)]) == (B, C)
    assert builder.add_edges([edge(C, A, 0, 1)]) == ()  # a retransmitted reply
    assert builder.add_edges([edge(D, E, 0, 0)]) == ()  # not (yet) tainted
    assert builder.add_edges([edge(E, C, 1, 0)]) == (D, E)  # E, and through E, D
    assert builder.add_edges([edge(A, A, 0, 0)]) == ()  # self-edge


def test_builder_lowering_a_target_opens_more_edges() -> None:
    builder = ScopeBuilder(origin=A, checkpoint=0)
    assert builder.add_edges([edge(B, A, 0, 4), edge(C, B, 2, 0)]) == (B,)
    # B's output made after checkpoint 2 survives a restore to 4 ... until D lowers B to 1.
    assert builder.add_edges([edge(D, A, 0, 3)]) == (D,)
    assert builder.add_edges([edge(B, D, 3, 1)]) == (C,)
    assert builder.result().member(B) is not None
    assert builder.result().member(B).target == 1  # type: ignore[union-attr]


def test_builder_with_bounds_escalates_and_stops_announcing() -> None:
    builder = ScopeBuilder(origin=A, checkpoint=0, bounds=Bounds(max_members=2))
    assert builder.add_edges([edge(B, A, 0, 0)]) == (B,)
    assert builder.add_edges([edge(C, B, 0, 0)]) == ()
    result = builder.result()
    assert result.escalation is not None
    assert (result.escalation.reason, result.escalation.frontier) == ("max-members", (C,))


def test_builder_domain_learned_from_facts() -> None:
    policy = Bounds(allowed_domains=frozenset({"example.org"}))
    builder = ScopeBuilder(origin=A, checkpoint=0, bounds=policy)
    builder.set_facts(A, facts(domain="example.org"))
    # B's domain is unknown until it replies: it is entered (and halted) ...
    assert builder.add_edges([edge(B, A, 0, 0)]) == (B,)
    assert builder.add_edges([edge(C, B, 0, 0)]) == (C,)
    assert builder.result().undetermined == (B, C)
    # ... and its reply shows another trust domain: the set escalates, and C,
    # reached only through B, is no longer entered.
    builder.set_facts(B, facts(domain="partner.example"))
    result = builder.result()
    assert [m.execution for m in result.members] == [A]
    assert result.escalation is not None
    assert (result.escalation.reason, result.escalation.frontier) == ("domain", (B,))
    # A later report from B (the latest wins) brings it back.
    builder.set_facts(B, facts(domain="example.org"))
    assert [m.execution for m in builder.result().members] == [A, B, C]
    assert builder.result().escalation is None


def test_builder_keeps_its_result_until_an_input_matters(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_recovery import _scope

    runs = 0
    batch = _scope._result

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal runs
        runs += 1
        return batch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_scope, "_result", counted)
    builder = ScopeBuilder(origin=A, checkpoint=2)
    builder.add_edges([edge(B, A, 2, 0)])
    first = builder.result()
    version = builder.version
    assert runs == 1
    # Nothing here can change the result: a retransmitted edge, an output A made
    # before its target, an edge from an execution outside the set, facts of an
    # execution outside the set, and the same facts twice.
    assert builder.add_edges([edge(B, A, 2, 0), edge(C, A, 1, 0), edge(E, D, 0, 0)]) == ()
    builder.set_facts(E, facts())
    builder.set_facts(B, facts())
    patched = builder.result()
    builder.set_facts(B, facts())
    assert builder.result() is patched
    assert runs == 1  # B's facts changed only its action: patched, not recomputed
    assert builder.version == version + 1
    assert first.member(B) is not None and first.member(B).action is None  # type: ignore[union-attr]
    assert patched.member(B) == Member(
        execution=B, target=0, action=Action.RESTORE, reason=patched.members[1].reason, depth=1
    )
    assert patched.undetermined == (A,)
    # E enters through D: the result is recomputed once, with E's earlier facts.
    assert builder.add_edges([edge(D, B, 0, 0)]) == (D, E)
    result = builder.result()
    assert builder.result() is result and runs == 2
    edges = [edge(B, A, 2, 0), edge(C, A, 1, 0), edge(E, D, 0, 0), edge(D, B, 0, 0)]
    assert result == compute_rollback_set(
        origin=A, checkpoint=2, edges=edges, facts={E: facts(), B: facts()}
    )


# ---------------------------------------------------------------- scale and shape


def _chain(n: int) -> list[Dependency]:
    refs = [ExecRef(agent="spiffe://example.org/a", exec=f"e{i:07d}") for i in range(n)]
    return [edge(refs[i + 1], refs[i], 1, 0) for i in range(n - 1)]


def test_long_chain_needs_no_recursion() -> None:
    # Far beyond the interpreter's recursion limit; draft §7 puts no bound on depth.
    n = 30_000
    edges = _chain(n)
    result = compute_rollback_set(origin=edges[0].producer, checkpoint=0, edges=edges, facts={})
    assert len(result.members) == n and len(result.waves) == n
    assert result.members[-1].depth == n - 1
    assert result.waves[0] == (edges[-1].consumer,)


def test_long_cycle_needs_no_recursion() -> None:
    # A ring: the fast path cannot order it, so the general path (worklist fixed
    # point, breadth-first depths, Kahn then iterative Tarjan) runs on all of it.
    n = 30_000
    edges = _chain(n)
    edges.append(edge(edges[0].producer, edges[-1].consumer, 1, 0))
    result = compute_rollback_set(origin=edges[0].producer, checkpoint=1, edges=edges, facts={})
    assert len(result.members) == n
    assert len(result.waves) == 1
    # The ring comes back to the origin and lowers it from 1 to 0.
    assert result.members[0].target == 0
    assert result.members[0].reason == Reason(kind=ReasonKind.TRANSITIVE, via=edges[-1])
    assert result.members[-1].depth == n - 1


def test_cycle_elsewhere_keeps_the_fast_path_exact() -> None:
    # A cycle the failure does not reach, and one downstream of a long tail.
    tail = _chain(200)
    cycle = [edge(B, C, 0, 0), edge(C, B, 0, 0), edge(B, tail[-1].consumer, 1, 0)]
    other = [edge(D, E, 0, 0), edge(E, D, 0, 0)]
    result = compute_rollback_set(
        origin=tail[0].producer, checkpoint=0, edges=tail + cycle + other, facts={}
    )
    assert len(result.members) == 202
    assert result.waves[0] == (B, C)
    assert result.member(D) is None


@pytest.mark.slow
def test_million_chain() -> None:
    # The requirement; also reachable as `python bench/scope.py --chain 1000000`.
    n = 1_000_000
    edges = _chain(n)
    graph = DependencyGraph(edges)
    result = graph.rollback_set(origin=edges[0].producer, checkpoint=0, facts={})
    assert len(result.members) == n and len(result.waves) == n
    assert result.members[-1].depth == n - 1


def test_bench_runs_at_a_tiny_size() -> None:
    # Keeps bench/scope.py working (it cross-checks networkx and ours); no timing
    # is asserted. 3,000 executions (about 8,800 edges) take the whole-array path.
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            *(sys.executable, str(root / "bench" / "scope.py")),
            *("--sizes", "300,3000", "--chain", "500", "--min-time", "0"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["sizes"] == [300, 3000]
    for key in ("ours_s", "networkx_s", "per_edge_ns", "ours_peak_mb", "networkx_peak_mb"):
        assert len(summary[key]) == 2
    assert summary["ratio_at_max"] > 0
    assert summary["chain"]["chain"] == 500


def test_graph_beyond_32_bit_numbering_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Node and slot numbers are 32-bit; the limit is lowered here to reach it.
    from agent_recovery import _scope_graph

    monkeypatch.setattr(_scope_graph, "_IDX_LIMIT", 3)
    with pytest.raises(LocalProtocolError) as info:
        DependencyGraph([edge(B, A, 0, 0), edge(C, B, 0, 0)])
    assert info.value.code is ErrorCode.TOO_LARGE
    assert DependencyGraph([edge(B, A, 0, 0)]).executions == 2
