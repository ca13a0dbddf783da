"""Write (or check) the rollback-set vectors in this directory (draft §7).

Each vector below is a small graph with hand-written expectations: the member
set with every target, the waves, the escalation and the undetermined members,
and the reason edges, kinds, actions and depths where the case is about them.
The full expected result written to the JSON file (every reason with its edge)
is computed by ``agent_recovery`` and must agree with every hand-written
expectation, or nothing is written; the test suite also checks each file
against an independent, literal transcription of the rule
(``tests/test_scope_reference.py``).

    python conformance/scope/make_vectors.py           # rewrite the files
    python conformance/scope/make_vectors.py --check   # fail if a file differs

Names: ``"b2"`` is execution ``b2`` of agent ``spiffe://example.org/b``, so the
execution order (agent, then exec) is the alphabetical order of the names.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_recovery._model import Dependency, ExecRef, Facts, Reversibility, Status
from agent_recovery._scope import Bounds, ScopeResult, compute_rollback_set
from agent_recovery._scope_json import ScopeCase, case_to_json

HERE = Path(__file__).resolve().parent

ACTIVE, COMPLETED, FAILED = Status.ACTIVE, Status.COMPLETED, Status.FAILED
RESTORABLE, COMPENSABLE, IRREVERSIBLE = (
    Reversibility.RESTORABLE,
    Reversibility.COMPENSABLE,
    Reversibility.IRREVERSIBLE,
)


def ref(name: str) -> ExecRef:
    return ExecRef(agent=f"spiffe://example.org/{name.rstrip('0123456789')}", exec=name)


@dataclass
class Vector:
    name: str
    description: str
    origin: str
    checkpoint: int
    # (consumer, producer, produced_after, consumed_after)
    edges: list[tuple[str, str, int, int]]
    targets: dict[str, int]  # exactly the members, with their targets
    waves: list[list[str]]
    facts: dict[str, tuple[Status, Reversibility, int, str | None]] = field(default_factory=dict)
    no_facts: frozenset[str] = frozenset()  # executions left without facts
    bounds: Bounds = field(default_factory=Bounds)
    kinds: dict[str, str] = field(default_factory=dict)
    via: dict[str, tuple[str, int]] = field(default_factory=dict)  # member -> (producer, pa)
    actions: dict[str, str | None] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)
    escalation: tuple[str, list[str]] | None = None
    undetermined: list[str] = field(default_factory=list)

    def case(self) -> ScopeCase:
        names = {self.origin} | {n for e in self.edges for n in e[:2]} | set(self.facts)
        facts: dict[ExecRef, Facts] = {}
        for n in sorted(names - self.no_facts):
            status, reversibility, checkpoint, domain = self.facts.get(
                n, (COMPLETED, RESTORABLE, 9, None)
            )
            facts[ref(n)] = Facts(
                status=status, reversibility=reversibility, checkpoint=checkpoint, domain=domain
            )
        return ScopeCase(
            description=self.description,
            origin=ref(self.origin),
            checkpoint=self.checkpoint,
            edges=tuple(
                Dependency(consumer=ref(c), producer=ref(p), produced_after=a, consumed_after=b)
                for c, p, a, b in self.edges
            ),
            facts=facts,
            bounds=self.bounds,
        )

    def check(self, result: ScopeResult) -> None:
        def fail(what: str, got: object, want: object) -> None:
            raise SystemExit(f"{self.name}: {what}: computed {got!r}, expected {want!r}")

        got_targets = {m.execution.exec: m.target for m in result.members}
        if got_targets != self.targets:
            fail("targets", got_targets, self.targets)
        got_waves = [[r.exec for r in w] for w in result.waves]
        if got_waves != self.waves:
            fail("waves", got_waves, self.waves)
        for m in result.members:
            n = m.execution.exec
            if n in self.kinds and m.reason.kind.value != self.kinds[n]:
                fail(f"reason kind of {n}", m.reason.kind.value, self.kinds[n])
            if n in self.via:
                via = m.reason.via
                got = None if via is None else (via.producer.exec, via.produced_after)
                if got != self.via[n]:
                    fail(f"reason edge of {n}", got, self.via[n])
            action = None if m.action is None else m.action.value
            if n in self.actions and action != self.actions[n]:
                fail(f"action of {n}", action, self.actions[n])
            if n in self.depths and m.depth != self.depths[n]:
                fail(f"depth of {n}", m.depth, self.depths[n])
        esc = result.escalation
        got_esc = None if esc is None else (esc.reason, [r.exec for r in esc.frontier])
        if got_esc != self.escalation:
            fail("escalation", got_esc, self.escalation)
        got_und = [r.exec for r in result.undetermined]
        if got_und != self.undetermined:
            fail("undetermined", got_und, self.undetermined)


VECTORS = [
    Vector(
        "scope-01-origin-alone",
        "No edge: the set is the failed execution alone, restored to its checkpoint.",
        origin="a1",
        checkpoint=3,
        edges=[],
        targets={"a1": 3},
        waves=[["a1"]],
        kinds={"a1": "origin"},
        depths={"a1": 0},
        facts={"a1": (FAILED, RESTORABLE, 5, None)},
        actions={"a1": "restore"},
    ),
    Vector(
        "scope-02-chain",
        "A chain: each consumer is restored to its checkpoint before consuming the tainted "
        "output; its own later outputs are tainted in turn.",
        origin="a1",
        checkpoint=2,
        edges=[("b1", "a1", 2, 4), ("c1", "b1", 5, 1)],
        targets={"a1": 2, "b1": 4, "c1": 1},
        waves=[["c1"], ["b1"], ["a1"]],
        kinds={"a1": "origin", "b1": "direct", "c1": "transitive"},
        via={"b1": ("a1", 2), "c1": ("b1", 5)},
        depths={"a1": 0, "b1": 1, "c1": 2},
    ),
    Vector(
        "scope-03-checkpoint-precision",
        "Only outputs made after the restore checkpoint are undone: b1 used an output a1 "
        "made after its checkpoint 2, which restoring a1 to 3 keeps, so b1 is not a "
        "member; c1 used one made after checkpoint 3 (undone: the boundary is inclusive) "
        "and d1 one made after 7.",
        origin="a1",
        checkpoint=3,
        edges=[("b1", "a1", 2, 0), ("c1", "a1", 3, 1), ("d1", "a1", 7, 2)],
        targets={"a1": 3, "c1": 1, "d1": 2},
        waves=[["c1", "d1"], ["a1"]],
    ),
    Vector(
        "scope-04-checkpoint-precision-downstream",
        "A member's own target decides what it taints: b1 is restored to 4, so the output "
        "it made after checkpoint 2 (used by c1) survives and the one made after 4 (used "
        "by d1) does not.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 4), ("c1", "b1", 2, 1), ("d1", "b1", 4, 3)],
        targets={"a1": 0, "b1": 4, "d1": 3},
        waves=[["d1"], ["b1"], ["a1"]],
    ),
    Vector(
        "scope-05-diamond",
        "A diamond: d1 consumed tainted outputs of b1 and of c1; it is restored to the "
        "earlier of its two checkpoints, and is one member in one wave.",
        origin="a1",
        checkpoint=1,
        edges=[
            ("b1", "a1", 1, 2),
            ("c1", "a1", 3, 0),
            ("d1", "b1", 2, 3),
            ("d1", "c1", 0, 1),
        ],
        targets={"a1": 1, "b1": 2, "c1": 0, "d1": 1},
        waves=[["d1"], ["b1", "c1"], ["a1"]],
        via={"d1": ("c1", 0)},
        kinds={"d1": "transitive"},
        depths={"d1": 2},
    ),
    Vector(
        "scope-06-two-paths-lower-wins",
        "c1 is reached directly (restore to 5) and through b1 (restore to 2): the lower "
        "target wins and its edge is the reason, although the direct path is shorter. "
        "Depth is the shortest taint path, so c1 has depth 1 and a transitive reason.",
        origin="a1",
        checkpoint=0,
        edges=[("c1", "a1", 0, 5), ("b1", "a1", 0, 1), ("c1", "b1", 1, 2)],
        targets={"a1": 0, "b1": 1, "c1": 2},
        waves=[["c1"], ["b1"], ["a1"]],
        kinds={"c1": "transitive", "b1": "direct"},
        via={"c1": ("b1", 1)},
        depths={"c1": 1, "b1": 1},
    ),
    Vector(
        "scope-07-lowered-target-taints-more",
        "Targets only decrease, and a lower target undoes more: through a1 alone b1 "
        "would be restored to 4 and its output made after checkpoint 2 would survive, but "
        "c1 lowers b1 to 1, which also undoes that output, so d1 joins.",
        origin="a1",
        checkpoint=0,
        edges=[
            ("b1", "a1", 0, 4),
            ("c1", "a1", 0, 3),
            ("b1", "c1", 3, 1),
            ("d1", "b1", 2, 0),
        ],
        targets={"a1": 0, "b1": 1, "c1": 3, "d1": 0},
        waves=[["d1"], ["b1"], ["c1"], ["a1"]],
        via={"b1": ("c1", 3), "d1": ("b1", 2)},
    ),
    Vector(
        "scope-08-wide-fan-out",
        "A wide fan-out: twelve consumers of one producer, eight of them tainted; all "
        "members without dependents share the first wave.",
        origin="a1",
        checkpoint=4,
        edges=[(f"b{i:02d}", "a1", 2 + i % 3 * 2, i % 4) for i in range(1, 13)],
        targets={"a1": 4} | {f"b{i:02d}": i % 4 for i in range(1, 13) if 2 + i % 3 * 2 >= 4},
        waves=[[f"b{i:02d}" for i in range(1, 13) if 2 + i % 3 * 2 >= 4], ["a1"]],
    ),
    Vector(
        "scope-09-deep-chain",
        "A chain of thirty executions: thirty waves, the last consumer at depth 29.",
        origin="a1",
        checkpoint=0,
        edges=[(f"a{i + 1}", f"a{i}", 1, 0) for i in range(1, 30)],
        targets={f"a{i}": 0 for i in range(1, 31)},
        waves=[[f"a{i}"] for i in range(30, 0, -1)],
        depths={"a30": 29, "a15": 14},
    ),
    Vector(
        "scope-10-irreversible-in-the-middle",
        "An irreversible member is asked for nothing (action none) but stays a member, "
        "and its dependents are still rolled back: their input was tainted either way.",
        origin="a1",
        checkpoint=1,
        edges=[("b1", "a1", 1, 2), ("c1", "b1", 3, 0)],
        facts={"b1": (COMPLETED, IRREVERSIBLE, 4, None)},
        targets={"a1": 1, "b1": 2, "c1": 0},
        waves=[["c1"], ["b1"], ["a1"]],
        actions={"a1": "restore", "b1": "none", "c1": "restore"},
        kinds={"c1": "transitive"},
    ),
    Vector(
        "scope-11-actions",
        "The action follows the declared reversibility and the status: active and "
        "restorable is cancelled and restored; restorable otherwise is restored; "
        "compensable compensates whatever its status; irreversible gets none.",
        origin="a1",
        checkpoint=0,
        edges=[(n, "a1", 0, 1) for n in ("b1", "c1", "d1", "e1", "f1", "g1")],
        facts={
            "a1": (FAILED, RESTORABLE, 3, None),
            "b1": (ACTIVE, RESTORABLE, 2, None),
            "c1": (COMPLETED, RESTORABLE, 2, None),
            "d1": (ACTIVE, COMPENSABLE, 2, None),
            "e1": (COMPLETED, COMPENSABLE, 2, None),
            "f1": (ACTIVE, IRREVERSIBLE, 2, None),
            "g1": (FAILED, IRREVERSIBLE, 2, None),
        },
        targets={"a1": 0, "b1": 1, "c1": 1, "d1": 1, "e1": 1, "f1": 1, "g1": 1},
        waves=[["b1", "c1", "d1", "e1", "f1", "g1"], ["a1"]],
        actions={
            "a1": "restore",
            "b1": "cancel-restore",
            "c1": "restore",
            "d1": "compensate",
            "e1": "compensate",
            "f1": "none",
            "g1": "none",
        },
    ),
    Vector(
        "scope-12-unknown-facts",
        "Executions named only by edges have no facts: when tainted they are members "
        "with no action, listed as undetermined, and they still propagate taint.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 2), ("c1", "b1", 2, 1), ("d1", "c1", 1, 0)],
        no_facts=frozenset({"b1", "c1"}),
        targets={"a1": 0, "b1": 2, "c1": 1, "d1": 0},
        waves=[["d1"], ["c1"], ["b1"], ["a1"]],
        actions={"b1": None, "c1": None, "d1": "restore"},
        undetermined=["b1", "c1"],
    ),
    Vector(
        "scope-13-unknown-executions-outside",
        "Edges among executions the failure does not reach, and edges naming executions "
        "nobody reported on, change nothing: those executions are neither members nor "
        "undetermined.",
        origin="a1",
        checkpoint=2,
        edges=[
            ("b1", "a1", 2, 0),
            ("x1", "y1", 0, 0),
            ("y1", "z1", 5, 1),
            ("c1", "a1", 1, 0),
        ],
        no_facts=frozenset({"x1", "z1", "c1"}),
        targets={"a1": 2, "b1": 0},
        waves=[["b1"], ["a1"]],
    ),
    Vector(
        "scope-14-self-edges",
        "Self-edges are ignored: restoring an execution undoes its own consumption. The "
        "origin's self-edge does not lower its target, b1's does not make it a cycle.",
        origin="a1",
        checkpoint=4,
        edges=[("a1", "a1", 5, 1), ("b1", "a1", 4, 3), ("b1", "b1", 3, 0)],
        targets={"a1": 4, "b1": 3},
        waves=[["b1"], ["a1"]],
        kinds={"a1": "origin"},
    ),
    Vector(
        "scope-15-duplicate-edges",
        "An edge reported twice (by both parties, or retransmitted) counts once.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 1), ("b1", "a1", 0, 1), ("c1", "b1", 1, 0), ("c1", "b1", 1, 0)],
        targets={"a1": 0, "b1": 1, "c1": 0},
        waves=[["c1"], ["b1"], ["a1"]],
    ),
    Vector(
        "scope-16-cycle-lowers-origin",
        "An execution-level cycle: b1 consumed a1's later output, and a1 had consumed "
        "b1's output made after b1's checkpoint 1. Restoring b1 to 1 undoes that output, "
        "so a1 itself goes back to 2, before it consumed it; its reason is that edge. "
        "Both share one wave.",
        origin="a1",
        checkpoint=4,
        edges=[("b1", "a1", 5, 1), ("a1", "b1", 1, 2)],
        targets={"a1": 2, "b1": 1},
        waves=[["a1", "b1"]],
        kinds={"a1": "transitive", "b1": "direct"},
        via={"a1": ("b1", 1)},
        depths={"a1": 0, "b1": 1},
    ),
    Vector(
        "scope-17-cycle-not-closing",
        "A cycle in the graph that the taint does not close: a1 consumed b1's output made "
        "after checkpoint 0, which restoring b1 to 1 keeps. a1 stays at its checkpoint, "
        "and the waves are ordered.",
        origin="a1",
        checkpoint=4,
        edges=[("b1", "a1", 5, 1), ("a1", "b1", 0, 2)],
        targets={"a1": 4, "b1": 1},
        waves=[["b1"], ["a1"]],
        kinds={"a1": "origin"},
    ),
    Vector(
        "scope-18-cycle-with-tail",
        "A cycle downstream of the origin (b1 and c1 used each other's outputs) with a "
        "consumer after it: the cycle is one wave, after d1's and before a1's.",
        origin="a1",
        checkpoint=0,
        edges=[
            ("b1", "a1", 0, 3),
            ("c1", "b1", 3, 2),
            ("b1", "c1", 2, 3),
            ("d1", "c1", 2, 0),
        ],
        targets={"a1": 0, "b1": 3, "c1": 2, "d1": 0},
        waves=[["d1"], ["b1", "c1"], ["a1"]],
    ),
    Vector(
        "scope-19-cycle-reasons",
        "Reasons inside a cycle need not lead back to the origin: b1 is lowered to 1 by "
        "c1, and c1 is at 3 because of b1. Depth is therefore the shortest taint path, "
        "not the length of the reason chain.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 5), ("c1", "b1", 6, 3), ("b1", "c1", 3, 1)],
        targets={"a1": 0, "b1": 1, "c1": 3},
        waves=[["b1", "c1"], ["a1"]],
        via={"b1": ("c1", 3), "c1": ("b1", 6)},
        kinds={"b1": "transitive", "c1": "transitive"},
        depths={"b1": 1, "c1": 2},
    ),
    Vector(
        "scope-20-bound-max-members",
        "max_members 3 (the origin counts) on a fan-out of five: the walk enters the two "
        "first consumers in execution order and escalates, naming the three it did not "
        "enter.",
        origin="a1",
        checkpoint=0,
        edges=[(f"b{i}", "a1", 0, 1) for i in range(1, 6)],
        bounds=Bounds(max_members=3),
        targets={"a1": 0, "b1": 1, "b2": 1},
        waves=[["b1", "b2"], ["a1"]],
        escalation=("max-members", ["b3", "b4", "b5"]),
    ),
    Vector(
        "scope-21-bound-max-depth",
        "max_depth 2 on a chain of five: members up to depth 2, and the depth-3 "
        "execution is the frontier (nothing beyond it is entered or named).",
        origin="a1",
        checkpoint=0,
        edges=[(f"a{i + 1}", f"a{i}", 0, 0) for i in range(1, 5)],
        bounds=Bounds(max_depth=2),
        targets={"a1": 0, "a2": 0, "a3": 0},
        waves=[["a3"], ["a2"], ["a1"]],
        escalation=("max-depth", ["a4"]),
    ),
    Vector(
        "scope-22-bound-domain",
        "Only executions of the trust domain example.org may be entered: b1 belongs to "
        "partner.example and c1 declares no domain (outside every list), so both are the "
        "frontier and d1, reached only through b1, is not entered. The origin is exempt.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 0), ("c1", "a1", 0, 0), ("e1", "a1", 0, 0), ("d1", "b1", 0, 0)],
        facts={
            "a1": (FAILED, RESTORABLE, 3, "partner.example"),
            "b1": (COMPLETED, RESTORABLE, 3, "partner.example"),
            "c1": (COMPLETED, RESTORABLE, 3, None),
            "d1": (COMPLETED, RESTORABLE, 3, "example.org"),
            "e1": (COMPLETED, RESTORABLE, 3, "example.org"),
        },
        bounds=Bounds(allowed_domains=frozenset({"example.org"})),
        targets={"a1": 0, "e1": 0},
        waves=[["e1"], ["a1"]],
        escalation=("domain", ["b1", "c1"]),
    ),
    Vector(
        "scope-23-bound-domain-unknown-facts",
        "Under a domain policy, a tainted execution whose facts are not known yet is "
        "entered (its domain is learned from its halted reply) and undetermined.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 1), ("c1", "b1", 1, 0)],
        facts={
            "a1": (FAILED, RESTORABLE, 3, "example.org"),
            "c1": (COMPLETED, RESTORABLE, 3, "example.org"),
        },
        no_facts=frozenset({"b1"}),
        bounds=Bounds(allowed_domains=frozenset({"example.org"})),
        targets={"a1": 0, "b1": 1, "c1": 0},
        waves=[["c1"], ["b1"], ["a1"]],
        undetermined=["b1"],
    ),
    Vector(
        "scope-24-bounds-exactly-met",
        "Bounds that the set meets exactly stop nothing: the result equals the unbounded "
        "one and carries no escalation.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 0), ("c1", "b1", 0, 0), ("d1", "a1", 0, 0)],
        facts={
            "a1": (FAILED, RESTORABLE, 3, "example.org"),
            "b1": (COMPLETED, RESTORABLE, 3, "example.org"),
            "c1": (COMPLETED, RESTORABLE, 3, "example.org"),
            "d1": (COMPLETED, RESTORABLE, 3, "example.net"),
        },
        bounds=Bounds(
            max_members=4, max_depth=2, allowed_domains=frozenset({"example.org", "example.net"})
        ),
        targets={"a1": 0, "b1": 0, "c1": 0, "d1": 0},
        waves=[["c1", "d1"], ["b1"], ["a1"]],
    ),
    Vector(
        "scope-25-bounds-precedence",
        "Several bounds hit at once: the escalation names the first of domain, max-depth, "
        "max-members that stopped a candidate, and the frontier lists every candidate "
        "that was not entered, whatever stopped it.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 0), ("c1", "a1", 0, 0), ("d1", "a1", 0, 0)],
        facts={
            "a1": (FAILED, RESTORABLE, 3, "example.org"),
            "b1": (COMPLETED, RESTORABLE, 3, "example.org"),
            "c1": (COMPLETED, RESTORABLE, 3, "example.org"),
            "d1": (COMPLETED, RESTORABLE, 3, "elsewhere.example"),
        },
        bounds=Bounds(max_members=2, allowed_domains=frozenset({"example.org"})),
        targets={"a1": 0, "b1": 0},
        waves=[["b1"], ["a1"]],
        escalation=("domain", ["c1", "d1"]),
    ),
    Vector(
        "scope-26-restart-from-zero",
        "Restoring to checkpoint 0 (the implicit initial state: restart from the "
        "beginning) undoes every output the execution made.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 2), ("c1", "a1", 6, 1), ("d1", "a1", 3, 0)],
        targets={"a1": 0, "b1": 2, "c1": 1, "d1": 0},
        waves=[["b1", "c1", "d1"], ["a1"]],
    ),
    Vector(
        "scope-27-reason-tie-break",
        "Several edges set the same target: the reason is the smallest edge in the "
        "draft's order (consumer, producer, produced_after, consumed_after), here b1's "
        "edge over c1's, and of b1's two edges the one with the smaller produced_after.",
        origin="a1",
        checkpoint=0,
        edges=[
            ("b1", "a1", 0, 1),
            ("c1", "a1", 0, 1),
            ("d1", "c1", 1, 0),
            ("d1", "b1", 4, 0),
            ("d1", "b1", 2, 0),
        ],
        targets={"a1": 0, "b1": 1, "c1": 1, "d1": 0},
        waves=[["d1"], ["b1", "c1"], ["a1"]],
        via={"d1": ("b1", 2)},
    ),
    Vector(
        "scope-28-wave-is-longest-path",
        "A member's wave is one more than its highest dependent's: a1 has a dependent in "
        "wave 0 (d1) and one in wave 2 (b1), so it goes in wave 3.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 0), ("c1", "b1", 0, 0), ("d1", "c1", 0, 0), ("d1", "a1", 0, 1)],
        targets={"a1": 0, "b1": 0, "c1": 0, "d1": 0},
        waves=[["d1"], ["c1"], ["b1"], ["a1"]],
        depths={"d1": 1},
    ),
    Vector(
        "scope-29-bound-depth-shortest-path",
        "max_depth counts the shortest taint path: d1 is three hops away along b1 and c1 "
        "but one hop away directly, so max_depth 1 enters it; b1 is entered and c1 (two "
        "hops) is the frontier.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 0), ("c1", "b1", 0, 0), ("d1", "c1", 0, 0), ("d1", "a1", 0, 0)],
        bounds=Bounds(max_depth=1),
        targets={"a1": 0, "b1": 0, "d1": 0},
        waves=[["b1", "d1"], ["a1"]],
        escalation=("max-depth", ["c1"]),
    ),
    Vector(
        "scope-30-bound-max-members-one",
        "max_members 1: only the failed execution is entered; every tainted direct "
        "consumer is the frontier.",
        origin="a1",
        checkpoint=2,
        edges=[("b1", "a1", 2, 0), ("c1", "a1", 1, 0), ("d1", "a1", 5, 3)],
        bounds=Bounds(max_members=1),
        targets={"a1": 2},
        waves=[["a1"]],
        escalation=("max-members", ["b1", "d1"]),
    ),
    Vector(
        "scope-31-bounded-targets-are-true-targets",
        "Under escalation, entered members keep the targets the whole known graph gives "
        "them: b1 is restored to 0 because of c1, which is beyond the depth bound.",
        origin="a1",
        checkpoint=0,
        edges=[("b1", "a1", 0, 3), ("c1", "b1", 3, 2), ("b1", "c1", 2, 0)],
        bounds=Bounds(max_depth=1),
        targets={"a1": 0, "b1": 0},
        waves=[["b1"], ["a1"]],
        via={"b1": ("c1", 2)},
        escalation=("max-depth", ["c1"]),
    ),
    Vector(
        "scope-32-parallel-edges",
        "Two consumptions of one producer by one consumer at different checkpoints are "
        "two edges: only the tainted one counts, and it sets the target.",
        origin="a1",
        checkpoint=3,
        edges=[("b1", "a1", 1, 0), ("b1", "a1", 4, 2)],
        targets={"a1": 3, "b1": 2},
        waves=[["b1"], ["a1"]],
        via={"b1": ("a1", 4)},
    ),
]


def _compact(value: Any) -> bool:
    """Objects with no nested array print on one line (execution refs, edges, facts)."""
    if isinstance(value, dict):
        return all(not isinstance(v, list) and _compact(v) for v in value.values())
    return not isinstance(value, list)


def dumps(value: Any, indent: str = "") -> str:
    """JSON with one line per member, edge, execution and wave: diffable, readable."""
    if isinstance(value, list) and value:
        if all(not isinstance(v, list | dict) for v in value) or (
            all(_compact(v) for v in value) and len(json.dumps(value)) <= 100
        ):
            return json.dumps(value)
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in value) + "\n" + indent + "]"
    if isinstance(value, dict) and not _compact(value):
        inner = indent + "  "
        items = [f"{inner}{json.dumps(k)}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return json.dumps(value)


def render(vector: Vector) -> str:
    case = vector.case()
    result = compute_rollback_set(
        origin=case.origin,
        checkpoint=case.checkpoint,
        edges=case.edges,
        facts=case.facts,
        bounds=case.bounds,
    )
    vector.check(result)
    out = case_to_json(
        ScopeCase(
            description=case.description,
            origin=case.origin,
            checkpoint=case.checkpoint,
            edges=case.edges,
            facts=case.facts,
            bounds=case.bounds,
            expected=result,
        )
    )
    return dumps(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    names = [v.name for v in VECTORS]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate vector names")
    stale = []
    for vector in VECTORS:
        path = HERE / f"{vector.name}.json"
        text = render(vector)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    extra = {p.name for p in HERE.glob("*.json")} - {f"{n}.json" for n in names}
    stale.extend(sorted(extra))
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
