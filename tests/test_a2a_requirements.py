"""What the runtime does to A2A Tasks and requests during a recovery (draft §12.3).

Four ``A2AAgent`` runtimes, each behind its real a2a-sdk app served by
uvicorn on its own loopback port: a coordinator that delegates three
executions as A2A Tasks, a producer of an output, a consumer that takes it
and keeps working, and one that takes it and completes. Each app is wrapped
in a recorder that keeps every JSON-RPC request the agent receives as it
arrived (headers and body), so the test checks what the runtimes put on the
wire, and can hold a request back for a moment to look at the tasks between
a halt and the rollback that follows it. Nothing else is replaced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.helpers import get_data_parts, new_data_message
from a2a.types import GetTaskRequest, Role, SendMessageRequest, TaskState
from google.protobuf import json_format
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from test_a2a_runtime import agents as served
from test_a2a_runtime import plan_state as runtime_plan_state
from test_a2a_runtime import recovered as runtime_recovered
from test_a2a_runtime import run, until

from agent_recovery._messages import Message as ProtocolMessage
from agent_recovery._messages import Rollback
from agent_recovery._model import Action, ExecRef
from agent_recovery.bindings.a2a import EXTENSION_URI, carried_messages
from agent_recovery.bindings.http import peek
from agent_recovery.runtime._a2a import A2AAgent
from agent_recovery.runtime._config import failure_spec

T = TypeVar("T")


def _consumer(exec_id: str, last: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": exec_id,
        "reversibility": "restorable",
        "authority": ["boss"],
        "steps": [
            {"checkpoint": "start"},
            {"consume": {"agent": "maker", "exec": "job/make", "output": "part"}},
            {"apply": {"record": {"key": exec_id, "value": "with part v1"}}},
            last,
        ],
    }


SCENARIO = {
    "title": "one output, a consumer still at work and one done",
    "trust_domain": "example.net",
    "retry": {"initial": 300, "ceiling": 1000, "attempts": 8, "patience": 10000},
    "agents": {
        "boss": {"coordinator": True},
        "maker": {
            "executions": [
                {
                    "id": "job/make",
                    "reversibility": "restorable",
                    "authority": ["boss"],
                    "steps": [
                        {"checkpoint": "start"},
                        {"apply": {"record": {"key": "part", "value": "v1"}}},
                        {"produce": "part", "value": {"n": 1}},
                        {"hold": "waiting for inspection"},
                    ],
                }
            ]
        },
        # Still working when the part is found bad: an active execution.
        "user": {"executions": [_consumer("job/use", {"hold": "waiting for the next part"})]},
        # Completed before the part is found bad.
        "done": {"executions": [_consumer("job/done", {"complete": "assembled"})]},
    },
    "failure": {"agent": "maker"},
}
FAILURE = {"failure_type": "inspection-failed", "checkpoint": 1, "effect_state": "complete"}


@dataclass
class Request:
    """One JSON-RPC request an agent received, as it arrived."""

    method: str
    extensions: frozenset[str]
    params: dict[str, Any]

    def send_message(self) -> SendMessageRequest | None:
        if self.method not in ("SendMessage", "SendStreamingMessage"):
            return None
        request = SendMessageRequest()
        json_format.ParseDict(self.params, request, ignore_unknown_fields=True)
        return request

    def protocol_message(self) -> ProtocolMessage | None:
        """The protocol message the request carries, if any."""
        request = self.send_message()
        carried = None if request is None else carried_messages(request.message)
        return peek(carried[0].encode("ascii")) if carried else None


@dataclass
class Recorder:
    """An ASGI wrapper that keeps each JSON-RPC request and can hold some back."""

    app: ASGIApp
    requests: list[Request] = field(default_factory=list)
    hold: Callable[[ProtocolMessage], bool] = lambda _: False
    held: list[ProtocolMessage] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            event = await receive()
            chunks.append(event.get("body", b""))
            more = event.get("more_body", False)
        body = b"".join(chunks)
        doc = json.loads(body)
        headers = Headers(scope=scope)
        request = Request(
            method=doc.get("method", ""),
            extensions=frozenset(get_requested_extensions(headers.getlist(HTTP_EXTENSION_HEADER))),
            params=doc.get("params", {}),
        )
        self.requests.append(request)
        message = request.protocol_message()
        if message is not None and self.hold(message) and not self.release.is_set():
            self.held.append(message)
            await self.release.wait()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@dataclass
class Agent:
    runtime: A2AAgent
    recorder: Recorder


@asynccontextmanager
async def agents(tmp_path: Path, doc: dict[str, Any]) -> AsyncIterator[dict[str, Agent]]:
    """Every agent of ``doc`` served over A2A on loopback, each behind a recorder."""
    recorders: dict[int, Recorder] = {}

    def record(agent: A2AAgent) -> Recorder:
        recorders[id(agent)] = Recorder(agent.app)
        return recorders[id(agent)]

    async with served(tmp_path, doc, wrap=record) as built:
        yield {n: Agent(a, recorders[id(a)]) for n, a in built.items()}


def member_state(agent: Agent, exec_id: str) -> str:
    (x,) = [x for x in agent.runtime.runtime.state()["executions"] if x["exec"] == exec_id]
    state: str = x["state"]
    return state


def plan_state(agent: Agent, exec_id: str) -> str:
    return runtime_plan_state(agent.runtime, exec_id)


def recovered(boss: Agent, *members: Agent) -> bool:
    return runtime_recovered(boss.runtime, *(m.runtime for m in members))


async def task_state(agent: Agent, task_id: str) -> TaskState:
    """The task's state as any A2A client sees it (a task query, no extension)."""
    async with httpx.AsyncClient(trust_env=False) as http:
        factory = ClientFactory(ClientConfig(streaming=False, httpx_client=http))
        client = await factory.create_from_url(agent.runtime.url)
        try:
            task = await client.get_task(GetTaskRequest(id=task_id))
        finally:
            await client.close()
    state: TaskState = task.status.state
    return state


@dataclass
class Recovery:
    """What one recovery across the delegated tasks left to look at."""

    tasks: dict[str, str]  # execution -> the A2A Task it was delegated as
    member_while_halted: str
    held: list[ProtocolMessage]  # the consumer's rollback(s), held at its door
    while_halted: dict[str, TaskState]
    after: dict[str, TaskState]
    outcomes: dict[str, str]
    requests: dict[str, list[Request]]  # by agent name


async def _recover(tmp_path: Path) -> Recovery:
    async with agents(tmp_path, SCENARIO) as a:
        boss, maker, user, done = a["boss"], a["maker"], a["user"], a["done"]
        # The consumer still at work gets its rollback only when the test says.
        user.recorder.hold = lambda m: m.TYPE == "rollback"
        for agent in a.values():
            await agent.runtime.start()
        await until("the work", lambda: plan_state(done, "job/done") == "done")
        await until("the consumer", lambda: plan_state(user, "job/use") == "held")
        assert plan_state(maker, "job/make") == "held"
        tasks = {ref.exec: task for ref, task in boss.runtime.transport.task_ids.items()}
        assert set(tasks) == {"job/make", "job/use", "job/done"}
        owners = {"job/make": maker, "job/use": user, "job/done": done}

        async def states() -> dict[str, TaskState]:
            return {x: await task_state(owners[x], task) for x, task in tasks.items()}

        maker.runtime.runtime.signal_failure("job/make", failure_spec(FAILURE, "test"))
        # Every member was halted and the rollbacks are out: the consumer's is held.
        await until("the held rollback", lambda: bool(user.recorder.held))
        member = member_state(user, "job/use")
        while_halted = await states()
        user.recorder.release.set()
        await until("the recovery", lambda: recovered(boss, maker, user, done))
        after = await states()
        (recovery,) = boss.runtime.runtime.state()["recoveries"]
        return Recovery(
            tasks=tasks,
            member_while_halted=member,
            held=list(user.recorder.held),
            while_halted=while_halted,
            after=after,
            outcomes={m["exec"]: m["outcome"] for m in recovery["members"]},
            requests={n: list(x.recorder.requests) for n, x in a.items()},
        )


@pytest.fixture(scope="module")
def recovery(tmp_path_factory: pytest.TempPathFactory) -> Recovery:
    """One run of the scenario, which the tests below read (it takes a few seconds)."""
    return run(lambda: _recover(tmp_path_factory.mktemp("recovery")))


def _carrying(requests: list[Request]) -> list[tuple[Request, ProtocolMessage]]:
    return [(r, m) for r in requests if (m := r.protocol_message()) is not None]


def test_a_halt_leaves_the_delegated_task_working(recovery: Recovery) -> None:
    """draft §12.3.5: a participant MUST NOT implement a halt by cancelling the A2A Task."""
    # The consumer is halted and its rollback has not reached it yet ...
    assert recovery.member_while_halted == "halted"
    assert {m.TYPE for m in recovery.held} == {"rollback"}
    user = [m.TYPE for _, m in _carrying(recovery.requests["user"])]
    assert user.index("halt") < user.index("rollback")
    # ... and its task is still working, as every A2A client sees it.
    assert recovery.while_halted["job/use"] == TaskState.TASK_STATE_WORKING
    # The halt changed no task: the completed one is completed, the failed one failed.
    assert recovery.while_halted["job/done"] == TaskState.TASK_STATE_COMPLETED
    assert recovery.while_halted["job/make"] == TaskState.TASK_STATE_FAILED
    # Nobody asked A2A to cancel anything.
    methods = {r.method for requests in recovery.requests.values() for r in requests}
    assert "CancelTask" not in methods


def test_cancel_restore_cancels_the_active_task_and_a_completed_task_keeps_its_state(
    recovery: Recovery,
) -> None:
    """draft §12.3.5: the active execution's task is canceled; a completed task stays so."""
    assert {m.action for m in recovery.held if isinstance(m, Rollback)} == {Action.CANCEL_RESTORE}
    (done,) = [m for _, m in _carrying(recovery.requests["done"]) if isinstance(m, Rollback)]
    assert done.action is Action.RESTORE
    assert recovery.after == {
        "job/use": TaskState.TASK_STATE_CANCELED,
        "job/done": TaskState.TASK_STATE_COMPLETED,
        "job/make": TaskState.TASK_STATE_FAILED,
    }
    # The rollback-result is the authoritative outcome: every member was restored.
    assert recovery.outcomes == dict.fromkeys(recovery.tasks, "restored")


def test_messages_about_a_delegated_execution_name_its_task(recovery: Recovery) -> None:
    """draft §12.3.4: referenceTaskIds name the task whose execution a message concerns."""
    seen: set[str] = set()
    for name in ("maker", "user", "done"):
        for request, message in _carrying(recovery.requests[name]):
            sent = request.send_message()
            assert sent is not None
            execution = getattr(message, "execution", None)
            if isinstance(execution, ExecRef):
                task = recovery.tasks[execution.exec]
            else:
                # The ack of the failure signal the failed task carried (draft §12.3.5).
                assert message.TYPE == "ack" and name == "maker"
                task = recovery.tasks["job/make"]
            assert list(sent.message.reference_task_ids) == [task], message.TYPE
            # A protocol message is not a turn of the task (draft §12.3.4).
            assert sent.message.task_id == ""
            seen.add(message.TYPE)
    assert seen == {"halt", "rollback", "resume", "ack"}


def test_a_delegation_activates_the_extension(recovery: Recovery) -> None:
    """draft §12.3.3: delegating work whose failure it wants as a signal, it activates."""
    delegations = {}
    for name, requests in recovery.requests.items():
        for request in requests:
            sent = request.send_message()
            data = [] if sent is None else get_data_parts(list(sent.message.parts))
            if data and isinstance(data[0], dict) and "delegate" in data[0]:
                assert EXTENSION_URI in request.extensions, name
                delegations[data[0]["delegate"]["exec"]] = request.method
    assert delegations == dict.fromkeys(recovery.tasks, "SendStreamingMessage")
    # And every request that carries a protocol message activates it (the MUST).
    carrying = [r for requests in recovery.requests.values() for r, _ in _carrying(requests)]
    assert carrying and all(EXTENSION_URI in r.extensions for r in carrying)


def test_a_signal_sent_as_a_message_names_the_failed_task(tmp_path: Path) -> None:
    """draft §12.3.4, §12.3.5: a signal that cannot ride in the task still names it.

    The client that delegated the task did not activate the extension, so the
    task fails without protocol data and the signal goes to the authority as an
    A2A message; that message concerns the task's execution.
    """

    async def scenario() -> tuple[str, list[Request]]:
        doc = json.loads(json.dumps(SCENARIO))
        for name in ("user", "done"):
            del doc["agents"][name]
        async with agents(tmp_path, doc) as a:
            boss, maker = a["boss"], a["maker"]
            await boss.runtime.start(work=False)  # the test delegates, not the boss
            await maker.runtime.start()
            async with httpx.AsyncClient(trust_env=False) as http:
                factory = ClientFactory(ClientConfig(streaming=False, httpx_client=http))
                client = await factory.create_from_url(maker.runtime.url)
                message = new_data_message(
                    {"delegate": {"exec": "job/make", "authority": boss.runtime.runtime.agent}},
                    role=Role.ROLE_USER,
                )
                message.message_id = "m1"
                request = SendMessageRequest(message=message)
                request.configuration.return_immediately = True
                (response,) = [r async for r in client.send_message(request)]
                await client.close()
            await until("the work", lambda: plan_state(maker, "job/make") == "held")
            maker.runtime.runtime.signal_failure("job/make", failure_spec(FAILURE, "test"))
            await until("the recovery", lambda: recovered(boss, maker))
            return response.task.id, list(boss.recorder.requests)

    task, requests = run(scenario)
    signals = [(r, m) for r, m in _carrying(requests) if m.TYPE == "failure-signal"]
    assert signals
    for request, _ in signals:
        sent = request.send_message()
        assert sent is not None
        assert list(sent.message.reference_task_ids) == [task]
