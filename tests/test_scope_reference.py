"""An executable transcription of the draft §7 rule, written for clarity, not speed.

Every step is the text of ``docs/draft-text/rollback-set.md`` taken literally:
chaotic iteration to the fixed point, reasons and depths from their definitions,
the bounded walk level by level, and waves from strongly connected components
found by mutual reachability. The property tests check the fast implementation
against it on random graphs, cycles included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
from agent_recovery._scope import Bounds, Escalation, Member, ScopeResult

PRECEDENCE = ("domain", "max-depth", "max-members")

UNBOUNDED = Bounds()


def action(facts: Facts | None) -> Action | None:
    if facts is None:
        return None
    if facts.reversibility is Reversibility.RESTORABLE:
        return Action.CANCEL_RESTORE if facts.status is Status.ACTIVE else Action.RESTORE
    if facts.reversibility is Reversibility.COMPENSABLE:
        return Action.COMPENSATE
    return Action.NONE


def targets(origin: ExecRef, k0: int, edges: set[Dependency]) -> dict[ExecRef, int]:
    target = {origin: k0}
    changed = True
    while changed:
        changed = False
        for e in edges:
            p, c = e.producer, e.consumer
            tainted = p in target and e.produced_after >= target[p]
            if tainted and (c not in target or e.consumed_after < target[c]):
                target[c] = e.consumed_after
                changed = True
    return target


def taint_edges(edges: set[Dependency], target: Mapping[ExecRef, int]) -> list[Dependency]:
    return [e for e in edges if e.producer in target and e.produced_after >= target[e.producer]]


def reference(
    *,
    origin: ExecRef,
    checkpoint: int,
    edges: Iterable[Dependency],
    facts: Mapping[ExecRef, Facts],
    bounds: Bounds = UNBOUNDED,
) -> ScopeResult:
    graph = {e for e in edges if e.consumer != e.producer}
    target = targets(origin, checkpoint, graph)
    taint = taint_edges(graph, target)
    succ: dict[ExecRef, set[ExecRef]] = {x: set() for x in target}
    for e in taint:
        succ[e.producer].add(e.consumer)

    # Reasons: the smallest setting edge, the origin at its own checkpoint excepted.
    reasons: dict[ExecRef, Reason] = {}
    for x, t in target.items():
        if x == origin and t == checkpoint:
            reasons[x] = Reason(kind=ReasonKind.ORIGIN)
            continue
        via = min(e for e in taint if e.consumer == x and e.consumed_after == t)
        kind = ReasonKind.DIRECT if via.producer == origin else ReasonKind.TRANSITIVE
        reasons[x] = Reason(kind=kind, via=via)

    # The bounded walk (with no bounds it enters every member).
    def excluded_by_domain(x: ExecRef) -> bool:
        f = facts.get(x)
        allowed = bounds.allowed_domains
        return allowed is not None and x != origin and f is not None and f.domain not in allowed

    depth = {origin: 0}
    excluded: dict[ExecRef, str] = {}
    level = [origin]
    d = 0
    while level:
        candidates = sorted(
            {c for p in level for c in succ[p] if c not in depth and c not in excluded}
        )
        d += 1
        level = []
        for c in candidates:
            if excluded_by_domain(c):
                excluded[c] = "domain"
            elif bounds.max_depth is not None and d > bounds.max_depth:
                excluded[c] = "max-depth"
            elif bounds.max_members is not None and len(depth) >= bounds.max_members:
                excluded[c] = "max-members"
            else:
                depth[c] = d
                level.append(c)
    entered = set(depth)

    # Waves: components by mutual reachability among entered members.
    def reach(x: ExecRef) -> set[ExecRef]:
        seen = {x}
        todo = [x]
        while todo:
            for c in succ[todo.pop()]:
                if c in entered and c not in seen:
                    seen.add(c)
                    todo.append(c)
        return seen

    reachable = {x: reach(x) for x in entered}
    component = {x: frozenset(y for y in reachable[x] if x in reachable[y]) for x in entered}
    wave: dict[frozenset[ExecRef], int] = {}

    def wave_of(comp: frozenset[ExecRef]) -> int:
        if comp not in wave:
            below = {
                component[c] for x in comp for c in succ[x] if c in entered and component[c] != comp
            }
            wave[comp] = max((wave_of(b) + 1 for b in below), default=0)
        return wave[comp]

    count = max(wave_of(component[x]) for x in entered) + 1
    waves = tuple(
        tuple(sorted(x for x in entered if wave_of(component[x]) == w)) for w in range(count)
    )
    members = tuple(
        Member(
            execution=x,
            target=target[x],
            action=action(facts.get(x)),
            reason=reasons[x],
            depth=depth[x],
        )
        for x in sorted(entered)
    )
    escalation = None
    if excluded:
        kinds = set(excluded.values())
        escalation = Escalation(
            reason=next(k for k in PRECEDENCE if k in kinds), frontier=tuple(sorted(excluded))
        )
    return ScopeResult(
        members=members,
        waves=waves,
        escalation=escalation,
        undetermined=tuple(sorted(x for x in entered if x not in facts)),
    )


def test_reference_on_a_hand_computed_cycle() -> None:
    # The reference itself, checked against a case worked out by hand: a1 taints b1
    # (restore to 5), b1 taints c1 (3), and c1's output taints b1 again, lowering it
    # to 1; c1 stays at 3. b1 and c1 form one wave, before a1.
    a1, b1, c1 = (ExecRef(agent=f"spiffe://example.org/{x}", exec=f"{x}1") for x in "abc")

    def dep(c: ExecRef, p: ExecRef, pa: int, ca: int) -> Dependency:
        return Dependency(consumer=c, producer=p, produced_after=pa, consumed_after=ca)

    edges = [dep(b1, a1, 0, 5), dep(c1, b1, 6, 3), dep(b1, c1, 3, 1), dep(c1, c1, 9, 0)]
    result = reference(origin=a1, checkpoint=0, edges=edges, facts={})
    assert [(m.execution, m.target, m.depth) for m in result.members] == [
        (a1, 0, 0),
        (b1, 1, 1),
        (c1, 3, 2),
    ]
    assert result.members[1].reason == Reason(kind=ReasonKind.TRANSITIVE, via=edges[2])
    assert result.waves == ((b1, c1), (a1,))
    assert result.undetermined == (a1, b1, c1)
    bounded = reference(
        origin=a1, checkpoint=0, edges=edges, facts={}, bounds=Bounds(max_members=2)
    )
    assert bounded.escalation == Escalation(reason="max-members", frontier=(c1,))
