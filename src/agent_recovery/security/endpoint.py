"""The single inbound point of an agent, and the signer of everything it sends (draft §9).

Bytes in, in the order of draft §9 (each step refuses with its code):

1. size (``too-large``);
2. JWS verification (``unsigned``, ``malformed``, ``alg-not-allowed``,
   ``unknown-key``, ``bad-signature``) -- ``jws.py``;
3. decoding (``malformed``, ``too-large``, ``unsupported-version``) -- ``_wire``;
4. sender binding: the key's owner is the message's ``from`` (``unauthorized``);
5. recipient: ``to`` is this agent (``wrong-recipient``); a recovery context
   given by the binding must match (``wrong-recovery``);
6. replay (``stale``, ``wrong-recovery``, ``conflict``, ``overloaded``; an exact
   duplicate is answered with the cached reply) -- ``replay.py``;
7. rate limits (``rate-limited``, ``overloaded``) -- ``ratelimit.py``;
8. the engine: authorization and state (draft §9.2, §8.6) are the engine's,
   as a pure lookup in facts fixed at delegation;
9. acceptance: the replay entry and the rate-limit token are committed and the
   engine's reply is signed, cached and returned.

Steps 1-7 read state and change none. A refusal at any step raises
:class:`InboundError`, which carries the code and, when the signer of the
message is known (its signature verified), a signed ``error`` reply to send
back; nothing else happens, apart from a
:class:`~agent_recovery.security.events.SecurityEvent` given to the event sink,
which is outside the protocol state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from .._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .._messages import Error, Message, Owner
from .._wire import MAX_MESSAGE_SIZE, decode, encode
from .events import EventKind, EventSink, SecurityEvent
from .jws import Signer, Verifier
from .keys import KeyResolver
from .ratelimit import RateLimiter
from .replay import ReplayCache, ReplayEntry

__all__ = [
    "CHEAP_REFUSALS",
    "MAX_JWS_SIZE",
    "Accepted",
    "Admitted",
    "Endpoint",
    "Engine",
    "InboundError",
    "jws_size_limit",
]


def jws_size_limit(payload_limit: int) -> int:
    """The largest compact JWS carrying a payload of ``payload_limit`` octets.

    Base64url grows the payload by 4/3; 2 KiB covers the header (a ``kid`` may
    be long, e.g. a certificate thumbprint URI) and the 86-octet signature.
    """
    return -(-payload_limit * 4 // 3) + 2048


MAX_JWS_SIZE: Final = jws_size_limit(MAX_MESSAGE_SIZE)
# draft §13.4: refusals answered without a signed error reply.
CHEAP_REFUSALS: Final = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.OVERLOADED})


class Engine(Protocol):
    """What the endpoint needs of a coordinator or participant engine.

    ``receive`` queues its reply, if any, among the messages ``data_to_send``
    returns (each names its recipient). An ``error`` reply to the message is a
    refusal (authorization, state: draft §9.2, §8.6), after which the engine
    must have changed nothing.
    """

    def receive(self, sender: str, message: Message, now: int) -> None: ...

    def data_to_send(self) -> list[Message]: ...


Admission = Callable[[Message, int], None]
"""An extra check at step 7 (e.g. a cap on concurrent recoveries): raise to refuse."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """An accepted message (or an exact duplicate of one) and the signed reply to send."""

    message: Message
    agent: str  # the authenticated sender
    reply: bytes | None
    duplicate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """A message that passed steps 1-7; ``duplicate`` is its cache entry if it is one."""

    message: Message
    payload: bytes
    kid: str
    duplicate: ReplayEntry | None


class InboundError(RemoteProtocolError):
    """A refused inbound message, with what was learnt before the refusal.

    Nothing changed. ``agent`` is the owner of the verifying key once the
    signature verified, else ``None``. ``reply`` (set by
    :meth:`Endpoint.receive`) is a signed ``error`` message to send back; it is
    ``None`` when the sender could not be authenticated (the binding reports
    the code its own way, e.g. RFC 9457 problem details), when the refused
    message was itself an ``error`` (errors are never answered), and for the
    resource refusals of :data:`CHEAP_REFUSALS`.
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        message: Message | None = None,
        kid: str | None = None,
        agent: str | None = None,
        owner: Owner | None = None,
    ) -> None:
        super().__init__(code, detail)
        self.message = message
        self.kid = kid
        self.agent = agent
        self.owner = owner  # with busy: the recovery that holds the execution
        self.reply: bytes | None = None


class Endpoint:
    """One agent's inbound pipeline and outbound signer, around one engine."""

    __slots__ = (
        "_outbox",
        "admission",
        "agent",
        "engine",
        "events",
        "limiter",
        "max_size",
        "replay",
        "signer",
        "verifier",
    )

    def __init__(
        self,
        *,
        agent: str,
        engine: Engine,
        signer: Signer,
        resolver: KeyResolver,
        replay: ReplayCache | None = None,
        limiter: RateLimiter | None = None,
        events: EventSink | None = None,
        admission: Iterable[Admission] = (),
        max_size: int = MAX_JWS_SIZE,
    ) -> None:
        if signer.owner != agent:
            raise LocalProtocolError(
                ErrorCode.UNAUTHORIZED, f"signing key {signer.kid!r} is not {agent!r}'s"
            )
        self.agent = agent
        self.engine = engine
        self.signer = signer
        self.verifier = Verifier(resolver)
        self.replay = replay if replay is not None else ReplayCache()
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.events: EventSink = events if events is not None else _discard
        self.admission = tuple(admission)
        self.max_size = max_size
        self._outbox: list[tuple[str, bytes]] = []

    # -- inbound ------------------------------------------------------------

    def admit(self, data: bytes, now: int, *, recovery_context: str | None = None) -> Admitted:
        """Steps 1-7: verify, decode, bind, address, replay, rate. Changes nothing.

        Raises :class:`InboundError` (a :class:`RemoteProtocolError` that keeps
        what was learnt before the refusal). Public for benchmarks and for
        bindings that need a verdict without delivering the message.
        """
        if len(data) > self.max_size:
            raise InboundError(ErrorCode.TOO_LARGE, f"{len(data)} octets")
        try:
            verified = self.verifier.verify(data)
            message = decode(verified.payload)
        except RemoteProtocolError as exc:
            raise InboundError(exc.code, exc.detail) from None
        try:
            if verified.owner != message.sender:
                # draft §9.1: a valid signature by another agent's key is not a
                # message from the agent it names.
                raise RemoteProtocolError(
                    ErrorCode.UNAUTHORIZED,
                    f"key {verified.kid!r} is {verified.owner!r}'s, not {message.sender!r}'s",
                )
            if message.recipient != self.agent:
                raise RemoteProtocolError(
                    ErrorCode.WRONG_RECIPIENT, f"addressed to {message.recipient!r}"
                )
            if recovery_context is not None and message.recovery != recovery_context:
                raise RemoteProtocolError(
                    ErrorCode.WRONG_RECOVERY, f"message is for recovery {message.recovery!r}"
                )
            duplicate = self.replay.check(
                sender=message.sender,
                message_id=message.id,
                iat=message.iat,
                recovery=message.recovery,
                data=verified.payload,
                now=now,
            )
            if duplicate is None:
                self.limiter.check(message.sender, message.TYPE, now)
                for check in self.admission:
                    check(message, now)
        except RemoteProtocolError as exc:
            raise InboundError(
                exc.code, exc.detail, message=message, kid=verified.kid, agent=verified.owner
            ) from None
        return Admitted(
            message=message, payload=verified.payload, kid=verified.kid, duplicate=duplicate
        )

    def receive(self, data: bytes, now: int, *, recovery_context: str | None = None) -> Accepted:
        """Deliver ``data`` to the engine if every check passes (draft §9).

        Returns the accepted message and the signed reply to send back (the
        engine's reply addressed to the sender with ``reply_to`` = the message
        id), or raises :class:`InboundError`. Other messages the engine produced are
        signed and kept for :meth:`data_to_send`.
        """
        try:
            admitted = self.admit(data, now, recovery_context=recovery_context)
        except InboundError as exc:
            raise self._refuse(data, now, exc) from None
        message = admitted.message
        if admitted.duplicate is not None:
            # draft §9.3 step 2: answer from the cache; the engine never sees it.
            self._event(
                data=data,
                now=now,
                kind=EventKind.DUPLICATE,
                code=ErrorCode.REPLAY,
                detail="exact duplicate",
                message=message,
                kid=admitted.kid,
                agent=message.sender,
            )
            return Accepted(
                message=message,
                agent=message.sender,
                reply=admitted.duplicate.reply,
                duplicate=True,
            )
        self.engine.receive(message.sender, message, now)
        reply, refusal = self._collect(reply_to=message)
        if refusal is not None:
            # draft §9.2: authorization and state are the engine's decision; it
            # refused with an error reply and changed nothing, so neither do we.
            refused = InboundError(
                ErrorCode(refusal.effective_code),
                refusal.detail or "",
                message=message,
                kid=admitted.kid,
                agent=message.sender,
                owner=refusal.owner,
            )
            refused.reply = reply
            self._event(
                data=data,
                now=now,
                kind=EventKind.REFUSED,
                code=refused.code,
                detail=refused.detail,
                message=message,
                kid=admitted.kid,
                agent=message.sender,
            )
            raise refused
        self.replay.commit(
            sender=message.sender,
            message_id=message.id,
            iat=message.iat,
            recovery=message.recovery,
            data=admitted.payload,
            reply=reply,
            now=now,
        )
        self.limiter.consume(message.sender, message.TYPE, now)
        return Accepted(message=message, agent=message.sender, reply=reply)

    # -- outbound -----------------------------------------------------------

    def sign(self, message: Message) -> bytes:
        """Encode and sign one of this agent's messages (draft §9.1)."""
        if message.sender != self.agent:
            raise LocalProtocolError(ErrorCode.UNAUTHORIZED, f"message is from {message.sender!r}")
        return self.signer.sign(encode(message))

    def data_to_send(self) -> list[tuple[str, bytes]]:
        """Every signed message waiting to be sent, as (recipient agent id, JWS bytes).

        Call after the engine's ``handle_timer`` or any API call that produces
        messages. A late reply to a message in the replay cache (e.g. a
        rollback result produced after the request was acknowledged) also
        becomes that message's cached reply, so a retransmitted request is
        answered with it (draft §9.3 step 2).
        """
        self._collect(reply_to=None)
        out, self._outbox = self._outbox, []
        return out

    def _collect(self, *, reply_to: Message | None) -> tuple[bytes | None, Error | None]:
        """Sign the engine's output; pick out the reply to ``reply_to``.

        Returns (the signed reply, the reply itself if it is an ``error``).
        """
        reply: bytes | None = None
        refusal: Error | None = None
        for message in self.engine.data_to_send():
            signed = self.sign(message)
            answered = getattr(message, "reply_to", None)
            if (
                reply is None
                and reply_to is not None
                and message.recipient == reply_to.sender
                and answered == reply_to.id
            ):
                reply = signed
                if isinstance(message, Error):
                    refusal = message
                continue
            if answered is not None:
                self.replay.update_reply(
                    sender=message.recipient, message_id=answered, reply=signed
                )
            self._outbox.append((message.recipient, signed))
        return reply, refusal

    # -- refusals -------------------------------------------------------------

    def _refuse(self, data: bytes, now: int, exc: InboundError) -> InboundError:
        """An event, and a signed error reply if the signer of ``data`` is known.

        The reply goes to the owner of the verifying key (who signed the
        message, whatever its ``from`` claims), never to an unauthenticated
        party, and never answers an ``error``. Refusals that protect the
        receiver's resources (:data:`CHEAP_REFUSALS`) are not signed either:
        spending a signature on each message of a flood would double its cost
        (draft §13.4); the binding reports them unsigned (HTTP 429 / 503).
        """
        message = exc.message
        if (
            exc.agent is not None
            and message is not None
            and message.TYPE != Error.TYPE
            and exc.code not in CHEAP_REFUSALS
        ):
            exc.reply = self._error_reply(now, exc, message, exc.agent, data)
        self._event(
            data=data,
            now=now,
            kind=EventKind.REFUSED,
            code=exc.code,
            detail=exc.detail,
            message=message,
            kid=exc.kid,
            agent=exc.agent,
        )
        return exc

    def _error_reply(
        self, now: int, exc: InboundError, message: Message, agent: str, data: bytes
    ) -> bytes:
        # Deterministic and unique per (refused bytes, time, code): no randomness.
        seed = b"%d|%s|" % (now, exc.code.value.encode()) + data
        error = Error(
            id="e-" + hashlib.sha256(seed).hexdigest()[:32],
            sender=self.agent,
            recipient=agent,
            iat=now,
            reply_to=message.id,
            code=exc.code.value,
            detail=exc.detail[:512] or None,
            owner=exc.owner if exc.code is ErrorCode.BUSY else None,
            recovery=message.recovery,
            trigger=message.trigger,
        )
        return self.signer.sign(encode(error))

    def _event(
        self,
        *,
        data: bytes,
        now: int,
        kind: EventKind,
        code: ErrorCode | None,
        detail: str,
        message: Message | None,
        kid: str | None,
        agent: str | None,
    ) -> None:
        self.events(
            SecurityEvent(
                at=now,
                kind=kind,
                code=code,
                detail=detail,
                digest=hashlib.sha256(data).hexdigest(),
                agent=agent,
                kid=kid,
                message_id=message.id if message is not None else None,
                message_type=message.TYPE if message is not None else None,
                recovery=message.recovery if message is not None else None,
            )
        )


def _discard(event: SecurityEvent) -> None:
    return None
