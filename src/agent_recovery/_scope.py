"""The rollback set: which executions a failure taints, how far back, and in what order.

Pure functions over the dependency graph (draft §7). Given dependency edges,
what is known about each execution (:class:`Facts`), the failed execution with
its restore checkpoint, and policy bounds, compute the members of the rollback
set, each with its target checkpoint, action, reason and depth, the rollback
waves, and, when a bound stops the set, an escalation naming the frontier that
was not entered.

Two forms with one result: :func:`compute_rollback_set` for a graph known in
advance, and :class:`ScopeBuilder` for hop-by-hop discovery (draft §8.1), whose
:meth:`ScopeBuilder.result` equals the batch computation on every edge and fact
seen so far, whatever order and batching they arrived in.

The normative text, with pseudo-code, is ``docs/draft-text/rollback-set.md``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ._errors import ErrorCode, LocalProtocolError
from ._model import (
    Action,
    Dependency,
    ExecRef,
    Facts,
    Reason,
    ReasonKind,
    Reversibility,
    Status,
    check_checkpoint,
    check_identifier,
)
from ._scope_graph import IDX, INF, Closure, Csr, Graph
from ._scope_passes import by_wave, execution_order, scope, walk, waves

__all__ = [
    "ESCALATION_REASONS",
    "Bounds",
    "DependencyGraph",
    "Escalation",
    "Member",
    "ScopeBuilder",
    "ScopeResult",
    "action_for",
    "compute_rollback_set",
]

# draft §7.6: the bound that stopped the set, in order of precedence when several did.
ESCALATION_REASONS: tuple[str, ...] = ("domain", "max-depth", "max-members")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """Policy bounds on the rollback set (draft §7.6, §13); ``None`` = unbounded.

    ``max_members`` counts the origin, so it is at least 1; ``max_depth`` is a
    hop count from the origin (0 = the origin alone). An execution whose facts
    name no domain is outside every ``allowed_domains`` (fail closed).
    """

    max_members: int | None = None
    max_depth: int | None = None
    allowed_domains: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.max_members is not None and (
            not isinstance(self.max_members, int)
            or isinstance(self.max_members, bool)
            or self.max_members < 1
        ):
            raise LocalProtocolError(ErrorCode.MALFORMED, "bounds: max_members must be >= 1")
        if self.max_depth is not None and (
            not isinstance(self.max_depth, int)
            or isinstance(self.max_depth, bool)
            or self.max_depth < 0
        ):
            raise LocalProtocolError(ErrorCode.MALFORMED, "bounds: max_depth must be >= 0")
        if self.allowed_domains is not None:
            if not isinstance(self.allowed_domains, frozenset):
                raise LocalProtocolError(
                    ErrorCode.MALFORMED, "bounds: allowed_domains must be a frozenset"
                )
            for domain in self.allowed_domains:
                check_identifier(domain, "bounds: allowed domain")

    @property
    def unbounded(self) -> bool:
        bounds = (self.max_members, self.max_depth, self.allowed_domains)
        return bounds == (None, None, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One member of the rollback set (draft §7).

    ``action`` is ``None`` while the member's facts are unknown ("undetermined").
    ``depth`` is the length of its shortest taint path from the origin.
    """

    execution: ExecRef
    target: int
    action: Action | None
    reason: Reason
    depth: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalation:
    """A bound stopped the set (draft §7.6): the coordinator escalates instead of acting."""

    reason: str  # one of ESCALATION_REASONS
    frontier: tuple[ExecRef, ...]  # executions that would have been entered, sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeResult:
    """The rollback set (draft §7)."""

    members: tuple[Member, ...]  # sorted by execution
    waves: tuple[tuple[ExecRef, ...], ...]  # waves[0] first: no dependents in the set
    escalation: Escalation | None
    undetermined: tuple[ExecRef, ...]  # members whose facts are missing, sorted

    @property
    def complete(self) -> bool:
        """True when the coordinator may act on the set as it is: no bound hit, no unknown."""
        return self.escalation is None and not self.undetermined

    def member(self, ref: ExecRef) -> Member | None:
        members = self.members
        i = bisect_left(members, ref, key=_execution)
        if i < len(members) and members[i].execution == ref:
            return members[i]
        return None


def _execution(member: Member) -> ExecRef:
    return member.execution


def action_for(facts: Facts) -> Action:
    """What a member with these facts is asked to do (draft §7.5).

    Irreversible members get ``none`` but stay in the set, and their dependents
    are still members: their input was tainted either way.
    """
    if facts.reversibility is Reversibility.RESTORABLE:
        return Action.CANCEL_RESTORE if facts.status is Status.ACTIVE else Action.RESTORE
    if facts.reversibility is Reversibility.COMPENSABLE:
        return Action.COMPENSATE
    return Action.NONE


_ORIGIN_REASON = Reason(kind=ReasonKind.ORIGIN)

# Members and reasons are built from parts this module has already validated (or
# produced itself), on a path that may build a million of them; the dataclass
# __init__ and its checks would triple the cost of the result, so the slots are
# filled directly. The objects are indistinguishable from constructed ones.
_new = object.__new__
_M = vars(Member)
_set_execution = _M["execution"].__set__
_set_target = _M["target"].__set__
_set_action = _M["action"].__set__
_set_reason = _M["reason"].__set__
_set_depth = _M["depth"].__set__
_R = vars(Reason)
_set_kind = _R["kind"].__set__
_set_via = _R["via"].__set__
del _M, _R


def _check_inputs(origin: object, checkpoint: object, bounds: object) -> None:
    if type(origin) is not ExecRef:
        raise LocalProtocolError(ErrorCode.MALFORMED, "origin: not an ExecRef")
    check_checkpoint(checkpoint, "checkpoint")
    if type(bounds) is not Bounds:
        raise LocalProtocolError(ErrorCode.MALFORMED, "bounds: not a Bounds")


def _facts_by_node(
    csr: Csr, graph: Graph, facts: Mapping[ExecRef, Facts], nodes: Sequence[int]
) -> list[Facts | None]:
    """``facts`` indexed by CSR node, for ``nodes``; validates every value used."""
    found: list[Facts | None] = [None] * csr.n
    if len(facts) <= 4 * len(nodes):
        # Walking the mapping hashes plain string tuples instead of ExecRefs.
        index = graph.index
        node = csr.node
        for ref, f in facts.items():
            if type(ref) is not ExecRef:
                raise LocalProtocolError(ErrorCode.MALFORMED, "facts: key is not an ExecRef")
            i = index.get((ref.agent, ref.exec))
            if i is not None:
                found[node[i]] = f
    else:
        refs = csr.refs
        for x in nodes:
            found[x] = facts.get(refs[x])
    for x in nodes:
        value = found[x]
        if value is not None and type(value) is not Facts:
            raise LocalProtocolError(ErrorCode.MALFORMED, "facts: value is not a Facts")
    return found


# Action codes, so that a result of a million members keeps one byte per member
# between reading the facts and building the members. Code 0: facts unknown.
_ACTIONS: tuple[Action | None, ...] = (
    None,
    Action.CANCEL_RESTORE,
    Action.RESTORE,
    Action.COMPENSATE,
    Action.NONE,
)


def _action_codes(found: list[Facts | None], nodes: Sequence[int]) -> bytearray:
    """:func:`action_for` of each node with known facts, as an index into ``_ACTIONS``."""
    codes = bytearray(len(found))
    restorable = Reversibility.RESTORABLE
    compensable = Reversibility.COMPENSABLE
    active = Status.ACTIVE
    for x in nodes:
        f = found[x]
        if f is None:
            continue
        if f.reversibility is restorable:
            codes[x] = 1 if f.status is active else 2
        else:
            codes[x] = 3 if f.reversibility is compensable else 4
    return codes


def _entered(
    csr: Csr,
    target: Sequence[int],
    origin: int,
    members: Sequence[int],
    *,
    found: list[Facts | None],
    bounds: Bounds,
) -> tuple[list[int], dict[int, int], dict[int, str]]:
    """The bounded walk (draft §7.6) with the domain rule applied."""
    excluded_domain = bytearray(csr.n)
    allowed = bounds.allowed_domains
    if allowed is not None:
        for x in members:
            f = found[x]
            # Bounds never exclude the origin. Unknown facts: the domain is learned
            # from the halted reply, so the execution is entered and undetermined.
            if x != origin and f is not None and f.domain not in allowed:
                excluded_domain[x] = 1
    return walk(
        csr,
        target,
        origin,
        max_members=bounds.max_members,
        max_depth=bounds.max_depth,
        excluded_domain=excluded_domain,
    )


def _bounded(
    csr: Csr,
    graph: Graph,
    origin: int,
    checkpoint: int,
    *,
    facts: Mapping[ExecRef, Facts],
    bounds: Bounds,
) -> tuple[list[int], dict[int, str]]:
    """Entered members (CSR nodes) and excluded candidates of a bounded query."""
    members_u, _inset, target, _depth, _reason, _wave = scope(
        csr, origin, checkpoint, with_waves=False
    )
    found = _facts_by_node(csr, graph, facts, members_u)
    entered, _walk_depth, excluded = _entered(
        csr, target, origin, members_u, found=found, bounds=bounds
    )
    return entered, excluded


def _result(
    graph: Graph,
    origin_ref: ExecRef,
    checkpoint: int,
    facts: Mapping[ExecRef, Facts],
    bounds: Bounds,
) -> ScopeResult:
    """The rollback set as draft §7.2 to §7.7 define it."""
    csr = graph.csr()
    n = csr.n
    origin = csr.node[graph.index[(origin_ref.agent, origin_ref.exec)]]
    unbounded = bounds.unbounded
    members_u, inset, target, depth_u, reason, wave = scope(
        csr, origin, checkpoint, with_waves=unbounded
    )
    found = _facts_by_node(csr, graph, facts, members_u)
    escalation: Escalation | None = None
    depth: Sequence[int] | dict[int, int] = depth_u
    entered: Sequence[int] = members_u
    if wave is None:
        entered, depth, excluded = _entered(
            csr, target, origin, members_u, found=found, bounds=bounds
        )
        if excluded:
            kinds = set(excluded.values())
            escalation = Escalation(
                reason=next(k for k in ESCALATION_REASONS if k in kinds),
                frontier=tuple(csr.refs[x] for x in sorted(excluded, key=csr.rank.__getitem__)),
            )
    if wave is None:  # waves over the entered members only (draft §7.7)
        inset = bytearray(n)
        for x in entered:
            inset[x] = 1
        wave = waves(csr, target, entered, inset)
    codes = _action_codes(found, entered)
    del found  # from here on, only objects of the result are allocated
    ordered = array(IDX, execution_order(csr, entered, inset))
    refs = csr.refs
    deps = csr.deps
    eid = csr.eid
    prod = csr.prod
    actions = _ACTIONS
    direct = ReasonKind.DIRECT
    transitive = ReasonKind.TRANSITIVE
    members: list[Member] = []
    add = members.append
    for x in ordered:
        t = target[x]
        k = reason[x]
        if k < 0 or (x == origin and t == checkpoint):
            why = _ORIGIN_REASON
        else:
            why = _new(Reason)
            _set_kind(why, direct if prod[k] == origin else transitive)
            _set_via(why, deps[eid[k]])
        m = _new(Member)
        _set_execution(m, refs[x])
        _set_target(m, t)
        _set_action(m, actions[codes[x]])
        _set_reason(m, why)
        _set_depth(m, depth[x])
        add(m)
    # Every member descends from the origin through members: its wave is the last.
    groups = by_wave(csr, entered, wave, wave[origin])
    return ScopeResult(
        members=tuple(members),
        waves=tuple(map(tuple, groups)),
        escalation=escalation,
        undetermined=tuple(refs[x] for x in ordered if not codes[x]),
    )


class DependencyGraph:
    """A dependency graph indexed once and queried for any number of failures (draft §7).

    Building interns executions and lays the edges out as integer arrays; each
    :meth:`rollback_set` query then costs time proportional to the part of the
    graph reachable from the failed execution. :func:`compute_rollback_set` is
    a one-shot use of this class. Duplicate edges are harmless and self-edges
    are ignored.
    """

    __slots__ = ("_graph",)

    def __init__(self, edges: Iterable[Dependency] = ()) -> None:
        self._graph = Graph(incremental=False)
        self._graph.add_edges(edges)
        self._graph.csr()

    def add_edges(self, edges: Iterable[Dependency]) -> None:
        """Add edges (all or nothing: an ill-typed edge changes nothing)."""
        self._graph.add_edges(edges)
        self._graph.csr()

    @property
    def executions(self) -> int:
        """How many distinct executions the stored edges name."""
        return len(self._graph)

    @property
    def edges(self) -> int:
        """How many edges are stored (self-edges are not)."""
        return len(self._graph.deps)

    def rollback_set(
        self,
        *,
        origin: ExecRef,
        checkpoint: int,
        facts: Mapping[ExecRef, Facts],
        bounds: Bounds = Bounds(),
    ) -> ScopeResult:
        """The rollback set of ``origin`` restored to ``checkpoint`` (draft §7)."""
        _check_inputs(origin, checkpoint, bounds)
        graph = self._graph
        if (origin.agent, origin.exec) not in graph.index:
            # An origin no edge names: a graph of its own, the origin alone.
            graph = Graph(incremental=False)
            graph.node(origin)
        return _result(graph, origin, checkpoint, facts, bounds)


def compute_rollback_set(
    *,
    origin: ExecRef,
    checkpoint: int,
    edges: Iterable[Dependency],
    facts: Mapping[ExecRef, Facts],
    bounds: Bounds = Bounds(),
) -> ScopeResult:
    """The rollback set of ``origin`` restored to ``checkpoint`` (draft §7).

    Checkpoint 0 is the implicit initial state. Duplicate edges are harmless,
    self-edges are ignored, and an execution that appears only in edges (no
    facts) is a member with action ``None`` when tainted, listed in
    ``undetermined``. Raises :class:`LocalProtocolError` (``malformed``) on
    ill-typed input, before computing anything.
    """
    _check_inputs(origin, checkpoint, bounds)
    return DependencyGraph(edges).rollback_set(
        origin=origin, checkpoint=checkpoint, facts=facts, bounds=bounds
    )


class ScopeBuilder:
    """The rollback set discovered hop by hop (draft §8.1).

    Edges arrive with ``halted`` replies (the dependents each member knows of)
    and facts with the same replies. :meth:`add_edges` returns the executions
    that entered the set because of those edges, in execution order: the
    coordinator halts them next. :meth:`result` equals
    :func:`compute_rollback_set` on every edge and fact given so far, whatever
    order and batching they came in.

    Without bounds, members only ever join, and each call costs time
    proportional to what it adds. With bounds, entry is decided by the bounded
    walk over everything known (each call that changes a taint edge or, with
    ``allowed_domains``, a member's facts costs time proportional to the known
    graph), and a member can leave the entered set only when the result then
    carries an escalation.

    :meth:`result` is kept between calls: :attr:`version` moves only when an
    input that can change it arrives, i.e. a new taint edge (draft §7.2) or new
    facts of an execution already in the unbounded set. Anything else (a
    retransmitted edge, an edge whose producer is not tainted or that its
    producer made before its target, facts of an execution outside the set)
    leaves the result as it is. New facts of a member only change its action,
    so the kept result is patched instead of recomputed, unless the domain
    bound makes facts decide entry.
    """

    __slots__ = (
        "_bounds",
        "_checkpoint",
        "_closure",
        "_entered",
        "_facts",
        "_graph",
        "_kept",
        "_version",
    )

    def __init__(
        self,
        *,
        origin: ExecRef,
        checkpoint: int,
        bounds: Bounds = Bounds(),
    ) -> None:
        _check_inputs(origin, checkpoint, bounds)
        self._checkpoint = checkpoint
        self._bounds = bounds
        self._graph = Graph(incremental=True)
        # The unbounded fixed point, kept in both modes: it says which inputs matter.
        self._closure = Closure(self._graph, self._graph.node(origin), checkpoint)
        self._facts: dict[ExecRef, Facts] = {}
        self._entered: set[int] = {self._closure.origin}
        self._kept: ScopeResult | None = None
        self._version = 0

    @property
    def origin(self) -> ExecRef:
        return self._graph.refs[self._closure.origin]

    @property
    def version(self) -> int:
        """A counter that moves whenever :meth:`result` may have changed (never otherwise).

        A caller holding a result computed at version ``v`` may keep using it
        while ``version == v``.
        """
        return self._version

    def add_edges(self, edges: Iterable[Dependency]) -> tuple[ExecRef, ...]:
        """Add edges; return the members newly entered, sorted. Idempotent per edge."""
        graph = self._graph
        added = graph.add_edges(edges)
        closure = self._closure
        before = len(closure.members)
        closure.add(added)
        # Targets only fall, so after the closure has settled an added edge is
        # a taint edge now or changed nothing (the fixed point with and without
        # it is the same, and so are the taint edges and everything after them).
        target = closure.target
        prod = graph.prod
        pa = graph.pa
        if not any(pa[j] >= target[prod[j]] for j in added):
            return ()
        self._kept = None
        self._version += 1
        new: Sequence[int] = closure.members[before:] if self._bounds.unbounded else self._reenter()
        refs = graph.refs
        return tuple(sorted(refs[x] for x in new))

    def set_facts(self, ref: ExecRef, facts: Facts) -> None:
        """Record what ``ref`` reported about itself; the latest report wins."""
        if type(ref) is not ExecRef:
            raise LocalProtocolError(ErrorCode.MALFORMED, "ref: not an ExecRef")
        if type(facts) is not Facts:
            raise LocalProtocolError(ErrorCode.MALFORMED, "facts: not a Facts")
        if self._facts.get(ref) == facts:
            return
        self._facts[ref] = facts
        i = self._graph.index.get((ref.agent, ref.exec))
        target = self._closure.target
        if i is None or i >= len(target) or target[i] == INF:
            return  # not in the set: facts matter once an edge brings it in
        self._version += 1
        if self._bounds.allowed_domains is not None:
            self._kept = None  # its domain may decide entry (draft §7.6)
            self._reenter()
        elif self._kept is not None:
            self._kept = _with_facts(self._kept, ref, facts)

    def _reenter(self) -> list[int]:
        graph = self._graph
        csr = graph.csr()
        entered, _excluded = _bounded(
            csr,
            graph,
            csr.node[self._closure.origin],
            self._checkpoint,
            facts=self._facts,
            bounds=self._bounds,
        )
        order = csr.order
        now = {order[x] for x in entered}
        new = [i for i in now if i not in self._entered]
        self._entered = now
        return new

    def result(self) -> ScopeResult:
        """The rollback set on everything seen so far (the batch algorithm, run only when
        :attr:`version` moved since the last call)."""
        kept = self._kept
        if kept is None:
            kept = _result(self._graph, self.origin, self._checkpoint, self._facts, self._bounds)
            self._kept = kept
        return kept


def _with_facts(result: ScopeResult, ref: ExecRef, facts: Facts) -> ScopeResult:
    """``result`` with the action of ``ref`` from ``facts`` (draft §7.5).

    Facts decide nothing but a member's action unless a domain bound applies,
    so this equals recomputing the result with the new facts. ``ref`` outside
    the entered set (stopped by a bound) leaves the result unchanged.
    """
    members = result.members
    i = bisect_left(members, ref, key=_execution)
    if i == len(members) or members[i].execution != ref:
        return result
    old = members[i]
    new = Member(
        execution=ref,
        target=old.target,
        action=action_for(facts),
        reason=old.reason,
        depth=old.depth,
    )
    return ScopeResult(
        members=(*members[:i], new, *members[i + 1 :]),
        waves=result.waves,
        escalation=result.escalation,
        undetermined=tuple(x for x in result.undetermined if x != ref),
    )
