"""One agent process: its engines, endpoint, store, resource, clock and timers.

:class:`AgentRuntime` is the I/O shell around the sans-I/O engines, in the
aioquic manner: it feeds them the three inputs (API calls, received messages,
timer expiries) with the real clock, and moves their outputs:

- messages: every engine step is committed to the store first (snapshot,
  records, signed outbox; ``store.DurableParty``), then its messages leave,
  the synchronous reply as the HTTP response and the rest as POSTs to the
  recipients' recovery endpoints (draft §12.2); a reply that comes back is
  verified and fed in like any message;
- events: a participant's local work (halt, undo, continue) is carried out on
  the agent's real :class:`~._resource.Resource`, and its outcome reported to
  the engine (draft §8.2);
- the next timer: one ``call_later`` handle, re-armed after every step.

Everything runs on one asyncio loop and every engine call is synchronous, so
no two steps interleave and no lock is needed. Nothing here decides a
protocol question; the engines and the endpoint do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from .._coordinator import Coordinator
from .._errors import ErrorCode, RemoteProtocolError
from .._events import (
    Event,
    HaltRequested,
    ReasonDiscrepancy,
    RecoveryEnded,
    RecoveryStarted,
    Resumed,
    ReversibilityDiscrepancy,
    RollbackRequested,
    SignalAcknowledged,
    SignalRefused,
    SignalUndelivered,
    WarningReceived,
)
from .._messages import Error, FailureSignal, Message
from .._model import Action, ExecRef, Facts, Outcome, Residual, Reversibility, Status
from .._participant import Participant
from .._state import MemberState
from ..bindings.http import (
    DEFAULT_PATH,
    Answer,
    Delivery,
    DeliveryError,
    RecoveryClient,
    answer_for_refusal,
    answer_for_reply,
    answer_inbound,
    parse_problem,
    peek,
    read_response,
)
from ..security import (
    Endpoint,
    InboundError,
    RateLimiter,
    RatePolicy,
    SecurityEvent,
    Signer,
    load_jwk_set,
)
from ..security.endpoint import Admitted
from ..security.override import Override, OverrideEndpoint
from ..security.ratelimit import DEFAULT_POLICIES
from ..security.replay import ReplayCache
from ..store import DurableParty, Store
from ..store._replay import ReplayJournal
from ._config import AgentConfig, CoordinatedExecution, ExecutionConfig, FailureSpec
from ._engines import AgentEngines, Outbound
from ._resource import Resource, ResourceError, UndoResult

__all__ = ["AgentRuntime", "Trace", "Transport", "wall_clock"]

_log = logging.getLogger("agent_recovery.runtime")

# Requests in flight at once: the client's connection pool (RecoveryClient's
# default). The rest wait here, not in the pool, whose bookkeeping costs time
# proportional to the requests queued in it at every exchange: a thousand halts
# queued there made sending quadratic.
_IN_FLIGHT = 100


def _fits(declared: Reversibility | None, action: Action) -> bool:
    """Whether ``action`` is one an execution declared ``declared`` can carry out."""
    if declared is None:
        return True
    if declared is Reversibility.RESTORABLE:
        return action in (Action.CANCEL_RESTORE, Action.RESTORE)
    if declared is Reversibility.COMPENSABLE:
        return action is Action.COMPENSATE
    return action is Action.NONE


class _Operated:
    """The coordinator as an override target: each override is a durable engine step."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self._runtime = runtime

    def _step(self, fn: Callable[[Coordinator], None]) -> None:
        runtime = self._runtime
        assert runtime.coordinator is not None
        runtime._call(runtime.coordinator, fn)
        runtime._after()

    def abort(self, recovery: str, now: int, *, evidence: str | None = None) -> None:
        self._step(lambda c: c.abort(recovery, now, evidence=evidence))

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
        self._step(
            lambda c: c.force_outcome(
                recovery, execution, outcome, residual, now, evidence=evidence
            )
        )


def wall_clock() -> int:
    """Milliseconds since the epoch: the only clock the runtime reads."""
    return time.time_ns() // 1_000_000


class Trace:
    """What happened at this agent, as JSON Lines (the demo's timeline reads them)."""

    def __init__(self, path: Path | None, agent: str) -> None:
        self.agent = agent
        self._file: IO[str] | None = None
        self.enabled = path is not None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def __call__(self, at: int, kind: str, **fields: Any) -> None:
        if self._file is None:
            return
        line = {"at": at, "agent": self.agent, "kind": kind, **fields}
        self._file.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Transport(Protocol):
    """How protocol messages leave: the HTTP binding's client, or another binding's.

    ``send`` delivers one JWS to the recovery endpoint ``url`` and returns the
    peer's reply, if any; it raises ``DeliveryError`` for a lost message.
    """

    async def send(self, url: str, jws: bytes) -> Delivery: ...

    async def close(self) -> None: ...


class AgentRuntime:
    """One agent: participant for its executions, coordinator where configured."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], int] = wall_clock,
        client: Transport | None = None,
    ) -> None:
        self.config = config
        self.agent = config.agent
        self.clock = clock
        self.signer = Signer.from_file(config.key)
        self.keys = load_jwk_set(config.trusted_keys)
        self._tmp: Path | None = None
        state = config.state
        if state is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="agent-recovery-"))
            state = self._tmp / "state.db"
        else:
            state.parent.mkdir(parents=True, exist_ok=True)
        self.store = Store(state)
        # Message ids are per sender; both engines send as this agent, so they
        # take disjoint names. A durable store keeps the counters across
        # restarts; a temporary one does not. Every id also carries 96 random
        # bits drawn at start: the coordinator's ids name recoveries, which
        # should be globally unique (draft §5.1), and a restart without the
        # store's counters cannot reuse an id.
        prefix = secrets.token_urlsafe(12) + "."
        retry, bounds = config.retry, config.bounds
        me = self.agent

        def participant_ids(n: int) -> str:
            return f"{prefix}p{n}"

        def coordinator_ids(n: int) -> str:
            return f"{prefix}c{n}"

        self.participant: DurableParty[Participant] = DurableParty(
            self.store,
            name="participant",
            signer=self.signer,
            create=lambda: Participant(agent=me, ids=participant_ids, retry=retry),
            restore=lambda d: Participant.from_snapshot(d, ids=participant_ids, retry=retry),
        )
        self.coordinator: DurableParty[Coordinator] | None = None
        if config.coordinator:
            self.coordinator = DurableParty(
                self.store,
                name="coordinator",
                signer=self.signer,
                create=lambda: Coordinator(
                    agent=me, ids=coordinator_ids, retry=retry, bounds=bounds
                ),
                restore=lambda d: Coordinator.from_snapshot(
                    d, ids=coordinator_ids, retry=retry, bounds=bounds
                ),
            )
        self.engines = AgentEngines(self.participant, self.coordinator)
        self.engines.on_step = self._drain
        self.trace = Trace(config.trace, self.agent)
        policies = dict(DEFAULT_POLICIES)
        policies.update(
            {
                name: RatePolicy(burst=b, interval_ms=i)
                for name, (b, i) in config.rate_limits.items()
            }
        )
        # draft §9.3: the replay cache lives in the store file too, so a
        # restart loses none of it; it is complete since the journal began, or
        # since the bound of a batch a crash cut short (store/_replay.py).
        # A store in a temporary directory is new at every start: whatever an
        # earlier start accepted is unknown, so the cache is complete from now.
        self.replay_journal = ReplayJournal(
            self.store.path, now=clock(), lost_before=0 if self._tmp is None else clock()
        )
        replay = ReplayCache(
            complete_since=self.replay_journal.complete_since, journal=self.replay_journal
        )
        replay.restore(self.replay_journal.entries(clock()), clock())
        self.endpoint = Endpoint(
            agent=self.agent,
            engine=self.engines,
            signer=self.signer,
            resolver=self.keys,
            limiter=RateLimiter(policies),
            events=self._security_event,
            replay=replay,
        )
        # draft §8.7: operator overrides, signed with keys no agent holds. Their
        # replay cache is not kept across a restart, so it is complete from the
        # start of this process and an earlier instruction is refused as stale.
        self.override: OverrideEndpoint | None = None
        if self.coordinator is not None and config.operators is not None:
            self.override = OverrideEndpoint(
                agent=self.agent,
                target=_Operated(self),
                operators=load_jwk_set(config.operators),
                events=self._override_event,
                replay=ReplayCache(complete_since=clock()),
            )
        self.resource = Resource(config.resource, devices=config.devices)
        self.executions: dict[str, ExecutionConfig] = {x.id: x for x in config.executions}
        self._client = client
        self._own_client = client is None
        self._in_flight = asyncio.Semaphore(_IN_FLIGHT)
        self._work_client: httpx.AsyncClient | None = None
        self._peers: dict[str, str] = dict(config.peers)
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Event], None]] = []
        self._signals: dict[str, tuple[str, FailureSpec]] = {}  # id -> execution, failure
        self._queue: list[tuple[bytes, asyncio.Future[Answer] | None]] = []
        self._scheduled = False
        self.started = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def client(self) -> Transport:
        if self._client is None:
            self._client = RecoveryClient()
        return self._client

    @property
    def work_client(self) -> httpx.AsyncClient:
        """For the work API between agents (outputs), which is not the protocol."""
        if self._work_client is None:
            self._work_client = httpx.AsyncClient(
                timeout=10.0,
                trust_env=False,
                transport=httpx.AsyncHTTPTransport(
                    socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
                ),
            )
        return self._work_client

    def ref(self, exec_id: str) -> ExecRef:
        return ExecRef(agent=self.agent, exec=exec_id)

    async def start(self) -> None:
        """Register the configured executions, resume what a crash interrupted, arm timers."""
        now = self.clock()
        known = set(self.participant.engine.executions())
        for x in self.config.executions:
            ref = self.ref(x.id)
            self.resource.begin(x.id, x.device, now)
            if ref in known:
                continue
            facts = Facts(
                status=Status.ACTIVE, reversibility=x.reversibility, checkpoint=0, domain=x.domain
            )
            self._register(ref, facts, x.authority)
        if self.coordinator is not None:
            for item in self.config.coordinated:
                self._authorize(item)
        # draft §11.2: what a committed step queued but never handed over leaves now;
        # a duplicate is answered idempotently by its receiver.
        for party in self.engines.parties():
            for entry in party.pending_outbox():
                self._spawn(self._send(Outbound(party=party, entry=entry)))
        self.started = True
        self._after()
        self._flusher = asyncio.create_task(self._flush_sent())

    def _register(self, ref: ExecRef, facts: Facts, authority: tuple[str, ...]) -> None:
        self._call(self.participant, lambda p: p.register_execution(ref, facts, authority))

    def _authorize(self, item: CoordinatedExecution) -> None:
        assert self.coordinator is not None
        self._call(
            self.coordinator,
            lambda c: c.add_execution(
                item.execution, item.authority, reversibility=item.reversibility
            ),
        )

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.engines.flush_sent()
        if self._own_client and self._client is not None:
            await self._client.close()
        if self._work_client is not None:
            await self._work_client.aclose()
        self.replay_journal.commit(self.clock())
        self.replay_journal.close()
        self.store.close()
        self.resource.close()
        self.trace.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def on_event(self, listener: Callable[[Event], None]) -> None:
        """Also tell ``listener`` about every engine event (plans use this)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ inbound

    async def handle(self, body: bytes) -> Answer:
        """The HTTP binding's handler: one request body in, its answer out (draft §12.2).

        Requests that arrive together are processed together (:meth:`_run_queue`).
        """
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._enqueue(body, future)
        return await future

    def _enqueue(self, body: bytes, future: asyncio.Future[Answer] | None) -> None:
        self._queue.append((body, future))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run_queue)

    def _run_queue(self) -> None:
        self._scheduled = False
        items, self._queue = self._queue, []
        try:
            answers = self._process([body for body, _ in items])
        except Exception:  # a bug in one message must not fail its neighbours
            _log.exception("batch failed; processing its messages one by one")
            answers = []
            for body, _ in items:
                try:
                    answers.extend(self._process([body]))
                except Exception as exc:
                    _log.exception("message failed")
                    answers.append(answer_for_refusal(ErrorCode.INTERNAL, type(exc).__name__))
        self._after()
        for (_, future), answer in zip(items, answers, strict=True):
            if future is not None and not future.done():
                future.set_result(answer)

    def inbound(self, token: bytes) -> Answer:
        """Verify and process one message now; the answer holds the signed reply, if any."""
        answer = self._process([token])[0]
        self._after()
        return answer

    def _process(self, tokens: list[bytes]) -> list[Answer]:
        """Verify messages and give the accepted ones to the engines together (draft §9).

        Steps 1 to 7 of draft §9 run per message (``Endpoint.admit``); the
        messages that pass go to the engines in one durable step per engine;
        then each accepted message is committed to the replay cache with its
        reply and charged to its sender's rate limit, as ``Endpoint.receive``
        does for one message. A refusal, an exact duplicate, a failure signal
        (rate limits count each one) and a second message with an id already in
        the batch go through ``Endpoint.receive`` on their own, in order.
        """
        now = self.clock()
        endpoint = self.endpoint
        # No message this batch accepts was issued after now + skew; if the
        # process dies before the batch's replay entries are written, the cache
        # is complete only from there (store/_replay.py, draft §9.3).
        self.replay_journal.begin(now + endpoint.replay.skew_ms + 1)
        answers: list[Answer | None] = [None] * len(tokens)
        run: list[tuple[int, Admitted]] = []
        ids: set[tuple[str, str]] = set()

        def flush() -> None:
            if not run:
                return
            replies = self.engines.receive_many([a.message for _, a in run], now)
            for i, admitted in run:
                message = admitted.message
                got = replies.get(message.id)
                token = None if got is None else got[0]
                if got is None or not isinstance(got[1], Error):
                    # An engine's refusal changed nothing: nothing to remember.
                    endpoint.replay.commit(
                        sender=message.sender,
                        message_id=message.id,
                        iat=message.iat,
                        recovery=message.recovery,
                        data=admitted.payload,
                        reply=token,
                        now=now,
                    )
                    endpoint.limiter.consume(message.sender, message.TYPE, now)
                answers[i] = answer_for_reply(token)
                if self.trace.enabled:
                    self._trace_message("recv", message)
            run.clear()
            ids.clear()

        for i, data in enumerate(tokens):
            try:
                admitted = endpoint.admit(data, now)
            except InboundError:
                admitted = None
            key = None if admitted is None else (admitted.message.sender, admitted.message.id)
            if admitted is None or admitted.duplicate is not None or key in ids:
                flush()
                answers[i] = self._single(data, now)
                continue
            assert key is not None
            run.append((i, admitted))
            ids.add(key)
            if isinstance(admitted.message, FailureSignal):
                flush()
        flush()
        return [a if a is not None else answer_for_refusal(ErrorCode.INTERNAL) for a in answers]

    def _single(self, token: bytes, now: int) -> Answer:
        answer = answer_inbound(self.endpoint, token, now)
        if self.trace.enabled:
            if answer.status < 300:
                self._trace_message("recv", peek(token))
            else:
                problem = parse_problem(answer.body, answer.status)
                self.trace(
                    now, "refused", status=answer.status, code=problem.code, detail=problem.detail
                )
        return answer

    def _security_event(self, event: SecurityEvent) -> None:
        _log.debug("security event: %s", event)

    def _override_event(self, event: SecurityEvent) -> None:
        # draft §8.7: every override, applied or refused, is recorded.
        _log.warning("operator override: %s", event)
        self.trace(
            event.at,
            event.kind.value,
            operator=event.agent,
            override=event.message_id,
            action=event.message_type,
            recovery=event.recovery,
            code=None if event.code is None else event.code.value,
            detail=event.detail,
            digest=event.digest,
        )

    def operate(self, instruction: bytes) -> Override:
        """Apply one signed operator override (``security.override``); refusals raise."""
        if self.override is None:
            raise RemoteProtocolError(ErrorCode.INVALID_STATE, "no operator keys configured")
        return self.override.receive(instruction, self.clock())

    # ------------------------------------------------------------------ outbound

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, out: Outbound) -> None:
        entry = out.entry
        if self.trace.enabled:
            self._trace_message("send", peek(entry.token))
        reply: bytes | None = None
        try:
            if entry.recipient == self.agent:
                # To itself, e.g. a coordinator halting its own agent's execution.
                future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
                self._enqueue(entry.token, future)
                answer = await future
                delivery = read_response(answer.status, answer.content_type, answer.body)
            else:
                url = self.peer_url(entry.recipient)
                if url is None:
                    raise DeliveryError(f"no URL for peer {entry.recipient!r}")
                async with self._in_flight:
                    delivery = await self.client.send(url, entry.token)
            reply = delivery.reply
        except DeliveryError as exc:
            # A lost message: the sending engine's timers retransmit (draft §8.4).
            if self.trace.enabled:
                self.trace(
                    self.clock(),
                    "undelivered",
                    to=entry.recipient,
                    type=peek(entry.token).TYPE,
                    detail=str(exc)[:300],
                )
        finally:
            self.engines.sent(out.party, entry.id)
        if reply is not None:
            self._enqueue(reply, None)

    def peer_url(self, agent: str) -> str | None:
        """The recovery endpoint of ``agent``, from the configuration or the peers file."""
        url = self._peers.get(agent)
        if url is None and self.config.peers_file is not None:
            try:
                document = json.loads(self.config.peers_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                document = {}
            if isinstance(document, dict):
                self._peers.update({k: v for k, v in document.items() if isinstance(v, str)})
            url = self._peers.get(agent)
        if url is None:
            return None
        base = url.rstrip("/")
        # A bare origin means the default endpoint (draft §12.2).
        return base + DEFAULT_PATH if base.count("/") == 2 else base

    async def _flush_sent(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            self.engines.flush_sent()

    # ------------------------------------------------------------------ steps

    def _call(self, party: DurableParty[Any], fn: Callable[[Any], Any]) -> Any:
        """An API call on an engine, as a durable step whose outputs are then moved."""
        step = party.call(fn)
        self.engines.collect(party, step)
        return step.value

    def _after(self) -> None:
        """Move every output of the steps just taken: events, messages, the timer."""
        self._drain()
        self.replay_journal.commit(self.clock())
        for out in self.engines.take_outbound():
            self._spawn(self._send(out))
        self._arm()

    def _drain(self) -> None:
        """Carry out the engines' events (the application's work) until there are none."""
        while True:
            events: list[tuple[DurableParty[Any], Event]] = []
            for party in self.engines.parties():
                while (event := party.engine.next_event()) is not None:
                    events.append((party, event))
            if not events:
                break
            for party, event in events:
                self._on_event(party, event)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = [t for p in self.engines.parties() if (t := p.engine.get_timer()) is not None]
        if due:
            delay = max(0.0, (min(due) - self.clock()) / 1000)
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self.clock()
        for party in self.engines.parties():
            due = party.engine.get_timer()
            if due is not None and due <= now:
                self.engines.collect(party, party.handle_timer(now))
        self._after()

    # ------------------------------------------------------------------ events

    def _on_event(self, party: DurableParty[Any], event: Event) -> None:
        now = self.clock()
        if isinstance(event, RollbackRequested):
            self._undo(event, now)
        elif isinstance(event, HaltRequested):
            self.trace(now, "halted", exec=event.execution.exec, recovery=event.recovery)
        elif isinstance(event, Resumed):
            self.trace(
                now,
                "resumed",
                exec=event.execution.exec,
                recovery=event.recovery,
                outcome=None if event.outcome is None else event.outcome.value,
            )
        elif isinstance(event, RecoveryStarted):
            self.trace(
                now,
                "recovery-started",
                recovery=event.recovery,
                trigger=event.trigger,
                origin=[event.origin.agent, event.origin.exec],
            )
        elif isinstance(event, RecoveryEnded):
            self.trace(
                now,
                "recovery-ended",
                recovery=event.recovery,
                state=event.state,
                result=event.result.value,
            )
        elif isinstance(event, SignalAcknowledged):
            self._signals.pop(event.signal, None)
            self.trace(now, "signal-acknowledged", signal=event.signal, recovery=event.recovery)
        elif isinstance(event, ReversibilityDiscrepancy):
            # draft §13.6: the actions follow the declared class; the operators hear of it.
            _log.warning(
                "%s declared %s at delegation, reports %s (recovery %s)",
                event.execution.exec,
                event.declared.value,
                event.reported.value,
                event.recovery,
            )
            self.trace(
                now,
                "reversibility-discrepancy",
                exec=event.execution.exec,
                recovery=event.recovery,
                declared=event.declared.value,
                reported=event.reported.value,
            )
        elif isinstance(event, ReasonDiscrepancy):
            # draft §13.5: recorded for the operators; the rollback goes ahead.
            _log.warning("%s: %s (recovery %s)", event.execution.exec, event.detail, event.recovery)
            self.trace(
                now,
                "reason-discrepancy",
                exec=event.execution.exec,
                recovery=event.recovery,
                detail=event.detail,
            )
        elif isinstance(event, (SignalRefused, SignalUndelivered, WarningReceived)):
            self.trace(now, type(event).__name__, detail=repr(event))
            if isinstance(event, SignalRefused) and event.code == ErrorCode.STALE:
                self._resignal(event.signal)
            elif not isinstance(event, WarningReceived):
                self._signals.pop(event.signal, None)
        for listener in self._listeners:
            listener(event)

    def _refuse_undo(
        self, event: RollbackRequested, position: int, now: int, code: ErrorCode, detail: str
    ) -> None:
        """Answer a rollback this agent will not carry out: refused, nothing done."""
        self.trace(
            now,
            "undo",
            exec=event.execution.exec,
            action=event.action.value,
            target=event.target,
            outcome="refused",
            details=[detail],
            repeated=False,
            recovery=event.recovery,
        )
        self._call(
            self.participant,
            lambda p: p.rollback_done(
                event.execution,
                Outcome.REFUSED,
                checkpoint=position,
                now=now,
                code=code,
                detail=detail,
            ),
        )

    def _undo(self, event: RollbackRequested, now: int) -> None:
        """Carry out a rollback on the real resource and report it (draft §8.2)."""
        exec_id = event.execution.exec
        x = self.executions.get(exec_id)
        device = None if x is None else x.device
        position = self.participant.engine.position(event.execution)
        action = event.action
        declared = None if x is None else x.reversibility
        kind = "compensate" if action is Action.COMPENSATE else "restore"
        if not _fits(declared, action):
            # draft §5.2: reversibility was declared at the start; a request that
            # contradicts it is refused, not carried out some other way.
            detail = f"the execution was declared {declared}"
            self._refuse_undo(event, position, now, ErrorCode.INVALID_STATE, detail)
            return
        if x is not None and action is not Action.NONE and kind not in x.permitted:
            # draft §9.2, §13.7: the authority to request a rollback is not the
            # authority to act; this agent's own policy decides, and says no.
            self._refuse_undo(
                event, position, now, ErrorCode.UNAUTHORIZED, f"{kind} is not permitted here"
            )
            return
        try:
            if action in (Action.CANCEL_RESTORE, Action.RESTORE):
                result = self.resource.restore(exec_id, device, event.target, event.recovery, now)
            elif action is Action.COMPENSATE:
                result = self.resource.compensate(exec_id, event.target, event.recovery, now)
            else:
                result = self.resource.residual(exec_id, event.target, event.recovery, now)
        except ResourceError as exc:
            result = UndoResult(outcome="failed", details=(str(exc),))
        outcome = Outcome(result.outcome)
        undone = outcome in (Outcome.RESTORED, Outcome.COMPENSATED)
        residual: tuple[Residual, ...] = ()
        if outcome in (Outcome.IRREVERSIBLE, Outcome.FAILED):
            residual = tuple(
                Residual(description=d, resource=device or exec_id) for d in result.details
            )
        self.trace(
            now,
            "undo",
            exec=exec_id,
            action=action.value,
            target=event.target,
            outcome=outcome.value,
            details=list(result.details),
            repeated=result.repeated,
            recovery=event.recovery,
        )
        checkpoint = event.target if undone else position
        self._call(
            self.participant,
            lambda p: p.rollback_done(
                event.execution, outcome, checkpoint=checkpoint, now=now, residual=residual
            ),
        )

    # ------------------------------------------------------------------ API for the work

    def signal_failure(self, exec_id: str, spec: FailureSpec) -> str:
        """The execution failed: tell its recovery authority (draft §6.2)."""
        x = self.executions[exec_id]
        to = spec.to or next((a for a in x.authority if a != self.agent), x.authority[0])
        now = self.clock()
        signal_id: str = self._call(
            self.participant,
            lambda p: p.signal_failure(
                execution=self.ref(exec_id),
                to=to,
                failure_type=spec.failure_type,
                severity=spec.severity,
                retryable=spec.retryable,
                effect_state=spec.effect_state,
                checkpoint=spec.checkpoint,
                now=now,
                detail=spec.detail,
            ),
        )
        self._signals[signal_id] = (exec_id, spec)
        self.trace(
            now,
            "failure",
            exec=exec_id,
            signal=signal_id,
            to=to,
            failure_type=spec.failure_type,
            checkpoint=spec.checkpoint,
            detail=spec.detail,
        )
        self._after()
        return signal_id

    def call(self, fn: Callable[[Participant], Any]) -> Any:
        """A durable participant API call from the work (checkpoint, dependency, status)."""
        value = self._call(self.participant, fn)
        self._after()
        return value

    def _resignal(self, signal_id: str) -> None:
        """A signal refused as stale was not accepted: send the failure again (draft §9.3).

        The authority refuses it when it cannot know whether it saw it (it lost
        its replay cache, or the signal outlived the freshness window); "a
        message that must be sent again after W has passed is a new message".
        Not if a recovery already contains the execution: then it was seen.
        """
        sent = self._signals.pop(signal_id, None)
        if sent is None or self.contained(sent[0]):
            return
        exec_id, spec = sent
        asyncio.get_running_loop().call_soon(self.signal_failure, exec_id, spec)

    def contained(self, exec_id: str) -> bool:
        return self.participant.engine.state_of(self.ref(exec_id)) is not MemberState.IDLE

    # ------------------------------------------------------------------ views

    def _trace_message(self, direction: str, message: Message) -> None:
        fields: dict[str, Any] = {
            "type": message.TYPE,
            "from": message.sender,
            "to": message.recipient,
            "id": message.id,
        }
        execution = getattr(message, "execution", None)
        if isinstance(execution, ExecRef):
            fields["exec"] = [execution.agent, execution.exec]
        for name in ("recovery", "outcome", "action", "target", "code"):
            value = getattr(message, name, None)
            if value is not None:
                fields[name] = getattr(value, "value", value)
        self.trace(self.clock(), direction, **fields)

    def state(self) -> dict[str, Any]:
        """A JSON-able view of the agent, for operators and the demo."""
        p = self.participant.engine
        executions = []
        for x in self.config.executions:
            ref = self.ref(x.id)
            step, plan = self.resource.progress(x.id)
            executions.append(
                {
                    "exec": x.id,
                    "state": p.state_of(ref).value,
                    "position": p.position(ref),
                    "reversibility": x.reversibility.value,
                    "plan": plan,
                    "next_step": step,
                }
            )
        out: dict[str, Any] = {
            "agent": self.agent,
            "executions": executions,
            "resource": self.resource.dump(),
            "records": self.store.count(self.agent),
            "store": str(self.store.path),
        }
        if self.coordinator is not None:
            c = self.coordinator.engine
            out["recoveries"] = [
                {
                    "id": rid,
                    "state": c.recovery_state(rid).value,
                    "busy": c.busy(rid),
                    "members": [
                        {"agent": ref.agent, "exec": ref.exec, "track": t.value, "outcome": o}
                        for ref, (t, o) in c.members(rid).items()
                    ],
                }
                for rid in c.recoveries()
            ]
        return out
