"""The participant engine: one agent's side of recovery, without I/O (draft §8).

A participant runs the member machine of ``_state.py`` for every execution its
agent registered. It is driven by exactly three kinds of input (aioquic's
``QuicConnection`` is the model):

- API calls from the application: :meth:`register_execution`,
  :meth:`take_checkpoint`, :meth:`record_dependency`, :meth:`set_status`,
  :meth:`signal_failure`, :meth:`rollback_done`;
- :meth:`receive` with an authenticated sender and a decoded message;
- :meth:`handle_timer` when :meth:`get_timer` is due.

Its outputs are pulled: :meth:`data_to_send` (messages, each naming its
recipient), :meth:`next_event` (local work for the application: halt, undo,
continue) and :meth:`get_timer`. Time is always an argument; message ids come
from an injected deterministic source. :meth:`snapshot` returns the whole state
as JSON-able data and :meth:`from_snapshot` rebuilds an engine that continues
exactly where the old one stopped (a store persists the snapshot before the
outputs of a step leave, so a crash loses nothing).

The participant never undoes work itself: it asks the application
(:class:`RollbackRequested`) and reports what the application did
(:meth:`rollback_done`). It decides alone only that nothing is left to undo,
when an earlier recovery already restored the execution to or before the
target: that is how no execution's work is undone twice (draft §8.5).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ._errors import ErrorCode, LocalProtocolError
from ._events import (
    Event,
    HaltRequested,
    ReasonDiscrepancy,
    Resumed,
    RollbackRequested,
    SignalAcknowledged,
    SignalRefused,
    SignalUndelivered,
)
from ._messages import (
    Ack,
    Error,
    FailureSignal,
    Halt,
    Halted,
    Message,
    Owner,
    Progress,
    RecoveryRecord,
    Resume,
    Rollback,
    StatusQuery,
)
from ._model import (
    Dependency,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    Residual,
    Severity,
    check_identifier,
)
from ._model import Status as ExecStatus
from ._participant_records import (
    ENGINE_PART,
    Claim,
    ExecutionRecord,
    PendingSignal,
    assemble,
    dump_execution,
    execution_part,
    load_execution,
)
from ._participant_rules import (
    ALLOWED_OUTCOMES,
    INPUT_FOR_OUTCOME,
    NOTHING_REMAINS,
    UNDONE,
    inherited_authority,
    reason_discrepancy,
    result_reply,
    status_reply,
)
from ._records import participant_record
from ._state import (
    TRANSIENT_CODES,
    MemberEffect,
    MemberInput,
    MemberReply,
    MemberState,
    Relation,
    Retry,
    member_step,
    released_state,
)
from ._wire import decode, encode

__all__ = ["IdSource", "Participant", "inherited_authority"]

# Message ids are a pure function of a sequence number the engine keeps (and
# persists), so a restarted engine never reuses one (draft §9.3).
IdSource = Callable[[int], str]


class Participant:
    """Sans-I/O participant for the executions of agent ``agent`` (draft §8)."""

    def __init__(
        self,
        *,
        agent: str,
        ids: IdSource | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.agent = check_identifier(agent, "agent")
        self._ids: IdSource = ids if ids is not None else _default_ids
        self._retry = retry if retry is not None else Retry()
        self._seq = 0
        self._execs: dict[ExecRef, ExecutionRecord] = {}
        # Every execution a step looked up for its work (``_get``): the only
        # ones it can have changed, so the only parts ``snapshot_changes`` dumps.
        self._touched: set[ExecRef] = set()
        self._taken_engine: str | None = None
        self._signals: dict[str, PendingSignal] = {}
        self._out: list[Message] = []
        self._records: list[RecoveryRecord] = []
        self._events: deque[Event] = deque()

    # ------------------------------------------------------------------ outputs

    def data_to_send(self) -> list[Message]:
        """Messages to transmit, in order; each names its recipient."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def records(self) -> list[RecoveryRecord]:
        """The participant's own records, one per rollback answered (draft §11.4).

        ``seq`` and ``prev`` are placeholders for the layer that signs and
        stores them (``_records.seal``).
        """
        out, self._records = self._records, []
        return out

    def get_timer(self) -> int | None:
        return min((s.next_at for s in self._signals.values()), default=None)

    # ------------------------------------------------------------------ views

    def state_of(self, execution: ExecRef) -> MemberState:
        return self._view(execution).state

    def owner_of(self, execution: ExecRef) -> tuple[str, str] | None:
        """(coordinator, recovery) holding ``execution``, or None."""
        claim = self._view(execution).claim
        return None if claim is None else claim.key

    def executions(self) -> tuple[ExecRef, ...]:
        return tuple(sorted(self._execs))

    def position(self, execution: ExecRef) -> int:
        return self._view(execution).position

    # ------------------------------------------------------------------ API

    def register_execution(
        self, execution: ExecRef, facts: Facts, authority: Iterable[str]
    ) -> None:
        """Start tracking ``execution`` (draft §5.2, §5.3).

        Reversibility and recovery authority are fixed here, before any failure.
        The agent running the execution is always part of its authority.
        """
        if execution.agent != self.agent:
            raise LocalProtocolError(ErrorCode.UNKNOWN_EXECUTION, "not this agent's execution")
        if execution in self._execs:
            raise LocalProtocolError(ErrorCode.CONFLICT, "execution already registered")
        names = frozenset(check_identifier(a, "authority") for a in authority)
        self._touched.add(execution)
        self._execs[execution] = ExecutionRecord(
            ref=execution,
            status=facts.status,
            reversibility=facts.reversibility,
            domain=facts.domain,
            authority=names | {self.agent},
            position=facts.checkpoint,
            high=facts.checkpoint,
        )

    def take_checkpoint(self, execution: ExecRef) -> int:
        """Record a new restore point; return its sequence number (draft §5.2)."""
        x = self._working(execution)
        x.high += 1
        x.position = x.high
        x.clean = True
        return x.position

    def record_effect(self, execution: ExecRef) -> None:
        """Note a change made since the last checkpoint that is not an output (draft §5.2).

        An effect such as a configuration written or a notification sent means
        that a rollback to the last checkpoint has work to undo: without this
        the engine would answer such a rollback ``not-needed`` itself (draft
        §8.5). Producing or consuming an output counts already.

        Allowed while the execution is contained: an effect that was in
        progress at the halt and could not be interrupted may complete, and
        the rollback's outcome must take it into account (draft §6.5).
        """
        self._get(execution).clean = False

    def record_dependency(self, dependency: Dependency) -> None:
        """Record an edge this agent took part in, as producer or consumer (draft §5.4)."""
        mine = [
            self._working(ref)
            for ref in {dependency.producer, dependency.consumer}
            if ref.agent == self.agent
        ]
        if not mine:
            raise LocalProtocolError(ErrorCode.UNKNOWN_EXECUTION, "no local execution in edge")
        for x in mine:
            producing = x.ref == dependency.producer
            mark = dependency.produced_after if producing else dependency.consumed_after
            if mark > x.high:
                raise LocalProtocolError(ErrorCode.MALFORMED, "edge names a future checkpoint")
        for x in mine:
            x.clean = False  # producing or consuming is an effect after the checkpoint
            if dependency.consumer == dependency.producer:
                continue
            if x.ref == dependency.producer:
                x.dependents.add(dependency)
            else:
                x.consumed.add(dependency)

    def set_status(self, execution: ExecRef, status: ExecStatus) -> None:
        self._get(execution).status = status

    def signal_failure(
        self,
        *,
        execution: ExecRef,
        to: str,
        failure_type: str,
        severity: Severity,
        retryable: bool,
        effect_state: EffectState,
        checkpoint: int,
        now: int,
        cause: str | None = None,
        progress: Progress | None = None,
        detail: str | None = None,
        evidence: tuple[str, ...] = (),
        resources: tuple[str, ...] = (),
        recommended_action: str | None = None,
    ) -> str:
        """Send a failure signal to recovery authority ``to``; return its id (draft §6.2).

        The signal is retransmitted unchanged until answered, so its id stays
        the recovery's trigger. Severity ``error`` or ``fatal`` marks the
        execution failed: it stopped.
        """
        x = self._get(execution)
        if checkpoint > x.high:
            raise LocalProtocolError(ErrorCode.MALFORMED, "signal names a future checkpoint")
        signal = FailureSignal(
            id=self._next_id(),
            sender=self.agent,
            recipient=to,
            iat=now,
            execution=execution,
            failure_type=failure_type,
            severity=severity,
            retryable=retryable,
            effect_state=effect_state,
            checkpoint=checkpoint,
            cause=cause,
            progress=progress,
            detail=detail,
            evidence=evidence,
            resources=resources,
            recommended_action=recommended_action,
        )
        if severity is not Severity.WARNING:
            x.status = ExecStatus.FAILED
        self._signals[signal.id] = PendingSignal(
            message=signal, attempts=1, next_at=now + self._retry.delay(1), since=now
        )
        self._out.append(signal)
        return signal.id

    def rollback_done(
        self,
        execution: ExecRef,
        outcome: Outcome,
        *,
        checkpoint: int,
        now: int,
        residual: tuple[Residual, ...] = (),
        code: ErrorCode | None = None,
        detail: str | None = None,
    ) -> None:
        """Report what the application did for the rollback in progress (draft §8.2).

        ``checkpoint`` is where the execution now is. ``restored`` and
        ``compensated`` undo everything after it, so edges produced after it
        are forgotten; ``irreversible`` and ``failed`` must disclose residual
        effects and ``refused`` must give a code.
        """
        x = self._get(execution)
        claim = x.claim
        if outcome not in INPUT_FOR_OUTCOME:
            raise LocalProtocolError(ErrorCode.MALFORMED, f"outcome {outcome} is not reportable")
        step = member_step(x.state, INPUT_FOR_OUTCOME[outcome], Relation.OWNER)
        assert claim is not None and claim.action is not None and claim.target is not None
        if outcome not in ALLOWED_OUTCOMES[claim.action]:
            raise LocalProtocolError(
                ErrorCode.INVALID_STATE, f"outcome {outcome} does not answer {claim.action}"
            )
        if not 0 <= checkpoint <= x.high or (outcome in UNDONE and checkpoint > claim.target):
            raise LocalProtocolError(ErrorCode.MALFORMED, "checkpoint does not fit the outcome")
        if outcome in (Outcome.IRREVERSIBLE, Outcome.FAILED) and not residual:
            raise LocalProtocolError(ErrorCode.MALFORMED, f"{outcome} must disclose residual")
        if outcome in NOTHING_REMAINS and residual:
            # Refused here, before any state changes, not when the result is built.
            raise LocalProtocolError(ErrorCode.MALFORMED, f"{outcome} leaves no residual effects")
        if (outcome is Outcome.REFUSED) != (code is not None):
            raise LocalProtocolError(ErrorCode.MALFORMED, "a code goes with refused, only")
        self._finish(
            x,
            claim,
            state=step.next,
            outcome=outcome,
            checkpoint=checkpoint,
            residual=residual,
            code=code,
            detail=detail,
            now=now,
        )

    # ------------------------------------------------------------------ inputs

    def receive(self, sender: str, message: Message, now: int) -> None:
        """Process a message whose sender ``sender`` was authenticated (draft §9)."""
        if isinstance(message, (Ack, Error)):
            # Answers are never answered (draft §9); a stray one is dropped.
            if message.sender == sender and message.recipient == self.agent:
                self._on_signal_reply(message)
            return
        if message.sender != sender:
            self._refuse(sender, message, now, ErrorCode.UNAUTHORIZED, "from is not the sender")
        elif message.recipient != self.agent:
            self._refuse(sender, message, now, ErrorCode.WRONG_RECIPIENT, "")
        elif isinstance(message, (Halt, Rollback, Resume, StatusQuery)):
            try:
                self._on_request(sender, message, now)
            except LocalProtocolError as exc:  # the single inbound translation point
                self._refuse(sender, message, now, exc.code, exc.detail)
        else:
            self._refuse(sender, message, now, ErrorCode.INVALID_STATE, "not for a participant")

    def handle_timer(self, now: int) -> None:
        # draft §8.4: a failure signal is retransmitted unchanged (same id, so it
        # opens one recovery) with backoff, then at the follow-up pace, until the
        # follow-up time is spent; only then is the application told.
        retry = self._retry
        for signal_id in sorted(self._signals):
            pending = self._signals[signal_id]
            if pending.next_at > now:
                continue
            if now - pending.since >= retry.follow_up:
                del self._signals[signal_id]
                self._events.append(SignalUndelivered(signal=signal_id))
                continue
            pending.attempts += 1
            if pending.attempts >= retry.attempts:
                delay = retry.follow_up_interval
            else:
                delay = retry.delay(pending.attempts)
            pending.next_at = now + delay
            self._out.append(pending.message)

    # ------------------------------------------------------------------ internals

    def _next_id(self) -> str:
        self._seq += 1
        return check_identifier(self._ids(self._seq), "message id")

    def _get(self, execution: ExecRef) -> ExecutionRecord:
        """The record of ``execution``, to work on: it is saved after the step."""
        x = self._view(execution)
        self._touched.add(execution)
        return x

    def _view(self, execution: ExecRef) -> ExecutionRecord:
        """The record of ``execution``, to read only."""
        x = self._execs.get(execution)
        if x is None:
            raise LocalProtocolError(ErrorCode.UNKNOWN_EXECUTION, "execution not registered")
        return x

    def _working(self, execution: ExecRef) -> ExecutionRecord:
        x = self._get(execution)
        if x.claim is not None:
            # draft §8.1: a contained execution produces no effects and forwards nothing.
            raise LocalProtocolError(ErrorCode.INVALID_STATE, "execution is contained")
        return x

    def _refuse(
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

    def _on_signal_reply(self, message: Ack | Error) -> None:
        pending = self._signals.get(message.reply_to)
        if pending is None or message.sender != pending.message.recipient:
            return
        if isinstance(message, Ack):
            del self._signals[message.reply_to]
            self._events.append(
                SignalAcknowledged(signal=message.reply_to, recovery=message.recovery)
            )
        elif message.effective_code not in TRANSIENT_CODES:
            del self._signals[message.reply_to]
            self._events.append(SignalRefused(signal=message.reply_to, code=message.code))

    def _relation(
        self, x: ExecutionRecord, sender: str, message: Halt | Rollback | Resume | StatusQuery
    ) -> tuple[Relation, Claim | None]:
        key = (sender, message.recovery)
        former = x.history.get(key)
        if former is not None:
            return (Relation.RELEASED if former.outcome is None else Relation.FINISHED), former
        if x.claim is None:
            return Relation.NONE, None
        if x.claim.key == key:
            return Relation.OWNER, x.claim
        for claim in x.suspended:
            if claim.key == key:
                return Relation.SUSPENDED, claim
        if isinstance(message, Halt):
            # draft §8.5: recoveries are ordered by (created, recovery id); the
            # coordinator breaks ties between equal ids of different coordinators.
            mine = (message.created, message.recovery, sender)
            owner = (x.claim.created, x.claim.recovery, x.claim.coordinator)
            return (Relation.OLDER if mine < owner else Relation.YOUNGER), None
        return Relation.OTHER, None

    def _on_request(
        self, sender: str, message: Halt | Rollback | Resume | StatusQuery, now: int
    ) -> None:
        x = self._execs.get(message.execution)
        if x is None:
            raise LocalProtocolError(ErrorCode.UNKNOWN_EXECUTION, "")
        self._touched.add(message.execution)
        if sender not in x.authority:
            # draft §9.2: authorization is a lookup in the authority fixed at start.
            raise LocalProtocolError(ErrorCode.UNAUTHORIZED, "not in the recovery authority")
        relation, claim = self._relation(x, sender, message)
        if claim is not None and claim.trigger != message.trigger:
            raise LocalProtocolError(ErrorCode.WRONG_RECOVERY, "trigger does not match")
        live = relation in (Relation.OWNER, Relation.SUSPENDED)
        if (
            isinstance(message, Halt)
            and live
            and claim is not None
            and claim.created != message.created
        ):
            raise LocalProtocolError(ErrorCode.WRONG_RECOVERY, "created does not match")
        if (
            isinstance(message, Rollback)
            and claim is not None
            and claim.target is not None
            and (claim.target, claim.action) != (message.target, message.action)
        ):
            raise LocalProtocolError(ErrorCode.CONFLICT, "another rollback was requested")
        step = member_step(x.state, MemberInput(message.TYPE), relation)
        effect = step.effect
        if effect is MemberEffect.CLAIM or effect is MemberEffect.TAKE_OVER:
            assert isinstance(message, Halt)
            if x.claim is not None:
                x.suspended.append(x.claim)
            x.claim = Claim(
                coordinator=sender,
                recovery=message.recovery,
                trigger=message.trigger,
                created=message.created,
            )
            self._events.append(HaltRequested(execution=x.ref, recovery=message.recovery))
        elif effect is MemberEffect.TOMBSTONE:
            x.history[sender, message.recovery] = Claim(
                coordinator=sender,
                recovery=message.recovery,
                trigger=message.trigger,
                created=0,
                state=MemberState.IDLE,
            )
        elif effect is MemberEffect.DROP:
            assert claim is not None
            x.suspended.remove(claim)
            x.history[claim.key] = claim
        self._reply(x, sender, message, reply=step.reply, claim=claim or x.claim, now=now)
        if effect is MemberEffect.START:
            assert isinstance(message, Rollback) and x.claim is not None
            self._start(x, x.claim, message, now)
        elif effect is MemberEffect.RELEASE:
            assert x.claim is not None
            self._release(x, x.claim)
        elif x.claim is not None and relation is Relation.OWNER:
            x.claim.state = step.next

    def _reply(
        self,
        x: ExecutionRecord,
        sender: str,
        message: Halt | Rollback | Resume | StatusQuery,
        *,
        reply: MemberReply,
        claim: Claim | None,
        now: int,
    ) -> None:
        common: dict[str, Any] = {
            "id": self._next_id(),
            "sender": self.agent,
            "recipient": sender,
            "iat": now,
            "reply_to": message.id,
            "recovery": message.recovery,
            "trigger": message.trigger,
        }
        out: Message
        if reply is MemberReply.HALTED:
            out = Halted(
                **common,
                execution=x.ref,
                facts=x.facts(),
                dependents=tuple(sorted(x.dependents)),
            )
        elif reply is MemberReply.ACK:
            out = Ack(**common)
        elif reply is MemberReply.ROLLBACK_RESULT:
            assert claim is not None and claim.outcome is not None
            out = result_reply(x, claim, common)
        elif reply is MemberReply.STATUS:
            out = status_reply(x, sender, message, common)
        elif reply is MemberReply.BUSY:
            assert x.claim is not None
            out = Error(
                **common,
                code=ErrorCode.BUSY.value,
                owner=Owner(recovery=x.claim.recovery, created=x.claim.created),
            )
        else:
            out = Error(**common, code=ErrorCode.INVALID_STATE.value, detail=f"state {x.state}")
        self._out.append(out)

    def _start(self, x: ExecutionRecord, claim: Claim, message: Rollback, now: int) -> None:
        claim.state = MemberState.ROLLING_BACK
        claim.request = message.id
        claim.request_iat = message.iat
        claim.target = message.target
        claim.action = message.action
        claim.reason = message.reason
        discrepancy = reason_discrepancy(x, message)
        if discrepancy is not None:
            self._events.append(
                ReasonDiscrepancy(execution=x.ref, recovery=claim.recovery, detail=discrepancy)
            )
        if x.clean and x.position <= message.target:
            # draft §8.5: nothing after the target is left (an earlier recovery
            # restored it); answering not-needed guarantees no work is undone twice.
            step = member_step(claim.state, MemberInput.DONE_NOT_NEEDED, Relation.OWNER)
            self._finish(
                x,
                claim,
                state=step.next,
                outcome=Outcome.NOT_NEEDED,
                checkpoint=x.position,
                residual=(),
                code=None,
                detail=None,
                now=now,
            )
            return
        self._events.append(self._rollback_event(x, claim, replayed=False))

    def _rollback_event(
        self, x: ExecutionRecord, claim: Claim, *, replayed: bool
    ) -> RollbackRequested:
        assert claim.target is not None and claim.action is not None and claim.reason is not None
        return RollbackRequested(
            execution=x.ref,
            recovery=claim.recovery,
            trigger=claim.trigger,
            target=claim.target,
            action=claim.action,
            reason=claim.reason,
            replayed=replayed,
        )

    def _finish(
        self,
        x: ExecutionRecord,
        claim: Claim,
        *,
        state: MemberState,
        outcome: Outcome,
        checkpoint: int,
        residual: tuple[Residual, ...],
        code: ErrorCode | None,
        detail: str | None,
        now: int,
    ) -> None:
        claim.state = state
        claim.outcome = outcome
        claim.checkpoint = checkpoint
        claim.residual = residual
        claim.code = None if code is None else code.value
        claim.detail = detail
        if outcome in UNDONE:
            x.position = checkpoint
            x.clean = True
            # Outputs made after the restored checkpoint no longer exist; their
            # consumers were members of this same recovery (draft §7).
            x.dependents = {d for d in x.dependents if d.produced_after < checkpoint}
            # And whatever it consumed after that checkpoint was never used.
            x.consumed = {d for d in x.consumed if d.consumed_after < checkpoint}
        assert claim.request is not None
        common: dict[str, Any] = {
            "id": self._next_id(),
            "sender": self.agent,
            "recipient": claim.coordinator,
            "iat": now,
            "reply_to": claim.request,
            "recovery": claim.recovery,
            "trigger": claim.trigger,
        }
        result = result_reply(x, claim, common)
        self._out.append(result)
        assert claim.target is not None and claim.action is not None and claim.reason is not None
        request = Rollback(
            id=claim.request,
            sender=claim.coordinator,
            recipient=self.agent,
            iat=claim.request_iat,
            recovery=claim.recovery,
            trigger=claim.trigger,
            execution=x.ref,
            target=claim.target,
            action=claim.action,
            reason=claim.reason,
        )
        self._records.append(
            participant_record(
                id=self._next_id(), request=request, result=result, created=claim.created
            )
        )

    def _release(self, x: ExecutionRecord, claim: Claim) -> None:
        x.history[claim.key] = claim
        x.claim = None
        # draft §8.5: a suspended claim is reinstated with its state, so the
        # execution stays contained until every recovery holding it let it go.
        state = released_state([c.state for c in x.suspended])
        if x.suspended:
            x.claim = x.suspended.pop()
            assert x.claim.state is state
        else:
            self._events.append(
                Resumed(execution=x.ref, recovery=claim.recovery, outcome=claim.outcome)
            )

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """The engine's whole state as JSON-able data (outputs already pulled)."""
        return {
            **self._dump_engine(),
            "executions": [dump_execution(x) for x in sorted(self._execs.values(), key=_ref)],
        }

    def snapshot_parts(self) -> dict[str, Any]:
        """The same state cut into parts, by key: ``from_snapshot({"parts": ...})`` reads it.

        One part per execution and one for the rest (message counter, pending
        signals), so that a store rewrites after each step only the executions
        the step worked on (draft §11.2: the cost of a step is what it changed,
        not the hundreds of executions an agent may run).
        """
        self._touched.clear()
        parts: dict[str, Any] = {ENGINE_PART: self._dump_engine()}
        for ref, x in self._execs.items():
            parts[execution_part(ref)] = dump_execution(x)
        return parts

    def snapshot_changes(self) -> dict[str, Any]:
        """The parts that may have changed since the last call (or ``snapshot_parts``)."""
        touched, self._touched = self._touched, set()
        parts: dict[str, Any] = {ENGINE_PART: self._dump_engine()}
        for ref in touched:
            x = self._execs.get(ref)
            if x is not None:
                parts[execution_part(ref)] = dump_execution(x)
        return parts

    def _dump_engine(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "seq": self._seq,
            "signals": [
                [encode(p.message).decode("utf-8"), p.attempts, p.next_at, p.since]
                for _, p in sorted(self._signals.items())
            ],
        }

    @classmethod
    def from_snapshot(
        cls,
        data: dict[str, Any],
        *,
        ids: IdSource | None = None,
        retry: Retry | None = None,
    ) -> Participant:
        """Rebuild an engine from :meth:`snapshot` output.

        ``{"parts": parts}``, with the parts of :meth:`snapshot_parts` as updated
        by :meth:`snapshot_changes`, is read as the snapshot they make up.

        Raises again, as events, the local work still owed: every contained
        execution is halted, and a rollback in progress is requested again
        (``replayed=True``).
        """
        try:
            if set(data) == {"parts"}:
                data = assemble(data["parts"])
            return cls._restore(data, ids, retry)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A damaged snapshot is refused with a typed error, never half-loaded.
            raise LocalProtocolError(ErrorCode.MALFORMED, f"snapshot: {exc!r}") from exc

    @classmethod
    def _restore(
        cls, data: dict[str, Any], ids: IdSource | None, retry: Retry | None
    ) -> Participant:
        engine = cls(agent=data["agent"], ids=ids, retry=retry)
        engine._seq = data["seq"]
        for item in data["executions"]:
            x = load_execution(item)
            engine._execs[x.ref] = x
        for raw, attempts, next_at, since in data["signals"]:
            message = decode(raw.encode("utf-8"))
            assert isinstance(message, FailureSignal)
            engine._signals[message.id] = PendingSignal(
                message=message, attempts=attempts, next_at=next_at, since=since
            )
        for x in sorted(engine._execs.values(), key=_ref):
            if x.claim is None:
                continue
            engine._events.append(HaltRequested(execution=x.ref, recovery=x.claim.recovery))
            if x.claim.state is MemberState.ROLLING_BACK:
                engine._events.append(engine._rollback_event(x, x.claim, replayed=True))
        return engine


def _default_ids(n: int) -> str:
    return f"p-{n}"


def _ref(x: ExecutionRecord) -> ExecRef:
    return x.ref
