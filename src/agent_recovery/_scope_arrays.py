"""The rollback-set sweep over whole arrays, one dependency level at a time (draft §7).

Nothing here is public. For a large acyclic graph, the per-edge loop of
``_scope_passes._sweep`` costs some hundreds of nanoseconds per edge in the
interpreter; the same rule applied with numpy array operations costs tens.
What makes whole-array steps possible is the level structure the graph build
records (:attr:`Csr.levels`): level 0 holds the executions that consumed
nothing, and every other execution is one level above the highest of its
producers, so no edge joins two executions of one level. The out-edges of a
level are one contiguous run of CSR slots, and once every lower level is done,
the targets and depths of a level's executions are final (draft §7.2: a
target is the minimum over the taint edges into it; §7.3: a depth is the
shortest taint path). Waves (§7.7) come from the levels in reverse.

The result is identical to ``_sweep``'s, member for member: targets, depths,
reasons (the setting edge smallest in the draft's edge order), waves and the
order of the members; the tests compare the two on random graphs.

numpy is imported on first use, so that code which never computes a large
rollback set does not pay for loading it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from itertools import compress
from operator import call
from typing import TYPE_CHECKING, Any

from ._model import ExecRef
from ._scope_graph import IDX, INF, Csr

if TYPE_CHECKING:
    from ._scope_passes import Scope

__all__ = ["MIN_EDGES", "MIN_EDGES_PER_LEVEL", "Arrays", "by_wave", "eligible", "sweep"]

# Below these sizes the interpreter loop wins: a level costs some fifteen
# array calls of a microsecond or two each, whatever its size, so a graph of
# narrow levels (a long chain above all) is swept edge by edge instead.
MIN_EDGES = 4096
MIN_EDGES_PER_LEVEL = 32


def eligible(csr: Csr) -> bool:
    """Whether queries on ``csr`` take the whole-array path."""
    m = len(csr.cons)
    levels = csr.levels
    return levels is not None and m >= MIN_EDGES and m >= MIN_EDGES_PER_LEVEL * (len(levels) - 1)


class Arrays:
    """numpy views of a :class:`Csr` (no copies but the rank) and its level bounds."""

    __slots__ = ("ca", "cons", "edge_bounds", "n", "node_bounds", "pa", "pa_span", "prod", "rank")

    def __init__(self, csr: Csr) -> None:
        import numpy as np  # loaded on first use, see the module docstring

        levels = csr.levels
        if levels is None:
            raise ValueError("the whole-array path needs an acyclic graph")
        self.n = csr.n
        # Node numbers as numpy's index type: an index array of another type is
        # converted on every use, which doubles the cost of a small gather.
        self.cons = np.frombuffer(csr.cons, dtype=np.int32).astype(np.intp)
        self.prod = np.frombuffer(csr.prod, dtype=np.int32).astype(np.intp)
        self.pa = np.frombuffer(csr.pa, dtype=np.int64)
        self.ca = np.frombuffer(csr.ca, dtype=np.int64)
        self.rank = np.array(csr.rank, dtype=np.intp)
        # Reasons compare (rank, produced_after) as one integer when it fits.
        top = int(self.pa.max()) + 1 if len(self.pa) else 1
        self.pa_span = top if csr.n * top < 2**62 else 0
        self.node_bounds = levels
        start = csr.start
        self.edge_bounds = [start[x] for x in levels]


def sweep(arr: Arrays, origin: int, checkpoint: int, *, with_waves: bool) -> Scope:
    """Targets, depths, reasons (and waves) of every member (draft §7.2-7.4, §7.7)."""
    import numpy as np  # see the module docstring

    n = arr.n
    cons = arr.cons
    prod = arr.prod
    pa = arr.pa
    ca = arr.ca
    nb = arr.node_bounds
    eb = arr.edge_bounds
    target = np.full(n, INF, dtype=np.int64)
    depth = np.full(n, n, dtype=np.int64)
    target[origin] = checkpoint
    depth[origin] = 0
    minimum_at = np.minimum.at
    first = bisect_right(nb, origin) - 1  # the origin's level
    last = len(nb) - 1
    hi = origin  # the highest member so far
    for level in range(first, last):
        if nb[level] > hi:
            # No member at this level or above: nothing further can be tainted.
            last = level
            break
        s = eb[level]
        e = eb[level + 1]
        if s == e:
            continue
        # The producers of this level have their final targets: an edge taints
        # when its output was made at or after its producer's target (§7.2).
        p = prod[s:e]
        k = (pa[s:e] >= target[p]).nonzero()[0]
        if not k.size:
            continue
        c = cons[s:e][k]
        minimum_at(target, c, ca[s:e][k])
        minimum_at(depth, c, depth[p[k]] + 1)
        hi = max(hi, int(c.max()))
    inset = target < INF
    members = inset.nonzero()[0]
    # Every taint edge, in slot order: all of them leave a member in [origin, hi].
    lo_slot = eb[first]
    hi_slot = eb[last]
    taint = (pa[lo_slot:hi_slot] >= target[prod[lo_slot:hi_slot]]).nonzero()[0]
    taint += lo_slot
    t_cons = cons[taint]
    reason = _reasons(np, arr, target, taint, t_cons)
    wave: array[int] | None = None
    if with_waves:
        wave = _int_array(_waves(np, arr, taint, t_cons, first=first, last=last))
    return (
        _int_array(members),
        bytearray(inset.view(np.uint8).tobytes()),
        _int_array(target, "q"),
        _int_array(depth),
        _int_array(reason),
        wave,
    )


def _reasons(np: Any, arr: Arrays, target: Any, taint: Any, t_cons: Any) -> Any:
    """Per member, the slot of its setting edge smallest in the draft's order (§7.4).

    The setting edges of ``c`` are its taint edges whose consumed_after equals
    its target. They share consumer and consumed_after, so the order reduces to
    the producer (in execution order), then produced_after; edges equal in both
    are duplicates, and the first slot is taken, as the interpreter sweep does.
    """
    n = arr.n
    m = len(arr.cons)
    setting = taint[arr.ca[taint] == target[t_cons]]
    c = arr.cons[setting]
    span = arr.pa_span
    if span:
        key = arr.rank[arr.prod[setting]] * span + arr.pa[setting]
        best = np.full(n, n * span, dtype=np.int64)
        np.minimum.at(best, c, key)
        setting = setting[key == best[c]]
    else:  # produced_after too large to share an integer with the rank
        key = arr.rank[arr.prod[setting]]
        best = np.full(n, n, dtype=np.int64)
        np.minimum.at(best, c, key)
        setting = setting[key == best[c]]
        c = arr.cons[setting]
        key = arr.pa[setting]
        best = np.full(n, INF, dtype=np.int64)
        np.minimum.at(best, c, key)
        setting = setting[key == best[c]]
    reason = np.full(n, m, dtype=np.int64)
    np.minimum.at(reason, arr.cons[setting], setting)
    reason[reason == m] = -1  # the origin: no setting edge
    return reason


def _waves(np: Any, arr: Arrays, taint: Any, t_cons: Any, *, first: int, last: int) -> Any:
    """Waves, levels in reverse (§7.7): every dependent of a level is above it."""
    wave = np.zeros(arr.n, dtype=np.int64)
    t_prod = arr.prod[taint]
    # Where each level's taint edges start among all taint edges.
    bounds = np.searchsorted(taint, arr.edge_bounds[first : last + 1]).tolist()
    maximum_at = np.maximum.at
    for i in range(len(bounds) - 2, -1, -1):
        a = bounds[i]
        b = bounds[i + 1]
        if a < b:
            maximum_at(wave, t_prod[a:b], wave[t_cons[a:b]] + 1)
    return wave


def _int_array(values: Any, typecode: str = IDX) -> array[int]:
    # One copy in C: an ``array`` indexes faster from Python than numpy does.
    out = array(typecode)
    out.frombytes(values.astype(f"={typecode}", copy=False).tobytes())
    return out


def by_wave(
    arr: Arrays, ranked: list[ExecRef], nodes: Sequence[int], wave: Sequence[int], last: int
) -> list[list[ExecRef]]:
    """``_scope_passes.by_wave`` with the per-member steps in C.

    Each node's wave is scattered to its rank; the executions are then taken
    from ``ranked`` in rank order, each appended to its wave's list.
    """
    import numpy as np  # see the module docstring

    x = _as_numpy(np, nodes)
    at = np.full(arr.n, -1, dtype=np.int64)
    at[arr.rank[x]] = _as_numpy(np, wave)[x]
    keep = at >= 0
    groups: list[list[ExecRef]] = [[] for _ in range(last + 1)]
    put = [g.append for g in groups]
    # put[w](ref) for each kept rank in order (the "consume" recipe of itertools).
    deque(
        map(call, map(put.__getitem__, at[keep].tolist()), compress(ranked, keep.tobytes())),
        maxlen=0,
    )
    return groups


def _as_numpy(np: Any, values: Sequence[int]) -> Any:
    if isinstance(values, array):
        return np.frombuffer(values, dtype=values.typecode).astype(np.int64)
    return np.array(values, dtype=np.int64)
