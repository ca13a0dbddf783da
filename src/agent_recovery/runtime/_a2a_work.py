"""The agents' own work over A2A: delegated tasks and outputs (draft §12.3.5).

This is the application's traffic, not the protocol, carried the way A2A
agents carry work, so that the protocol meets it where the draft says:

- a recovery authority delegates each execution it coordinates on another
  agent as an A2A Task (a SendMessage with the data part ``{"delegate":
  {"exec", "authority"}}``, the extension activated) and follows the task's
  status as a stream. The executing agent runs the execution's plan while
  the task is working, completes it when the plan is done, and when the
  execution fails moves the task to FAILED with the signed failure-signal in
  its status message (:class:`DelegatedTasks`). The authority reads the
  signal from the status update, gives it to its engines, and sends the ack
  back as an A2A message of its own naming the task;
- a consumer takes a producer's output with a SendMessage whose data part is
  ``{"consume": {...}}`` and gets a Message back (:class:`A2APlan`); the
  dependency edge is learnt by both parties, as over HTTP (draft §5.4).

Checkpoint counters travel as strings and outputs as JSON text: A2A data
parts are protobuf Values, whose numbers are doubles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.helpers import get_data_parts, new_data_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import (
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.errors import A2AError, InvalidParamsError, UnsupportedOperationError

from .._errors import ProtocolError
from .._events import Event, Resumed
from .._messages import FailureSignal, Message
from .._model import ExecRef, Severity
from ..bindings.a2a import (
    ExtensionRole,
    activation_context,
    fail_task,
    failure_signal,
    http_client,
    is_activated,
)
from ._a2a import A2ATransport, origin_of, reply_of
from ._agent import AgentRuntime
from ._plans import Plan, PlanState
from ._routes import serve_output

__all__ = ["A2APlan", "A2AWork", "DelegatedTasks"]

_log = logging.getLogger("agent_recovery.runtime")

_POLL = 0.05
_TERMINAL = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)


@dataclass(slots=True)
class _Delegated:
    """One execution of this agent delegated as an A2A Task, while the task is open."""

    exec_id: str
    delegator: str  # the agent the delegating client says it is; routing only
    activated: bool
    # (final state, failure-signal JWS or None, free text), set once.
    end: asyncio.Future[tuple[str, str | None, str]]
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class DelegatedTasks:
    """The open delegated tasks of this agent, by execution."""

    def __init__(self) -> None:
        self._open: dict[str, _Delegated] = {}

    def finish(self, exec_id: str, state: str, detail: str) -> None:
        entry = self._open.get(exec_id)
        if entry is not None and not entry.end.done():
            entry.end.set_result((state, None, detail))

    async def divert(self, message: Message, jws: bytes) -> bool:
        """Fail the delegated task of a failed execution; True if its status carries the signal.

        draft §12.3.5: a signal of severity error or fatal fails the
        execution's task if it is still open. The status message carries the
        signal only if the task was delegated by the signal's recipient with
        the extension activated; otherwise (False) the signal travels as an
        A2A message to the authority, and so does any retransmission, which
        finds the task closed.
        """
        if not isinstance(message, FailureSignal) or message.severity is Severity.WARNING:
            return False
        entry = self._open.get(message.execution.exec)
        if entry is None or entry.end.done():
            return False
        carried = entry.activated and entry.delegator == message.recipient
        detail = message.detail or f"failed: {message.failure_type}"
        entry.end.set_result(("failed", jws.decode("ascii") if carried else None, detail))
        with contextlib.suppress(TimeoutError):
            # If the task cannot be updated, a carried signal is lost like any
            # message, and the engine sends it again (draft §8.4).
            await asyncio.wait_for(entry.closed.wait(), timeout=5.0)
        return carried

    def open(self, entry: _Delegated) -> None:
        self._open[entry.exec_id] = entry

    def close(self, entry: _Delegated) -> None:
        entry.closed.set()
        if self._open.get(entry.exec_id) is entry:
            del self._open[entry.exec_id]

    def __contains__(self, exec_id: str) -> bool:
        return exec_id in self._open


class A2APlan(Plan):
    """A plan whose outputs come from other agents over A2A (``{"consume": ...}``)."""

    def __init__(self, runtime: AgentRuntime, work: A2AWork, execution: Any) -> None:
        super().__init__(runtime, execution)
        self._work = work

    async def _fetch(self, producer: ExecRef, output: str, consumed_after: int) -> int | None:
        # The output travels as an A2A SendMessage answered by a Message.
        return await self._work.fetch(producer, output, self.ref, consumed_after)


class _Executor(AgentExecutor):
    """The agent's own A2A work: delegated executions and outputs."""

    def __init__(self, work: A2AWork) -> None:
        self._work = work

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        data = get_data_parts(list(message.parts)) if message is not None else []
        doc = data[0] if len(data) == 1 and isinstance(data[0], dict) else {}
        if isinstance(doc.get("consume"), dict):
            status, answer = serve_output(self._work.runtime, doc["consume"])
            if "value" in answer:
                answer = {
                    "value": json.dumps(answer["value"]),
                    "produced_after": str(answer["produced_after"]),
                }
            reply = new_data_message(
                {"status": str(status), **answer}, context_id=context.context_id
            )
            await event_queue.enqueue_event(reply)
        elif isinstance(doc.get("delegate"), dict):
            await self._work.run_delegated(context, event_queue, doc["delegate"])
        else:
            raise UnsupportedOperationError(message="this agent takes 'delegate' or 'consume'")

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # draft §12.3.5: a halt is never a cancellation; stopping work is the
        # protocol's business, so a client cannot cancel a delegated execution.
        raise UnsupportedOperationError(message="delegated executions end by the protocol")


class A2AWork:
    """Plans, delegated tasks and delegations of one agent over A2A."""

    def __init__(self, runtime: AgentRuntime, transport: A2ATransport) -> None:
        self.runtime = runtime
        self.transport = transport
        self.tasks = DelegatedTasks()
        transport.divert = self.tasks.divert
        self.executor = _Executor(self)
        self.plans: dict[str, A2APlan] = {}
        self._http = http_client(read=None)  # task streams may be silent for long
        self._clients: dict[tuple[str, bool], Client] = {}
        self._jobs: set[asyncio.Task[None]] = set()
        runtime.on_event(self._on_event)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the plans nobody delegates, and delegate what this agent coordinates."""
        rt = self.runtime
        for x in rt.config.executions:
            if not x.steps:
                continue
            plan = self.plans[x.id] = A2APlan(rt, self, x)
            delegated = any(a != rt.agent for a in x.authority)
            if not delegated or rt.resource.progress(x.id)[0] > 0:
                plan.start()  # its own work, or begun before a restart
        for item in rt.config.coordinated:
            if item.execution.agent != rt.agent:
                self._spawn(self._delegate(item.execution))

    async def stop(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        await self._http.aclose()

    def _spawn(self, coroutine: Any) -> None:
        job = asyncio.ensure_future(coroutine)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _client(self, origin: str, *, streaming: bool) -> Client:
        key = (origin, streaming)
        client = self._clients.get(key)
        if client is None:
            card = await A2ACardResolver(self._http, origin).get_agent_card()
            config = ClientConfig(streaming=streaming, httpx_client=self._http)
            client = self._clients[key] = ClientFactory(config).create(card)
        return client

    def _origin(self, agent: str) -> str | None:
        url = self.runtime.peer_url(agent)
        return None if url is None else origin_of(url)

    # -- outputs -------------------------------------------------------------------

    async def fetch(
        self, producer: ExecRef, output: str, consumer: ExecRef, consumed_after: int
    ) -> int | None:
        """Ask ``producer``'s agent for ``output``; its ``produced_after``, or None: not now."""
        origin = self._origin(producer.agent)
        if origin is None:
            return None
        request = SendMessageRequest(
            message=new_data_message(
                {
                    "consume": {
                        "producer": producer.exec,
                        "output": output,
                        "consumer": {"agent": consumer.agent, "exec": consumer.exec},
                        "consumed_after": str(consumed_after),
                    }
                },
                role=Role.ROLE_USER,
            )
        )
        request.message.message_id = uuid.uuid4().hex
        try:
            client = await self._client(origin, streaming=False)
            events = [e async for e in client.send_message(request)]
        except (A2AError, httpx.HTTPError):
            return None
        data = get_data_parts(list(events[0].message.parts)) if events else []
        answer = data[0] if data and isinstance(data[0], dict) else {}
        status = answer.get("status")
        if status == "404":
            raise ValueError(f"{producer.agent} has no execution {producer.exec!r}")
        produced_after = answer.get("produced_after")
        if status != "200" or not isinstance(produced_after, str) or not produced_after.isdigit():
            return None
        return int(produced_after)

    # -- delegated tasks (the executing agent) --------------------------------------

    async def run_delegated(
        self, context: RequestContext, queue: EventQueue, doc: dict[str, Any]
    ) -> None:
        """Run one delegated execution as the A2A Task of this request, to its end."""
        rt = self.runtime
        exec_id, delegator = doc.get("exec"), doc.get("authority")
        x = rt.executions.get(exec_id) if isinstance(exec_id, str) else None
        if x is None or not isinstance(delegator, str) or delegator not in x.authority:
            raise InvalidParamsError(message="no such execution for that authority")
        if x.id in self.tasks:
            raise InvalidParamsError(message="the execution is already a task")
        assert context.task_id is not None and context.context_id is not None
        await queue.enqueue_event(
            Task(
                id=context.task_id,
                context_id=context.context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[] if context.message is None else [context.message],
            )
        )
        updater = TaskUpdater(queue, context.task_id, context.context_id)
        entry = _Delegated(
            exec_id=x.id,
            delegator=delegator,
            activated=is_activated(context.requested_extensions),
            end=asyncio.get_running_loop().create_future(),
        )
        self.tasks.open(entry)
        # draft §12.3.4: this agent's own messages about the execution (a
        # failure-signal sent as a Message) name the task too.
        self.transport.task_ids[rt.ref(x.id)] = context.task_id
        try:
            await updater.start_work()
            rt.trace(rt.clock(), "task", exec=x.id, task=context.task_id, state="working")
            plan = self.plans.get(x.id)
            if plan is not None:
                if plan.task is None:
                    plan.start()
                self._spawn(self._follow(plan))
            state, signal, detail = await entry.end
            if state == "completed":
                await updater.complete(updater.new_agent_message([_text(detail)]))
            elif state == "canceled":
                await updater.cancel(updater.new_agent_message([_text(detail)]))
            else:
                await fail_task(context, updater, detail=detail, signal=signal)
            rt.trace(
                rt.clock(),
                "task",
                exec=x.id,
                task=context.task_id,
                state=state,
                signal=bool(signal),
            )
        finally:
            self.tasks.close(entry)

    async def _follow(self, plan: A2APlan) -> None:
        """End the task with the plan: done is completed; a held plan keeps it working."""
        if plan.task is not None:
            await asyncio.gather(plan.task, return_exceptions=True)
        _, state = self.runtime.resource.progress(plan.execution.id)
        if state == PlanState.DONE:
            self.tasks.finish(plan.execution.id, "completed", "done")
        elif state == PlanState.ERROR:
            self.tasks.finish(plan.execution.id, "failed", "the work could not go on")
        elif state == PlanState.STOPPED:
            self.tasks.finish(plan.execution.id, "canceled", "rolled back")

    def _on_event(self, event: Event) -> None:
        # draft §12.3.5: a rolled-back execution does not continue; its task,
        # if still open, is canceled (a completed one keeps its state).
        if (
            isinstance(event, Resumed)
            and event.outcome is not None
            and event.execution.agent == self.runtime.agent
        ):
            self.tasks.finish(event.execution.exec, "canceled", "rolled back")

    # -- delegations (the recovery authority) ---------------------------------------

    async def _delegate(self, execution: ExecRef) -> None:
        """Delegate ``execution`` as an A2A Task and follow it to its end."""
        task_id: str | None = None
        seen: set[str] = set()
        delay = _POLL
        while True:
            origin = self._origin(execution.agent)
            try:
                if origin is None:
                    raise LookupError(f"no URL for {execution.agent}")
                client = await self._client(origin, streaming=True)
                async for event in self._events(client, execution, task_id):
                    task_id, state = self._observe(execution, event, task_id)
                    signal = _signal(event)
                    if signal is not None and signal not in seen:
                        seen.add(signal)
                        await self._on_signal(origin, task_id, signal)
                    if state in _TERMINAL:
                        return
                    delay = _POLL
            except (A2AError, httpx.HTTPError, LookupError) as exc:
                _log.debug("delegation of %s: %s", execution.exec, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _events(
        self, client: Client, execution: ExecRef, task_id: str | None
    ) -> AsyncIterator[StreamResponse]:
        if task_id is not None:  # the stream broke: follow the same task again
            request = SubscribeToTaskRequest(id=task_id)
            return client.subscribe(request, context=activation_context())
        message = new_data_message(
            {"delegate": {"exec": execution.exec, "authority": self.runtime.agent}},
            role=Role.ROLE_USER,
        )
        message.message_id = uuid.uuid4().hex
        # draft §12.3.3: activated, so that a failure comes with its signal.
        return client.send_message(
            SendMessageRequest(message=message), context=activation_context()
        )

    def _observe(
        self, execution: ExecRef, event: StreamResponse, task_id: str | None
    ) -> tuple[str | None, TaskState | None]:
        rt = self.runtime
        if event.HasField("task"):
            if task_id is None:
                task_id = event.task.id
                self.transport.task_ids[execution] = task_id
                rt.trace(
                    rt.clock(), "delegated", exec=execution.exec, to=execution.agent, task=task_id
                )
            return task_id, event.task.status.state
        if event.HasField("status_update"):
            return task_id, event.status_update.status.state
        return task_id, None

    async def _on_signal(self, origin: str, task_id: str | None, signal: str) -> None:
        """A failed task's signal: to the engines; the ack back as a message of its own."""
        rt = self.runtime
        rt.trace(rt.clock(), "task-signal", task=task_id)
        try:
            reply = reply_of(await rt.handle(signal.encode("ascii")))
        except ProtocolError as exc:
            _log.warning("failure signal in task %s refused: %s", task_id, exc)
            return
        if reply is None:
            return
        try:
            peer = await self.transport.peer(origin)
            await peer.send(
                reply,
                role=ExtensionRole.PARTICIPANT,
                reference_task_ids=() if task_id is None else (task_id,),
            )
        except Exception as exc:  # lost: the failed agent sends its signal again
            _log.info("reply to the signal of task %s not delivered: %s", task_id, exc)


def _signal(event: StreamResponse) -> str | None:
    try:
        if event.HasField("task"):
            return failure_signal(event.task)
        if event.HasField("status_update"):
            return failure_signal(event.status_update)
    except ProtocolError:
        return None  # a malformed carrier: no signal (the task's text still says why)
    return None


def _text(text: str) -> Any:
    return new_text_message(text).parts[0]
