"""The whole-array sweep (``_scope_arrays``) equals the interpreter sweep (draft §7).

Large acyclic graphs take the whole-array path; small ones and graphs with
cycles take the edge-by-edge one. Both must give the same targets, depths,
reasons, waves and member order. Hypothesis compares them on the small graphs
of ``test_scope_properties`` (forcing each path), and seeded layered graphs
large enough to take the whole-array path by themselves are compared too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_scope_properties import bounds_st, checkpoints, edges_st, facts_st, refs
from test_scope_reference import reference

from agent_recovery import _scope_arrays
from agent_recovery._model import MAX_CHECKPOINT, Dependency, ExecRef, Facts
from agent_recovery._scope import Bounds, DependencyGraph
from agent_recovery._scope_graph import Csr, Graph
from agent_recovery._scope_passes import Scope, by_wave, scope


@contextmanager
def arrays_when(min_edges: int) -> Iterator[None]:
    """Graphs built inside take the whole-array path from ``min_edges`` edges (if acyclic)."""
    saved = (_scope_arrays.MIN_EDGES, _scope_arrays.MIN_EDGES_PER_LEVEL)
    _scope_arrays.MIN_EDGES = min_edges
    _scope_arrays.MIN_EDGES_PER_LEVEL = 0
    try:
        yield
    finally:
        _scope_arrays.MIN_EDGES, _scope_arrays.MIN_EDGES_PER_LEVEL = saved


def csr_of(edges: list[Dependency], *extra: ExecRef) -> tuple[Graph, Csr]:
    graph = Graph(incremental=False)
    for ref in extra:
        graph.node(ref)
    graph.add_edges(edges)
    return graph, graph.csr()


def per_member(result: Scope) -> tuple[list[int], bytearray, list[tuple[int, ...]]]:
    members, inset, target, depth, reason, wave = result
    rows = [(target[x], depth[x], reason[x], -1 if wave is None else wave[x]) for x in members]
    return list(members), inset, rows


def both(csr: Csr, origin: int, k0: int, *, with_waves: bool) -> tuple[Scope, Scope]:
    interp = scope(csr, origin, k0, with_waves=with_waves, arrays=False)
    whole = scope(csr, origin, k0, with_waves=with_waves, arrays=True)
    return interp, whole


@given(refs, checkpoints, edges_st, st.booleans())
def test_same_as_the_interpreter_sweep(
    origin: ExecRef, k0: int, edges: list[Dependency], with_waves: bool
) -> None:
    graph, csr = csr_of(edges, origin)
    o = csr.node[graph.index[(origin.agent, origin.exec)]]
    if csr.levels is None:  # a cycle: only the interpreter path is defined
        assert not csr.use_arrays()
        with pytest.raises(ValueError, match="acyclic"):
            scope(csr, o, k0, with_waves=with_waves, arrays=True)
        return
    interp, whole = both(csr, o, k0, with_waves=with_waves)
    assert per_member(whole) == per_member(interp)
    if with_waves:
        wave = interp[5]
        assert wave is not None
        last = wave[o]
        assert _scope_arrays.by_wave(csr.arrays(), csr.ranked, interp[0], wave, last) == by_wave(
            csr, interp[0], wave, last
        )


@given(refs, checkpoints, edges_st, facts_st, bounds_st)
def test_public_result_agrees_with_the_literal_rule_on_either_path(
    origin: ExecRef,
    k0: int,
    edges: list[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds,
) -> None:
    expected = reference(origin=origin, checkpoint=k0, edges=edges, facts=facts, bounds=bounds)
    with arrays_when(0):
        graph = DependencyGraph(edges)
        assert graph.rollback_set(origin=origin, checkpoint=k0, facts=facts, bounds=bounds) == (
            expected
        )


@given(edges_st)
def test_levels_separate_every_edge(edges: list[Dependency]) -> None:
    _graph, csr = csr_of(edges)
    if csr.ordered < csr.n:
        assert csr.levels is None
        return
    levels = csr.levels
    assert levels is not None
    assert levels[0] == 0
    assert levels[-1] == csr.n
    assert all(a < b for a, b in pairwise(levels))
    level = [0] * csr.n
    for i, (a, b) in enumerate(pairwise(levels)):
        for x in range(a, b):
            level[x] = i
    for p in range(csr.n):
        for k in range(csr.start[p], csr.start[p + 1]):
            # No edge inside a level, and each node is one above its highest producer.
            assert level[csr.cons[k]] > level[p]
    for c in range(csr.n):
        producers = [csr.prod[k] for k in range(len(csr.cons)) if csr.cons[k] == c]
        assert level[c] == (1 + max(level[p] for p in producers) if producers else 0)


def layered(seed: int, n: int, width: int, base: int = 0) -> list[Dependency]:
    rnd = random.Random(seed)
    refs = [ExecRef(agent=f"agent-{i % 7}", exec=f"x{i:05d}") for i in range(n)]
    edges = []
    for i in range(width, n):
        layer = i // width
        for _ in range(3):
            source = layer - 1 if rnd.random() < 0.8 else rnd.randrange(layer)
            p = source * width + rnd.randrange(width)
            edges.append(
                Dependency(
                    consumer=refs[i],
                    producer=refs[p],
                    produced_after=base + rnd.randint(0, 4),
                    consumed_after=base + rnd.randint(0, 4),
                )
            )
            if rnd.random() < 0.05:
                edges.append(edges[-1])  # a duplicate edge
    return edges


# Checkpoints near the largest one (draft §5.1) keep produced_after and the
# rank from sharing one integer when reasons are compared.
@pytest.mark.parametrize(("seed", "base"), [(0, 0), (1, 0), (2, 0), (3, MAX_CHECKPOINT - 4)])
def test_large_graphs_take_the_whole_array_path_and_agree(seed: int, base: int) -> None:
    edges = layered(seed, 3000, 60, base)
    _graph, csr = csr_of(edges)
    assert csr.use_arrays()  # by its size, without forcing
    assert csr.arrays().pa_span == (0 if base else 5)
    rnd = random.Random(seed)
    # The first execution taints most of the graph; others taint less, and a
    # late one little (the sweep stops above the highest member).
    for o in (0, *rnd.sample(range(csr.n), 6), csr.n - 1):
        for k0 in (base, base + 2):
            for with_waves in (False, True):
                interp, whole = both(csr, o, k0, with_waves=with_waves)
                assert per_member(whole) == per_member(interp)
    # The public result, with members, reasons and waves, is the same either way.
    whole_graph = DependencyGraph(edges)
    with arrays_when(len(edges) + 1):
        interp_graph = DependencyGraph(edges)
    refs = sorted({e.producer for e in edges})
    for ref in rnd.sample(refs, 3):
        for bounds in (Bounds(), Bounds(max_members=500)):
            assert whole_graph.rollback_set(
                origin=ref, checkpoint=base, facts={}, bounds=bounds
            ) == interp_graph.rollback_set(origin=ref, checkpoint=base, facts={}, bounds=bounds)


def test_narrow_levels_stay_on_the_interpreter_path() -> None:
    # A chain: a level per execution, so a level at a time would be slow.
    refs = [ExecRef(agent="a", exec=f"x{i:05d}") for i in range(6000)]
    edges = [
        Dependency(consumer=refs[i + 1], producer=refs[i], produced_after=0, consumed_after=0)
        for i in range(len(refs) - 1)
    ]
    _graph, csr = csr_of(edges)
    assert csr.levels is not None and len(csr.levels) == len(refs) + 1
    assert len(csr.cons) >= _scope_arrays.MIN_EDGES
    assert not csr.use_arrays()


def test_a_cycle_stays_on_the_interpreter_path() -> None:
    edges = layered(0, 3000, 60)
    last = edges[-1]
    # The reverse of an edge closes a cycle of two executions.
    edges.append(
        Dependency(
            consumer=last.producer, producer=last.consumer, produced_after=0, consumed_after=0
        )
    )
    _graph, csr = csr_of(edges)
    assert csr.levels is None
    assert not csr.use_arrays()
