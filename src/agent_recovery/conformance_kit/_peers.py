"""The agents the runner plays against the target, and the endpoint where it hears them.

The runner holds the fixture's test keys of every agent except the target's.
It signs messages as those agents and posts them to the target's recovery
endpoint; and it serves the recovery endpoint the fixture gives as those
agents' address, where the target's halts, rollbacks, resumes, status
queries and asynchronous replies arrive. What each simulated execution says
when halted, asked to roll back or asked for its status is scripted per
execution (:class:`Script`). Everything received is verified with the
target's key and kept in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .._errors import ErrorCode, ProtocolError, RemoteProtocolError
from .._messages import (
    Ack,
    Halt,
    Halted,
    Message,
    Resume,
    Rollback,
    RollbackResult,
    Status,
    StatusQuery,
)
from .._model import Dependency, ExecRef, Facts, Outcome, Residual, Reversibility
from .._model import Status as ExecStatus
from .._wire import decode, encode
from ..bindings.http import (
    JWS_MEDIA_TYPE,
    PROBLEM_MEDIA_TYPE,
    Answer,
    Problem,
    answer_for_refusal,
    parse_problem,
)
from ..security import Signer, Verifier

__all__ = ["Exchange", "Peers", "Received", "Script"]


@dataclass(slots=True, kw_only=True)
class Script:
    """How one simulated execution behaves when the target coordinates it."""

    facts: Facts
    dependents: tuple[Dependency, ...] = ()
    drop: frozenset[str] = frozenset()  # message types it never answers (lost, draft §8.4)
    outcome: Outcome | None = None  # default: from the action asked
    answered: dict[str, RollbackResult] = field(default_factory=dict)  # recovery -> result


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    at: float  # monotonic seconds
    message: Message


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One POST to the target: the HTTP status, the verified reply, the problem."""

    status: int
    content_type: str
    reply: Message | None = None
    problem: Problem | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> ErrorCode | None:
        if self.reply is not None and self.reply.TYPE == "error":
            return ErrorCode(getattr(self.reply, "effective_code", ErrorCode.INTERNAL))
        return None if self.problem is None else self.problem.code


class Peers:
    """The simulated agents; see the module docstring."""

    def __init__(
        self,
        *,
        target: str,
        endpoint: str,
        signers: Iterable[Signer],
        verifier: Verifier,
        client: httpx.AsyncClient,
    ) -> None:
        self.target = target
        self.endpoint = endpoint
        self.signers = {s.owner: s for s in signers}
        self.verifier = verifier
        self.client = client
        # Unique per run, so a rerun against a long-lived target never reuses an id.
        self._prefix = f"ck{time.time_ns() // 1_000_000:x}"
        self._ids = itertools.count(1)
        self.scripts: dict[ExecRef, Script] = {}
        self.inbox: list[Received] = []
        self.refused: list[str] = []
        self._arrived = asyncio.Event()

    # -- identifiers and time ------------------------------------------------------------

    def next_id(self, kind: str = "m") -> str:
        return f"{self._prefix}-{kind}{next(self._ids)}"

    @staticmethod
    def now() -> int:
        return time.time_ns() // 1_000_000

    # -- talking to the target ------------------------------------------------------------

    def sign(self, message: Message) -> bytes:
        return self.signers[message.sender].sign(encode(message))

    async def post_raw(self, body: bytes, content_type: str = JWS_MEDIA_TYPE) -> Exchange:
        response = await self.client.post(
            self.endpoint,
            content=body,
            headers={
                "Content-Type": content_type,
                "Accept": f"{JWS_MEDIA_TYPE}, {PROBLEM_MEDIA_TYPE}",
            },
        )
        return self._read(response)

    async def send(self, message: Message) -> Exchange:
        return await self.post_raw(self.sign(message))

    def _read(self, response: httpx.Response) -> Exchange:
        content_type = response.headers.get("content-type", "")
        headers = {k.lower(): v for k, v in response.headers.items()}
        base = content_type.split(";")[0].strip().lower()
        reply: Message | None = None
        problem: Problem | None = None
        if base == JWS_MEDIA_TYPE:
            reply = self._verify(response.content)
        elif base == PROBLEM_MEDIA_TYPE:
            problem = parse_problem(
                response.content, response.status_code, headers.get("retry-after")
            )
            if problem.signed_error is not None:
                reply = self._verify(problem.signed_error)
        return Exchange(
            status=response.status_code,
            content_type=base,
            reply=reply,
            problem=problem,
            body=response.content,
            headers=headers,
        )

    def _verify(self, token: bytes) -> Message | None:
        try:
            verified = self.verifier.verify(token)
            message = decode(verified.payload)
        except RemoteProtocolError as exc:
            self.refused.append(f"unverifiable reply: {exc}")
            return None
        if verified.owner != message.sender or message.sender != self.target:
            self.refused.append(f"reply signed by {verified.owner!r} as {message.sender!r}")
            return None
        return message

    # -- hearing the target ---------------------------------------------------------------

    async def handle(self, body: bytes) -> Answer:
        """The simulated agents' recovery endpoint (draft §12.2)."""
        message = self._verify(body)
        if message is None:
            return answer_for_refusal(ErrorCode.BAD_SIGNATURE, "not the target's message")
        self.inbox.append(Received(at=time.monotonic(), message=message))
        self._arrived.set()
        execution = getattr(message, "execution", None)
        script = self.scripts.get(execution) if isinstance(execution, ExecRef) else None
        if message.recipient not in self.signers:
            return answer_for_refusal(ErrorCode.WRONG_RECIPIENT, message.recipient)
        if script is not None and message.TYPE in script.drop:
            # A lost exchange: no signed answer at all (draft §8.4).
            return answer_for_refusal(ErrorCode.OVERLOADED, "simulated loss")
        try:
            reply = self._answer(message, script)
        except ProtocolError as exc:
            return answer_for_refusal(ErrorCode.INTERNAL, str(exc))
        if reply is None:
            return Answer(status=204)
        return Answer(status=200, body=self.sign(reply), content_type=JWS_MEDIA_TYPE)

    def _common(self, message: Message) -> dict[str, Any]:
        return {
            "id": self.next_id("r"),
            "sender": message.recipient,
            "recipient": message.sender,
            "iat": self.now(),
            "reply_to": message.id,
            "recovery": message.recovery,
            "trigger": message.trigger,
        }

    def _answer(self, message: Message, script: Script | None) -> Message | None:
        if isinstance(message, Halt) and script is not None:
            return Halted(
                **self._common(message),
                execution=message.execution,
                facts=script.facts,
                dependents=script.dependents,
            )
        if isinstance(message, Rollback) and script is not None:
            result = RollbackResult(
                **self._common(message),
                execution=message.execution,
                outcome=(script.outcome or _outcome_for(message)).value,
                checkpoint=message.target,
                residual=_residual_for(script.outcome or _outcome_for(message)),
            )
            assert message.recovery is not None
            script.answered[message.recovery] = result
            return result
        if isinstance(message, StatusQuery) and script is not None:
            assert message.recovery is not None
            done = script.answered.get(message.recovery)
            if done is None and "rollback" in script.drop:
                # The rollback did happen; only its answers were lost.
                outcome = script.outcome or Outcome.RESTORED
                return Status(
                    **self._common(message),
                    execution=message.execution,
                    state=outcome.value,
                    outcome=outcome.value,
                    checkpoint=script.facts.checkpoint,
                )
            return Status(
                **self._common(message),
                execution=message.execution,
                state="halted" if done is None else done.outcome,
                outcome=None if done is None else done.outcome,
                checkpoint=script.facts.checkpoint if done is None else done.checkpoint,
                residual=() if done is None else done.residual,
            )
        if isinstance(message, Resume):
            return Ack(**self._common(message))
        return None  # a reply (ack, error, rollback-result, status) needs no answer

    async def wait_for(
        self, predicate: Callable[[Message], bool], *, timeout: float, after: int = 0
    ) -> Received | None:
        """The first message from index ``after`` on that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            while index < len(self.inbox):
                item = self.inbox[index]
                index += 1
                if predicate(item.message):
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(left, 0.2))

    def received(self, predicate: Callable[[Message], bool], after: int = 0) -> list[Received]:
        return [r for r in self.inbox[after:] if predicate(r.message)]


def _outcome_for(message: Rollback) -> Outcome:
    action = message.action.value
    if action == "compensate":
        return Outcome.COMPENSATED
    if action == "none":
        return Outcome.IRREVERSIBLE
    return Outcome.RESTORED


def _residual_for(outcome: Outcome) -> tuple[Residual, ...]:
    if outcome in (Outcome.IRREVERSIBLE, Outcome.FAILED, Outcome.UNKNOWN):
        return (Residual(description="simulated effect that cannot be undone"),)
    return ()


def facts(
    status: str = "completed", reversibility: str = "restorable", checkpoint: int = 1
) -> Facts:
    return Facts(
        status=ExecStatus(status), reversibility=Reversibility(reversibility), checkpoint=checkpoint
    )
