"""The passes of the rollback-set computation over a graph snapshot (draft §7).

Nothing here is public. Each function implements parts of the normative
algorithm in ``docs/draft-text/rollback-set.md`` (the docstrings name them) on
a :class:`~agent_recovery._scope_graph.Csr`. No function recurses: a chain of a
million executions is an ordinary input. Per-node results are lists or
``array``s indexed by CSR node; ``INF`` marks "not a member".
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from itertools import compress
from typing import TypeAlias

from ._model import ExecRef
from ._scope_graph import IDX, INF, Csr

__all__ = ["Scope", "by_wave", "execution_order", "scope", "walk", "waves"]

# (members, inset, target, depth, reason, wave): the members in discovery
# order and as a byte per node (1: member); per node its target checkpoint, its
# depth, the slot of its reason edge (-1: the origin at its own checkpoint;
# ``Csr.prod`` of the slot is the edge's producer), and its wave (computed only
# when asked for: a bounded query computes waves over fewer nodes).
Scope: TypeAlias = tuple[
    Sequence[int], bytearray, Sequence[int], Sequence[int], Sequence[int], Sequence[int] | None
]


def scope(
    csr: Csr, origin: int, checkpoint: int, *, with_waves: bool, arrays: bool | None = None
) -> Scope:
    """Targets, depths, reasons (and waves) of every member (draft §7.2-7.4, §7.7).

    A large acyclic graph takes the whole-array path of ``_scope_arrays``
    (``arrays`` forces the choice, for tests: True needs an acyclic graph).
    Fast path first: when every taint edge the query meets goes forward in the
    CSR numbering, visiting members in increasing number is a topological
    order, so one pass gives every target, depth and reason (a node's target is
    final once all its producers were visited) and a reverse pass over the
    taint edges it met gives the waves. Otherwise (a cycle, or a part of the
    graph the numbering could not order) the general path: a worklist fixed
    point, a breadth-first walk for depths and reasons, and Kahn plus Tarjan
    for the waves.
    """
    if csr.use_arrays() if arrays is None else arrays:
        # A large acyclic graph: the same pass in whole-array steps.
        from ._scope_arrays import sweep  # loads numpy

        return sweep(csr.arrays(), origin, checkpoint, with_waves=with_waves)
    fast = _sweep(csr, origin, checkpoint, with_waves)
    if fast is not None:
        return fast
    target, members = _fixed_point(csr, origin, checkpoint)
    depth, reason = _depths(csr, target, origin)
    inset = bytearray(csr.n)
    for x in members:
        inset[x] = 1
    wave = waves(csr, target, members, inset) if with_waves else None
    return members, inset, target, depth, reason, wave


def _sweep(csr: Csr, origin: int, checkpoint: int, with_waves: bool) -> Scope | None:
    # The hot loop of the whole computation: everything is bound to locals, the
    # per-node results are lists (CPython indexes and stores list items on a
    # fast path, array items through a generic call; a checkpoint or depth is
    # almost always a cached small int), and nothing is allocated per edge but
    # the two taint-edge records the wave pass replays.
    n = csr.n
    start = csr.start
    cons = csr.cons
    prod = csr.prod
    pa = csr.pa
    ca = csr.ca
    rank = csr.rank
    ordered = csr.ordered
    inf = INF
    target = [inf] * n
    depth = [n] * n
    reason = array(IDX, [-1]) * n
    target[origin] = checkpoint
    depth[origin] = 0
    tainted = bytearray(n)  # 1: member
    tainted[origin] = 1
    find = tainted.find
    # The taint edges met, producer and consumer, in visiting order.
    t_prod: list[int] = []
    t_cons: list[int] = []
    record_prod = t_prod.append
    record_cons = t_cons.append
    p = origin
    while p >= 0:
        t = target[p]
        d = depth[p] + 1
        if p >= ordered:
            # Kahn could not order p (a cycle is upstream): a taint edge to a
            # lower number may lead to a node already visited.
            for k in range(start[p], start[p + 1]):
                if pa[k] >= t and cons[k] < p:
                    return None
        for k in range(start[p], start[p + 1]):
            if pa[k] >= t:  # the output is undone by restoring p to t: taint
                c = cons[k]
                record_prod(p)
                record_cons(c)
                x = ca[k]
                y = target[c]
                if y == inf:  # c's first taint edge: it sets everything
                    tainted[c] = 1
                    target[c] = x
                    reason[c] = k
                    depth[c] = d
                    continue
                if x < y:
                    target[c] = x
                    reason[c] = k
                elif x == y:
                    # Two setting edges share consumer and consumed_after, so the
                    # draft's edge order reduces to (producer, produced_after).
                    q = prod[reason[c]]
                    if rank[p] < rank[q] or (p == q and pa[k] < pa[reason[c]]):
                        reason[c] = k
                if d < depth[c]:  # noqa: PLR1730 - min() is a call, this is a hot loop
                    depth[c] = d
        p = find(1, p + 1)  # the next member in numbering order, found in C
    # Members were visited in increasing number: that is their discovery order.
    members = array(IDX, compress(range(n), tainted))
    wave = None
    if with_waves:
        # Replayed backwards, every taint edge out of p comes after those out of
        # p's consumers (visited later): their waves are final when read.
        wave = [0] * n
        for p, c in zip(reversed(t_prod), reversed(t_cons), strict=True):
            x = wave[c] + 1
            if x > wave[p]:  # noqa: PLR1730 - max() is a call, this is a hot loop
                wave[p] = x
    return members, tainted, target, depth, reason, wave


def _fixed_point(csr: Csr, origin: int, checkpoint: int) -> tuple[array[int], array[int]]:
    """Worklist fixed point for any graph, cycles included (draft §7.2).

    ``scanned[p]`` is the target ``p`` had when its out-edges were last read;
    targets only decrease, so a rescan after ``p`` fell from ``s`` to ``t``
    needs only the edges with ``t <= pa < s``. The fixed point is unique, so
    the worklist order does not change the result.
    """
    n = csr.n
    start = csr.start
    cons = csr.cons
    pa = csr.pa
    ca = csr.ca
    target = array("q", [INF]) * n
    scanned = array("q", [INF]) * n
    target[origin] = checkpoint
    members = array(IDX, [origin])
    enter = members.append
    queue = deque([origin])
    pop = queue.popleft
    push = queue.append
    while queue:
        p = pop()
        t = target[p]
        s = scanned[p]
        if t == s:
            continue  # a duplicate queue entry: nothing new to scan
        scanned[p] = t
        for k in range(start[p], start[p + 1]):
            if t <= pa[k] < s:
                c = cons[k]
                x = ca[k]
                y = target[c]
                if x < y:
                    if y == INF:
                        enter(c)
                    target[c] = x
                    push(c)
    return target, members


def _depths(csr: Csr, target: Sequence[int], origin: int) -> tuple[array[int], array[int]]:
    """Breadth-first walk of the taint graph (draft §7.3, §7.4), cycles allowed.

    Returns each member's depth (shortest taint path; -1 for non-members) and
    the slot of its reason edge (the smallest setting edge; -1 for the origin at
    its own checkpoint).
    """
    n = csr.n
    start = csr.start
    cons = csr.cons
    prod = csr.prod
    pa = csr.pa
    ca = csr.ca
    depth = array(IDX, [-1]) * n
    reason = array(IDX, [-1]) * n
    rank = csr.rank
    depth[origin] = 0
    order = [origin]
    push = order.append
    for p in order:
        t = target[p]
        d = depth[p] + 1
        for k in range(start[p], start[p + 1]):
            if pa[k] >= t:
                c = cons[k]
                if depth[c] < 0:
                    depth[c] = d
                    push(c)
                if ca[k] == target[c]:
                    r = reason[c]
                    if r < 0:
                        reason[c] = k
                    else:
                        q = prod[r]
                        if rank[p] < rank[q] or (p == q and pa[k] < pa[r]):
                            reason[c] = k
    return depth, reason


def walk(
    csr: Csr,
    target: Sequence[int],
    origin: int,
    *,
    max_members: int | None,
    max_depth: int | None,
    excluded_domain: bytearray,
) -> tuple[list[int], dict[int, int], dict[int, str]]:
    """The bounded walk (draft §7.6).

    Level by level from the origin along taint edges; inside a level, the
    candidates in execution order. Returns ``(entered, depth, excluded)``: the
    entered members in walk order, their walk depth, and each candidate that was
    not entered with the bound that stopped it (``"domain"``, ``"max-depth"``
    or ``"max-members"``). A candidate once excluded stays excluded: its domain
    does not change, later levels are deeper, and the member count only grows.
    """
    start = csr.start
    cons = csr.cons
    pa = csr.pa
    rank = csr.rank
    depth = {origin: 0}
    excluded: dict[int, str] = {}
    entered = [origin]
    level = [origin]
    d = 0
    while level:
        candidates: set[int] = set()
        for p in level:
            t = target[p]
            for k in range(start[p], start[p + 1]):
                if pa[k] >= t:
                    c = cons[k]
                    if c not in depth and c not in excluded:
                        candidates.add(c)
        d += 1
        level = []
        for c in sorted(candidates, key=rank.__getitem__):
            if excluded_domain[c]:
                excluded[c] = "domain"
            elif max_depth is not None and d > max_depth:
                excluded[c] = "max-depth"
            elif max_members is not None and len(entered) >= max_members:
                excluded[c] = "max-members"
            else:
                depth[c] = d
                entered.append(c)
                level.append(c)
    return entered, depth, excluded


def waves(csr: Csr, target: Sequence[int], nodes: Sequence[int], inset: bytearray) -> array[int]:
    """Wave numbers over the taint edges among ``nodes`` (draft §7.7).

    A member's wave is 0 if it has no dependent in the set, else one more than
    its highest dependent; the members of one strongly connected component share
    a wave. Kahn's algorithm orders the acyclic part; Tarjan's algorithm (an
    iterative form) runs only on what Kahn could not order, i.e. cycles and
    everything downstream of them.
    """
    n = csr.n
    start = csr.start
    cons = csr.cons
    pa = csr.pa
    indeg = [0] * n
    for p in nodes:
        t = target[p]
        for k in range(start[p], start[p + 1]):
            if pa[k] >= t:
                c = cons[k]
                if inset[c]:
                    indeg[c] += 1
    order = [p for p in nodes if indeg[p] == 0]
    push = order.append
    for p in order:
        t = target[p]
        for k in range(start[p], start[p + 1]):
            if pa[k] >= t:
                c = cons[k]
                if inset[c]:
                    indeg[c] -= 1
                    if indeg[c] == 0:
                        push(c)
    wave = array(IDX, bytes(4 * n))
    if len(order) < len(nodes):
        # What Kahn left is on a cycle or downstream of one; every dependent of
        # such a node was left too, so Tarjan can run on that part alone.
        rest = bytearray(n)
        for p in nodes:
            if indeg[p] > 0:
                rest[p] = 1
        _tarjan_waves(csr, target, [p for p in nodes if rest[p]], rest, wave)
    for p in reversed(order):
        t = target[p]
        w = 0
        for k in range(start[p], start[p + 1]):
            if pa[k] >= t:
                c = cons[k]
                if inset[c]:
                    x = wave[c] + 1
                    if x > w:  # noqa: PLR1730 - max() is a call, this is a hot loop
                        w = x
        wave[p] = w
    return wave


def _tarjan_waves(
    csr: Csr, target: Sequence[int], nodes: list[int], inset: bytearray, wave: array[int]
) -> None:
    """Tarjan's SCC algorithm without recursion; assigns ``wave`` per component.

    Tarjan emits a component only after every component reachable from it, i.e.
    after all its dependents, which is exactly the order waves need.
    """
    n = csr.n
    start = csr.start
    cons = csr.cons
    pa = csr.pa
    idx = [-1] * n
    low = [0] * n
    comp = [-1] * n
    onstack = bytearray(n)
    stack: list[int] = []
    counter = 0
    ncomp = 0
    for root in nodes:
        if idx[root] >= 0:
            continue
        idx[root] = low[root] = counter
        counter += 1
        stack.append(root)
        onstack[root] = 1
        call: list[tuple[int, int]] = [(root, start[root])]
        while call:
            v, k = call[-1]
            end = start[v + 1]
            t = target[v]
            descended = False
            while k < end:
                kk = k
                k += 1
                if pa[kk] < t:
                    continue
                w = cons[kk]
                if not inset[w]:
                    continue
                if idx[w] < 0:
                    call[-1] = (v, k)
                    idx[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    onstack[w] = 1
                    call.append((w, start[w]))
                    descended = True
                    break
                if onstack[w] and idx[w] < low[v]:
                    low[v] = idx[w]
            if descended:
                continue
            call.pop()
            if call:
                u = call[-1][0]
                if low[v] < low[u]:  # noqa: PLR1730 - min() is a call, this is a hot loop
                    low[u] = low[v]
            if low[v] != idx[v]:
                continue
            component: list[int] = []
            while True:
                x = stack.pop()
                onstack[x] = 0
                comp[x] = ncomp
                component.append(x)
                if x == v:
                    break
            wv = 0
            for x in component:
                tx = target[x]
                for kk in range(start[x], start[x + 1]):
                    if pa[kk] >= tx:
                        c = cons[kk]
                        if inset[c] and comp[c] != ncomp:
                            y = wave[c] + 1
                            if y > wv:  # noqa: PLR1730 - max() is a call, this is a hot loop
                                wv = y
            for x in component:
                wave[x] = wv
            ncomp += 1


def execution_order(csr: Csr, nodes: Sequence[int], inset: bytearray) -> list[int]:
    """``nodes`` (flagged in ``inset``) in execution order (draft §7), without comparing strings."""
    byrank = csr.byrank
    if 8 * len(nodes) >= csr.n:
        # Most nodes are in: filtering the execution order (in C) beats sorting.
        return list(compress(byrank, map(inset.__getitem__, byrank)))
    return sorted(nodes, key=csr.rank.__getitem__)


def by_wave(csr: Csr, nodes: Sequence[int], wave: Sequence[int], last: int) -> list[list[ExecRef]]:
    """The executions of ``nodes`` grouped by wave ``0..last``, each in execution order (§7.7).

    Most of a large graph in the set: each node's wave is scattered to its
    rank and the executions are taken from ``csr.ranked`` in rank order, so
    that no step reads a large table at random once per member (a gather by
    rank costs a cache miss per member once the graph outgrows the cache), and
    the execution objects, laid out in rank order by the build, are touched in
    address order.
    """
    ranked = csr.ranked
    rank = csr.rank
    if 8 * len(nodes) >= csr.n and csr.use_arrays():
        from ._scope_arrays import by_wave as arrays_by_wave  # loads numpy

        return arrays_by_wave(csr.arrays(), ranked, nodes, wave, last)
    groups: list[list[ExecRef]] = [[] for _ in range(last + 1)]
    if 8 * len(nodes) < csr.n:
        for x in sorted(nodes, key=rank.__getitem__):
            groups[wave[x]].append(ranked[rank[x]])
        return groups
    at = array(IDX, [-1]) * csr.n
    for x in nodes:
        at[rank[x]] = wave[x]
    put = [g.append for g in groups]
    for r, w in enumerate(at):
        if w >= 0:
            put[w](ranked[r])
    return groups
