"""Builders shared by the record-chain, store and CLI tests: real keys, real records.

This module holds no tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_recovery._messages import RecordMember, RecoveryRecord
from agent_recovery._model import (
    Action,
    ExecRef,
    Outcome,
    Reason,
    ReasonKind,
    RecordResult,
    Residual,
)
from agent_recovery._records import GENESIS, ChainHead, SealedRecord, seal
from agent_recovery.security.jws import Signer, Verifier
from agent_recovery.security.keys import JwkSet

COORDINATOR = "spiffe://example.org/coordinator"
OTHER = "spiffe://example.org/other"
WORKER = "spiffe://example.org/worker"
T0 = 1_800_000_000_000


def signer(owner: str = COORDINATOR, *, seed: int = 1, kid: str | None = None) -> Signer:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return Signer(key, kid=kid or f"{owner}#k{seed}", owner=owner)


def verifier(*signers: Signer) -> Verifier:
    return Verifier(JwkSet(s.verification_key() for s in signers))


def record(
    n: int,
    *,
    issuer: str = COORDINATOR,
    recovery: str | None = None,
    supersedes: str | None = None,
    outcome: Outcome = Outcome.RESTORED,
    result: RecordResult = RecordResult.COMPLETED,
) -> RecoveryRecord:
    residual = (Residual(description="left as is"),) if outcome is Outcome.FAILED else ()
    recovery = recovery or f"r-{n}"
    return RecoveryRecord(
        id=f"rec-{n}",
        sender=issuer,
        recipient=issuer,
        iat=T0 + n,
        recovery=recovery,
        trigger=f"sig-{recovery}",
        seq=0,
        prev="",
        created=T0 + n,
        closed=T0 + n + 1,
        result=result,
        members=(
            RecordMember(
                execution=ExecRef(agent=WORKER, exec=f"x-{n}"),
                target=0,
                action=Action.RESTORE,
                reason=Reason(kind=ReasonKind.ORIGIN),
                outcome=outcome.value,
                checkpoint=0,
                residual=residual,
            ),
        ),
        supersedes=supersedes,
    )


def chain(
    records: Iterable[RecoveryRecord], sign: Signer, head: ChainHead = GENESIS
) -> list[SealedRecord]:
    out = []
    for r in records:
        sealed = seal(r, head, sign)
        out.append(sealed)
        head = sealed.head
    return out


def tokens(sealed: Iterable[SealedRecord]) -> list[bytes]:
    return [s.token for s in sealed]


def relinked(sealed: SealedRecord, **changes: object) -> RecoveryRecord:
    """The record of ``sealed`` with members changed, keeping its seq and prev."""
    return dataclasses.replace(sealed.record, **changes)  # type: ignore[arg-type]
