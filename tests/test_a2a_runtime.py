"""Agents on the A2A binding: the runtime's engines behind real a2a-sdk servers and clients.

Every agent here is an ``A2AAgent`` (the one ``agent-recovery serve --binding
a2a`` runs) served by uvicorn on its own loopback port, in one event loop:
a coordinator that delegates the executions as A2A tasks, a producer and a
consumer of its output. Nothing is a stand-in; only the processes are shared.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.helpers import new_data_message
from a2a.types import GetTaskRequest, Role, SendMessageRequest, TaskState

from agent_recovery.bindings.a2a import EXTENSION_URI, failure_signal, listen, serving
from agent_recovery.runtime import load_config
from agent_recovery.runtime._a2a import A2AAgent
from agent_recovery.runtime._config import failure_spec
from agent_recovery.runtime._scenario import load_scenario

T = TypeVar("T")

SCENARIO = {
    "title": "two executions, one output between them",
    "trust_domain": "example.net",
    "retry": {"initial": 300, "ceiling": 1000, "attempts": 6, "patience": 10000},
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
        "user": {
            "executions": [
                {
                    "id": "job/use",
                    "reversibility": "restorable",
                    "authority": ["boss"],
                    "steps": [
                        {"checkpoint": "start"},
                        {"consume": {"agent": "maker", "exec": "job/make", "output": "part"}},
                        {"apply": {"record": {"key": "assembly", "value": "with part v1"}}},
                        {"complete": "assembled"},
                    ],
                }
            ]
        },
    },
    "failure": {"agent": "maker"},
}
FAILURE = {"failure_type": "inspection-failed", "checkpoint": 1, "effect_state": "complete"}


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=40))


@asynccontextmanager
async def agents(
    tmp_path: Path, doc: dict[str, Any], wrap: Callable[[A2AAgent], Any] | None = None
) -> AsyncIterator[dict[str, A2AAgent]]:
    """Every agent of ``doc`` served over A2A on loopback; started, then stopped.

    ``wrap`` may put an ASGI app around each agent's (tests that record requests).
    """
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    scenario = load_scenario(path)
    configs = scenario.write_configs(tmp_path)
    sockets = {name: listen() for name in configs}
    urls = {n: "http://{}:{}".format(*s.getsockname()[:2]) for n, s in sockets.items()}
    peers = {scenario.agent_id(n): url for n, url in urls.items()}
    (tmp_path / "peers.json").write_text(json.dumps(peers), encoding="utf-8")
    built = {n: A2AAgent(load_config(p), urls[n]) for n, p in configs.items()}
    async with AsyncExitStack() as stack:
        for name, agent in built.items():
            app = agent.app if wrap is None else wrap(agent)
            await stack.enter_async_context(serving(app, sockets[name]))
            stack.push_async_callback(agent.stop)
        yield built


async def until(what: str, ready: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not ready():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def recovered(boss: A2AAgent, *members: A2AAgent) -> bool:
    recoveries = boss.runtime.state().get("recoveries", [])
    if not recoveries or recoveries[0]["state"] != "closed" or recoveries[0]["busy"]:
        return False
    return all(x["state"] == "idle" for m in members for x in m.runtime.state()["executions"])


def plan_state(agent: A2AAgent, exec_id: str) -> str:
    return agent.runtime.resource.progress(exec_id)[1]


def trace(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failed_delegated_task_starts_a_rollback_across_a2a_agents(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        async with agents(tmp_path, SCENARIO) as a:
            boss, maker, user = a["boss"], a["maker"], a["user"]
            for agent in (boss, maker, user):
                await agent.start()
            # The boss delegates both executions; the work runs only then.
            await until("the work", lambda: plan_state(user, "job/use") == "done")
            assert plan_state(maker, "job/make") == "held"
            maker.runtime.signal_failure("job/make", failure_spec(FAILURE, "test"))
            await until("the recovery", lambda: recovered(boss, maker, user))
            return boss.runtime.state()

    state = run(scenario)
    (recovery,) = state["recoveries"]
    outcomes = {m["exec"]: m["outcome"] for m in recovery["members"]}
    assert outcomes == {"job/make": "restored", "job/use": "restored"}

    boss, maker, user = (trace(tmp_path / "trace" / f"{n}.jsonl") for n in SCENARIO["agents"])
    delegated = {t["exec"]: t["task"] for t in boss if t["kind"] == "delegated"}
    assert set(delegated) == {"job/make", "job/use"}
    # draft §12.3.5: the failure reached the boss as the failed task's status,
    # sent once and read from the task, not received as a message.
    (failed,) = [t for t in maker if t["kind"] == "task" and t["state"] == "failed"]
    assert failed["task"] == delegated["job/make"] and failed["signal"] is True
    sent = [t for t in maker if t["kind"] == "send" and t["type"] == "failure-signal"]
    assert len(sent) == 1
    read = [t for t in boss if t["kind"] == "task-signal"]
    assert [t["task"] for t in read] == [delegated["job/make"]]
    received = [t for t in boss if t["kind"] == "recv" and t["type"] == "failure-signal"]
    assert len(received) == 1
    # The ack went back as a message of its own; the signal was not retransmitted.
    assert [t["type"] for t in maker if t["kind"] == "recv"].count("ack") == 1
    # The consumer's task completed before the recovery and keeps that state.
    assert [t["state"] for t in user if t["kind"] == "task"] == ["working", "completed"]
    # The work crossed agents over A2A too, and both ends learnt the edge (draft §5.4).
    assert [t["output"] for t in maker if t["kind"] == "served"] == ["part"]


def test_a_client_that_does_not_activate_gets_a_plain_failure(tmp_path: Path) -> None:
    """draft §12.3.7: no protocol data for it; the signal reaches the authority another way."""

    async def scenario() -> tuple[Any, Any]:
        doc = json.loads(json.dumps(SCENARIO))
        del doc["agents"]["user"]
        async with agents(tmp_path, doc) as a:
            boss, maker = a["boss"], a["maker"]
            await boss.start(work=False)  # the boss delegates nothing here
            await maker.start()
            async with httpx.AsyncClient() as http:
                factory = ClientFactory(ClientConfig(streaming=False, httpx_client=http))
                client = await factory.create_from_url(maker.url)
                message = new_data_message(
                    {"delegate": {"exec": "job/make", "authority": boss.runtime.agent}},
                    role=Role.ROLE_USER,
                )
                message.message_id = "m1"
                request = SendMessageRequest(message=message)
                request.configuration.return_immediately = True
                (response,) = [r async for r in client.send_message(request)]
                task_id = response.task.id
                await until("the work", lambda: plan_state(maker, "job/make") == "held")
                maker.runtime.signal_failure("job/make", failure_spec(FAILURE, "test"))
                await until("the recovery", lambda: recovered(boss, maker))
                task = await client.get_task(GetTaskRequest(id=task_id))
                await client.close()
            return task, boss.runtime.state()

    task, state = run(scenario)
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert failure_signal(task) is None
    assert not task.status.message.metadata.fields
    assert EXTENSION_URI not in task.status.message.extensions
    (recovery,) = state["recoveries"]
    assert {m["exec"]: m["outcome"] for m in recovery["members"]} == {"job/make": "restored"}
    # The signal went to the authority as an A2A message instead (draft §12.3.5).
    maker = trace(tmp_path / "trace" / "maker.jsonl")
    assert next(t["type"] for t in maker if t["kind"] == "send") == "failure-signal"
    (failed,) = [t for t in maker if t["kind"] == "task" and t["state"] == "failed"]
    assert failed["signal"] is False
