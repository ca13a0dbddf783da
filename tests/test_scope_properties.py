"""Properties of the rollback set (draft §7), checked with Hypothesis on random graphs.

Graphs are small (up to 9 executions, 24 edges, checkpoints 0..4) so that
cycles, parallel edges, duplicates, self-edges, ties and unknown executions
are all frequent. The properties are the ones the rule promises:

- agreement: the implementation equals the literal transcription of the rule;
- closure: no execution outside the set consumed an output a member made after
  the member's target checkpoint, and no member consumed one after its own;
- minimality: every member has a taint path from the origin, and its target is
  the lowest checkpoint some taint edge forces (so nothing untainted is undone);
- determinism: any edge order, any duplication, and any order and batching of
  hop-by-hop discovery give the same result;
- bounds: a bounded result without escalation equals the unbounded one, and an
  escalated one is a part of it, never a different or silently smaller set;
- waves: every member in exactly one wave, dependents strictly earlier, the
  members of one cycle together.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from hypothesis import given
from hypothesis import strategies as st
from test_scope_reference import reference, targets

from agent_recovery._model import Dependency, ExecRef, Facts, Reversibility, Status
from agent_recovery._scope import (
    Bounds,
    DependencyGraph,
    ScopeBuilder,
    ScopeResult,
    compute_rollback_set,
)
from agent_recovery._scope_json import (
    ScopeCase,
    case_from_json,
    case_to_json,
    result_from_json,
    result_to_json,
)

REFS = [ExecRef(agent=f"spiffe://example.org/{'abc'[i % 3]}", exec=f"x{i}") for i in range(9)]
DOMAINS = ("example.org", "partner.example", None)

refs = st.sampled_from(REFS)
checkpoints = st.integers(min_value=0, max_value=4)
edges_st = st.lists(
    st.builds(
        Dependency,
        consumer=refs,
        producer=refs,
        produced_after=checkpoints,
        consumed_after=checkpoints,
    ),
    max_size=24,
)
facts_st = st.dictionaries(
    refs,
    st.builds(
        Facts,
        status=st.sampled_from(Status),
        reversibility=st.sampled_from(Reversibility),
        checkpoint=checkpoints,
        domain=st.sampled_from(DOMAINS),
    ),
)
bounds_st = st.builds(
    Bounds,
    max_members=st.none() | st.integers(min_value=1, max_value=6),
    max_depth=st.none() | st.integers(min_value=0, max_value=3),
    allowed_domains=st.none()
    | st.frozensets(st.sampled_from(("example.org", "partner.example")), max_size=2),
)

UNBOUNDED = Bounds()


def compute(
    origin: ExecRef,
    checkpoint: int,
    edges: Iterable[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds = UNBOUNDED,
) -> ScopeResult:
    return compute_rollback_set(
        origin=origin, checkpoint=checkpoint, edges=edges, facts=facts, bounds=bounds
    )


@given(refs, checkpoints, edges_st, facts_st, bounds_st)
def test_agrees_with_the_literal_rule(
    origin: ExecRef,
    k0: int,
    edges: list[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds,
) -> None:
    expected = reference(origin=origin, checkpoint=k0, edges=edges, facts=facts, bounds=bounds)
    assert compute(origin, k0, edges, facts, bounds) == expected
    graph = DependencyGraph(edges)
    assert graph.rollback_set(origin=origin, checkpoint=k0, facts=facts, bounds=bounds) == expected


@given(refs, checkpoints, edges_st)
def test_closure(origin: ExecRef, k0: int, edges: list[Dependency]) -> None:
    result = compute(origin, k0, edges, {})
    target = {m.execution: m.target for m in result.members}
    assert target[origin] <= k0
    for e in edges:
        if e.consumer == e.producer or e.producer not in target:
            continue
        if e.produced_after >= target[e.producer]:
            # The output is undone, so its consumer is a member, restored at least
            # to before it consumed it.
            assert e.consumer in target
            assert target[e.consumer] <= e.consumed_after


@given(refs, checkpoints, edges_st)
def test_minimality(origin: ExecRef, k0: int, edges: list[Dependency]) -> None:
    result = compute(origin, k0, edges, {})
    target = {m.execution: m.target for m in result.members}
    taint = [
        e
        for e in edges
        if e.consumer != e.producer
        and e.producer in target
        and e.produced_after >= target[e.producer]
    ]
    # Every member is reachable from the origin along taint edges...
    seen = {origin}
    todo = [origin]
    while todo:
        p = todo.pop()
        for e in taint:
            if e.producer == p and e.consumer not in seen:
                seen.add(e.consumer)
                todo.append(e.consumer)
    assert seen == set(target)
    # ...and restored no further back than some taint edge forces.
    for m in result.members:
        forced = [e.consumed_after for e in taint if e.consumer == m.execution]
        if m.execution == origin:
            forced.append(k0)
        assert m.target == min(forced)
        assert m.depth <= len(target) - 1


@given(refs, checkpoints, edges_st, facts_st, bounds_st, st.randoms(use_true_random=False))
def test_independent_of_edge_order_and_duplicates(
    origin: ExecRef,
    k0: int,
    edges: list[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds,
    rnd: random.Random,
) -> None:
    shuffled = edges + edges[: len(edges) // 2]
    rnd.shuffle(shuffled)
    assert compute(origin, k0, shuffled, facts, bounds) == compute(origin, k0, edges, facts, bounds)


@given(
    refs,
    checkpoints,
    edges_st,
    facts_st,
    bounds_st,
    st.lists(st.integers(min_value=0, max_value=30)),
    st.randoms(use_true_random=False),
)
def test_hop_by_hop_equals_batch(
    origin: ExecRef,
    k0: int,
    edges: list[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds,
    cuts: list[int],
    rnd: random.Random,
) -> None:
    order = edges + edges[:3]  # retransmitted replies repeat edges
    rnd.shuffle(order)
    fact_items = list(facts.items())
    builder = ScopeBuilder(origin=origin, checkpoint=k0, bounds=bounds)
    entered = {origin}
    batches = [
        order[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(order)], strict=True)
    ]
    for i, batch in enumerate(batches):
        if i < len(fact_items):
            builder.set_facts(*fact_items[i])
        before = {m.execution for m in builder.result().members}
        new = builder.add_edges(batch)
        assert list(new) == sorted(new)
        assert not before & set(new)  # only executions that were not entered
        entered |= set(new)
        now = builder.result()
        members_now = {m.execution for m in now.members}
        assert set(new) <= members_now
        if now.escalation is None:
            # Members leave the set only together with an escalation.
            assert members_now == before | set(new)
    for item in fact_items[len(batches) :]:
        builder.set_facts(*item)
    assert builder.add_edges(edges) == ()  # nothing new: every edge was seen
    result = builder.result()
    assert result == compute(origin, k0, edges, facts, bounds)
    members = {m.execution for m in result.members}
    if bounds.unbounded:
        # Without bounds every member was announced exactly once, as it entered.
        assert entered == members


@given(refs, checkpoints, edges_st, facts_st, bounds_st)
def test_bounded_is_never_silently_smaller(
    origin: ExecRef,
    k0: int,
    edges: list[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds,
) -> None:
    full = compute(origin, k0, edges, facts)
    bounded = compute(origin, k0, edges, facts, bounds)
    if bounded.escalation is None:
        assert bounded == full
        return
    everything = {m.execution: m for m in full.members}
    inside = {m.execution for m in bounded.members}
    frontier = set(bounded.escalation.frontier)
    assert frontier
    assert origin in inside
    assert not inside & frontier
    assert frontier <= set(everything)
    for m in bounded.members:
        # Entered members keep their true target, action and reason.
        full_m = everything[m.execution]
        assert (m.target, m.action, m.reason) == (full_m.target, full_m.action, full_m.reason)
        assert m.depth >= full_m.depth
    if bounds.max_members is not None:
        assert len(bounded.members) <= bounds.max_members
    if bounds.max_depth is not None:
        assert all(m.depth <= bounds.max_depth for m in bounded.members)


@given(refs, checkpoints, edges_st, facts_st, bounds_st)
def test_waves(
    origin: ExecRef,
    k0: int,
    edges: list[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds,
) -> None:
    result = compute(origin, k0, edges, facts, bounds)
    wave = {ref: w for w, refs_ in enumerate(result.waves) for ref in refs_}
    assert sorted(wave) == [m.execution for m in result.members]
    assert sum(len(w) for w in result.waves) == len(result.members)
    assert all(list(w) == sorted(w) and w for w in result.waves)
    full_target = targets(origin, k0, {e for e in edges if e.consumer != e.producer})
    dependents: dict[ExecRef, set[ExecRef]] = {x: set() for x in wave}
    for e in edges:
        p, c = e.producer, e.consumer
        if p != c and p in wave and c in wave and e.produced_after >= full_target[p]:
            dependents[p].add(c)

    def reaches(a: ExecRef, b: ExecRef) -> bool:
        seen, todo = {a}, [a]
        while todo:
            for c in dependents[todo.pop()]:
                if c == b:
                    return True
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
        return False

    for p, cs in dependents.items():
        for c in cs:
            if reaches(c, p):  # one cycle: one wave
                assert wave[p] == wave[c]
            else:
                assert wave[p] > wave[c]
        # Exactly one more than the highest dependent outside its own cycle.
        cycle = {p} | {x for x in wave if reaches(p, x) and reaches(x, p)}
        below = [wave[c] + 1 for x in cycle for c in dependents[x] if c not in cycle]
        assert wave[p] == max(below, default=0)


@given(refs, checkpoints, edges_st, facts_st, bounds_st)
def test_json_round_trip(
    origin: ExecRef,
    k0: int,
    edges: list[Dependency],
    facts: dict[ExecRef, Facts],
    bounds: Bounds,
) -> None:
    result = compute(origin, k0, edges, facts, bounds)
    assert result_from_json(result_to_json(result)) == result
    case = ScopeCase(
        origin=origin,
        checkpoint=k0,
        edges=tuple(edges),
        facts=facts,
        bounds=bounds,
        description="round trip",
        expected=result,
    )
    assert case_from_json(case_to_json(case)) == case


@given(
    refs,
    checkpoints,
    bounds_st,
    st.lists(
        st.one_of(
            edges_st.map(lambda batch: ("edges", batch)),
            st.tuples(st.just("facts"), facts_st),
        ),
        max_size=8,
    ),
)
def test_every_kept_result_equals_batch(
    origin: ExecRef,
    k0: int,
    bounds: Bounds,
    steps: list[tuple[str, object]],
) -> None:
    """After every step, the kept result equals the batch one on what was seen so far,
    and an unmoved version means the very same result."""
    builder = ScopeBuilder(origin=origin, checkpoint=k0, bounds=bounds)
    seen: list[Dependency] = []
    known: dict[ExecRef, Facts] = {}
    last = builder.result()
    version = builder.version
    for kind, value in steps:
        if kind == "edges":
            assert isinstance(value, list)
            builder.add_edges(value)
            seen += value
        else:
            assert isinstance(value, dict)
            for ref, f in value.items():
                builder.set_facts(ref, f)
                known[ref] = f
        now = builder.result()
        assert now == compute(origin, k0, seen, known, bounds)
        assert builder.version >= version
        if builder.version == version:
            assert now is last
        last, version = now, builder.version
