"""Recovery-log throughput: durable appends, and verification against raw crypto (draft §11).

Three measurements on one SQLite store file (WAL, ``synchronous=FULL``: every
commit is fsync'ed) in ``--dir`` (default: the system temporary directory; use
a real disk, a tmpfs makes fsync free):

1. **single**: ``--single`` records appended one per transaction, the way an
   engine step commits: link, encode, sign, insert, commit.
2. **batched**: the ``--records`` records of the log appended ``--batch`` per
   transaction. This also builds the log measured next.
3. **verify**: the whole log checked as ``agent-recovery records verify`` does
   (``LogVerifier``: JWS parse and signature, decoding of the record, issuer,
   ``seq``, ``prev``, ids, ``supersedes``). The baseline, measured in the same
   run on the same bytes, is the irreducible work: SHA-256 of each payload
   plus one raw Ed25519 verification of each signing input, with the inputs
   already split and decoded. The two alternate chunk by chunk (``--chunk``
   entries read from the store at a time) so both see the same machine load.

    python bench/records.py [--records N] [--single N] [--batch B] [--chunk C] [--dir D]

``--records`` defaults to 10^6 (several minutes); CI runs a small N. The last
line is one JSON object with the rates and ``verify_ratio`` = full verification
time / baseline time (1.0 would mean verification costs nothing beyond the
hash and the signature).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_recovery._messages import RecordMember, RecoveryRecord
from agent_recovery._model import (
    Action,
    Dependency,
    ExecRef,
    Reason,
    ReasonKind,
    RecordResult,
)
from agent_recovery._records import LogVerifier
from agent_recovery.security.jws import Signer, Verifier
from agent_recovery.security.keys import JwkSet, b64url_decode
from agent_recovery.store import Store

COORDINATOR = "spiffe://example.org/planner"
T0 = 1_800_000_000_000


def _record(i: int) -> RecoveryRecord:
    """A typical record: three members, one origin and two dependents."""
    origin = ExecRef(agent="spiffe://example.org/pusher-1", exec=f"push-{i}")
    members = [
        RecordMember(
            execution=origin,
            target=3,
            action=Action.RESTORE,
            reason=Reason(kind=ReasonKind.ORIGIN),
            outcome="restored",
            checkpoint=3,
        )
    ]
    for k, action, outcome in (
        (1, Action.COMPENSATE, "compensated"),
        (2, Action.RESTORE, "restored"),
    ):
        consumer = ExecRef(agent=f"spiffe://example.org/agent-{k}", exec=f"work-{i}-{k}")
        edge = Dependency(consumer=consumer, producer=origin, produced_after=4, consumed_after=1)
        members.append(
            RecordMember(
                execution=consumer,
                target=1,
                action=action,
                reason=Reason(kind=ReasonKind.DIRECT, via=edge),
                outcome=outcome,
                checkpoint=1,
            )
        )
    return RecoveryRecord(
        id=f"c-{i}",
        sender=COORDINATOR,
        recipient=COORDINATOR,
        iat=T0 + i,
        recovery=f"rec-{i}",
        trigger=f"sig-{i}",
        seq=0,
        prev="",
        created=T0 + i - 500,
        closed=T0 + i,
        result=RecordResult.COMPLETED,
        members=tuple(members),
    )


def _append_single(store: Store, signer: Signer, count: int) -> float:
    records = [_record(10_000_000 + i) for i in range(count)]
    start = time.perf_counter()
    for rec in records:
        store.append(signer, [rec])
    return time.perf_counter() - start


def _append_batched(store: Store, signer: Signer, count: int, batch: int) -> float:
    elapsed = 0.0
    for first in range(0, count, batch):
        records = [_record(i) for i in range(first, min(first + batch, count))]
        start = time.perf_counter()
        store.append(signer, records)
        elapsed += time.perf_counter() - start
    return elapsed


def _verify(store: Store, signer: Signer, chunk: int) -> tuple[float, float, float, int, bool]:
    public = signer.verification_key().public_key
    assert isinstance(public, ed25519.Ed25519PublicKey)
    checker = LogVerifier(Verifier(JwkSet([signer.verification_key()])), issuer=COORDINATOR)
    full = raw = read = 0.0
    count = 0
    entries = store.entries(COORDINATOR)
    while True:
        start = time.perf_counter()
        tokens = [e.token for _, e in zip(range(chunk), entries, strict=False)]
        read += time.perf_counter() - start
        if not tokens:
            break
        inputs = []
        for token in tokens:  # the baseline's inputs, prepared outside its clock
            head, body, sig = token.split(b".")
            inputs.append((b64url_decode(sig), head + b"." + body, b64url_decode(body)))
        start = time.perf_counter()
        for sig, data, payload in inputs:
            hashlib.sha256(payload).digest()
            public.verify(sig, data)
        raw += time.perf_counter() - start
        feed = checker.feed
        start = time.perf_counter()
        for token in tokens:
            feed(token)
        full += time.perf_counter() - start
        count += len(tokens)
    report = checker.report()
    return full, raw, read, count, report.ok and report.checked == count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="log size to verify")
    parser.add_argument("--single", type=int, default=500, help="appends, one per transaction")
    parser.add_argument("--batch", type=int, default=1_000, help="records per transaction")
    parser.add_argument("--chunk", type=int, default=10_000, help="entries per verify chunk")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the store file")
    args = parser.parse_args()

    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    signer = Signer(key, kid="planner-1", owner=COORDINATOR)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "records.db"
        with Store(path) as store:
            batched_s = _append_batched(store, signer, args.records, args.batch)
            print(
                f"batched: {args.records} records, {args.batch}/transaction:"
                f" {args.records / batched_s:10.0f} records/s"
            )
            full_s, raw_s, read_s, count, ok = _verify(store, signer, args.chunk)
            print(
                f"verify:  {count} records: full {count / full_s:10.0f}/s"
                f"  raw sha256+Ed25519 {count / raw_s:10.0f}/s  ratio {full_s / raw_s:.3f}"
                f"  (store read {count / read_s:.0f}/s)  ok={ok}"
            )
            single_s = _append_single(store, signer, args.single)
            print(
                f"single:  {args.single} records, 1/transaction:"
                f" {args.single / single_s:10.0f} records/s ({1000 * single_s / args.single:.2f} ms"
                " per durable commit)"
            )
            size = path.stat().st_size + Path(str(path) + "-wal").stat().st_size
    result = {
        "records": args.records,
        "append_single_per_s": round(args.single / single_s),
        "append_batched_per_s": round(args.records / batched_s),
        "batch": args.batch,
        "verify_full_per_s": round(count / full_s),
        "verify_raw_per_s": round(count / raw_s),
        "verify_ratio": round(full_s / raw_s, 3),
        "verify_full_s": round(full_s, 2),
        "verify_raw_s": round(raw_s, 2),
        "store_read_per_s": round(count / read_s),
        "verified": ok,
        "store_bytes": size,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
