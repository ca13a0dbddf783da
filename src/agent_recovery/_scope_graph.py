"""The dependency graph as the rollback-set computation sees it (draft §5.4, §7).

Nothing here is public. Executions are interned to dense integers; edges are
kept in insertion order (:class:`Graph`) and laid out for queries as a
compressed sparse row snapshot (:class:`Csr`): each producer's out-edges are
one contiguous run of ``array`` slots, so the passes of ``_scope_passes`` loop
over machine integers, with no per-edge objects and no hashing. The
incremental fixed point used for hop-by-hop discovery (:class:`Closure`) lives
here too, since it works on the graph as it grows.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable
from itertools import repeat
from typing import TYPE_CHECKING

from ._errors import ErrorCode, LocalProtocolError
from ._model import MAX_CHECKPOINT, Dependency, ExecRef

if TYPE_CHECKING:
    from ._scope_arrays import Arrays

__all__ = ["IDX", "INF", "Closure", "Csr", "Graph"]

# A target above every checkpoint: "not a member (yet)".
INF = MAX_CHECKPOINT + 1
# Array type of node and slot numbers: 32 bits halve the memory the passes
# touch at random, which is what their time depends on for large graphs. A
# graph of 2^31 executions or edges would need hundreds of gigabytes here first.
IDX = "i"
_IDX_LIMIT = 2**31


_new = object.__new__
_set_agent = vars(ExecRef)["agent"].__set__
_set_exec = vars(ExecRef)["exec"].__set__


def _copy(ref: ExecRef) -> ExecRef:
    """An equal ExecRef without re-checking the identifiers ``ref`` passed."""
    copy = _new(ExecRef)
    _set_agent(copy, ref.agent)
    _set_exec(copy, ref.exec)
    return copy


class Graph:
    """Executions interned to ``0..n-1`` and dependency edges in insertion order.

    Edge ``j`` says ``cons[j]`` consumed, after its checkpoint ``ca[j]``, an
    output that ``prod[j]`` made after its checkpoint ``pa[j]``; ``deps[j]`` is
    the caller's :class:`Dependency`, reported verbatim as a member's reason.
    Self-edges are not stored (draft §7.2: restoring an execution undoes its own
    consumption). With ``incremental``, duplicate edges are dropped (so that
    retransmitted replies do not grow memory) and ``out[p]`` lists the edges of
    each producer for :class:`Closure`.
    """

    __slots__ = (
        "_csr",
        "_seen",
        "ca",
        "cons",
        "deps",
        "index",
        "keys",
        "out",
        "pa",
        "prod",
        "refs",
    )

    def __init__(self, *, incremental: bool) -> None:
        self.refs: list[ExecRef] = []
        # Sort key of each execution: agent NUL exec. Identifiers have no octet
        # below 0x21, so comparing these strings is exactly the (agent, exec)
        # order of ExecRef, at the cost of one string comparison.
        self.keys: list[str] = []
        self.index: dict[tuple[str, str], int] = {}
        self.prod = array("q")
        self.cons = array("q")
        self.pa = array("q")
        self.ca = array("q")
        self.deps: list[Dependency] = []
        self.out: list[list[int]] | None = [] if incremental else None
        self._seen: set[tuple[int, int, int, int]] | None = set() if incremental else None
        self._csr: Csr | None = None

    def __len__(self) -> int:
        return len(self.refs)

    def node(self, ref: ExecRef) -> int:
        key = (ref.agent, ref.exec)
        i = self.index.get(key)
        if i is None:
            i = len(self.refs)
            self.index[key] = i
            self.refs.append(ref)
            self.keys.append(f"{ref.agent}\x00{ref.exec}")
            if self.out is not None:
                self.out.append([])
            self._csr = None
        return i

    def add_edges(self, edges: Iterable[Dependency]) -> range:
        """Add ``edges``; return the ids of the edges actually stored (contiguous).

        The whole batch is checked before anything changes (fail closed).
        """
        batch = list(edges)
        for e in batch:
            if type(e) is not Dependency:
                raise LocalProtocolError(ErrorCode.MALFORMED, "edges: not a Dependency")
        index = self.index
        node = self.node
        out = self.out
        seen = self._seen
        prod = self.prod
        cons = self.cons
        pa = self.pa
        ca = self.ca
        deps = self.deps
        first = j = len(deps)
        for e in batch:
            c_ref = e.consumer
            p_ref = e.producer
            c = index.get((c_ref.agent, c_ref.exec))
            if c is None:
                c = node(c_ref)
            p = index.get((p_ref.agent, p_ref.exec))
            if p is None:
                p = node(p_ref)
            if p == c:
                continue  # self-edge: ignored, draft §7.2
            a = e.produced_after
            b = e.consumed_after
            if seen is not None:
                k = (p, c, a, b)
                if k in seen:
                    continue
                seen.add(k)
            prod.append(p)
            cons.append(c)
            pa.append(a)
            ca.append(b)
            deps.append(e)
            if out is not None:
                out[p].append(j)
            j += 1
        if j > first:
            self._csr = None
        return range(first, j)

    def csr(self) -> Csr:
        """The CSR snapshot of the current edges (built once, until edges change)."""
        if self._csr is None:
            self._csr = Csr(self)
        return self._csr


class Csr:
    """An immutable snapshot of a :class:`Graph` laid out for queries.

    Nodes are renumbered in a topological order of the whole graph where there
    is one (Kahn's algorithm; nodes on or after a cycle follow in insertion
    order): then almost every query can visit its members in increasing number
    with no per-query ordering pass, and the nodes a query touches together sit
    together in memory. CSR node ``x`` is ``refs[x]`` and graph node
    ``order[x]``; ``node[i]`` is the CSR number of graph node ``i``. ``rank[x]``
    is the position of ``x`` in execution order (the draft's (agent, exec)
    order) and ``byrank`` lists the nodes in that order, so results come out
    sorted without comparing strings; ``ranked[r]`` is the execution of rank
    ``r``. Edges are grouped by producer: the
    out-edges of ``p`` are slots ``start[p]..start[p+1]``, slot ``k`` holding
    the consumer ``cons[k]``, its producer ``prod[k]``, the checkpoints
    ``pa[k]`` and ``ca[k]``, and the edge id ``eid[k]`` of the caller's
    Dependency. The first ``ordered`` nodes are the ones Kahn's algorithm
    ordered: every out-edge of such a node goes to a higher number. When that is
    all of them (the graph is acyclic), ``levels`` lists where each level
    starts in the numbering, then ``n``: level 0 consumed nothing, every other
    node is one above its highest producer, so no edge joins two nodes of one
    level (``_scope_arrays`` sweeps a level at a time). Built in
    O(n log n + m): one sort of the execution keys, counting sorts and one Kahn
    pass.
    """

    __slots__ = (
        "_arrays",
        "byrank",
        "ca",
        "cons",
        "deps",
        "eid",
        "levels",
        "n",
        "node",
        "order",
        "ordered",
        "pa",
        "prod",
        "rank",
        "ranked",
        "refs",
        "start",
    )

    def __init__(self, graph: Graph) -> None:
        n = len(graph)
        m = len(graph.deps)
        if max(n, m) >= _IDX_LIMIT:
            raise LocalProtocolError(ErrorCode.TOO_LARGE, "dependency graph: 2^31 or more")
        g_prod = graph.prod
        g_cons = graph.cons
        # Edge ids grouped by producer, in graph numbering (a counting sort).
        count = [0] * (n + 1)
        indeg = [0] * n
        for p in g_prod:
            count[p + 1] += 1
        for c in g_cons:
            indeg[c] += 1
        for i in range(n):
            count[i + 1] += count[i]
        first = count[:]
        fill = count
        grouped = [0] * m
        for j in range(m):
            p = g_prod[j]
            k = fill[p]
            fill[p] = k + 1
            grouped[k] = j
        # Kahn's algorithm over the whole graph gives the numbering. With a
        # first-in first-out queue it also gives levels: an execution enters
        # the queue when its last producer leaves it, one level above that
        # producer, and the queue is in level order (by induction: it starts
        # with the level-0 executions and every entry is one above an
        # execution that left it in level order), so the last producer is a
        # highest one and no edge joins two executions of one level.
        order = [i for i in range(n) if not indeg[i]]
        level = [0] * n
        push = order.append
        for p in order:
            above = level[p] + 1
            for k in range(first[p], first[p + 1]):
                c = g_cons[grouped[k]]
                r = indeg[c] - 1
                indeg[c] = r
                if not r:
                    level[c] = above
                    push(c)
        ordered = len(order)
        levels: list[int] | None = None
        if ordered == n:
            # Where each level starts in the numbering, and n.
            levels = [0]
            levels.extend(x for x in range(1, n) if level[order[x]] != level[order[x - 1]])
            if n:
                levels.append(n)
        del level
        if ordered < n:
            order.extend(i for i in range(n) if indeg[i])
        node = array(IDX, bytes(4 * n))
        for x, i in enumerate(order):
            node[i] = x
        g_pa = graph.pa
        g_ca = graph.ca
        start = array(IDX, bytes(4 * (n + 1)))
        cons = array(IDX)
        prod = array(IDX)
        pa = array("q")
        ca = array("q")
        eid = array(IDX)
        k = 0
        for x, i in enumerate(order):
            for j in grouped[first[i] : first[i + 1]]:
                cons.append(node[g_cons[j]])
                pa.append(g_pa[j])
                ca.append(g_ca[j])
                eid.append(j)
            d = first[i + 1] - first[i]
            if d:
                prod.extend(repeat(x, d))
                k += d
            start[x + 1] = k
        g_refs = graph.refs
        g_keys = graph.keys
        keys = [g_keys[i] for i in order]
        byrank = array(IDX, sorted(range(n), key=keys.__getitem__))
        rank = [0] * n
        for r, x in enumerate(byrank):
            rank[x] = r
        self.n = n
        self.refs = [g_refs[i] for i in order]
        # Copies allocated in execution order: a result lists its executions
        # wave by wave, each wave in execution order, and ``by_wave`` takes
        # them in that order, so it touches them in address order rather than
        # wherever the caller happened to allocate them.
        self.ranked = [_copy(g_refs[order[x]]) for x in byrank]
        self.order = array(IDX, order)  # graph node of each CSR node
        self.node = node
        self.rank = rank
        self.byrank = byrank
        self.deps = graph.deps
        self.ordered = ordered
        self.start = start
        self.cons = cons
        self.prod = prod
        self.pa = pa
        self.ca = ca
        self.eid = eid
        self.levels = levels
        self._arrays: Arrays | None = None
        if self.use_arrays():
            self.arrays()  # part of the build, not of the first query

    def use_arrays(self) -> bool:
        """Whether queries take the whole-array path (``_scope_arrays.eligible``)."""
        from ._scope_arrays import eligible  # it imports this module

        return eligible(self)

    def arrays(self) -> Arrays:
        """numpy views for the whole-array sweep (``_scope_arrays``); acyclic graphs only."""
        if self._arrays is None:
            from ._scope_arrays import Arrays  # it imports this module

            self._arrays = Arrays(self)
        return self._arrays


class Closure:
    """The fixed point maintained as edges arrive (draft §7.2, §7.10).

    Same rule as the batch fixed point, over the ``out`` lists of an incremental
    :class:`Graph`. ``scanned[p]`` is the target ``p`` had when its out-edges
    were last read, so each edge is relaxed at most once over the whole life of
    the closure, whatever order edges arrive in.
    """

    __slots__ = ("graph", "members", "origin", "queue", "scanned", "target")

    def __init__(self, graph: Graph, origin: int, checkpoint: int) -> None:
        self.graph = graph
        self.origin = origin
        n = len(graph)
        self.target: list[int] = [INF] * n
        self.scanned: list[int] = [INF] * n
        self.members: list[int] = [origin]  # in order of entry
        self.target[origin] = checkpoint
        self.queue: deque[int] = deque([origin])

    def add(self, edge_ids: range) -> None:
        """Account for edges stored after the last call; then propagate."""
        g = self.graph
        missing = len(g) - len(self.target)
        if missing > 0:
            self.target.extend([INF] * missing)
            self.scanned.extend([INF] * missing)
        pa = g.pa
        prod = g.prod
        scanned = self.scanned
        for j in edge_ids:
            # An edge at or above its producer's last scan point lies outside
            # every later rescan window [t, s): relax it now (pa >= s >= target).
            s = scanned[prod[j]]
            if s != INF and pa[j] >= s:
                self._relax(g.cons[j], g.ca[j])
        self._run()

    def _relax(self, c: int, x: int) -> None:
        y = self.target[c]
        if x < y:
            if y == INF:
                self.members.append(c)
            self.target[c] = x
            self.queue.append(c)

    def _run(self) -> None:
        g = self.graph
        out = g.out
        assert out is not None  # an incremental graph
        pa = g.pa
        cons = g.cons
        ca = g.ca
        target = self.target
        scanned = self.scanned
        queue = self.queue
        while queue:
            p = queue.popleft()
            t = target[p]
            s = scanned[p]
            if t == s:
                continue
            scanned[p] = t
            for j in out[p]:
                if t <= pa[j] < s:
                    self._relax(cons[j], ca[j])
