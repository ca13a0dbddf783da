"""Scope vectors checked from outside: the rollback set a target acts on (draft §7, §8).

Each vector (``conformance/scope``, format ``docs/scope-graph-format.md``) is
a dependency graph, the facts of its executions, a failure and the expected
rollback set. The runner plays every execution of the graph: it signals the
failure of the origin and answers each halt with the facts and the dependents
the graph gives, so the target discovers the graph hop by hop (draft §8.1).
What the target then asks is the rollback set it computed:

- the executions it halts and asks to roll back are the expected members;
- each rollback names the expected target checkpoint and action;
- a member is asked only after the members that consumed its tainted output
  answered (draft §8.2);
- where a member's facts are unknown (it never answers its halt), nothing is
  rolled back: the set cannot be completed, and the recovery escalates.

The graph's agents are mapped onto the agents the runner plays (the origin's
onto the deployer, whose ``scope-N`` executions the fixture gives the target
authority over) and its executions renamed per vector, so every vector is an
independent recovery. Vectors with policy bounds
are reported as skipped: bounds are a deployment's local policy, which the
fixture does not set.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from .._messages import Ack, Halt, Message, Resume, Rollback
from .._model import Dependency, ExecRef, Facts, Reversibility
from .._model import Status as ExecStatus
from ._kit import DEPLOYER, INTRUDER, MONITOR, Kit
from ._peers import Script
from ._report import Level

__all__ = ["run_scope_vectors"]

_POOL = (MONITOR, INTRUDER, DEPLOYER)
_SETTLE = 20.0


def _ref(data: dict[str, Any]) -> tuple[str, str]:
    return (str(data["agent"]), str(data["exec"]))


class _Mapping:
    """Renames one vector's executions onto the runner's agents."""

    def __init__(self, index: int, origin: tuple[str, str]) -> None:
        self.index = index
        self.agents: dict[str, str] = {origin[0]: DEPLOYER}
        self.refs: dict[tuple[str, str], ExecRef] = {
            origin: ExecRef(agent=DEPLOYER, exec=f"scope-{index}")
        }

    def __call__(self, ref: tuple[str, str]) -> ExecRef:
        if ref not in self.refs:
            agent = self.agents.setdefault(ref[0], _POOL[len(self.agents) % len(_POOL)])
            self.refs[ref] = ExecRef(agent=agent, exec=f"scope-{self.index}.{len(self.refs)}")
        return self.refs[ref]

    def edge(self, data: dict[str, Any]) -> Dependency:
        return Dependency(
            consumer=self(_ref(data["consumer"])),
            producer=self(_ref(data["producer"])),
            produced_after=int(data["produced_after"]),
            consumed_after=int(data["consumed_after"]),
        )


async def _play(kit: Kit, index: int, name: str, vector: dict[str, Any]) -> None:
    g = "scope vectors"
    p = kit.peers
    failure = vector["failure"]
    origin_key = _ref(failure["execution"])
    rename = _Mapping(index, origin_key)
    origin = rename(origin_key)
    edges = [rename.edge(e) for e in vector["edges"]]
    known: dict[ExecRef, Facts] = {}
    for item in vector.get("executions", []):
        f = item["facts"]
        known[rename(_ref(item["execution"]))] = Facts(
            status=ExecStatus(f["status"]),
            reversibility=Reversibility(f["reversibility"]),
            checkpoint=int(f["checkpoint"]),
            domain=f.get("domain"),
        )
    expected = vector["expected"]
    members = {rename(_ref(m["execution"])): m for m in expected["members"]}
    undetermined = {rename(_ref(r)) for r in expected["undetermined"]}
    for ref in set(members) | set(known):
        dependents = tuple(e for e in edges if e.producer == ref)
        facts = known.get(ref)
        p.scripts[ref] = Script(
            facts=facts
            if facts is not None
            else Facts(
                status=ExecStatus.COMPLETED, reversibility=Reversibility.RESTORABLE, checkpoint=0
            ),
            dependents=dependents,
            drop=frozenset({"halt"}) if facts is None else frozenset(),
        )
    mark = len(p.inbox)
    signal = kit.signal(DEPLOYER, origin, checkpoint=int(failure["checkpoint"]))
    x = await p.send(signal)
    ack = x.reply if isinstance(x.reply, Ack) else None
    if ack is None or ack.recovery is None:
        kit.check(
            f"scope.{name}",
            g,
            Level.MUST,
            "7",
            "the failure signal opens a recovery",
            False,
            f"HTTP {x.status}",
        )
        return
    rid = ack.recovery
    answering = [r for r in members if r not in undetermined]
    deadline = asyncio.get_running_loop().time() + _SETTLE

    def mine(m: Message) -> bool:
        return m.recovery == rid

    while asyncio.get_running_loop().time() < deadline:
        seen = p.received(mine, mark)
        resumed = {r.message.execution for r in seen if isinstance(r.message, Resume)}
        if undetermined:
            # Members behind one that never answers cannot be discovered; the
            # recovery is over when every member that answered was released.
            asked = {r.message.execution for r in seen if isinstance(r.message, Halt)}
            answering = [r for r in asked if r not in undetermined]
        if answering and all(r in resumed for r in answering):
            break
        await asyncio.sleep(0.05)
    seen = p.received(mine, mark)
    halted = {r.message.execution for r in seen if isinstance(r.message, Halt)}
    rollbacks: dict[ExecRef, Any] = {}
    for r in seen:
        if isinstance(r.message, Rollback) and r.message.execution not in rollbacks:
            rollbacks[r.message.execution] = r
    desc = str(vector.get("description", ""))[:80]
    if undetermined:
        kit.check(
            f"scope.{name}.contained",
            g,
            Level.MUST,
            "8.1",
            f"only members are halted: {desc}",
            bool(halted) and halted <= set(members),
            f"halted {len(halted)} of {len(members)}",
        )
        kit.check(
            f"scope.{name}.undetermined",
            g,
            Level.MUST,
            "7",
            "with a member's facts unknown, nothing is rolled back",
            not rollbacks,
            f"{len(rollbacks)} rollback(s)",
        )
        return
    kit.check(
        f"scope.{name}.contained",
        g,
        Level.MUST,
        "8.1",
        f"exactly the set's members are halted: {desc}",
        halted == set(members),
        f"halted {len(halted)}, expected {len(members)}",
    )
    wrong = []
    for ref, m in members.items():
        got = rollbacks.get(ref)
        if got is None:
            wrong.append(f"{ref.exec}: no rollback")
            continue
        message = got.message
        assert isinstance(message, Rollback)
        if message.target != m["target"] or message.action.value != m["action"]:
            wrong.append(
                f"{ref.exec}: {message.target}/{message.action.value}, "
                f"expected {m['target']}/{m['action']}"
            )
    extra = sorted(r.exec for r in rollbacks if r not in members)
    kit.check(
        f"scope.{name}.set",
        g,
        Level.MUST,
        "7",
        "the rollbacks name exactly the expected members, targets and actions",
        not wrong and not extra,
        "; ".join(wrong + [f"not a member: {e}" for e in extra])[:300],
    )
    wave = {rename(_ref(ref)): w for w, refs in enumerate(expected["waves"]) for ref in refs}
    late = [
        f"{e.producer.exec} before {e.consumer.exec}"
        for e in edges
        if e.producer in rollbacks
        and e.consumer in rollbacks
        and wave.get(e.consumer, 0) < wave.get(e.producer, 0)
        and rollbacks[e.consumer].at > rollbacks[e.producer].at
    ]
    kit.check(
        f"scope.{name}.order",
        g,
        Level.MUST,
        "8.2",
        "a member is asked to roll back after the members that used its tainted output",
        not late,
        "; ".join(late)[:300],
    )


async def run_scope_vectors(kit: Kit, directory: Path) -> None:
    g = "scope vectors"
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        kit.check(
            "scope.present",
            g,
            Level.SHOULD,
            "7",
            "scope vectors found",
            None,
            f"none under {directory}",
        )
        return
    plays = []
    for index, path in enumerate(files, 1):
        try:
            vector = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            kit.check(f"scope.{path.stem}", g, Level.MUST, "7", "vector readable", None, str(exc))
            continue
        if vector.get("bounds"):
            kit.check(
                f"scope.{path.stem}",
                g,
                Level.MUST,
                "7",
                str(vector.get("description", ""))[:80],
                None,
                "bounds are the target's local policy; the fixture sets none",
            )
            continue
        plays.append(_play(kit, index, path.stem, vector))
    # A few at a time: the fixture's short timers (for the timeout scenario)
    # would turn a target slowed by many concurrent recoveries into "unreachable".
    limit = asyncio.Semaphore(4)

    async def limited(play: Coroutine[Any, Any, None]) -> None:
        async with limit:
            await play

    await asyncio.gather(*(limited(play) for play in plays))
