"""Rollback-set computation against networkx on random layered DAGs (draft §7).

For each size N: a random layered DAG of N executions (layers of about sqrt(N)
executions; each execution outside the first layer consumed about ``--deps``
outputs, 80% from the previous layer and the rest from any earlier one, with
random checkpoints), and one failure: an execution of the first layer restored
to checkpoint 0, which taints almost the whole graph. Both sides compute the
same thing from the same edges: every member's target checkpoint (the
checkpoint rule of draft §7, to its fixed point), its depth (shortest taint
path) and the rollback waves, each wave sorted by execution.

Both builds do the same precomputation, once per graph: executions numbered in
execution order (so that sorting a wave sorts integers) and a topological
order of the graph.

- ours: the build is ``DependencyGraph(edges)``. The compute ("closure and
  waves") is its core pass, ``_scope_passes.scope``, plus the sorted waves
  (grouped by wave, each in execution order, as lists of executions); ``api``
  is the whole public ``rollback_set(...)`` call, which also builds a Member
  and a Reason object per member, with actions from the facts: more than the
  baseline produces. From 4,096 edges, an acyclic graph whose dependency
  levels hold 32 edges or more on average is swept a level at a time in numpy
  array operations (``_scope_arrays``); smaller graphs (here 10^3) and chains
  take the interpreter loop. The result is the same either way.
- networkx 3.6.1: the build fills a ``MultiDiGraph`` over integer nodes
  (parallel edges carry different checkpoints; networkx never hashes a
  dataclass) and takes ``nx.topological_sort`` (``nx.condensation``'s when the
  graph has a cycle). The compute applies the checkpoint rule in that order,
  collecting the taint edges as it goes, builds the taint graph as a
  ``DiGraph``, takes depths from ``nx.single_source_shortest_path_length`` and
  waves from ``nx.topological_generations`` of the reversed taint graph
  (``nx.condensation`` first if it has a cycle), and sorts each wave.

The results are compared and the run aborts if they differ. Times are CPU
seconds of this process (``time.process_time``), so other load on a shared
machine does not count, though it still disturbs caches; each figure is the
best of ``--repeat`` rounds in which the two sides alternate, and a step
shorter than ``--min-time`` (0.2 s) is timed over as many calls as take that
long (the time per call counts), as timeit does. Figures are still noisy.
Before each timed step everything alive is frozen out of the garbage
collector's way (``gc.freeze``), for both sides alike: a step pays for
collecting what it allocates, not for rescanning the input. Each size runs in
a process of its own, so no size is timed on a heap that earlier sizes grew.
Peak memory (``tracemalloc``: ours build plus ``rollback_set``, networkx build
plus compute; input excluded) is measured in separate, untimed child processes.

    python bench/scope.py [--sizes 1000,10000,100000,1000000] [--deps 3]
                          [--seed 1] [--repeat 3] [--no-memory] [--chain N]
                          [--min-time 0.2]

``--sizes 1000`` is the quick run for CI. ``--chain N`` also times a chain of N
executions through the public API (the worst case for depth and waves: N waves
of one member; no recursion is involved). The last line is one JSON object:
``sizes``, ``ours_s`` and ``networkx_s`` (closure and waves, seconds),
``ratio_at_max`` (networkx / ours at the largest size), ``per_edge_ns`` (ours,
closure and waves), ``per_edge_spread`` (max / min per-edge time from 10^4
executions up), ``ours_api_s`` and ``api_ratio_at_max`` (the full public call),
builds, edge and member counts, and peaks. The failure taints a larger share of
a larger graph (about 62 % of the edges at 10^4, 75 % at 10^6), so the work
per input edge grows with the size; ``taint_edges``, ``per_taint_edge_ns`` and
``per_taint_edge_spread`` give the same time per tainting edge.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import networkx as nx

from agent_recovery._model import Dependency, ExecRef, Facts, Reversibility, Status
from agent_recovery._scope import DependencyGraph, ScopeResult
from agent_recovery._scope_passes import by_wave, scope

# (target, depth) per member, and waves: the part both sides compute.
Outcome = tuple[dict[ExecRef, tuple[int, int]], list[list[ExecRef]]]
Closure = tuple[Sequence[int], Sequence[int], Sequence[int], list[ExecRef], list[list[ExecRef]]]
NxClosure = tuple[dict[int, int], dict[int, int], list[ExecRef], list[list[ExecRef]]]


def layered_dag(
    n: int, deps: int, seed: int
) -> tuple[list[ExecRef], list[Dependency], dict[ExecRef, Facts]]:
    rnd = random.Random(seed)
    width = max(4, round(n**0.5))
    refs = [ExecRef(agent=f"agent-{i % 97:02d}", exec=f"exec-{i:07d}") for i in range(n)]
    last = [rnd.randint(1, 8) for _ in range(n)]  # latest checkpoint of each execution
    edges: list[Dependency] = []
    for i in range(width, n):
        layer = i // width
        for _ in range(deps):
            source = layer - 1 if rnd.random() < 0.8 else rnd.randrange(layer)
            p = source * width + rnd.randrange(width)
            edges.append(
                Dependency(
                    consumer=refs[i],
                    producer=refs[p],
                    produced_after=rnd.randint(0, last[p]),
                    consumed_after=rnd.randint(0, last[i]),
                )
            )
    statuses = (Status.COMPLETED, Status.ACTIVE)
    kinds = (Reversibility.RESTORABLE, Reversibility.COMPENSABLE, Reversibility.IRREVERSIBLE)
    facts = {
        r: Facts(status=rnd.choice(statuses), reversibility=rnd.choice(kinds), checkpoint=k)
        for r, k in zip(refs, last, strict=True)
    }
    return refs, edges, facts


def chain(n: int) -> tuple[list[ExecRef], list[Dependency]]:
    refs = [ExecRef(agent="agent", exec=f"exec-{i:07d}") for i in range(n)]
    edges = [
        Dependency(consumer=refs[i + 1], producer=refs[i], produced_after=1, consumed_after=0)
        for i in range(n - 1)
    ]
    return refs, edges


# ---------------------------------------------------------------- ours


class Ours:
    """Our build: the indexed graph (executions in execution order are part of it)."""

    def __init__(self, edges: list[Dependency]) -> None:
        self.graph = DependencyGraph(edges)


def ours_closure_and_waves(ours: Ours, origin: ExecRef) -> Closure:
    """Targets, depths (and reasons) of every member and the sorted waves.

    The algorithmic core of ``rollback_set`` without packaging the result into
    Member and Reason objects: the same data networkx produces below, each wave
    sorted the same way (by execution).
    """
    graph = ours.graph._graph
    csr = graph.csr()
    o = csr.node[graph.index[(origin.agent, origin.exec)]]
    members, _inset, target, depth, _reason, wave = scope(csr, o, 0, with_waves=True)
    assert wave is not None
    # Every member descends from the origin, so the origin's wave is the last.
    waves = by_wave(csr, members, wave, wave[o])
    return members, target, depth, csr.refs, waves


def taint_edges(ours: Ours, origin: ExecRef) -> int:
    """The number of tainting edges (draft §7.2) of the failure at ``origin``."""
    graph = ours.graph._graph
    csr = graph.csr()
    o = csr.node[graph.index[(origin.agent, origin.exec)]]
    members, _inset, target, _depth, _reason, _wave = scope(csr, o, 0, with_waves=False)
    start, pa = csr.start, csr.pa
    return sum(1 for p in members for k in range(start[p], start[p + 1]) if pa[k] >= target[p])


def ours_api(ours: Ours, origin: ExecRef, facts: dict[ExecRef, Facts]) -> ScopeResult:
    return ours.graph.rollback_set(origin=origin, checkpoint=0, facts=facts)


def closure_outcome(closure: Closure) -> Outcome:
    members, target, depth, refs, groups = closure
    return {refs[x]: (target[x], depth[x]) for x in members}, groups


def api_outcome(result: ScopeResult) -> Outcome:
    per = {m.execution: (m.target, m.depth) for m in result.members}
    return per, [list(w) for w in result.waves]


# ---------------------------------------------------------------- networkx


class NxGraph:
    """The networkx side of the build: the same precomputation ours does.

    Executions are numbered in execution order (so sorting a wave sorts
    integers, and networkx never hashes a dataclass), edges go into a
    ``MultiDiGraph`` (parallel edges carry different checkpoints), and a
    topological order is computed once (``nx.topological_sort``, or the
    condensation's when the graph has a cycle), as ours numbers its nodes.
    """

    def __init__(self, edges: list[Dependency]) -> None:
        keys = sorted({(r.agent, r.exec) for e in edges for r in (e.consumer, e.producer)})
        self.index = {key: i for i, key in enumerate(keys)}
        self.refs = [ExecRef(agent=a, exec=x) for a, x in keys]
        index = self.index
        self.g = nx.MultiDiGraph()
        self.g.add_nodes_from(range(len(keys)))
        self.g.add_edges_from(
            (
                index[(e.producer.agent, e.producer.exec)],
                index[(e.consumer.agent, e.consumer.exec)],
                {"pa": e.produced_after, "ca": e.consumed_after},
            )
            for e in edges
            if e.producer != e.consumer
        )
        try:
            self.components: list[list[int]] = [[v] for v in nx.topological_sort(self.g)]
        except nx.NetworkXUnfeasible:
            cond = nx.condensation(self.g)
            self.components = [list(cond.nodes[c]["members"]) for c in nx.topological_sort(cond)]


def nx_closure_and_waves(nxg: NxGraph, origin: ExecRef) -> NxClosure:
    g = nxg.g
    o = nxg.index[(origin.agent, origin.exec)]
    target = {o: 0}
    absent = sys.maxsize
    taint: list[tuple[int, int]] = []
    cyclic = False
    succ = g.succ
    for component in nxg.components:
        if len(component) > 1:
            cyclic = True
        changed = True
        while changed:  # one pass unless the component is a cycle
            changed = False
            for p in component:
                t = target.get(p)
                if t is None:
                    continue
                for c, parallel in succ[p].items():
                    hit = False
                    for data in parallel.values():
                        if data["pa"] >= t:
                            hit = True
                            if data["ca"] < target.get(c, absent):
                                target[c] = data["ca"]
                                changed = changed or (len(component) > 1 and c in component)
                    if hit and not cyclic:
                        taint.append((p, c))
    if cyclic:  # targets inside a cycle settle late: collect taint edges afterwards
        taint = [
            (p, c)
            for p, t in target.items()
            for c, parallel in succ[p].items()
            if any(data["pa"] >= t for data in parallel.values())
        ]
    tg = nx.DiGraph()
    tg.add_nodes_from(target)
    tg.add_edges_from(taint)
    depth = nx.single_source_shortest_path_length(tg, o)
    reverse = tg.reverse(copy=False)
    try:
        generations = [sorted(gen) for gen in nx.topological_generations(reverse)]
    except nx.NetworkXUnfeasible:
        cond = nx.condensation(reverse)
        generations = [
            sorted(v for c in gen for v in cond.nodes[c]["members"])
            for gen in nx.topological_generations(cond)
        ]
    refs = nxg.refs
    return target, depth, refs, [[refs[v] for v in gen] for gen in generations]


def nx_outcome(closure: NxClosure) -> Outcome:
    target, depth, refs, waves = closure
    return {refs[v]: (t, depth[v]) for v, t in target.items()}, waves


# ---------------------------------------------------------------- harness


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    # CPU time of this process: other processes on a shared machine do not count.
    start = time.process_time()
    value = fn()
    return time.process_time() - start, value


def timed_call(fn: Callable[[], Any], min_s: float) -> tuple[float, Any]:
    # A step shorter than ``min_s`` is repeated (in one timing) until it lasts
    # that long, and the time per call is taken, as timeit's autorange does: the
    # best of a few 20 ms windows is luckier on a loaded machine than the best of
    # a few 3 s windows, which would make small sizes look faster than they are.
    seconds, value = timed(fn)
    if seconds >= min_s:
        return seconds, value
    loops = min(1000, int(min_s / max(seconds, 1e-4)) + 1)
    del value
    gc.collect()
    gc.freeze()
    start = time.process_time()
    for _ in range(loops):
        value = fn()
    return (time.process_time() - start) / loops, value


def peak_mb(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def run_size(
    n: int, deps: int, seed: int, repeat: int, memory: bool, min_s: float
) -> dict[str, Any]:
    refs, edges, facts = layered_dag(n, deps, seed)
    origin = refs[0]
    row: dict[str, Any] = {"n": n, "edges": len(edges)}
    # Everything alive before a timed step is frozen out of the collector's way,
    # for both sides alike: a step pays for collecting what it allocates, not
    # for rescanning the input or the other side's leftovers.
    gc.collect()
    gc.freeze()
    try:
        row["ours_build_s"], ours = timed(partial(Ours, edges))
        gc.freeze()
        row["networkx_build_s"], nxg = timed(partial(NxGraph, edges))
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("ours_s", partial(ours_closure_and_waves, ours, origin)),
            ("networkx_s", partial(nx_closure_and_waves, nxg, origin)),
            ("ours_api_s", partial(ours_api, ours, origin, facts)),
        ]
        # Best of ``repeat`` rounds, the sides alternating, as timeit does: the
        # round least disturbed by other processes.
        for _ in range(repeat):
            outcomes = {}
            for key, step in steps:
                gc.collect()
                gc.freeze()
                seconds, value = timed_call(step, min_s)
                row[key] = min(seconds, row.get(key, seconds))
                if key == "ours_s":
                    outcomes[key] = closure_outcome(value)
                elif key == "networkx_s":
                    outcomes[key] = nx_outcome(value)
                else:
                    outcomes[key] = api_outcome(value)
                    row["members"] = len(value.members)
                    row["waves"] = len(value.waves)
                del value
            if outcomes["networkx_s"] != outcomes["ours_s"]:
                raise SystemExit(f"n={n}: networkx and ours disagree")
            if outcomes["ours_api_s"] != outcomes["ours_s"]:
                raise SystemExit(f"n={n}: rollback_set and its core disagree")
            del outcomes
        # How much of the graph the failure taints (untimed): the work per
        # input edge grows with it, so the per-edge figures are reported both
        # per input edge and per tainting edge.
        row["taint_edges"] = taint_edges(ours, origin)
        del ours, nxg, steps
    finally:
        gc.unfreeze()
    gc.collect()
    if memory:
        # Each peak in a child of its own: what a measurement allocates and
        # frees leaves neither the heap nor the timings after it changed.
        row["ours_peak_mb"] = in_child(peak_mb, lambda: ours_api(Ours(edges), origin, facts))
        row["networkx_peak_mb"] = in_child(
            peak_mb, lambda: nx_closure_and_waves(NxGraph(edges), origin)
        )
    return row


def in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a forked child process; its value comes back through a pipe."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, fn, args))
    child.start()
    send.close()
    try:
        ok, value = receive.recv()
    except EOFError:
        ok, value = False, "the child died"
    child.join()
    if not ok:
        raise SystemExit(f"benchmark child failed: {value}")
    return value


def _child(send: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        send.send((True, fn(*args)))
    except BaseException as e:  # reported to the parent, which exits
        send.send((False, repr(e)))


def run_chain(n: int) -> dict[str, Any]:
    refs, edges = chain(n)
    gc.collect()
    gc.freeze()
    try:
        build, graph = timed(partial(DependencyGraph, edges))
        gc.freeze()
        compute, result = timed(lambda: graph.rollback_set(origin=refs[0], checkpoint=0, facts={}))
        assert len(result.members) == n and len(result.waves) == n
        assert result.members[-1].depth == n - 1
        return {"chain": n, "build_s": build, "compute_s": compute}
    finally:
        gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--deps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best counts")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--min-time", type=float, default=0.2, help="shorter steps are timed over several calls"
    )
    parser.add_argument("--chain", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    print(
        f"{'executions':>10} {'edges':>9} {'members':>9} {'waves':>6} "
        f"{'build':>7} {'compute':>8} {'api':>7} {'nx build':>9} {'nx comp':>8} "
        f"{'ratio':>6} {'api rt':>6} {'ns/edge':>8} {'MB':>7} {'nx MB':>7}"
    )
    for n in sizes:
        # Each size in a process of its own, so that no size is timed on a heap
        # that earlier sizes grew and fragmented.
        row = in_child(
            run_size, n, args.deps, args.seed, args.repeat, not args.no_memory, args.min_time
        )
        rows.append(row)
        print(
            f"{n:>10} {row['edges']:>9} {row['members']:>9} {row['waves']:>6} "
            f"{row['ours_build_s']:>7.3f} {row['ours_s']:>8.3f} {row['ours_api_s']:>7.3f} "
            f"{row['networkx_build_s']:>9.3f} {row['networkx_s']:>8.3f} "
            f"{row['networkx_s'] / row['ours_s']:>6.1f} "
            f"{row['networkx_s'] / row['ours_api_s']:>6.1f} "
            f"{row['ours_s'] / row['edges'] * 1e9:>8.0f} "
            f"{row.get('ours_peak_mb', float('nan')):>7.1f} "
            f"{row.get('networkx_peak_mb', float('nan')):>7.1f}",
            flush=True,
        )
    summary: dict[str, Any] = {
        "sizes": sizes,
        "ours_s": [round(r["ours_s"], 4) for r in rows],
        "networkx_s": [round(r["networkx_s"], 4) for r in rows],
        "ratio_at_max": round(rows[-1]["networkx_s"] / rows[-1]["ours_s"], 2),
        "per_edge_ns": [round(r["ours_s"] / r["edges"] * 1e9, 1) for r in rows],
        "edges": [r["edges"] for r in rows],
        "taint_edges": [r["taint_edges"] for r in rows],
        "per_taint_edge_ns": [round(r["ours_s"] / r["taint_edges"] * 1e9, 1) for r in rows],
        "members": [r["members"] for r in rows],
        "ours_api_s": [round(r["ours_api_s"], 4) for r in rows],
        "api_ratio_at_max": round(rows[-1]["networkx_s"] / rows[-1]["ours_api_s"], 2),
        "ours_build_s": [round(r["ours_build_s"], 4) for r in rows],
        "networkx_build_s": [round(r["networkx_build_s"], 4) for r in rows],
    }
    large = [r for r in rows if r["n"] >= 10_000]
    if len(large) > 1:
        per_edge = [r["ours_s"] / r["edges"] for r in large]
        per_taint = [r["ours_s"] / r["taint_edges"] for r in large]
        summary["per_edge_spread"] = round(max(per_edge) / min(per_edge), 2)
        summary["per_taint_edge_spread"] = round(max(per_taint) / min(per_taint), 2)
    if not args.no_memory:
        summary["ours_peak_mb"] = [round(r["ours_peak_mb"], 1) for r in rows]
        summary["networkx_peak_mb"] = [round(r["networkx_peak_mb"], 1) for r in rows]
    if args.chain:
        row = run_chain(args.chain)
        print(
            f"chain of {args.chain}: build {row['build_s']:.3f} s, compute {row['compute_s']:.3f} s"
        )
        summary["chain"] = row
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
