"""The work an execution does: its configured steps, run against real state.

A :class:`Plan` runs one execution's steps in order, each through the
runtime, so every change to the protocol state is a durable engine step and
every change to the world is a change of the :class:`~._resource.Resource`.
It obeys containment (draft §8.1): while the execution is halted no step
runs, so it produces no effect and forwards no output; after ``resume`` it
continues if it was not rolled back, and stops if it was (a restored execution
is released to local policy, here: an operator re-plans it).

Outputs cross agents over a small work API (``POST /work/consume``, see
``_routes.py``), which is also where both parties learn the dependency edge
(draft §5.4): the consumer sends its current checkpoint, the producer answers
with the output and its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from .._errors import ProtocolError
from .._events import Event, Resumed
from .._model import Dependency, ExecRef
from .._model import Status as ExecStatus
from ._agent import AgentRuntime
from ._config import ExecutionConfig, Step, StepKind
from ._resource import ResourceError

__all__ = ["Plan", "PlanState", "start_plans"]

_log = logging.getLogger("agent_recovery.runtime")


class PlanState:
    RUNNING = "running"
    HELD = "held"  # stopped by a ``hold`` step, still active
    DONE = "done"
    FAILED = "failed"  # the execution failed and signalled it
    STOPPED = "stopped"  # rolled back: released to local policy
    ERROR = "error"  # the work itself could not go on (bad configuration, lost peer)


_POLL = 0.05


class Plan:
    """One execution's work; see the module docstring."""

    def __init__(self, runtime: AgentRuntime, execution: ExecutionConfig) -> None:
        self.runtime = runtime
        self.execution = execution
        self.ref = runtime.ref(execution.id)
        self._free = asyncio.Event()
        self._free.set()
        self._stopped = False
        self.task: asyncio.Task[None] | None = None
        runtime.on_event(self._on_event)

    def start(self) -> None:
        _, state = self.runtime.resource.progress(self.execution.id)
        if state != PlanState.RUNNING:
            return  # finished, held, failed or stopped before a restart: stays so
        if self.runtime.contained(self.execution.id):
            self._free.clear()
        self.task = asyncio.create_task(self.run())

    def _on_event(self, event: Event) -> None:
        if getattr(event, "execution", None) != self.ref:
            return
        if isinstance(event, Resumed):
            if event.outcome is not None:
                # draft §8.3: a rolled-back execution does not simply carry on.
                self._stopped = True
                self._set(PlanState.STOPPED)
            self._free.set()
        else:  # halted, or asked to roll back: no step may run now (draft §8.1)
            self._free.clear()

    def _set(self, state: str, next_step: int | None = None) -> None:
        current, _ = self.runtime.resource.progress(self.execution.id)
        self.runtime.resource.set_progress(
            self.execution.id, current if next_step is None else next_step, state
        )

    async def _wait_free(self) -> bool:
        while not self._free.is_set() or self.runtime.contained(self.execution.id):
            self._free.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._free.wait(), timeout=1.0)
        return not self._stopped

    async def run(self) -> None:
        steps = self.execution.steps
        index, _ = self.runtime.resource.progress(self.execution.id)
        try:
            while index < len(steps):
                # Let the agent serve requests between steps: a long plan must not
                # make its own recovery endpoint unresponsive.
                await asyncio.sleep(0)
                if not await self._wait_free():
                    return
                final = await self._do(steps[index])
                if self._stopped:
                    return
                index += 1
                if final is not None:
                    self._set(final, index)
                    return
                self._set(PlanState.RUNNING, index)
            self._set(PlanState.DONE, index)
        except (ProtocolError, ResourceError, httpx.HTTPError, ValueError) as exc:
            _log.error("%s: step %d failed: %s", self.execution.id, index, exc)
            self.runtime.trace(
                self.runtime.clock(), "work-error", exec=self.execution.id, detail=str(exc)
            )
            self._set(PlanState.ERROR, index)

    async def _do(self, step: Step) -> str | None:
        """Run one step; return a final plan state if the plan ends here."""
        rt, x, ref = self.runtime, self.execution, self.ref
        now = rt.clock()
        if step.kind is StepKind.CHECKPOINT:
            seq: int = rt.call(lambda p: p.take_checkpoint(ref))
            rt.resource.checkpoint(x.id, x.device, seq, step.note or f"checkpoint {seq}", now)
            rt.trace(now, "checkpoint", exec=x.id, seq=seq, note=step.note)
        elif step.kind is StepKind.APPLY:
            position = rt.participant.engine.position(ref)
            text = rt.resource.apply(x.id, x.device, step.value, position, now)
            rt.call(lambda p: p.record_effect(ref))
            rt.trace(now, "effect", exec=x.id, text=text, position=position)
        elif step.kind is StepKind.PRODUCE:
            assert step.output is not None
            position = rt.participant.engine.position(ref)
            rt.resource.put_output(x.id, step.output, step.value, position)
            rt.trace(now, "produce", exec=x.id, output=step.output, position=position)
        elif step.kind is StepKind.CONSUME:
            await self._consume(step)
        elif step.kind is StepKind.DEPEND:
            edge = step.edge
            assert edge is not None
            rt.call(lambda p: p.record_dependency(edge))
        elif step.kind is StepKind.COMPLETE:
            rt.call(lambda p: p.set_status(ref, ExecStatus.COMPLETED))
            rt.trace(now, "completed", exec=x.id, note=step.note)
        elif step.kind is StepKind.HOLD:
            rt.trace(now, "hold", exec=x.id, note=step.note)
            return PlanState.HELD
        elif step.kind is StepKind.FAIL:
            assert step.failure is not None
            rt.signal_failure(x.id, step.failure)
            return PlanState.FAILED
        return None

    async def _fetch(self, producer: ExecRef, output: str, consumed_after: int) -> int | None:
        """Ask ``producer``'s agent for ``output``; its ``produced_after``, or None to retry.

        The work API is not the protocol; a binding may carry it differently
        (the A2A runtime overrides this).
        """
        rt, ref = self.runtime, self.ref
        url = rt.peer_url(producer.agent)
        if url is None:
            return None
        try:
            response = await rt.work_client.post(
                _work_url(url),
                json={
                    "producer": producer.exec,
                    "output": output,
                    "consumer": {"agent": ref.agent, "exec": ref.exec},
                    "consumed_after": consumed_after,
                },
            )
        except httpx.HTTPError:
            return None
        if response.status_code == 404:
            raise ValueError(f"{producer.agent} has no execution {producer.exec!r}")
        if response.status_code != 200:
            return None
        return int(response.json()["produced_after"])

    async def _consume(self, step: Step) -> None:
        rt, ref = self.runtime, self.ref
        producer = step.producer
        assert producer is not None and step.output is not None
        delay = _POLL
        while True:
            consumed_after = rt.participant.engine.position(ref)
            produced_after = await self._fetch(producer, step.output, consumed_after)
            if produced_after is not None:
                break
            await asyncio.sleep(delay)  # not produced yet, producer contained, or not up
            delay = min(delay * 2, 0.2)
        if not await self._wait_free():
            return  # rolled back while the output was in flight: it was never used
        edge = Dependency(
            consumer=ref,
            producer=producer,
            produced_after=produced_after,
            consumed_after=consumed_after,
        )
        rt.call(lambda p: p.record_dependency(edge))
        rt.trace(
            rt.clock(),
            "consume",
            exec=ref.exec,
            producer=[producer.agent, producer.exec],
            output=step.output,
            produced_after=edge.produced_after,
            consumed_after=consumed_after,
        )


def _work_url(endpoint: str) -> str:
    scheme, _, rest = endpoint.partition("://")
    origin = rest.split("/", 1)[0]
    return f"{scheme}://{origin}/work/consume"


def start_plans(runtime: AgentRuntime) -> list[Plan]:
    plans = [Plan(runtime, x) for x in runtime.config.executions if x.steps]
    for plan in plans:
        plan.start()
    return plans
