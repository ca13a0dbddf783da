"""The participant's rules that need no engine state (draft §5.3, §6.8, §6.9, §13.5).

Which outcomes answer which action, how authority is inherited down a
delegation, how a rollback's reason is checked against the edges an agent
recorded, and how rollback-result and status replies are built from a claim.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._messages import Halt, Resume, Rollback, RollbackResult, Status, StatusQuery
from ._model import Action, Outcome, ReasonKind, check_identifier
from ._participant_records import Claim, ExecutionRecord
from ._state import MEMBER_INPUT_OUTCOME, MemberState

__all__ = [
    "ALLOWED_OUTCOMES",
    "INPUT_FOR_OUTCOME",
    "NOTHING_REMAINS",
    "UNDONE",
    "inherited_authority",
    "reason_discrepancy",
    "result_reply",
    "status_reply",
]

INPUT_FOR_OUTCOME = {outcome: event for event, outcome in MEMBER_INPUT_OUTCOME.items()}

# draft §8.2: which outcomes answer which action. Irreversibility is declared
# when the execution starts, so only an execution asked for ``none`` may say
# ``irreversible``; it cannot be claimed later to dodge a rollback.
ALLOWED_OUTCOMES: dict[Action, frozenset[Outcome]] = {
    Action.CANCEL_RESTORE: frozenset(
        {Outcome.RESTORED, Outcome.FAILED, Outcome.REFUSED, Outcome.NOT_NEEDED}
    ),
    Action.RESTORE: frozenset(
        {Outcome.RESTORED, Outcome.FAILED, Outcome.REFUSED, Outcome.NOT_NEEDED}
    ),
    Action.COMPENSATE: frozenset(
        {Outcome.COMPENSATED, Outcome.FAILED, Outcome.REFUSED, Outcome.NOT_NEEDED}
    ),
    Action.NONE: frozenset({Outcome.IRREVERSIBLE, Outcome.REFUSED, Outcome.NOT_NEEDED}),
}
UNDONE = frozenset({Outcome.RESTORED, Outcome.COMPENSATED})
# draft §6.8: these outcomes say nothing remains; a residual effect contradicts them.
NOTHING_REMAINS = frozenset({Outcome.RESTORED, Outcome.COMPENSATED, Outcome.NOT_NEEDED})


def inherited_authority(delegator: str, delegator_authority: Iterable[str]) -> frozenset[str]:
    """The recovery authority of work delegated by ``delegator`` (draft §5.3).

    The delegator, and everyone allowed to coordinate recovery of the
    delegating execution: authority flows down the delegation chain, so the
    coordinator of an upstream recovery can contain and restore what the
    upstream work caused.
    """
    return frozenset({check_identifier(delegator, "delegator"), *delegator_authority})


def result_reply(x: ExecutionRecord, claim: Claim, common: dict[str, Any]) -> RollbackResult:
    """The rollback-result that reports ``claim``'s outcome (draft §6.8)."""
    assert claim.outcome is not None and claim.checkpoint is not None
    return RollbackResult(
        **common,
        execution=x.ref,
        outcome=claim.outcome.value,
        checkpoint=claim.checkpoint,
        residual=claim.residual,
        code=claim.code,
        detail=claim.detail,
    )


def status_reply(
    x: ExecutionRecord,
    sender: str,
    message: Halt | Rollback | Resume | StatusQuery,
    common: dict[str, Any],
) -> Status:
    """The status reply to a request of recovery ``message.recovery`` (draft §6.9).

    draft §8.4: the state reported is the state of the asking recovery's own
    claim ("idle" if it holds none), so the answer resolves that recovery's
    unknowns without disclosing another recovery's business.
    """
    key = (sender, message.recovery)
    claim = next((c for c in (x.claim, *x.suspended) if c is not None and c.key == key), None)
    former = x.history.get(key)
    source = claim if claim is not None else former
    state = claim.state.value if claim is not None else MemberState.IDLE.value
    outcome = None if source is None or source.outcome is None else source.outcome
    return Status(
        **common,
        execution=x.ref,
        state=state,
        outcome=None if outcome is None else outcome.value,
        checkpoint=(
            x.position if source is None or source.checkpoint is None else source.checkpoint
        ),
        residual=() if source is None else source.residual,
    )


def reason_discrepancy(x: ExecutionRecord, message: Rollback) -> str | None:
    """What does not match between a rollback's reason and the edges recorded here.

    draft §13.5: the edge that brought this execution into the set should be
    one it recorded as consumer, and the target that edge's consumed_after.
    An origin has no edge to check.
    """
    via = message.reason.via
    if message.reason.kind is ReasonKind.ORIGIN or via is None:
        return None
    if via.consumer != x.ref:
        return "the reason's edge names another consumer"
    if via not in x.consumed:
        return "the reason's edge matches no dependency recorded here"
    if message.target != via.consumed_after:
        return f"target {message.target} is not the edge's consumed_after {via.consumed_after}"
    return None
