"""Recovery-record chains: linking and log verification over bytes (draft §11).

A chain is the sequence of recovery records one issuer signed, in order. Each
record's ``seq`` is its position (the first is 0) and its ``prev`` is the
unpadded base64url SHA-256 digest of the previous record's *payload*: the exact
octets of the encoded record that its JWS signs (``_wire.encode``), or ``""``
for the first record (draft §11.2). Hashing the payload, not the whole JWS,
makes the link a commitment to what the record says, independent of how it is
wrapped: the same record re-wrapped (a new ``kid`` after key rotation, a
countersignature, a transparency-service envelope) keeps its place in the
chain, and signature malleability cannot fork it.

Linking is done by whoever appends to the durable log (``store/``), in the same
transaction that signs and stores the record, so the engines need not know
the chain; :func:`seal` is that step as a pure function.

:class:`LogVerifier` checks a log entry by entry, in the order of draft §11.6,
and stops at the first break, which it reports with its exact position. Keys
are not handled here: signatures are checked through a :class:`TokenVerifier`
passed in (``security.jws.Verifier`` is one).

Participants keep their own chains with the same layout (draft §11.4);
:func:`participant_record` builds one entry from what the participant was asked
and what it answered.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from ._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from ._messages import RecordMember, RecoveryRecord, Rollback, RollbackResult
from ._model import Outcome, RecordResult
from ._state import RecoveryState, record_result
from ._wire import decode, encode

__all__ = [
    "GENESIS",
    "BreakKind",
    "ChainBreak",
    "ChainHead",
    "LogVerifier",
    "Report",
    "SealedRecord",
    "TokenSigner",
    "TokenVerifier",
    "VerifiedToken",
    "participant_record",
    "payload_digest",
    "seal",
    "verify_log",
]

# draft §11.1: "completed" claims every member's work after its target is gone.
_COMPLETE: Final = frozenset({Outcome.RESTORED, Outcome.COMPENSATED, Outcome.NOT_NEEDED})


def payload_digest(payload: bytes) -> str:
    """The link value of a record: base64url (no padding) of SHA-256(payload)."""
    return base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHead:
    """Where a chain stands: the ``seq`` and ``prev`` the next record will carry."""

    next_seq: int
    prev: str

    def __post_init__(self) -> None:
        if self.next_seq < 0 or (self.next_seq == 0) != (self.prev == ""):
            # draft §11.2: only the first record has an empty prev.
            raise LocalProtocolError(ErrorCode.MALFORMED, "chain head: seq and prev disagree")


GENESIS: Final = ChainHead(next_seq=0, prev="")
"""The head of an empty chain."""


class TokenSigner(Protocol):
    """Signs payload octets as a JWS compact serialization (``security.jws.Signer``)."""

    @property
    def owner(self) -> str:
        """The agent id the signing key speaks for."""
        ...

    def sign(self, payload: bytes) -> bytes: ...


class VerifiedToken(Protocol):
    """What a successful signature check yields (``security.jws.Verified``)."""

    @property
    def payload(self) -> bytes: ...

    @property
    def owner(self) -> str: ...


class TokenVerifier(Protocol):
    """Checks a JWS compact serialization (``security.jws.Verifier``).

    Raises :class:`RemoteProtocolError` with a draft §10 code if it does not
    verify; the key comes from the verifier's own key resolution, never from
    the token.
    """

    def verify(self, token: bytes) -> VerifiedToken: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedRecord:
    """A record linked into its chain, encoded and signed: one log entry."""

    record: RecoveryRecord
    payload: bytes
    token: bytes

    @property
    def seq(self) -> int:
        return self.record.seq

    @property
    def head(self) -> ChainHead:
        """The chain head after this record."""
        return ChainHead(next_seq=self.record.seq + 1, prev=payload_digest(self.payload))


def seal(record: RecoveryRecord, head: ChainHead, signer: TokenSigner) -> SealedRecord:
    """Link ``record`` at ``head``, encode it and sign it (draft §11.2).

    Whatever ``seq`` and ``prev`` the record carried are replaced: the chain,
    not the engine that built the record, decides them. The signer must speak
    for the record's issuer, so one chain is one key holder's.
    """
    if signer.owner != record.sender:
        raise LocalProtocolError(
            ErrorCode.UNAUTHORIZED,
            f"signer {signer.owner!r} cannot issue {record.sender!r}'s record",
        )
    linked = dataclasses.replace(record, seq=head.next_seq, prev=head.prev)
    payload = encode(linked)
    return SealedRecord(record=linked, payload=payload, token=signer.sign(payload))


def participant_record(
    *, id: str, request: Rollback, result: RollbackResult, created: int
) -> RecoveryRecord:
    """A participant's record of one rollback it answered (draft §11.4).

    Same layout as a coordinator's record, with one member: the participant's
    execution, what it was asked (``request``) and what it answered
    (``result``). ``to`` names the coordinator, which tells a participant
    record from a coordinator record (whose ``to`` is its own issuer) when
    one agent keeps both in one chain. ``created`` is the recovery's creation
    time from the halt; ``closed`` is when the answer was issued, but never
    before ``created`` (the two come from different clocks). ``seq`` and
    ``prev`` are placeholders until :func:`seal`.
    """
    if (
        result.reply_to != request.id
        or result.execution != request.execution
        or (result.recovery, result.trigger) != (request.recovery, request.trigger)
        or result.sender != request.recipient
        or result.recipient != request.sender
    ):
        raise LocalProtocolError(ErrorCode.MALFORMED, "the result does not answer the request")
    member = RecordMember(
        execution=result.execution,
        target=request.target,
        action=request.action,
        reason=request.reason,
        outcome=result.outcome,
        checkpoint=result.checkpoint,
        residual=result.residual,
    )
    return RecoveryRecord(
        id=id,
        sender=result.sender,
        recipient=result.recipient,
        iat=result.iat,
        recovery=result.recovery,
        trigger=result.trigger,
        seq=0,
        prev="",
        created=created,
        closed=max(result.iat, created),
        result=record_result(RecoveryState.CLOSED, [result.effective_outcome]),
        members=(member,),
    )


# ---------------------------------------------------------------------------
# Verification


class BreakKind(enum.StrEnum):
    """Why a log stops verifying at some entry (draft §11.6, in check order)."""

    BAD_SIGNATURE = "bad-signature"  # not a JWS, or its signature does not verify
    UNKNOWN_KEY = "unknown-key"  # signed with a key the verifier cannot resolve
    MALFORMED = "malformed"  # the payload is not a well-formed recovery record
    WRONG_SIGNER = "wrong-signer"  # the key is not bound to the record's "from"
    WRONG_ISSUER = "wrong-issuer"  # "from" is not the chain's issuer
    SEQ_GAP = "seq-gap"  # seq is not the previous seq + 1 (a record missing or moved)
    BROKEN_LINK = "broken-link"  # prev is not the digest of the previous payload
    DUPLICATE_ID = "duplicate-id"  # a record id used twice in the chain
    BAD_SUPERSEDES = "bad-supersedes"  # names no earlier record of the same recovery, or one
    # that an earlier record already superseded
    INCONSISTENT = "inconsistent"  # the result contradicts the members' outcomes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainBreak:
    """The first entry of a log that fails a check.

    ``index`` is its 0-based position among the entries given; ``seq`` is the
    sequence number a record at that position must have.
    """

    index: int
    seq: int
    kind: BreakKind
    detail: str
    record_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The outcome of verifying a log.

    ``checked`` entries verified before the break (all of them if ``ok``);
    ``head`` is the chain head after them, the value to compare with a head
    published elsewhere, since truncating the end of a chain is not
    detectable from the chain alone (draft §13).
    """

    issuer: str | None
    checked: int
    head: ChainHead
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


_SIGNATURE_ERRORS: Final = {ErrorCode.UNKNOWN_KEY: BreakKind.UNKNOWN_KEY}


def _canonical_b64url(segment: bytes) -> bool:
    # RFC 4648 §3.5: base64 decoders may accept nonzero bits after the last
    # octet, so two different texts can carry one signature. The header and
    # payload texts are signed themselves; the signature text is not, so it
    # must be the canonical one, or a changed byte could go unnoticed.
    try:
        raw = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=") == segment


class LogVerifier:
    """Checks one chain entry by entry and remembers the first break.

    ``issuer`` fixes whose chain this must be (otherwise the first record's
    ``from`` does). ``anchor`` is the head before the first entry given, to
    verify a suffix of a chain from a head already trusted; with it, a
    ``supersedes`` naming a record before the anchor cannot be checked and is
    accepted.
    """

    __slots__ = (
        "_anchor",
        "_break",
        "_count",
        "_head",
        "_ids",
        "_issuer",
        "_superseded",
        "_verifier",
    )

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        issuer: str | None = None,
        anchor: ChainHead = GENESIS,
    ) -> None:
        self._verifier = verifier
        self._issuer = issuer
        self._anchor = anchor
        self._head = anchor
        self._count = 0
        self._break: ChainBreak | None = None
        # record id -> (recovery, trigger): for duplicate ids and supersedes.
        self._ids: dict[str, tuple[str, str]] = {}
        # superseded record id -> the record that superseded it: no forks.
        self._superseded: dict[str, str] = {}

    @property
    def first_break(self) -> ChainBreak | None:
        return self._break

    def report(self) -> Report:
        return Report(
            issuer=self._issuer, checked=self._count, head=self._head, first_break=self._break
        )

    def feed(self, token: bytes) -> ChainBreak | None:
        """Check the next entry; return the break it causes, if any.

        After the first break every later entry is ignored: a chain has one
        first break, and what follows it cannot be trusted to be in place.
        """
        if self._break is not None:
            return self._break
        index, seq = self._count, self._head.next_seq
        problem = self._check(token, seq)
        if problem is not None:
            kind, detail, record_id = problem
            self._break = ChainBreak(
                index=index, seq=seq, kind=kind, detail=detail, record_id=record_id
            )
        return self._break

    def _check(self, token: bytes, seq: int) -> tuple[BreakKind, str, str | None] | None:
        # 1. signature (draft §9.1): nothing is decoded before it verified.
        try:
            verified = self._verifier.verify(token)
        except RemoteProtocolError as exc:
            kind = _SIGNATURE_ERRORS.get(exc.code, BreakKind.BAD_SIGNATURE)
            return kind, f"{exc.code.value}: {exc.detail}", None
        if not _canonical_b64url(token.rpartition(b".")[2]):
            return BreakKind.BAD_SIGNATURE, "signature is not canonical base64url", None
        payload = verified.payload
        # 2. a well-formed recovery record (draft §6.12, §11.1).
        try:
            record = decode(payload)
        except RemoteProtocolError as exc:
            return BreakKind.MALFORMED, f"{exc.code.value}: {exc.detail}", None
        if not isinstance(record, RecoveryRecord):
            return BreakKind.MALFORMED, f"a {record.TYPE} message, not a recovery record", None
        rid = record.id
        # 3. whose record: the key's owner, the record's issuer, the chain's issuer.
        if verified.owner != record.sender:
            return (
                BreakKind.WRONG_SIGNER,
                f"signed by {verified.owner!r}'s key, issued as {record.sender!r}",
                rid,
            )
        if self._issuer is None:
            self._issuer = record.sender
        elif record.sender != self._issuer:
            return BreakKind.WRONG_ISSUER, f"issued by {record.sender!r}, not {self._issuer!r}", rid
        # 4. position and link (draft §11.2).
        if record.seq != seq:
            return BreakKind.SEQ_GAP, f"seq {record.seq}, expected {seq}", rid
        if record.prev != self._head.prev:
            return BreakKind.BROKEN_LINK, "prev is not the digest of the previous record", rid
        # 5. content rules a single record cannot show by itself (draft §11.1, §11.3).
        if rid in self._ids:
            return BreakKind.DUPLICATE_ID, f"record id {rid!r} already used", rid
        if record.supersedes is not None:
            earlier = self._ids.get(record.supersedes)
            if earlier is None and self._anchor.next_seq == 0:
                return BreakKind.BAD_SUPERSEDES, f"no earlier record {record.supersedes!r}", rid
            if earlier is not None and earlier != (record.recovery, record.trigger):
                return BreakKind.BAD_SUPERSEDES, "supersedes a record of another recovery", rid
            later = self._superseded.get(record.supersedes)
            if later is not None:
                # Two records replacing one would leave two authoritative ones.
                return (
                    BreakKind.BAD_SUPERSEDES,
                    f"{record.supersedes!r} was already superseded by {later!r}",
                    rid,
                )
        if record.result is RecordResult.COMPLETED and any(
            m.effective_outcome not in _COMPLETE for m in record.members
        ):
            return BreakKind.INCONSISTENT, "completed, but an outcome is not a success", rid
        self._ids[rid] = (record.recovery, record.trigger)
        if record.supersedes is not None:
            self._superseded[record.supersedes] = rid
        self._head = ChainHead(next_seq=seq + 1, prev=payload_digest(payload))
        self._count += 1
        return None


def verify_log(
    entries: Iterable[bytes],
    verifier: TokenVerifier,
    *,
    issuer: str | None = None,
    anchor: ChainHead = GENESIS,
) -> Report:
    """Verify a chain given as JWS tokens in log order; stop at the first break.

    Consumes ``entries`` lazily, so a log of any length is checked in
    constant memory apart from the record ids kept for draft §11.3.
    """
    checker = LogVerifier(verifier, issuer=issuer, anchor=anchor)
    for token in entries:
        if checker.feed(token) is not None:
            break
    return checker.report()
