"""Every transition of the recovery protocol, as data (draft §8.6).

Rule 1 (after h11): everything that decides a state transition lives in this
file, as tables where possible and as small pure functions next to them where
not. The engines (``_participant.py``, ``_coordinator.py``) look transitions up
here and carry out the side effects the entries name; they never decide a
transition themselves.

Rule 2: a missing entry is the protocol error. Every (state, message) pair a
peer can cause has an entry, including duplicates, late messages and messages
from recoveries that hold nothing; the only keys left out are local inputs
(application calls, timers, commands) in states where they cannot legally
occur, and looking one of those up raises :class:`LocalProtocolError` naming
the role, the state and the input.

Theory of operation. There are three machines.

The **member machine** runs at the participant, once per execution (draft
§8.6). Its state is the state of the execution's *owning claim*: the recovery
that currently holds it. An input is a message type (or the application's
report of an outcome) together with the **relation** of the sending recovery
to the execution: it owns it, its claim was suspended by a takeover, it held
the execution and released it, or it holds nothing (older or younger than the
owner, for ``halt``; "other" for the rest). The relation is what makes late,
duplicated and foreign messages well-defined: a halt from a recovery that
already resumed the execution is refused, never obeyed, so reordering cannot
re-contain a released execution.

Concurrent recoveries (draft §8.5) are ordered by (``created``, recovery id,
coordinator). An older recovery's ``halt`` takes over an execution that a
younger one holds in ``halted`` or a terminal state: the younger claim is
*suspended*, not discarded, and is reinstated (with its state) when the older
recovery resumes the execution, so the execution stays contained throughout.
Work in progress (``rolling-back``) is never taken over; the older recovery
waits. Every persistent wait is therefore younger-for-older, so the wait-for
graph has no cycle and no recovery waits forever (see ``docs/draft-text/
procedure.md``).

The **member tracking machine** runs at the coordinator, once per member of a
recovery: what the coordinator has asked of that member and what it has
learned. Its inputs are the replies the member can send (classified), timer
expiries and two commands from the recovery machine.

The **recovery machine** runs at the coordinator, once per recovery
(containing, appraising, restoring, releasing, closed, with the side exits
escalated, rejected, aborted). Its inputs are derived from the tracking
machines by the joint rules at the end of this file (h11's state-triggered
transitions), from the appraisal verdict, and from an operator's abort.

WARNING: ``scripts/gen_state_tables.py`` renders the draft's tables from the
tables below. A rule added as code must also be added to the draft text.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ._errors import ErrorCode, LocalProtocolError
from ._model import Outcome, RecordResult

__all__ = [
    "MEMBER_INPUT_OUTCOME",
    "MEMBER_MESSAGE_INPUTS",
    "MEMBER_TRANSITIONS",
    "OUTCOME_STATE",
    "RECOVERY_TRANSITIONS",
    "TERMINAL_MEMBER_STATES",
    "TERMINAL_RECOVERY_STATES",
    "TRACK_MESSAGE_INPUTS",
    "TRACK_REQUEST",
    "TRACK_TRANSITIONS",
    "TRANSIENT_CODES",
    "MemberEffect",
    "MemberInput",
    "MemberReply",
    "MemberState",
    "MemberStep",
    "RecoveryEffect",
    "RecoveryInput",
    "RecoveryState",
    "RecoveryStep",
    "Relation",
    "Retry",
    "Role",
    "TrackAction",
    "TrackInput",
    "TrackState",
    "TrackStep",
    "containment_input",
    "member_relations",
    "member_step",
    "ready_to_roll_back",
    "record_result",
    "recovery_step",
    "released_state",
    "releasing_input",
    "restoring_input",
    "track_step",
]


class Role(enum.StrEnum):
    COORDINATOR = "coordinator"
    PARTICIPANT = "participant"


# ---------------------------------------------------------------------------
# The member machine (participant, per execution; draft §8.6)


class MemberState(enum.StrEnum):
    """The state of an execution's owning claim; the names are the draft's."""

    IDLE = "idle"
    HALTED = "halted"
    ROLLING_BACK = "rolling-back"
    RESTORED = "restored"
    COMPENSATED = "compensated"
    IRREVERSIBLE = "irreversible"
    FAILED = "failed"
    REFUSED = "refused"
    NOT_NEEDED = "not-needed"


# draft §8.6: terminal states are sticky until the owning recovery sends resume.
TERMINAL_MEMBER_STATES: frozenset[MemberState] = frozenset(
    {
        MemberState.RESTORED,
        MemberState.COMPENSATED,
        MemberState.IRREVERSIBLE,
        MemberState.FAILED,
        MemberState.REFUSED,
        MemberState.NOT_NEEDED,
    }
)


class MemberInput(enum.StrEnum):
    """A message type, or the application's report of the rollback's outcome."""

    HALT = "halt"
    ROLLBACK = "rollback"
    RESUME = "resume"
    STATUS_QUERY = "status-query"
    DONE_RESTORED = "done(restored)"
    DONE_COMPENSATED = "done(compensated)"
    DONE_IRREVERSIBLE = "done(irreversible)"
    DONE_FAILED = "done(failed)"
    DONE_REFUSED = "done(refused)"
    DONE_NOT_NEEDED = "done(not-needed)"


MEMBER_MESSAGE_INPUTS: tuple[MemberInput, ...] = (
    MemberInput.HALT,
    MemberInput.ROLLBACK,
    MemberInput.RESUME,
    MemberInput.STATUS_QUERY,
)

# The outcome an application may report, as a member-machine input.
MEMBER_INPUT_OUTCOME: Mapping[MemberInput, Outcome] = MappingProxyType(
    {
        MemberInput.DONE_RESTORED: Outcome.RESTORED,
        MemberInput.DONE_COMPENSATED: Outcome.COMPENSATED,
        MemberInput.DONE_IRREVERSIBLE: Outcome.IRREVERSIBLE,
        MemberInput.DONE_FAILED: Outcome.FAILED,
        MemberInput.DONE_REFUSED: Outcome.REFUSED,
        MemberInput.DONE_NOT_NEEDED: Outcome.NOT_NEEDED,
    }
)

OUTCOME_STATE: Mapping[Outcome, MemberState] = MappingProxyType(
    {
        Outcome.RESTORED: MemberState.RESTORED,
        Outcome.COMPENSATED: MemberState.COMPENSATED,
        Outcome.IRREVERSIBLE: MemberState.IRREVERSIBLE,
        Outcome.FAILED: MemberState.FAILED,
        Outcome.REFUSED: MemberState.REFUSED,
        Outcome.NOT_NEEDED: MemberState.NOT_NEEDED,
    }
)


class Relation(enum.StrEnum):
    """How the sending recovery stands to the execution (draft §8.5, §8.6)."""

    NONE = "none"  # nobody holds the execution and the sender never did
    OWNER = "owner"  # the sender's recovery holds it
    SUSPENDED = "suspended"  # the sender's claim was taken over by an older recovery
    RELEASED = "released"  # the sender resumed it without a rollback outcome
    FINISHED = "finished"  # the sender resumed it after a rollback outcome
    OLDER = "older"  # halt: the sender holds nothing and is older than the owner
    YOUNGER = "younger"  # halt: the sender holds nothing and is younger than the owner
    OTHER = "other"  # not halt: the sender holds nothing, another recovery does


class MemberReply(enum.StrEnum):
    """What the participant answers (draft §6); ``error`` replies by code."""

    HALTED = "halted"
    ACK = "ack"
    ROLLBACK_RESULT = "rollback-result"  # the sender's outcome, current or as recorded
    STATUS = "status"  # the state of the sender's own claim ("idle" if none)
    BUSY = "error busy"
    INVALID_STATE = "error invalid-state"
    NOTHING = "-"  # a local input: the application's report


class MemberEffect(enum.StrEnum):
    """The side effect the participant carries out with the transition."""

    NONE = "-"
    CLAIM = "claim"  # the sender's recovery becomes the owner
    TAKE_OVER = "take over"  # the owner's claim is suspended; the sender becomes the owner
    START = "start rollback"  # ask the application (or complete at once: not-needed)
    FINISH = "send result"  # record the outcome; send rollback-result to the owner
    RELEASE = "release"  # the owner's claim ends; reinstate a suspended claim if any
    DROP = "drop claim"  # the sender's suspended claim ends
    TOMBSTONE = "remember"  # remember the sender released it: a late halt is refused


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberStep:
    next: MemberState
    reply: MemberReply
    effect: MemberEffect = MemberEffect.NONE


def _member_table() -> dict[tuple[MemberState, MemberInput, Relation], MemberStep]:
    table: dict[tuple[MemberState, MemberInput, Relation], MemberStep] = {}

    def put(
        states: Iterable[MemberState],
        event: MemberInput,
        relations: Iterable[Relation],
        next_state: MemberState | None,
        reply: MemberReply,
        *,
        effect: MemberEffect = MemberEffect.NONE,
    ) -> None:
        for state in states:
            for relation in relations:
                key = (state, event, relation)
                if key in table:
                    raise AssertionError(f"duplicate member transition {key}")
                table[key] = MemberStep(
                    next=state if next_state is None else next_state, reply=reply, effect=effect
                )

    S = MemberState  # noqa: N806
    M = MemberInput  # noqa: N806
    R = Relation  # noqa: N806
    P = MemberReply  # noqa: N806
    E = MemberEffect  # noqa: N806
    idle = (S.IDLE,)
    claimed = tuple(s for s in S if s is not S.IDLE)
    settled = tuple(sorted(TERMINAL_MEMBER_STATES))
    same = None  # the state does not change
    gone = (R.RELEASED, R.FINISHED)

    # -- idle: no recovery holds the execution ------------------------------------
    put(idle, M.HALT, (R.NONE,), S.HALTED, P.HALTED, effect=E.CLAIM)
    # draft §8.6: a halt from a recovery that already resumed the execution is late
    # (reordered or duplicated); obeying it would contain an execution nobody releases.
    put(idle, M.HALT, gone, same, P.INVALID_STATE)
    put(idle, M.ROLLBACK, (R.NONE, R.RELEASED), same, P.INVALID_STATE)
    put(idle, M.ROLLBACK, (R.FINISHED,), same, P.ROLLBACK_RESULT)
    # A resume for a halt that never arrived is acknowledged and remembered, so the
    # halt, if it arrives later, is refused (draft §8.3).
    put(idle, M.RESUME, (R.NONE,), same, P.ACK, effect=E.TOMBSTONE)
    put(idle, M.RESUME, gone, same, P.ACK)
    put(idle, M.STATUS_QUERY, (R.NONE, *gone), same, P.STATUS)

    # -- claimed: halted, rolling-back or terminal (sticky) -------------------------
    put(claimed, M.HALT, (R.OWNER,), same, P.HALTED)  # duplicate: answered again
    put(claimed, M.HALT, (R.SUSPENDED, R.YOUNGER), same, P.BUSY)
    put(claimed, M.HALT, gone, same, P.INVALID_STATE)
    # draft §8.5 wound-wait: an older recovery takes over a claim that is not doing
    # work; work in progress is never interrupted, the older recovery waits.
    put((S.HALTED, *settled), M.HALT, (R.OLDER,), S.HALTED, P.HALTED, effect=E.TAKE_OVER)
    put((S.ROLLING_BACK,), M.HALT, (R.OLDER,), same, P.BUSY)

    put((S.HALTED,), M.ROLLBACK, (R.OWNER,), S.ROLLING_BACK, P.ACK, effect=E.START)
    put((S.ROLLING_BACK,), M.ROLLBACK, (R.OWNER,), same, P.ACK)  # duplicate: in progress
    put(settled, M.ROLLBACK, (R.OWNER,), same, P.ROLLBACK_RESULT)  # duplicate: answered
    put(claimed, M.ROLLBACK, (R.SUSPENDED,), same, P.BUSY)
    put(claimed, M.ROLLBACK, (R.RELEASED, R.OTHER), same, P.INVALID_STATE)
    put(claimed, M.ROLLBACK, (R.FINISHED,), same, P.ROLLBACK_RESULT)

    put((S.HALTED, *settled), M.RESUME, (R.OWNER,), S.IDLE, P.ACK, effect=E.RELEASE)
    # draft §8.6: never released while the outcome is still being produced.
    put((S.ROLLING_BACK,), M.RESUME, (R.OWNER,), same, P.INVALID_STATE)
    put(claimed, M.RESUME, (R.SUSPENDED,), same, P.ACK, effect=E.DROP)
    put(claimed, M.RESUME, gone, same, P.ACK)
    put(claimed, M.RESUME, (R.OTHER,), same, P.ACK, effect=E.TOMBSTONE)

    put(claimed, M.STATUS_QUERY, (R.OWNER, R.SUSPENDED, *gone, R.OTHER), same, P.STATUS)

    # -- the application's report (local input) ---------------------------------------
    for event, outcome in MEMBER_INPUT_OUTCOME.items():
        put(
            (S.ROLLING_BACK,), event, (R.OWNER,), OUTCOME_STATE[outcome], P.NOTHING, effect=E.FINISH
        )
    return table


MEMBER_TRANSITIONS: Mapping[tuple[MemberState, MemberInput, Relation], MemberStep] = (
    MappingProxyType(_member_table())
)


def member_relations(state: MemberState, event: MemberInput) -> tuple[Relation, ...]:
    """The relations a message of type ``event`` can have in ``state``.

    In ``idle`` nobody holds the execution, so the sender holds nothing or held
    it before; otherwise there is an owner, and a sender holding nothing is
    older or younger than it (``halt`` carries ``created``) or just "other".
    """
    if state is MemberState.IDLE:
        return (Relation.NONE, Relation.RELEASED, Relation.FINISHED)
    base = (Relation.OWNER, Relation.SUSPENDED, Relation.RELEASED, Relation.FINISHED)
    if event is MemberInput.HALT:
        return (*base, Relation.OLDER, Relation.YOUNGER)
    return (*base, Relation.OTHER)


def released_state(suspended: Sequence[MemberState]) -> MemberState:
    """The state after the owner releases an execution (a state-triggered rule).

    draft §8.5: the most recently suspended claim (the oldest recovery among
    them) is reinstated with the state it had; only with none left is the
    execution ``idle`` again.
    """
    return suspended[-1] if suspended else MemberState.IDLE


def member_step(state: MemberState, event: MemberInput, relation: Relation) -> MemberStep:
    try:
        return MEMBER_TRANSITIONS[state, event, relation]
    except KeyError:
        raise LocalProtocolError(
            ErrorCode.INVALID_STATE,
            f"{Role.PARTICIPANT} in state {state} cannot handle {event} from {relation}",
        ) from None


# ---------------------------------------------------------------------------
# The member tracking machine (coordinator, per member of a recovery)


class TrackState(enum.StrEnum):
    HALTING = "halting"  # halt sent, no halted reply yet
    HELD = "held"  # halted: facts and dependents known
    REFUSED = "refused"  # the member refused the halt (e.g. unauthorized)
    UNREACHABLE = "unreachable"  # no answer to any halt attempt
    ROLLING_BACK = "rolling-back"  # rollback sent, no outcome yet
    SETTLED = "settled"  # outcome known
    UNKNOWN = "unknown"  # no outcome within patience: unknown, never success
    RELEASING = "releasing"  # resume sent, not yet acknowledged
    RELEASED = "released"  # resume acknowledged
    ABANDONED = "abandoned"  # follow-up time exhausted; left to an operator


class TrackInput(enum.StrEnum):
    HALTED = "halted"
    ACK = "ack"
    ROLLBACK_RESULT = "rollback-result"
    BUSY = "error busy"
    REFUSAL = "error (refusal)"  # any other code, except the transient ones
    TRANSIENT = "error (transient)"  # rate-limited, overloaded, internal
    STATUS_HALTED = "status halted"  # the coordinator's claim is halted, no outcome
    STATUS_WORKING = "status working"  # rolling-back, or a state name not understood
    STATUS_FINAL = "status final"  # carries an outcome
    STATUS_IDLE = "status idle"  # the member holds nothing of this recovery
    RETRY = "timer: retry"
    GIVE_UP = "timer: give up"
    ROLLBACK = "cmd: roll back"  # the member's wave is due
    RELEASE = "cmd: release"  # the recovery releases its members


TRACK_MESSAGE_INPUTS: tuple[TrackInput, ...] = (
    TrackInput.HALTED,
    TrackInput.ACK,
    TrackInput.ROLLBACK_RESULT,
    TrackInput.BUSY,
    TrackInput.REFUSAL,
    TrackInput.TRANSIENT,
    TrackInput.STATUS_HALTED,
    TrackInput.STATUS_WORKING,
    TrackInput.STATUS_FINAL,
    TrackInput.STATUS_IDLE,
)

# draft §10: codes that say "try again", not "no".
TRANSIENT_CODES: frozenset[ErrorCode] = frozenset(
    {ErrorCode.RATE_LIMITED, ErrorCode.OVERLOADED, ErrorCode.INTERNAL}
)


class TrackAction(enum.StrEnum):
    NONE = "-"
    SEND_HALT = "send halt"
    LEARN = "learn facts and dependents"  # feeds the incremental rollback set
    WAIT = "wait (busy)"  # retry later without spending the attempt budget
    PROGRESS = "wait for result"  # acknowledged: poll at the longest interval
    SEND_ROLLBACK = "send rollback"
    RECORD = "record outcome"
    RECORD_REFUSAL = "record refused"
    RECORD_LOST = "record unknown"  # the member has no trace of the rollback
    SEND_RESUME = "send resume"
    SEND_QUERY = "send status-query"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackStep:
    next: TrackState
    action: TrackAction = TrackAction.NONE


def _track_table() -> dict[tuple[TrackState, TrackInput], TrackStep]:
    T = TrackState  # noqa: N806
    I = TrackInput  # noqa: E741, N806
    A = TrackAction  # noqa: N806
    table: dict[tuple[TrackState, TrackInput], TrackStep] = {}

    def put(state: TrackState, event: TrackInput, nxt: TrackState, act: TrackAction) -> None:
        if (state, event) in table:
            raise AssertionError(f"duplicate track transition {(state, event)}")
        table[state, event] = TrackStep(next=nxt, action=act)

    def ignore_rest(state: TrackState) -> None:
        # Late and duplicated replies: answered requests are not answered twice.
        for event in TRACK_MESSAGE_INPUTS:
            if (state, event) not in table:
                put(state, event, state, A.NONE)

    put(T.HALTING, I.HALTED, T.HELD, A.LEARN)
    put(T.HALTING, I.BUSY, T.HALTING, A.WAIT)
    put(T.HALTING, I.REFUSAL, T.REFUSED, A.RECORD_REFUSAL)
    put(T.HALTING, I.RETRY, T.HALTING, A.SEND_HALT)
    put(T.HALTING, I.GIVE_UP, T.UNREACHABLE, A.NONE)
    # draft §8.3: a halt may have arrived even if no reply did; resume it.
    put(T.HALTING, I.RELEASE, T.RELEASING, A.SEND_RESUME)
    ignore_rest(T.HALTING)

    put(T.HELD, I.ROLLBACK, T.ROLLING_BACK, A.SEND_ROLLBACK)
    put(T.HELD, I.RELEASE, T.RELEASING, A.SEND_RESUME)
    ignore_rest(T.HELD)

    put(T.ROLLING_BACK, I.ACK, T.ROLLING_BACK, A.PROGRESS)
    put(T.ROLLING_BACK, I.ROLLBACK_RESULT, T.SETTLED, A.RECORD)
    put(T.ROLLING_BACK, I.BUSY, T.ROLLING_BACK, A.WAIT)
    put(T.ROLLING_BACK, I.REFUSAL, T.SETTLED, A.RECORD_REFUSAL)
    put(T.ROLLING_BACK, I.RETRY, T.ROLLING_BACK, A.SEND_ROLLBACK)
    # draft §8.4: a timeout yields unknown, never success.
    put(T.ROLLING_BACK, I.GIVE_UP, T.UNKNOWN, A.NONE)
    # An abort waits for the outcome: work in progress is released once it is known.
    put(T.ROLLING_BACK, I.RELEASE, T.ROLLING_BACK, A.NONE)
    ignore_rest(T.ROLLING_BACK)

    put(T.UNKNOWN, I.ROLLBACK_RESULT, T.SETTLED, A.RECORD)
    put(T.UNKNOWN, I.STATUS_FINAL, T.SETTLED, A.RECORD)
    # The rollback never arrived: the member is still halted for this recovery.
    put(T.UNKNOWN, I.STATUS_HALTED, T.ROLLING_BACK, A.SEND_ROLLBACK)
    put(T.UNKNOWN, I.STATUS_IDLE, T.SETTLED, A.RECORD_LOST)
    put(T.UNKNOWN, I.BUSY, T.UNKNOWN, A.WAIT)
    put(T.UNKNOWN, I.RETRY, T.UNKNOWN, A.SEND_QUERY)
    put(T.UNKNOWN, I.GIVE_UP, T.ABANDONED, A.NONE)
    # draft §8.4: an execution whose outcome is unknown stays contained.
    put(T.UNKNOWN, I.RELEASE, T.UNKNOWN, A.NONE)
    ignore_rest(T.UNKNOWN)

    put(T.SETTLED, I.RELEASE, T.RELEASING, A.SEND_RESUME)
    ignore_rest(T.SETTLED)

    put(T.RELEASING, I.ACK, T.RELEASED, A.NONE)
    # An aborted rollback's late outcome is still recorded.
    put(T.RELEASING, I.ROLLBACK_RESULT, T.RELEASING, A.RECORD)
    put(T.RELEASING, I.RETRY, T.RELEASING, A.SEND_RESUME)
    put(T.RELEASING, I.GIVE_UP, T.ABANDONED, A.NONE)
    ignore_rest(T.RELEASING)

    put(T.UNREACHABLE, I.RELEASE, T.RELEASING, A.SEND_RESUME)
    ignore_rest(T.UNREACHABLE)
    # A refused halt contained nothing, so there is nothing to resume.
    put(T.REFUSED, I.RELEASE, T.REFUSED, A.NONE)
    ignore_rest(T.REFUSED)
    put(T.RELEASED, I.RELEASE, T.RELEASED, A.NONE)
    ignore_rest(T.RELEASED)
    put(T.ABANDONED, I.RELEASE, T.ABANDONED, A.NONE)
    ignore_rest(T.ABANDONED)
    return table


TRACK_TRANSITIONS: Mapping[tuple[TrackState, TrackInput], TrackStep] = MappingProxyType(
    _track_table()
)

# The request a member is waiting on in each timed tracking state. An ``ack`` or
# ``error`` only answers the request named by its ``reply_to``; one answering a
# request of another type is late (reordered or duplicated) and is not an input
# at all (draft §9.3): an ack of an old rollback must never pass for the ack of
# the resume that followed it.
TRACK_REQUEST: Mapping[TrackState, str] = MappingProxyType(
    {
        TrackState.HALTING: "halt",
        TrackState.ROLLING_BACK: "rollback",
        TrackState.UNKNOWN: "status-query",
        TrackState.RELEASING: "resume",
    }
)

# Track states whose outcome is settled for the purpose of wave order (draft §8.2).
_SETTLED_FOR_ORDER = frozenset(
    {
        TrackState.SETTLED,
        TrackState.UNKNOWN,
        TrackState.RELEASING,
        TrackState.RELEASED,
        TrackState.ABANDONED,
    }
)


def track_step(state: TrackState, event: TrackInput) -> TrackStep:
    try:
        return TRACK_TRANSITIONS[state, event]
    except KeyError:
        raise LocalProtocolError(
            ErrorCode.INVALID_STATE,
            f"{Role.COORDINATOR} member in state {state} cannot handle {event}",
        ) from None


# ---------------------------------------------------------------------------
# The recovery machine (coordinator, per recovery; draft §8.6)


class RecoveryState(enum.StrEnum):
    CONTAINING = "containing"
    APPRAISING = "appraising"
    RESTORING = "restoring"
    RELEASING = "releasing"
    CLOSED = "closed"
    ESCALATED = "escalated"
    REJECTED = "rejected"
    ABORTED = "aborted"


TERMINAL_RECOVERY_STATES: frozenset[RecoveryState] = frozenset(
    {
        RecoveryState.CLOSED,
        RecoveryState.ESCALATED,
        RecoveryState.REJECTED,
        RecoveryState.ABORTED,
    }
)


class RecoveryInput(enum.StrEnum):
    SCOPE_CLOSED = "scope closed"  # every member held, no bound hit, nothing new
    SCOPE_UNDETERMINED = "scope undetermined"  # a bound hit, or a halt refused/unanswered
    ACCEPT = "appraisal: accept"
    REJECT = "appraisal: reject"
    ESCALATE = "appraisal: escalate"
    SETTLED = "all settled"  # every member has an outcome or is unknown
    RELEASED = "all released"  # no resume outstanding
    RESOLVED = "unknown resolved"  # a late outcome replaced an unknown
    ABORT = "operator: abort"


class RecoveryEffect(enum.StrEnum):
    NONE = "-"
    APPRAISE = "appraise trigger"
    ROLL_BACK = "start waves"
    RELEASE_ALL = "record; resume all"
    RELEASE_SETTLED = "resume settled"
    RECORD = "record"
    SUPERSEDE = "superseding record"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryStep:
    next: RecoveryState
    effect: RecoveryEffect


def _recovery_table() -> dict[tuple[RecoveryState, RecoveryInput], RecoveryStep]:
    S = RecoveryState  # noqa: N806
    I = RecoveryInput  # noqa: E741, N806
    E = RecoveryEffect  # noqa: N806
    rows: list[tuple[RecoveryState, RecoveryInput, RecoveryState, RecoveryEffect]] = [
        (S.CONTAINING, I.SCOPE_CLOSED, S.APPRAISING, E.APPRAISE),
        # draft §7: beyond the bounds the coordinator escalates instead of acting.
        (S.CONTAINING, I.SCOPE_UNDETERMINED, S.ESCALATED, E.RELEASE_ALL),
        (S.CONTAINING, I.ABORT, S.ABORTED, E.RELEASE_ALL),
        (S.APPRAISING, I.ACCEPT, S.RESTORING, E.ROLL_BACK),
        # draft §9.2: a trigger that fails appraisal restores nothing.
        (S.APPRAISING, I.REJECT, S.REJECTED, E.RELEASE_ALL),
        (S.APPRAISING, I.ESCALATE, S.ESCALATED, E.RELEASE_ALL),
        (S.APPRAISING, I.ABORT, S.ABORTED, E.RELEASE_ALL),
        (S.RESTORING, I.SETTLED, S.RELEASING, E.RELEASE_SETTLED),
        (S.RESTORING, I.RESOLVED, S.RESTORING, E.NONE),
        (S.RESTORING, I.ABORT, S.ABORTED, E.RELEASE_ALL),
        (S.RELEASING, I.RELEASED, S.CLOSED, E.RECORD),
        (S.RELEASING, I.RESOLVED, S.RELEASING, E.NONE),
    ]
    for final in sorted(TERMINAL_RECOVERY_STATES):
        # draft §8.4: a late outcome for an unknown member supersedes the record.
        rows.append((final, I.RESOLVED, final, E.SUPERSEDE))
    table: dict[tuple[RecoveryState, RecoveryInput], RecoveryStep] = {}
    for state, event, nxt, effect in rows:
        if (state, event) in table:
            raise AssertionError(f"duplicate recovery transition {(state, event)}")
        table[state, event] = RecoveryStep(next=nxt, effect=effect)
    return table


RECOVERY_TRANSITIONS: Mapping[tuple[RecoveryState, RecoveryInput], RecoveryStep] = MappingProxyType(
    _recovery_table()
)


def recovery_step(state: RecoveryState, event: RecoveryInput) -> RecoveryStep:
    try:
        return RECOVERY_TRANSITIONS[state, event]
    except KeyError:
        raise LocalProtocolError(
            ErrorCode.INVALID_STATE,
            f"{Role.COORDINATOR} recovery in state {state} cannot handle {event}",
        ) from None


# ---------------------------------------------------------------------------
# Joint rules: recovery inputs derived from the members' tracking states


def containment_input(tracks: Iterable[TrackState], *, bound_hit: bool) -> RecoveryInput | None:
    """draft §8.1: containment ends when no halt is outstanding.

    A bound hit ends it at once (the set will not be acted on anyway); a
    refused or unanswered halt leaves the set undetermined beyond that member.
    """
    if bound_hit:
        return RecoveryInput.SCOPE_UNDETERMINED
    states = list(tracks)
    if TrackState.HALTING in states:
        return None
    if TrackState.REFUSED in states or TrackState.UNREACHABLE in states:
        return RecoveryInput.SCOPE_UNDETERMINED
    return RecoveryInput.SCOPE_CLOSED


def ready_to_roll_back(wave_tracks: Iterable[Iterable[TrackState]]) -> int | None:
    """draft §8.2: the index of the wave to send now, or None if one is in flight.

    Waves are in order (wave 0 first: members with no dependents in the set).
    A wave is due when every member of every earlier wave is settled (an
    outcome, or unknown); members of one wave are asked in parallel.
    """
    for index, wave in enumerate(wave_tracks):
        states = list(wave)
        if TrackState.HELD in states:
            return index
        if any(s not in _SETTLED_FOR_ORDER for s in states):
            return None
    return None


def restoring_input(tracks: Iterable[TrackState]) -> RecoveryInput | None:
    if all(s in _SETTLED_FOR_ORDER for s in tracks):
        return RecoveryInput.SETTLED
    return None


def releasing_input(tracks: Iterable[TrackState]) -> RecoveryInput | None:
    # Unknown members stay contained (draft §8.4) and do not hold up the record.
    if TrackState.RELEASING not in set(tracks):
        return RecoveryInput.RELEASED
    return None


_COMPLETE = frozenset({Outcome.RESTORED, Outcome.COMPENSATED, Outcome.NOT_NEEDED})


def record_result(state: RecoveryState, outcomes: Iterable[Outcome | None]) -> RecordResult:
    """draft §11: the result stated in a recovery record."""
    if state is RecoveryState.ESCALATED:
        return RecordResult.ESCALATED
    if state is RecoveryState.REJECTED:
        return RecordResult.REJECTED
    if state is RecoveryState.ABORTED:
        return RecordResult.ABORTED
    if all(o in _COMPLETE for o in outcomes):
        return RecordResult.COMPLETED
    return RecordResult.PARTIAL


# ---------------------------------------------------------------------------
# Timeouts (draft §8.4): every wait has a bound and a defined result


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """Retransmission and patience, in milliseconds (draft §8.4).

    Requests are retransmitted after ``initial``, doubling up to ``ceiling``.
    ``attempts`` unanswered requests give up: a halt makes the member
    unreachable (the recovery escalates), a rollback makes it unknown. A
    member that answers (ack, busy) is waited for, polled every ``ceiling``,
    for at most ``patience``. Obligations that outlive the recovery's record
    (resumes, resolving unknowns) are retried every ``follow_up_interval`` for
    at most ``follow_up``; after that the member is abandoned to an operator.
    """

    initial: int = 1_000
    ceiling: int = 16_000
    attempts: int = 8
    patience: int = 600_000
    follow_up_interval: int = 60_000
    follow_up: int = 3_600_000

    def __post_init__(self) -> None:
        for name in (
            "initial",
            "ceiling",
            "attempts",
            "patience",
            "follow_up_interval",
            "follow_up",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LocalProtocolError(ErrorCode.MALFORMED, f"retry: {name} must be >= 1")
        if self.ceiling < self.initial:
            raise LocalProtocolError(ErrorCode.MALFORMED, "retry: ceiling below initial")

    def delay(self, attempt: int) -> int:
        """The wait after the ``attempt``-th transmission (1-based)."""
        delay = self.initial
        for _ in range(1, attempt):
            delay *= 2
            if delay >= self.ceiling:
                return self.ceiling
        return min(delay, self.ceiling)
