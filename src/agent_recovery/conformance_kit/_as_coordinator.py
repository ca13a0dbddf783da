"""Scenarios with the target as coordinator: the runner plays the members.

The fixture makes the target the recovery authority of executions run by the
deployer and the monitor, whose recovery endpoint is the runner's listener.
The runner signals a failure, answers halts with the facts and dependents
its script says, and watches what the target asks, of whom, and in what order.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from .._errors import ErrorCode
from .._messages import (
    Ack,
    Error,
    Halt,
    Halted,
    Message,
    Resume,
    Rollback,
    RollbackResult,
    StatusQuery,
)
from .._model import Action, Dependency, ExecRef, ReasonKind, Severity
from ._kit import DEPLOYER, INTRUDER, MONITOR, Kit
from ._peers import Exchange, Received, Script, facts
from ._report import Level

__all__ = ["run_coordinator_scenarios"]

MUST, SHOULD = Level.MUST, Level.SHOULD
_WAIT = 20.0


def _show(x: Exchange) -> str:
    kind = "-" if x.reply is None else x.reply.TYPE
    return f"HTTP {x.status}, reply {kind}, code {x.code.value if x.code else '-'}"


def _for(kind: type[Message], ref: ExecRef, recovery: str | None) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return (
            isinstance(m, kind)
            and getattr(m, "execution", None) == ref
            and (recovery is None or m.recovery == recovery)
        )

    return match


def _first(items: list[Received]) -> Received | None:
    return items[0] if items else None


async def _open(kit: Kit, origin: ExecRef, checkpoint: int, group: str, name: str) -> str | None:
    """Signal the failure of ``origin``; return the recovery id from the ack."""
    signal = kit.signal(origin.agent, origin, checkpoint=checkpoint)
    x = await kit.peers.send(signal)
    ack = x.reply if isinstance(x.reply, Ack) and x.reply.reply_to == signal.id else None
    kit.check(
        f"cc.{name}.ack",
        group,
        MUST,
        "6.2",
        "a failure signal from the execution's agent is acknowledged with the recovery id",
        ack is not None and ack.recovery is not None and ack.trigger == signal.id,
        _show(x),
    )
    return None if ack is None else ack.recovery


async def happy(kit: Kit) -> None:
    g = "coordinator: happy path"
    p = kit.peers
    origin = ExecRef(agent=DEPLOYER, exec="cc-happy")
    watch = ExecRef(agent=MONITOR, exec="cc-happy-watch")
    early = ExecRef(agent=MONITOR, exec="cc-happy-early")
    p.scripts[origin] = Script(
        facts=facts("failed", "restorable", 2),
        dependents=(
            # used output made after the origin's checkpoint 2: tainted by restoring to 1
            Dependency(consumer=watch, producer=origin, produced_after=2, consumed_after=1),
            # used output made before checkpoint 1: not tainted (draft §7)
            Dependency(consumer=early, producer=origin, produced_after=0, consumed_after=0),
        ),
    )
    p.scripts[watch] = Script(facts=facts("completed", "restorable", 3))
    p.scripts[early] = Script(facts=facts("completed", "restorable", 1))
    mark = len(p.inbox)
    rid = await _open(kit, origin, 1, g, "happy")
    if rid is None:
        return
    resumed = [
        await p.wait_for(_for(Resume, ref, rid), timeout=_WAIT, after=mark)
        for ref in (origin, watch)
    ]
    seen = p.inbox[mark:]
    halts = {r.message.execution: r for r in seen if isinstance(r.message, Halt)}
    rollbacks = {
        r.message.execution: r
        for r in seen
        if isinstance(r.message, Rollback) and r.message.recovery == rid
    }
    kit.check(
        "cc.happy.halt-origin",
        g,
        MUST,
        "8.1",
        "the failed execution is halted",
        origin in halts,
        f"halted: {sorted(r.exec for r in halts)}",
    )
    kit.check(
        "cc.happy.halt-dependent",
        g,
        MUST,
        "8.1",
        "a dependent named in a halted reply is halted in turn (discovery hop by hop)",
        watch in halts,
        f"halted: {sorted(r.exec for r in halts)}",
    )
    untouched = [r for r in seen if getattr(r.message, "execution", None) == early]
    kit.check(
        "cc.happy.precise",
        g,
        MUST,
        "7",
        "a consumer of output made before the restore checkpoint is not contained or rolled back",
        not untouched,
        f"{len(untouched)} message(s) for {early.exec}",
    )
    last_halt = max((r.at for r in halts.values()), default=0.0)
    first_rollback = min((r.at for r in rollbacks.values()), default=float("inf"))
    kit.check(
        "cc.happy.contain-first",
        g,
        MUST,
        "8.2",
        "no rollback is sent before every member of the set was halted",
        bool(rollbacks) and first_rollback >= last_halt,
        f"{len(rollbacks)} rollback(s)",
    )
    rw, ro = rollbacks.get(watch), rollbacks.get(origin)
    if rw is not None:
        m = rw.message
        assert isinstance(m, Rollback)
        kit.check(
            "cc.happy.target-dependent",
            g,
            MUST,
            "7",
            "the dependent's target is its checkpoint before it consumed (1), action restore",
            (m.target, m.action) == (1, Action.RESTORE),
            f"{m.target} {m.action}",
        )
        kit.check(
            "cc.happy.reason",
            g,
            SHOULD,
            "7",
            "the dependent's reason is direct, via the edge that brought it in",
            m.reason.kind is ReasonKind.DIRECT
            and m.reason.via is not None
            and m.reason.via.consumer == watch,
            f"{m.reason}",
        )
    else:
        kit.check(
            "cc.happy.target-dependent",
            g,
            MUST,
            "7",
            "the dependent is rolled back",
            False,
            "no rollback",
        )
    if ro is not None:
        m = ro.message
        assert isinstance(m, Rollback)
        kit.check(
            "cc.happy.target-origin",
            g,
            MUST,
            "7",
            "the failed execution is restored to its last good checkpoint (1)",
            (m.target, m.action) == (1, Action.RESTORE) and m.reason.kind is ReasonKind.ORIGIN,
            f"{m.target} {m.action} {m.reason.kind}",
        )
    else:
        kit.check(
            "cc.happy.target-origin",
            g,
            MUST,
            "7",
            "the origin is rolled back",
            False,
            "no rollback",
        )
    kit.check(
        "cc.happy.reverse-order",
        g,
        MUST,
        "8.2",
        "a member is asked to roll back only after its dependents in the set finished",
        rw is not None and ro is not None and rw.at <= ro.at,
        "" if rw is None or ro is None else f"dependent at {rw.at:.3f}, origin at {ro.at:.3f}",
    )
    kit.check(
        "cc.happy.resume",
        g,
        MUST,
        "8.3",
        "every member is resumed after its rollback result",
        all(r is not None for r in resumed)
        and all(
            r.at >= rollbacks[ref].at
            for r, ref in zip(resumed, (origin, watch), strict=True)
            if r is not None and ref in rollbacks
        ),
        f"{sum(r is not None for r in resumed)} of 2 resumed",
    )


async def timeout_unknown(kit: Kit) -> None:
    g = "coordinator: timeout gives unknown"
    p = kit.peers
    origin = ExecRef(agent=DEPLOYER, exec="cc-timeout")
    p.scripts[origin] = Script(facts=facts("failed", "restorable", 2), drop=frozenset({"rollback"}))
    mark = len(p.inbox)
    rid = await _open(kit, origin, 1, g, "timeout")
    if rid is None:
        return
    first = await p.wait_for(_for(Rollback, origin, rid), timeout=_WAIT, after=mark)
    kit.check(
        "cc.timeout.rollback",
        g,
        MUST,
        "8.2",
        "the halted origin is asked to roll back",
        first is not None,
    )
    if first is None:
        return
    rollback = first.message
    assert isinstance(rollback, Rollback)
    await forged(kit, origin, rollback)
    query = await p.wait_for(_for(StatusQuery, origin, rid), timeout=_WAIT, after=mark)
    before = [r for r in p.inbox[mark:] if query is None or r.at <= query.at]
    retries = [r for r in before if isinstance(r.message, Rollback)]
    early_resume = [r for r in before if isinstance(r.message, Resume)]
    kit.check(
        "cc.timeout.retransmit",
        g,
        SHOULD,
        "8.4",
        "an unanswered rollback is retransmitted before the coordinator gives up",
        len(retries) >= 2,
        f"{len(retries)} rollback transmission(s)",
    )
    kit.check(
        "cc.timeout.status-query",
        g,
        MUST,
        "8.4",
        "a rollback that is never answered leads to status queries (unknown, not success)",
        query is not None,
    )
    kit.check(
        "cc.timeout.no-release",
        g,
        MUST,
        "8.4",
        "a member whose outcome is unknown is not resumed as if it had succeeded",
        not early_resume,
        f"{len(early_resume)} resume(s) before the status query",
    )
    if query is None:
        return
    resume = await p.wait_for(_for(Resume, origin, rid), timeout=_WAIT, after=mark)
    kit.check(
        "cc.timeout.resolved",
        g,
        MUST,
        "8.4",
        "once a status resolves the outcome, the member is resumed",
        resume is not None and resume.at >= query.at,
    )


async def forged(kit: Kit, origin: ExecRef, rollback: Rollback) -> None:
    """Forged rollback results while the target waits for a real one (attack corpus §9.2)."""
    g = "coordinator: forged replies"
    p = kit.peers
    assert rollback.recovery is not None and rollback.trigger is not None

    def result(sender: str, **changes: object) -> RollbackResult:
        base = RollbackResult(
            id=p.next_id("fr"),
            sender=sender,
            recipient=kit.target,
            iat=p.now(),
            recovery=rollback.recovery,
            trigger=rollback.trigger,
            reply_to=rollback.id,
            execution=origin,
            outcome="restored",
            checkpoint=rollback.target,
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    cases = [
        ("forged-result-by-intruder", result(INTRUDER), ErrorCode.UNAUTHORIZED),
        ("forged-result-by-other-member", result(MONITOR), ErrorCode.UNAUTHORIZED),
        (
            "result-answers-no-request",
            result(DEPLOYER, reply_to=p.next_id("nothing")),
            ErrorCode.UNAUTHORIZED,
        ),
        (
            "result-wrong-trigger",
            result(DEPLOYER, trigger=p.next_id("sig")),
            ErrorCode.WRONG_RECOVERY,
        ),
    ]
    for name, message, code in cases:
        x = await p.send(message)
        kit.check(
            f"attack.{name}",
            g,
            MUST,
            "9.2",
            f"a rollback-result that is not the member's answer is refused with {code}",
            x.status >= 400 and x.code is code,
            _show(x),
        )


async def duplicates_and_freshness(kit: Kit) -> None:
    g = "coordinator: duplicates and freshness"
    p = kit.peers
    origin = ExecRef(agent=DEPLOYER, exec="cc-duplicate")
    p.scripts[origin] = Script(facts=facts("failed", "restorable", 1))
    signal = kit.signal(DEPLOYER, origin, checkpoint=0)
    token = p.sign(signal)
    first = await p.post_raw(token)
    second = await p.post_raw(token)
    kit.check(
        "cc.duplicate.exact",
        g,
        MUST,
        "9.3",
        "an exact duplicate failure signal gets the cached reply and opens nothing "
        "(attack replay-exact-failure-signal)",
        first.status == 200 and first.body == second.body,
        f"{_show(first)} / {_show(second)}",
    )
    x = await p.send(dataclasses.replace(signal, checkpoint=1))
    kit.check(
        "cc.duplicate.altered",
        g,
        MUST,
        "9.3",
        "the same signal id with other content is refused with conflict "
        "(attack replay-altered-same-id)",
        x.status >= 400 and x.code is ErrorCode.CONFLICT,
        _show(x),
    )
    for name, offset in (("replay-stale-never-seen", -600_000), ("replay-future-iat", 600_000)):
        x = await p.send(kit.signal(DEPLOYER, origin, checkpoint=0, iat=p.now() + offset))
        kit.check(
            f"attack.{name}",
            g,
            MUST,
            "9.3",
            f"a message issued {abs(offset) // 60_000} minutes "
            f"{'ago' if offset < 0 else 'ahead'} is refused with stale",
            x.status >= 400 and x.code is ErrorCode.STALE,
            _show(x),
        )
    x = await p.send(kit.signal(INTRUDER, ExecRef(agent=DEPLOYER, exec="deploy-1"), checkpoint=0))
    kit.check(
        "attack.signal-from-non-owner",
        g,
        MUST,
        "9.2",
        "a failure signal from neither the execution's agent nor its authority is refused "
        "with unauthorized",
        x.status >= 400 and x.code is ErrorCode.UNAUTHORIZED and isinstance(x.reply, Error),
        _show(x),
    )
    x = await p.send(kit.signal(DEPLOYER, ExecRef(agent=DEPLOYER, exec="no-such"), checkpoint=0))
    kit.check(
        "attack.signal-unknown-execution",
        g,
        MUST,
        "9.2",
        "a failure signal for an execution the coordinator has no authority over is refused "
        "with unknown-execution",
        x.status >= 400 and x.code is ErrorCode.UNKNOWN_EXECUTION,
        _show(x),
    )
    rid, trig = kit.recovery()
    halted = Halted(
        id=p.next_id("hd"),
        sender=DEPLOYER,
        recipient=kit.target,
        iat=p.now(),
        recovery=rid,
        trigger=trig,
        reply_to=p.next_id("h"),
        execution=origin,
        facts=facts("failed", "restorable", 1),
    )
    x = await p.send(halted)
    kit.check(
        "attack.halted-unknown-recovery",
        g,
        MUST,
        "9.2",
        "a halted reply for a recovery the coordinator does not know is refused with "
        "unknown-recovery",
        x.status >= 400 and x.code is ErrorCode.UNKNOWN_RECOVERY,
        _show(x),
    )
    if isinstance(first.reply, Ack) and first.reply.recovery is not None:
        # Let the duplicate-signal recovery finish before the next scenario.
        await p.wait_for(_for(Resume, origin, first.reply.recovery), timeout=_WAIT)


async def rate_limit(kit: Kit) -> None:
    g = "coordinator: rate limit"
    p = kit.peers
    execution = ExecRef(agent=MONITOR, exec="cc-rate")
    accepted = 0
    refusal: Exchange | None = None
    for _ in range(kit.burst + 20):
        x = await p.send(kit.signal(MONITOR, execution, checkpoint=0, severity=Severity.WARNING))
        if x.status == 200:
            accepted += 1
            continue
        refusal = x
        break
    kit.check(
        "cc.rate.limited",
        g,
        SHOULD,
        "13.4",
        "failure signals beyond an agent's rate limit are refused with rate-limited "
        "(attack rate-limited-failure-signal)",
        refusal is not None and refusal.code is ErrorCode.RATE_LIMITED,
        f"{accepted} accepted" + ("" if refusal is None else f", then {_show(refusal)}"),
    )
    kit.check(
        "cc.rate.retry-after",
        g,
        MUST,
        "12.2",
        "a rate-limited refusal is 429 with Retry-After",
        refusal is None
        or refusal.code is not ErrorCode.RATE_LIMITED
        or (refusal.status == 429 and "retry-after" in refusal.headers),
        "" if refusal is None else _show(refusal),
    )


async def run_coordinator_scenarios(kit: Kit) -> None:
    await happy(kit)
    await timeout_unknown(kit)
    await duplicates_and_freshness(kit)
    await asyncio.sleep(0)
    await rate_limit(kit)
