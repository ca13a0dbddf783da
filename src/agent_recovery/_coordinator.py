"""The coordinator engine: contain, restore, close, without I/O (draft §8).

A coordinator runs, per recovery, the recovery machine of ``_state.py`` and,
per member, the member tracking machine. It is driven by exactly three kinds
of input:

- API calls: :meth:`add_execution` (executions it is a recovery authority
  for, with the reversibility declared at delegation), :meth:`decide` (a
  deferred appraisal verdict), and the operator's :meth:`abort` and
  :meth:`force_outcome`;
- :meth:`receive` with an authenticated sender and a decoded message;
- :meth:`handle_timer` when :meth:`get_timer` is due.

Outputs are pulled: :meth:`data_to_send`, :meth:`next_event`,
:meth:`records` (unsigned recovery records; signing and the hash chain belong
to the layer that holds the key) and :meth:`get_timer`. Time is an argument,
ids come from an injected deterministic source, and :meth:`snapshot` /
:meth:`from_snapshot` persist and rebuild the whole engine (the persisted
state and its forms are ``_coordinator_state.CoordinatorState``).

The procedure (draft §8.1 to §8.4): a failure signal opens a recovery, which
halts its origin; every ``halted`` reply names the member's dependents, which
the incremental rollback set (``_scope.ScopeBuilder``) turns into new members
to halt, hop by hop, until no halt is outstanding. Then the trigger is
appraised by an injected pure policy; only if it is accepted does the
coordinator ask members to roll back, wave by wave in reverse dependency
order. Members are then resumed and the recovery record is issued. Requests
are retransmitted with exponential backoff; a member that never answers a
rollback is recorded ``unknown`` (never success) and stays contained while
status queries continue; when one resolves, a superseding record is issued.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ._appraisal import AcceptAll, AppraisalPolicy, Verdict
from ._coordinator_records import (
    RecoveryData,
    TrackData,
    assemble,
    build_members,
    dump_edges,
    escalation_for,
    part_key,
)
from ._coordinator_state import CoordinatorState
from ._errors import ErrorCode, LocalProtocolError
from ._events import (
    AppraisalRequired,
    Event,
    RecoveryEnded,
    RecoveryStarted,
    ReversibilityDiscrepancy,
    WarningReceived,
)
from ._messages import (
    Ack,
    Error,
    FailureSignal,
    Halt,
    Halted,
    Message,
    RecoveryRecord,
    Resume,
    Rollback,
    RollbackResult,
    Status,
    StatusQuery,
)
from ._model import (
    ExecRef,
    Facts,
    Outcome,
    Residual,
    Reversibility,
    Severity,
    check_identifier,
    check_text,
)
from ._participant_rules import ALLOWED_OUTCOMES, NOTHING_REMAINS
from ._registry import OUTCOMES
from ._scope import Bounds, ScopeBuilder
from ._state import (
    TERMINAL_RECOVERY_STATES,
    TRACK_REQUEST,
    TRANSIENT_CODES,
    MemberState,
    RecoveryEffect,
    RecoveryInput,
    RecoveryState,
    Retry,
    TrackAction,
    TrackInput,
    TrackState,
    containment_input,
    ready_to_roll_back,
    record_result,
    recovery_step,
    releasing_input,
    restoring_input,
    track_step,
)
from ._wire import encode

__all__ = ["AcceptAll", "AppraisalPolicy", "Coordinator", "IdSource", "Verdict"]

IdSource = Callable[[int], str]


_VERDICT_INPUT = {
    Verdict.ACCEPT: RecoveryInput.ACCEPT,
    Verdict.REJECT: RecoveryInput.REJECT,
    Verdict.ESCALATE: RecoveryInput.ESCALATE,
}


# Track states that run a retransmission timer.
_TIMED = frozenset(
    {TrackState.HALTING, TrackState.ROLLING_BACK, TrackState.UNKNOWN, TrackState.RELEASING}
)
# Obligations that outlive the record are retried at the follow-up pace.
_FOLLOW_UP = frozenset({TrackState.UNKNOWN, TrackState.RELEASING})
_RECORDING = frozenset({TrackAction.RECORD, TrackAction.RECORD_REFUSAL, TrackAction.RECORD_LOST})


class Coordinator(CoordinatorState):
    """Sans-I/O coordinator of the recoveries agent ``agent`` is authority for."""

    def __init__(
        self,
        *,
        agent: str,
        ids: IdSource | None = None,
        policy: AppraisalPolicy | None = None,
        bounds: Bounds | None = None,
        retry: Retry | None = None,
    ) -> None:
        super().__init__(
            agent=check_identifier(agent, "agent"),
            bounds=bounds if bounds is not None else Bounds(),
        )
        self._ids: IdSource = ids if ids is not None else _default_ids
        self._policy: AppraisalPolicy = policy if policy is not None else AcceptAll()
        self._retry = retry if retry is not None else Retry()
        self._out: list[Message] = []
        self._records: list[RecoveryRecord] = []
        self._events: deque[Event] = deque()

    # ------------------------------------------------------------------ outputs

    def data_to_send(self) -> list[Message]:
        out, self._out = self._out, []
        return out

    def records(self) -> list[RecoveryRecord]:
        """Recovery records issued since the last call, oldest first (draft §11).

        ``seq`` and ``prev`` are placeholders: the layer that signs and stores a
        record links it into the coordinator's chain (``_records.seal``).
        """
        out, self._records = self._records, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> int | None:
        return min(
            (
                t.next_at
                for rec in self._recoveries.values()
                for t in rec.tracks.values()
                if t.next_at is not None
            ),
            default=None,
        )

    # ------------------------------------------------------------------ views

    def recoveries(self) -> tuple[str, ...]:
        return tuple(self._recoveries)

    def recovery_state(self, recovery: str) -> RecoveryState:
        return self._get(recovery).state

    def members(self, recovery: str) -> dict[ExecRef, tuple[TrackState, str | None]]:
        """Each member's tracking state and recorded outcome."""
        rec = self._get(recovery)
        return {ref: (t.state, t.outcome) for ref, t in sorted(rec.tracks.items())}

    def busy(self, recovery: str) -> bool:
        """True while the recovery still owes a request, an answer or a decision."""
        rec = self._get(recovery)
        return rec.deferred or any(t.next_at is not None for t in rec.tracks.values())

    # ------------------------------------------------------------------ API

    def add_execution(
        self,
        execution: ExecRef,
        authority: Iterable[str],
        *,
        reversibility: Reversibility | None = None,
    ) -> None:
        """This coordinator is a recovery authority for ``execution`` (draft §5.3).

        ``authority`` is the execution's whole recovery authority; a failure
        signal is accepted from the execution's own agent or from any of them.
        ``reversibility`` is the class the execution's agent declared when the
        work was delegated, if this coordinator knows it: a halted reply that
        reports another class is a discrepancy (draft §13.6), see :meth:`_learn`.
        """
        self._authority.add(execution, {*authority, self.agent}, reversibility)
        self._touch_authority()

    def decide(self, recovery: str, verdict: Verdict, now: int) -> None:
        """Give the appraisal verdict a policy deferred (draft §9.2)."""
        rec = self._get(recovery)
        if not rec.deferred:
            raise LocalProtocolError(ErrorCode.INVALID_STATE, "no appraisal is pending")
        rec.deferred = False
        self._recovery_input(rec, _VERDICT_INPUT[verdict], now)
        self._advance(rec, now)

    def abort(self, recovery: str, now: int, *, evidence: str | None = None) -> None:
        """Operator override: end the recovery, resume every member (draft §8.7).

        ``evidence`` refers to the operator's instruction; the record lists it.
        """
        rec = self._get(recovery)
        # Refused (a recovery that already ended, bad evidence) before anything changes.
        recovery_step(rec.state, RecoveryInput.ABORT)
        if evidence is not None:
            rec.overrides.append(check_text(evidence, "evidence"))
        rec.deferred = False
        self._recovery_input(rec, RecoveryInput.ABORT, now)
        self._advance(rec, now)

    def force_outcome(
        self,
        recovery: str,
        execution: ExecRef,
        outcome: str,
        residual: tuple[Residual, ...],
        now: int,
        *,
        evidence: str,
    ) -> None:
        """Operator override: set the outcome of a member whose outcome is unknown.

        draft §8.7: for example after a manual repair. Only a member in doubt
        (tracking state ``unknown``, or ``abandoned`` with its outcome unknown:
        the follow-up time ran out) can be set, only to an outcome its action
        allows, with residual effects exactly when the outcome leaves some; a
        record already issued is superseded, and every record of the recovery
        lists ``evidence``, the reference to the operator's instruction.
        Anything else is refused with nothing changed.
        """
        rec = self._get(recovery)
        track = rec.tracks.get(execution)
        if track is None or not _in_doubt(track):
            raise LocalProtocolError(
                ErrorCode.INVALID_STATE, "the member's outcome is not in doubt"
            )
        member = rec.result().member(execution)
        action = None if member is None else member.action
        try:
            value = Outcome(outcome)
        except ValueError:
            raise LocalProtocolError(ErrorCode.MALFORMED, f"outcome {outcome!r}") from None
        if action is None or value not in ALLOWED_OUTCOMES.get(action, ()):
            raise LocalProtocolError(ErrorCode.INVALID_STATE, f"{outcome} does not answer {action}")
        if (value in NOTHING_REMAINS) == bool(residual):
            raise LocalProtocolError(
                ErrorCode.MALFORMED,
                f"{outcome}: residual effects must be listed exactly when some remain",
            )
        check_text(evidence, "evidence")
        rec.overrides.append(evidence)
        self._touch(rec)
        operator = (value.value, tuple(residual))
        if track.state is TrackState.UNKNOWN:
            self._track_input(rec, track, TrackInput.STATUS_FINAL, now, operator=operator)
        else:
            # Abandoned: the coordinator stopped asking and owes the member
            # nothing; the outcome is recorded as the operator states it.
            self._touch(rec, track)
            if track.settle(TrackAction.RECORD, None, operator) and (
                rec.state in TERMINAL_RECOVERY_STATES
            ):
                self._recovery_input(rec, RecoveryInput.RESOLVED, now)
        self._advance(rec, now)

    # ------------------------------------------------------------------ inputs

    def receive(self, sender: str, message: Message, now: int) -> None:
        """Process a message whose sender ``sender`` was authenticated (draft §9)."""
        if isinstance(message, (Ack, Error)):
            self._on_answer(sender, message, now)  # answers are never answered
            return
        try:
            if message.sender != sender:
                raise LocalProtocolError(ErrorCode.UNAUTHORIZED, "from is not the sender")
            if message.recipient != self.agent:
                raise LocalProtocolError(ErrorCode.WRONG_RECIPIENT, "")
            if isinstance(message, FailureSignal):
                self._on_signal(sender, message, now)
            elif isinstance(message, (Halted, RollbackResult, Status)):
                self._on_reply(sender, message, now)
            else:
                raise LocalProtocolError(ErrorCode.INVALID_STATE, "not for a coordinator")
        except LocalProtocolError as exc:  # the single inbound translation point
            self._send_error(sender, message, now, exc.code, exc.detail)

    def handle_timer(self, now: int) -> None:
        for rid in sorted(self._recoveries):
            rec = self._recoveries[rid]
            for ref in sorted(rec.tracks):
                track = rec.tracks[ref]
                if track.next_at is None or track.next_at > now:
                    continue
                event = TrackInput.GIVE_UP if self._exhausted(track, now) else TrackInput.RETRY
                self._track_input(rec, track, event, now)
            self._advance(rec, now)

    # ------------------------------------------------------------------ internals

    def _get(self, recovery: str) -> RecoveryData:
        rec = self._recoveries.get(recovery)
        if rec is None:
            raise LocalProtocolError(ErrorCode.UNKNOWN_RECOVERY, "")
        return rec

    def _next_id(self) -> str:
        self._seq += 1
        return check_identifier(self._ids(self._seq), "message id")

    def _send_error(
        self, sender: str, message: Message, now: int, code: ErrorCode, detail: str
    ) -> None:
        # draft §9: a refusal goes to the authenticated sender, not to "from".
        self._out.append(
            Error.refusing(
                message,
                id=self._next_id(),
                sender=self.agent,
                recipient=sender,
                iat=now,
                code=code,
                detail=detail,
            )
        )

    def _ack(
        self, to: str, reply_to: str, recovery: str | None, trigger: str | None, now: int
    ) -> None:
        self._out.append(
            Ack(
                id=self._next_id(),
                sender=self.agent,
                recipient=to,
                iat=now,
                reply_to=reply_to,
                recovery=recovery,
                trigger=trigger,
            )
        )

    def _on_signal(self, sender: str, signal: FailureSignal, now: int) -> None:
        seen = self._signals.get((sender, signal.id))
        if seen is not None:
            # A retransmitted signal is answered again; it opens nothing (draft §9.3).
            if seen[1] != encode(signal):
                raise LocalProtocolError(ErrorCode.CONFLICT, "another signal with this id")
            trigger = None if seen[0] is None else signal.id
            self._ack(sender, signal.id, seen[0], trigger, now)
            return
        authority = self._authority.names(signal.execution)
        if authority is None:
            raise LocalProtocolError(ErrorCode.UNKNOWN_EXECUTION, "not an authority for it")
        if sender != signal.execution.agent and sender not in authority:
            # draft §9.2: only the execution's agent or its authority may signal.
            raise LocalProtocolError(ErrorCode.UNAUTHORIZED, "")
        if signal.severity is Severity.WARNING:
            # draft §6.2: a warning requests no recovery.
            self._signals[sender, signal.id] = (None, encode(signal))
            self._touch_signal(sender, signal.id)
            self._events.append(WarningReceived(signal=signal.id, execution=signal.execution))
            self._ack(sender, signal.id, None, None, now)
            return
        rec = RecoveryData(id=self._next_id(), signal=signal, signaller=sender, created=now)
        rec.builder = ScopeBuilder(
            origin=signal.execution, checkpoint=signal.checkpoint, bounds=self._bounds
        )
        self._recoveries[rec.id] = rec
        self._signals[sender, signal.id] = (rec.id, encode(signal))
        self._touch_signal(sender, signal.id)
        self._touch(rec)
        self._events.append(
            RecoveryStarted(
                recovery=rec.id, trigger=signal.id, origin=signal.execution, created=now
            )
        )
        self._ack(sender, signal.id, rec.id, signal.id, now)
        self._enter(rec, now)
        self._advance(rec, now)

    def _enter(self, rec: RecoveryData, now: int) -> None:
        """draft §8.1: every newly known member is halted at once."""
        for member in rec.shape().members:
            track = rec.tracks.get(member.execution)
            if track is None:
                track = TrackData(
                    execution=member.execution,
                    state=TrackState.HALTING,
                    target=member.target,
                    reason=member.reason,
                )
                rec.add_track(track)
                self._transmit(rec, track, TrackAction.SEND_HALT, now, fresh=True)
            elif track.target != member.target or track.reason != member.reason:
                # Targets only decrease as edges arrive (draft §7).
                track.target = member.target
                track.reason = member.reason
                self._touch(rec, track)

    def _on_reply(self, sender: str, message: Halted | RollbackResult | Status, now: int) -> None:
        rec = self._get(message.recovery)
        if message.trigger != rec.signal.id:
            raise LocalProtocolError(ErrorCode.WRONG_RECOVERY, "trigger does not match")
        track = rec.tracks.get(message.execution)
        if track is None:
            raise LocalProtocolError(ErrorCode.UNKNOWN_EXECUTION, "not a member")
        if sender != message.execution.agent:
            raise LocalProtocolError(ErrorCode.UNAUTHORIZED, "not the member's agent")
        request = self._requests.get(message.reply_to)
        if request is None or request[:2] != (rec.id, message.execution):
            # draft §9.2: a reply must answer a request this coordinator sent.
            raise LocalProtocolError(ErrorCode.UNAUTHORIZED, "answers no request")
        if isinstance(message, Halted):
            event = TrackInput.HALTED
        elif isinstance(message, RollbackResult):
            event = TrackInput.ROLLBACK_RESULT
        elif message.outcome is not None:
            event = TrackInput.STATUS_FINAL
        elif message.state == MemberState.HALTED:
            event = TrackInput.STATUS_HALTED
        elif message.state == MemberState.IDLE:
            event = TrackInput.STATUS_IDLE
        else:
            event = TrackInput.STATUS_WORKING
        self._track_input(rec, track, event, now, message)
        self._advance(rec, now)

    def _on_answer(self, sender: str, message: Ack | Error, now: int) -> None:
        request = self._requests.get(message.reply_to)
        if request is None or message.sender != sender or message.recipient != self.agent:
            return
        rid, ref, kind = request
        if sender != ref.agent:
            return
        rec = self._recoveries[rid]
        track = rec.tracks[ref]
        if TRACK_REQUEST.get(track.state) != kind:
            return  # a late answer to an earlier request (draft §9.3)
        if isinstance(message, Ack):
            event = TrackInput.ACK
        elif message.effective_code is ErrorCode.BUSY:
            event = TrackInput.BUSY
        elif message.effective_code in TRANSIENT_CODES:
            event = TrackInput.TRANSIENT
        else:
            event = TrackInput.REFUSAL
        self._track_input(rec, track, event, now, message)
        self._advance(rec, now)

    # -- the member tracking machine -------------------------------------------

    def _exhausted(self, track: TrackData, now: int) -> bool:
        retry = self._retry
        if track.state in _FOLLOW_UP:
            return now - track.since >= retry.follow_up
        if track.answered:
            return now - track.since >= retry.patience
        return track.attempts >= retry.attempts

    def _track_input(
        self,
        rec: RecoveryData,
        track: TrackData,
        event: TrackInput,
        now: int,
        message: Message | None = None,
        *,
        operator: tuple[str, tuple[Residual, ...]] | None = None,
    ) -> None:
        before = track.state
        step = track_step(before, event)
        rec.set_state(track, step.next)
        self._touch(rec, track)
        action = step.action
        fresh = step.next is not before
        if action in (
            TrackAction.SEND_HALT,
            TrackAction.SEND_ROLLBACK,
            TrackAction.SEND_RESUME,
            TrackAction.SEND_QUERY,
        ):
            self._transmit(rec, track, action, now, fresh=fresh)
        elif action is TrackAction.LEARN:
            assert isinstance(message, Halted)
            self._learn(rec, track, message, now)
        elif action is TrackAction.WAIT:
            track.answered = True
            track.next_at = now + self._retry.delay(track.attempts)
        elif action is TrackAction.PROGRESS:
            track.answered = True
            track.next_at = now + self._retry.ceiling
        elif action in _RECORDING:
            changed = track.settle(action, message, operator)
            if changed and (before is TrackState.UNKNOWN or rec.state in TERMINAL_RECOVERY_STATES):
                self._recovery_input(rec, RecoveryInput.RESOLVED, now)
            releasing = rec.state is RecoveryState.RELEASING
            if track.state is TrackState.SETTLED and (
                releasing or rec.state in TERMINAL_RECOVERY_STATES
            ):
                # draft §8.3: a member settled late is released at once.
                self._track_input(rec, track, TrackInput.RELEASE, now)
                return
        if track.state is TrackState.UNKNOWN and before is not TrackState.UNKNOWN:
            # draft §8.4: an unknown outcome is chased with status queries.
            track.attempts = 0
            track.since = now
            track.answered = False
            track.next_at = now + self._retry.initial
        elif track.state not in _TIMED:
            track.next_at = None

    def _transmit(
        self, rec: RecoveryData, track: TrackData, action: TrackAction, now: int, *, fresh: bool
    ) -> None:
        self._touch(rec, track)
        if fresh:
            track.attempts = 0
            track.since = now
            track.answered = False
        track.attempts += 1
        retry = self._retry
        if track.state in _FOLLOW_UP and track.attempts >= retry.attempts:
            delay = retry.follow_up_interval
        elif track.answered:
            delay = retry.ceiling
        else:
            delay = retry.delay(track.attempts)
        track.next_at = now + delay
        ref = track.execution
        common: dict[str, Any] = {
            "id": self._next_id(),
            "sender": self.agent,
            "recipient": ref.agent,
            "iat": now,
            "recovery": rec.id,
            "trigger": rec.signal.id,
            "execution": ref,
        }
        message: Message
        if action is TrackAction.SEND_HALT:
            message = Halt(**common, created=rec.created)
        elif action is TrackAction.SEND_ROLLBACK:
            member = rec.result().member(ref)
            assert member is not None and member.action is not None
            track.asked = True
            message = Rollback(
                **common, target=member.target, action=member.action, reason=member.reason
            )
        elif action is TrackAction.SEND_RESUME:
            message = Resume(**common)
        else:
            message = StatusQuery(**common)
        self._requests[message.id] = (rec.id, ref, message.TYPE)
        track.requests[message.id] = message.TYPE
        self._out.append(message)

    def _learn(self, rec: RecoveryData, track: TrackData, message: Halted, now: int) -> None:
        """draft §8.1: a halted member's facts and dependents grow the set."""
        assert rec.builder is not None
        facts = self._compare_declared(rec, track.execution, message.facts)
        track.facts = facts
        rec.facts[track.execution] = facts
        rec.builder.set_facts(track.execution, facts)
        self._touch(rec, track)
        fresh = [d for d in message.dependents if d not in rec.edges]
        if fresh:
            key = part_key("edges", rec.id, len(rec.edges))
            self._changed[key] = lambda: dump_edges(fresh)
            rec.edges.update(dict.fromkeys(fresh))
            rec.builder.add_edges(fresh)
        if fresh or self._bounds.allowed_domains is not None:
            # The set itself may have changed: new members, lower targets.
            rec.cached = None
            if rec.state is RecoveryState.CONTAINING:
                self._enter(rec, now)
        else:
            # draft §7.6: facts decide membership only through the domain bound;
            # here they change actions alone, so the set is recomputed only when
            # an action is read (a rollback, the appraisal, the record), not per
            # reply: a thousand replies would otherwise cost a thousand passes.
            rec.stale_actions = True

    def _compare_declared(self, rec: RecoveryData, ref: ExecRef, facts: Facts) -> Facts:
        """draft §13.6: compare a reported reversibility with the one declared at delegation.

        An agent fixes its execution's reversibility when the execution starts
        (draft §5.2), so a different report contradicts a commitment. The
        actions are computed from the class declared at delegation: an agent
        cannot escape a restore by reporting "irreversible" when halted, and
        cannot be asked for an undo it declared impossible. A request that does
        not fit what the agent now reports is refused by it (draft §6.7) and
        recorded as refused, which attributes the contradiction to it.
        """
        declared = self._authority.declared(ref)
        if declared is None or declared is facts.reversibility:
            return facts
        self._events.append(
            ReversibilityDiscrepancy(
                execution=ref, recovery=rec.id, declared=declared, reported=facts.reversibility
            )
        )
        return replace(facts, reversibility=declared)

    # -- the recovery machine ----------------------------------------------------

    def _recovery_input(self, rec: RecoveryData, event: RecoveryInput, now: int) -> None:
        step = recovery_step(rec.state, event)
        rec.state = step.next
        self._touch(rec)
        effect = step.effect
        if effect is RecoveryEffect.APPRAISE:
            verdict = self._policy.appraise(rec.signal, rec.result())
            if verdict is None:
                rec.deferred = True
                self._events.append(AppraisalRequired(recovery=rec.id, trigger=rec.signal.id))
            else:
                self._recovery_input(rec, _VERDICT_INPUT[verdict], now)
        elif effect is RecoveryEffect.RELEASE_ALL:
            if rec.state is RecoveryState.ESCALATED:
                rec.escalation = escalation_for(rec.result(), rec.tracks, event)
            self._issue(rec, now)
            for ref in sorted(rec.tracks):
                self._track_input(rec, rec.tracks[ref], TrackInput.RELEASE, now)
        elif effect is RecoveryEffect.RELEASE_SETTLED:
            for ref in sorted(rec.tracks):
                track = rec.tracks[ref]
                if track.state is TrackState.SETTLED:
                    self._track_input(rec, track, TrackInput.RELEASE, now)
        elif effect is RecoveryEffect.RECORD or effect is RecoveryEffect.SUPERSEDE:
            self._issue(rec, now)

    def _advance(self, rec: RecoveryData, now: int) -> None:
        """Apply the joint rules of ``_state.py`` until nothing changes (h11 style).

        The rules test which states members are in, not how many are in each,
        so they are given the states present (kept counted), not every member.
        """
        while True:
            states = rec.present()
            event: RecoveryInput | None = None
            if rec.state is RecoveryState.CONTAINING:
                bound_hit = rec.shape().escalation is not None
                event = containment_input(states, bound_hit=bound_hit)
            elif rec.state is RecoveryState.RESTORING:
                waves = rec.shape().waves
                due = ready_to_roll_back(rec.wave_states(waves))
                if due is not None:
                    for ref in waves[due]:
                        if rec.tracks[ref].state is TrackState.HELD:
                            self._track_input(rec, rec.tracks[ref], TrackInput.ROLLBACK, now)
                    continue
                event = restoring_input(states)
            elif rec.state is RecoveryState.RELEASING:
                event = releasing_input(states)
            if event is None:
                return
            self._recovery_input(rec, event, now)

    def _issue(self, rec: RecoveryData, now: int) -> None:
        members = build_members(rec.result(), rec.tracks)
        outcomes = [m.effective_outcome for m in members]
        record = RecoveryRecord(
            id=self._next_id(),
            sender=self.agent,
            recipient=self.agent,
            iat=now,
            recovery=rec.id,
            trigger=rec.signal.id,
            seq=0,
            prev="",
            created=rec.created,
            closed=now,
            result=record_result(rec.state, outcomes),
            members=members,
            supersedes=rec.record,
            escalation=rec.escalation,
            evidence=(*rec.signal.evidence, *rec.overrides),
        )
        if rec.record is None:
            self._events.append(
                RecoveryEnded(recovery=rec.id, state=rec.state.value, result=record.result)
            )
        rec.record = record.id
        self._records.append(record)

    # ------------------------------------------------------------------ persistence

    @classmethod
    def from_snapshot(
        cls,
        data: dict[str, Any],
        *,
        ids: IdSource | None = None,
        policy: AppraisalPolicy | None = None,
        bounds: Bounds | None = None,
        retry: Retry | None = None,
    ) -> Coordinator:
        """Rebuild an engine from :meth:`snapshot` output; it continues where it was.

        ``{"parts": parts}``, with the parts of :meth:`snapshot_parts` as updated
        by :meth:`snapshot_changes`, is read as the snapshot they make up.
        """
        try:
            if set(data) == {"parts"}:
                data = assemble(data["parts"])
            return cls._restore(data, ids, policy, bounds, retry)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A damaged snapshot is refused with a typed error, never half-loaded.
            raise LocalProtocolError(ErrorCode.MALFORMED, f"snapshot: {exc!r}") from exc

    @classmethod
    def _restore(
        cls,
        data: dict[str, Any],
        ids: IdSource | None,
        policy: AppraisalPolicy | None,
        bounds: Bounds | None,
        retry: Retry | None,
    ) -> Coordinator:
        engine = cls(agent=data["agent"], ids=ids, policy=policy, bounds=bounds, retry=retry)
        engine._load(data)
        return engine


def _in_doubt(track: TrackData) -> bool:
    """Whether a member's outcome is unknown: still chased, or left to an operator."""
    if track.state is TrackState.UNKNOWN:
        return True
    if track.state is not TrackState.ABANDONED:
        return False
    # An abandoned member whose release went unanswered has a known outcome.
    return track.outcome is None or OUTCOMES.effective(track.outcome) is Outcome.UNKNOWN


def _default_ids(n: int) -> str:
    return f"c-{n}"
