"""Scenarios with the target as participant: the runner coordinates the target's executions.

The fixture gives the target executions whose recovery authority is the
deployer and the monitor, both played by the runner. Each scenario uses its
own execution, because a participant's state is sticky (draft §8.6).
"""

from __future__ import annotations

import dataclasses

from .._errors import ErrorCode
from .._messages import Ack, Error, Halted, Message, RollbackResult, Status
from .._model import Action, Dependency, ExecRef, Outcome, Reversibility
from .._model import Status as ExecStatus
from ._kit import DEPLOYER, INTRUDER, MONITOR, Kit
from ._peers import Exchange
from ._report import Level

__all__ = ["run_participant_scenarios"]

MUST, SHOULD = Level.MUST, Level.SHOULD


def _is(x: Exchange, kind: type[Message], reply_to: str) -> bool:
    return isinstance(x.reply, kind) and getattr(x.reply, "reply_to", None) == reply_to


def _refused(x: Exchange, *codes: ErrorCode) -> bool:
    return x.status >= 400 and (not codes or x.code in codes)


def _show(x: Exchange) -> str:
    kind = "-" if x.reply is None else x.reply.TYPE
    return f"HTTP {x.status}, reply {kind}, code {x.code.value if x.code else '-'}"


async def _result(kit: Kit, x: Exchange, request_id: str) -> RollbackResult | None:
    """The rollback-result for ``request_id``: in the response, or posted to the runner later."""
    if isinstance(x.reply, RollbackResult) and x.reply.reply_to == request_id:
        return x.reply
    got = await kit.peers.wait_for(
        lambda m: isinstance(m, RollbackResult) and m.reply_to == request_id, timeout=10
    )
    return None if got is None else got.message  # type: ignore[return-value]


async def happy(kit: Kit) -> None:
    g = "participant: happy path"
    p = kit.peers
    ex = kit.mine("pt-happy")
    rid, trig = kit.recovery()
    halt = kit.halt(DEPLOYER, ex, rid, trig, p.now())
    x = await p.send(halt)
    halted = x.reply if isinstance(x.reply, Halted) else None
    kit.check(
        "pt.halt.halted",
        g,
        MUST,
        "8.1",
        "a halt from the recovery authority is answered with halted (200)",
        x.status == 200 and _is(x, Halted, halt.id),
        _show(x),
    )
    if halted is not None:
        f = halted.facts
        kit.check(
            "pt.halt.facts",
            g,
            MUST,
            "5.2",
            "halted reports the declared facts: restorable, active, checkpoint 2",
            (f.reversibility, f.status, f.checkpoint)
            == (Reversibility.RESTORABLE, ExecStatus.ACTIVE, 2),
            f"{f}",
        )
        edge = Dependency(
            consumer=ExecRef(agent=MONITOR, exec="watch-h"),
            producer=ex,
            produced_after=2,
            consumed_after=0,
        )
        kit.check(
            "pt.halt.dependents",
            g,
            MUST,
            "8.1",
            "halted lists the dependents the execution knows of",
            edge in halted.dependents,
            f"{halted.dependents}",
        )
    rollback = kit.rollback(DEPLOYER, ex, rid, trig, target=1, action=Action.CANCEL_RESTORE)
    x = await p.send(rollback)
    kit.check(
        "pt.rollback.accepted",
        g,
        MUST,
        "8.2",
        "a rollback from the owning recovery is accepted (ack or rollback-result)",
        x.status == 200 and (_is(x, Ack, rollback.id) or _is(x, RollbackResult, rollback.id)),
        _show(x),
    )
    result = await _result(kit, x, rollback.id) if x.status == 200 else None
    kit.check(
        "pt.rollback.result",
        g,
        MUST,
        "8.2",
        "the rollback-result reports restored at a checkpoint no later than the target",
        result is not None and result.outcome == "restored" and result.checkpoint <= 1,
        f"{result}",
    )
    again = kit.rollback(DEPLOYER, ex, rid, trig, target=1, action=Action.CANCEL_RESTORE)
    x = await p.send(again)
    kit.check(
        "pt.rollback.repeated",
        g,
        MUST,
        "8.6",
        "a repeated rollback (new id) is answered with the recorded result, not redone",
        _is(x, RollbackResult, again.id) and getattr(x.reply, "outcome", None) == "restored",
        _show(x),
    )
    query = kit.status_query(DEPLOYER, ex, rid, trig)
    x = await p.send(query)
    kit.check(
        "pt.status.outcome",
        g,
        MUST,
        "8.4",
        "status reports the outcome of the recovery that asks",
        _is(x, Status, query.id) and getattr(x.reply, "outcome", None) == "restored",
        _show(x),
    )
    resume = kit.resume(DEPLOYER, ex, rid, trig)
    x = await p.send(resume)
    kit.check(
        "pt.resume.ack",
        g,
        MUST,
        "8.3",
        "resume is acknowledged",
        _is(x, Ack, resume.id),
        _show(x),
    )
    query = kit.status_query(DEPLOYER, ex, rid, trig)
    x = await p.send(query)
    kit.check(
        "pt.status.released",
        g,
        SHOULD,
        "8.4",
        "after resume, status reports idle and keeps the outcome",
        _is(x, Status, query.id)
        and getattr(x.reply, "state", None) == "idle"
        and getattr(x.reply, "outcome", None) == "restored",
        _show(x),
    )


async def other_reversibility(kit: Kit) -> None:
    g = "participant: compensable and irreversible members"
    p = kit.peers
    for exec_id, action, outcome, section in (
        ("pt-compensable", Action.COMPENSATE, Outcome.COMPENSATED, "8.2"),
        ("pt-irreversible", Action.NONE, Outcome.IRREVERSIBLE, "8.2"),
    ):
        ex = kit.mine(exec_id)
        rid, trig = kit.recovery()
        x = await p.send(kit.halt(MONITOR, ex, rid, trig, p.now()))
        ok = isinstance(x.reply, Halted)
        if ok:
            assert isinstance(x.reply, Halted)
            declared = (
                Reversibility.COMPENSABLE
                if action is Action.COMPENSATE
                else (Reversibility.IRREVERSIBLE)
            )
            kit.check(
                f"pt.{exec_id}.declared",
                g,
                MUST,
                "5.2",
                f"halted reports the reversibility declared at start ({declared})",
                x.reply.facts.reversibility is declared,
                f"{x.reply.facts}",
            )
        rollback = kit.rollback(MONITOR, ex, rid, trig, target=0, action=action)
        x = await p.send(rollback)
        result = await _result(kit, x, rollback.id) if x.status == 200 else None
        good = result is not None and result.outcome == outcome.value
        if outcome is Outcome.IRREVERSIBLE:
            good = good and result is not None and len(result.residual) > 0
            title = "action none is answered irreversible, disclosing residual effects"
        else:
            title = "action compensate is answered compensated"
        kit.check(f"pt.{exec_id}.outcome", g, MUST, section, title, good, f"{result}")
        await p.send(kit.resume(MONITOR, ex, rid, trig))


async def duplicates(kit: Kit) -> None:
    g = "participant: duplicates"
    p = kit.peers
    ex = kit.mine("pt-duplicate")
    rid, trig = kit.recovery()
    halt = kit.halt(DEPLOYER, ex, rid, trig, p.now())
    token = p.sign(halt)
    first = await p.post_raw(token)
    second = await p.post_raw(token)
    kit.check(
        "pt.duplicate.exact",
        g,
        MUST,
        "9.3",
        "an exact duplicate is answered with the reply cached for the original",
        first.status == 200 and second.status == 200 and first.body == second.body,
        f"{_show(first)} / {_show(second)}",
    )
    x = await p.send(dataclasses.replace(halt, created=halt.created + 1))
    kit.check(
        "pt.duplicate.altered",
        g,
        MUST,
        "9.3",
        "the same message id with other content is refused with conflict",
        _refused(x, ErrorCode.CONFLICT),
        _show(x),
    )
    await p.send(kit.resume(DEPLOYER, ex, rid, trig))


async def late(kit: Kit) -> None:
    g = "participant: late messages"
    p = kit.peers
    ex = kit.mine("pt-late")
    rid, trig = kit.recovery()
    await p.send(kit.halt(DEPLOYER, ex, rid, trig, created := p.now()))
    await p.send(kit.resume(DEPLOYER, ex, rid, trig))
    x = await p.send(kit.halt(DEPLOYER, ex, rid, trig, created))
    kit.check(
        "pt.late.halt",
        g,
        MUST,
        "8.6",
        "a halt of a recovery that already resumed the execution is refused",
        _refused(x),
        _show(x),
    )
    kit.check(
        "pt.late.halt.code",
        g,
        SHOULD,
        "8.6",
        "... with invalid-state",
        _refused(x, ErrorCode.INVALID_STATE),
        _show(x),
    )
    x = await p.send(kit.rollback(DEPLOYER, ex, rid, trig, target=1, action=Action.RESTORE))
    kit.check(
        "pt.late.rollback",
        g,
        MUST,
        "8.6",
        "a rollback of a recovery that released the execution without rollback is refused",
        _refused(x),
        _show(x),
    )
    resume = kit.resume(DEPLOYER, ex, rid, trig)
    x = await p.send(resume)
    kit.check(
        "pt.late.resume",
        g,
        SHOULD,
        "8.6",
        "a late resume is acknowledged again",
        _is(x, Ack, resume.id),
        _show(x),
    )


async def unknown_recovery(kit: Kit) -> None:
    g = "participant: unknown recovery"
    p = kit.peers
    ex = kit.mine("pt-unknown")
    rid, trig = kit.recovery()
    x = await p.send(kit.rollback(DEPLOYER, ex, rid, trig, target=0, action=Action.RESTORE))
    kit.check(
        "pt.unknown.rollback",
        g,
        MUST,
        "8.6",
        "a rollback for a recovery that never halted the execution is refused",
        _refused(x),
        _show(x),
    )
    query = kit.status_query(DEPLOYER, ex, rid, trig)
    x = await p.send(query)
    kit.check(
        "pt.unknown.status",
        g,
        SHOULD,
        "8.4",
        "status for a recovery that holds nothing says idle, without an outcome",
        _is(x, Status, query.id)
        and getattr(x.reply, "state", None) == "idle"
        and getattr(x.reply, "outcome", "x") is None,
        _show(x),
    )
    rid2, trig2 = kit.recovery()
    resume = kit.resume(DEPLOYER, ex, rid2, trig2)
    x = await p.send(resume)
    kit.check(
        "pt.unknown.resume",
        g,
        SHOULD,
        "8.3",
        "a resume that overtook its halt is acknowledged",
        _is(x, Ack, resume.id),
        _show(x),
    )
    x = await p.send(kit.halt(DEPLOYER, ex, rid2, trig2, p.now()))
    kit.check(
        "pt.unknown.overtaken-halt",
        g,
        MUST,
        "8.3",
        "the halt that arrives after its resume is refused (nobody would release it)",
        _refused(x),
        _show(x),
    )
    x = await p.send(kit.halt(DEPLOYER, kit.mine("no-such-execution"), rid, trig, p.now()))
    kit.check(
        "pt.unknown.execution",
        g,
        MUST,
        "9.2",
        "a halt for an execution the target does not run is refused with unknown-execution "
        "(attack halt-for-unknown-execution)",
        _refused(x, ErrorCode.UNKNOWN_EXECUTION),
        _show(x),
    )


async def authority(kit: Kit) -> None:
    g = "participant: recovery authority"
    p = kit.peers
    ex = kit.mine("pt-authority")  # its authority is the deployer alone
    for who, case in ((MONITOR, "another-member"), (INTRUDER, "intruder")):
        rid, trig = kit.recovery()
        halt = kit.halt(who, ex, rid, trig, p.now())
        x = await p.send(halt)
        signed = isinstance(x.reply, Error) and x.reply.reply_to == halt.id
        kit.check(
            f"pt.authority.halt.{case}",
            g,
            MUST,
            "9.2",
            f"a halt from outside the recovery authority ({case}) is refused with unauthorized"
            " (attack halt-from-unauthorized-coordinator)",
            _refused(x, ErrorCode.UNAUTHORIZED),
            _show(x),
        )
        kit.check(
            f"pt.authority.signed.{case}",
            g,
            MUST,
            "9",
            "the refusal of an authenticated sender carries the receiver's signed error",
            signed,
            _show(x),
        )
        rollback = kit.rollback(who, ex, rid, trig, target=0, action=Action.RESTORE)
        x = await p.send(rollback)
        kit.check(
            f"pt.authority.rollback.{case}",
            g,
            MUST,
            "9.2",
            f"a rollback from outside the recovery authority ({case}) is refused"
            " (attack rollback-from-unauthorized-coordinator)",
            _refused(x, ErrorCode.UNAUTHORIZED),
            _show(x),
        )
    # The legitimate authority is still obeyed: nothing changed.
    rid, trig = kit.recovery()
    halt = kit.halt(DEPLOYER, ex, rid, trig, p.now())
    x = await p.send(halt)
    kit.check(
        "pt.authority.unchanged",
        g,
        MUST,
        "9",
        "after the refusals, the authority's halt finds the execution as it was",
        _is(x, Halted, halt.id)
        and getattr(x.reply, "facts", None) is not None
        and x.reply.facts.checkpoint == 1,  # type: ignore[union-attr]
        _show(x),
    )
    await p.send(kit.resume(DEPLOYER, ex, rid, trig))


async def busy_and_takeover(kit: Kit) -> None:
    g = "participant: busy and takeover"
    p = kit.peers
    ex = kit.mine("pt-busy")
    now = p.now()
    rid_a, trig_a = kit.recovery()
    x = await p.send(kit.halt(DEPLOYER, ex, rid_a, trig_a, now))
    kit.check(
        "pt.busy.first",
        g,
        MUST,
        "8.1",
        "the first recovery halts the execution",
        isinstance(x.reply, Halted),
        _show(x),
    )
    rid_b, trig_b = kit.recovery()
    x = await p.send(kit.halt(MONITOR, ex, rid_b, trig_b, now + 5_000))
    owner = x.reply.owner if isinstance(x.reply, Error) else None
    kit.check(
        "pt.busy.younger",
        g,
        MUST,
        "8.5",
        "a younger recovery's halt is refused with busy",
        _refused(x, ErrorCode.BUSY),
        _show(x),
    )
    kit.check(
        "pt.busy.owner",
        g,
        MUST,
        "8.5",
        "busy names the owning recovery and its creation time",
        owner is not None and owner.recovery == rid_a and owner.created == now,
        f"{owner}",
    )
    kit.check(
        "pt.busy.retry-after",
        g,
        MUST,
        "12.2",
        "busy carries Retry-After",
        "retry-after" in x.headers,
        f"{x.headers.get('retry-after')}",
    )
    rid_c, trig_c = kit.recovery()
    x = await p.send(kit.halt(MONITOR, ex, rid_c, trig_c, now - 5_000))
    kit.check(
        "pt.takeover.older",
        g,
        MUST,
        "8.5",
        "an older recovery takes over an execution that is only halted",
        isinstance(x.reply, Halted),
        _show(x),
    )
    x = await p.send(kit.rollback(DEPLOYER, ex, rid_a, trig_a, target=1, action=Action.RESTORE))
    kit.check(
        "pt.takeover.suspended",
        g,
        MUST,
        "8.5",
        "the younger recovery, taken over, is answered busy until the older one lets go",
        _refused(x, ErrorCode.BUSY),
        _show(x),
    )
    x = await p.send(kit.resume(MONITOR, ex, rid_c, trig_c))
    rollback = kit.rollback(DEPLOYER, ex, rid_a, trig_a, target=1, action=Action.RESTORE)
    x = await p.send(rollback)
    result = await _result(kit, x, rollback.id) if x.status == 200 else None
    kit.check(
        "pt.takeover.reinstated",
        g,
        MUST,
        "8.5",
        "after the older recovery resumes, the younger one's claim is reinstated and obeyed",
        result is not None and result.outcome in ("restored", "not-needed"),
        _show(x),
    )
    await p.send(kit.resume(DEPLOYER, ex, rid_a, trig_a))


async def run_participant_scenarios(kit: Kit) -> None:
    for scenario in (
        happy,
        other_reversibility,
        duplicates,
        late,
        unknown_recovery,
        authority,
        busy_and_takeover,
    ):
        await scenario(kit)
