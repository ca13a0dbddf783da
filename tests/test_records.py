"""Record chains (draft §11): linking, and a verifier that finds the FIRST break at
its exact position. Real Ed25519 keys and the real JWS code sign and verify."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_records_kit import (
    COORDINATOR,
    OTHER,
    T0,
    WORKER,
    chain,
    record,
    signer,
    tokens,
    verifier,
)

from agent_recovery._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from agent_recovery._messages import Halt, Rollback, RollbackResult
from agent_recovery._model import (
    Action,
    ExecRef,
    Outcome,
    Reason,
    ReasonKind,
    RecordResult,
    Residual,
)
from agent_recovery._records import (
    GENESIS,
    BreakKind,
    ChainHead,
    LogVerifier,
    participant_record,
    payload_digest,
    seal,
    verify_log,
)
from agent_recovery._wire import decode, encode

SIGNER = signer()
VERIFIER = verifier(SIGNER)
N = 8
CHAIN = chain((record(i) for i in range(N)), SIGNER)
TOKENS = tokens(CHAIN)


# -- linking (draft §11.2) ---------------------------------------------------------


def test_seal_links_seq_from_zero_and_prev_to_the_previous_payload() -> None:
    assert [s.record.seq for s in CHAIN] == list(range(N))
    assert CHAIN[0].record.prev == ""
    for before, after in itertools.pairwise(CHAIN):
        assert after.record.prev == payload_digest(before.payload)
        assert len(after.record.prev) == 43


def test_the_payload_is_the_encoded_record_and_what_the_jws_signs() -> None:
    for sealed in CHAIN:
        assert sealed.payload == encode(sealed.record)
        assert VERIFIER.verify(sealed.token).payload == sealed.payload
        assert decode(sealed.payload) == sealed.record


def test_seal_overrides_whatever_seq_and_prev_the_engine_put() -> None:
    stale = dataclasses.replace(record(0), seq=41, prev="A" * 43)
    sealed = seal(stale, CHAIN[2].head, SIGNER)
    assert (sealed.record.seq, sealed.record.prev) == (3, payload_digest(CHAIN[2].payload))


def test_seal_refuses_a_signer_that_is_not_the_issuer() -> None:
    with pytest.raises(LocalProtocolError) as info:
        seal(record(0), GENESIS, signer(OTHER, seed=2))
    assert info.value.code is ErrorCode.UNAUTHORIZED


def test_payload_digest_is_unpadded_base64url_sha256() -> None:
    # SHA-256("abc"), RFC 6234 test vector, in base64url.
    assert payload_digest(b"abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"


@pytest.mark.parametrize(("seq", "prev"), [(0, "x"), (1, ""), (-1, "")])
def test_a_chain_head_is_consistent(seq: int, prev: str) -> None:
    with pytest.raises(LocalProtocolError):
        ChainHead(next_seq=seq, prev=prev)


# -- verification of an intact chain -------------------------------------------------


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    report = verify_log(TOKENS, VERIFIER)
    assert report.ok
    assert report.issuer == COORDINATOR
    assert report.checked == N
    assert report.head == CHAIN[-1].head


def test_an_empty_log_verifies_with_the_genesis_head() -> None:
    report = verify_log([], VERIFIER)
    assert report.ok and report.checked == 0 and report.head == GENESIS


def test_a_suffix_verifies_from_an_anchor() -> None:
    report = verify_log(TOKENS[3:], VERIFIER, anchor=CHAIN[2].head)
    assert report.ok and report.checked == N - 3 and report.head == CHAIN[-1].head
    # Without the anchor the same suffix starts at the wrong place.
    broken = verify_log(TOKENS[3:], VERIFIER).first_break
    assert broken is not None and broken.kind is BreakKind.SEQ_GAP and broken.index == 0


# -- tampering: each kind is found at its exact position ------------------------------


@given(
    index=st.integers(0, N - 1),
    offset=st.integers(0, 10_000),
    replacement=st.integers(0, 255),
)
def test_any_changed_byte_breaks_the_chain_exactly_there(
    index: int, offset: int, replacement: int
) -> None:
    token = bytearray(TOKENS[index])
    offset %= len(token)
    if token[offset] == replacement:
        replacement ^= 1
    token[offset] = replacement
    log = [*TOKENS[:index], bytes(token), *TOKENS[index + 1 :]]
    report = verify_log(log, VERIFIER)
    assert report.first_break is not None
    assert report.first_break.index == index
    assert report.first_break.seq == index
    assert report.checked == index
    assert report.first_break.kind in {BreakKind.BAD_SIGNATURE, BreakKind.UNKNOWN_KEY}


@pytest.mark.parametrize("index", range(N - 1))
def test_a_removed_record_is_a_seq_gap_where_it_was(index: int) -> None:
    log = TOKENS[:index] + TOKENS[index + 1 :]
    found = verify_log(log, VERIFIER).first_break
    assert found is not None
    assert (found.index, found.seq, found.kind) == (index, index, BreakKind.SEQ_GAP)
    assert found.record_id == f"rec-{index + 1}"


def test_removing_the_last_record_is_only_visible_in_the_head() -> None:
    # draft §13: truncation needs a head published elsewhere to be noticed.
    report = verify_log(TOKENS[:-1], VERIFIER)
    assert report.ok
    assert report.head != CHAIN[-1].head


@pytest.mark.parametrize("index", range(N - 1))
def test_two_swapped_records_break_at_the_first_of_them(index: int) -> None:
    log = list(TOKENS)
    log[index], log[index + 1] = log[index + 1], log[index]
    found = verify_log(log, VERIFIER).first_break
    assert found is not None
    assert (found.index, found.seq, found.kind) == (index, index, BreakKind.SEQ_GAP)


def test_swapping_distant_records_breaks_at_the_first_of_them() -> None:
    log = list(TOKENS)
    log[2], log[6] = log[6], log[2]
    found = verify_log(log, VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (2, BreakKind.SEQ_GAP)


def test_a_record_from_a_fork_is_a_broken_link() -> None:
    # The key holder signed two different records at seq 4: the log splices them.
    fork = chain([record(100)], SIGNER, CHAIN[3].head)
    other = chain([record(101)], SIGNER, fork[0].head)
    log = [*TOKENS[:4], fork[0].token, *TOKENS[5:]]
    found = verify_log(log, VERIFIER).first_break
    assert found is not None
    assert (found.index, found.kind) == (5, BreakKind.BROKEN_LINK)
    # ... and the fork itself verifies on its own, so the break is the splice.
    assert verify_log([*TOKENS[:4], fork[0].token, other[0].token], VERIFIER).ok


def test_a_prev_naming_an_older_record_is_a_broken_link() -> None:
    skipping = seal(record(3), ChainHead(next_seq=3, prev=CHAIN[1].head.prev), SIGNER)
    found = verify_log([*TOKENS[:3], skipping.token], VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (3, BreakKind.BROKEN_LINK)


def test_a_key_the_verifier_does_not_know_is_reported_as_such() -> None:
    found = verify_log(TOKENS, verifier(signer(OTHER, seed=2))).first_break
    assert found is not None and (found.index, found.kind) == (0, BreakKind.UNKNOWN_KEY)


def test_a_signature_with_a_noncanonical_tail_is_refused() -> None:
    # 64 signature octets in 86 characters leave 4 spare bits in the last one;
    # a decoder may ignore them, the verifier must not.
    token = TOKENS[3]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1:])
    altered = token[:-1] + alphabet[last | 1 : (last | 1) + 1]
    assert altered != token
    # The JWS verifier itself refuses the second spelling (RFC 4648 §3.5).
    with pytest.raises(RemoteProtocolError) as refused:
        VERIFIER.verify(altered)
    assert refused.value.code is ErrorCode.MALFORMED
    found = verify_log([*TOKENS[:3], altered, *TOKENS[4:]], VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (3, BreakKind.BAD_SIGNATURE)


def test_a_record_signed_by_another_agents_key_is_a_wrong_signer() -> None:
    intruder = signer(OTHER, seed=2)
    sealed = seal(record(3), CHAIN[2].head, SIGNER)
    forged = intruder.sign(sealed.payload)  # says it is the coordinator's
    log = [*TOKENS[:3], forged]
    found = verify_log(log, verifier(SIGNER, intruder)).first_break
    assert found is not None and (found.index, found.kind) == (3, BreakKind.WRONG_SIGNER)


def test_a_record_of_another_issuer_is_a_wrong_issuer() -> None:
    other = signer(OTHER, seed=2)
    foreign = seal(record(3, issuer=OTHER), CHAIN[2].head, other)
    log = [*TOKENS[:3], foreign.token]
    found = verify_log(log, verifier(SIGNER, other)).first_break
    assert found is not None and (found.index, found.kind) == (3, BreakKind.WRONG_ISSUER)
    # Naming the issuer up front catches it at the first record.
    named = verify_log(TOKENS, verifier(SIGNER), issuer=OTHER).first_break
    assert named is not None and (named.index, named.kind) == (0, BreakKind.WRONG_ISSUER)


def test_a_signed_message_that_is_not_a_record_is_malformed() -> None:
    halt = Halt(
        id="h-1",
        sender=COORDINATOR,
        recipient=WORKER,
        iat=T0,
        recovery="r-1",
        trigger="sig-1",
        execution=ExecRef(agent=WORKER, exec="x"),
        created=T0,
    )
    for payload in (encode(halt), b'{"v":1,"type":"recovery-record"}', b"\xff"):
        found = verify_log([TOKENS[0], SIGNER.sign(payload)], VERIFIER).first_break
        assert found is not None and (found.index, found.kind) == (1, BreakKind.MALFORMED)


def test_a_repeated_record_id_is_refused() -> None:
    sealed = chain([record(0), record(1), dataclasses.replace(record(2), id="rec-0")], SIGNER)
    found = verify_log(tokens(sealed), VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (2, BreakKind.DUPLICATE_ID)


def test_supersedes_must_name_an_earlier_record_of_the_same_recovery() -> None:
    good = chain([record(0, recovery="r"), record(1, recovery="r", supersedes="rec-0")], SIGNER)
    assert verify_log(tokens(good), VERIFIER).ok
    unknown = chain([record(0), record(1, supersedes="rec-9")], SIGNER)
    found = verify_log(tokens(unknown), VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (1, BreakKind.BAD_SUPERSEDES)
    other = chain([record(0, recovery="a"), record(1, recovery="b", supersedes="rec-0")], SIGNER)
    found = verify_log(tokens(other), VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (1, BreakKind.BAD_SUPERSEDES)
    # From an anchor, records before it are not known and are not held against it.
    assert verify_log(tokens(unknown)[1:], VERIFIER, anchor=unknown[0].head).ok


def test_a_record_superseded_twice_is_a_fork() -> None:
    # draft §11.3: only the record no other supersedes is authoritative, so a
    # second record replacing the same one would leave two of them.
    line = [
        record(0, recovery="r"),
        record(1, recovery="r", supersedes="rec-0"),
        record(2, recovery="r", supersedes="rec-1"),
    ]
    assert verify_log(tokens(chain(line, SIGNER)), VERIFIER).ok
    fork = chain([*line[:2], record(2, recovery="r", supersedes="rec-0")], SIGNER)
    found = verify_log(tokens(fork), VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (2, BreakKind.BAD_SUPERSEDES)
    assert "already superseded by 'rec-1'" in found.detail
    # Also when the replaced record lies before the anchor of a suffix.
    suffix = tokens(fork)[1:]
    found = verify_log(suffix, VERIFIER, anchor=fork[0].head).first_break
    assert found is not None and (found.index, found.kind) == (1, BreakKind.BAD_SUPERSEDES)


def test_completed_with_a_failed_member_is_inconsistent() -> None:
    sealed = chain([record(0), record(1, outcome=Outcome.FAILED)], SIGNER)
    found = verify_log(tokens(sealed), VERIFIER).first_break
    assert found is not None and (found.index, found.kind) == (1, BreakKind.INCONSISTENT)
    partial = chain([record(0, outcome=Outcome.FAILED, result=RecordResult.PARTIAL)], SIGNER)
    assert verify_log(tokens(partial), VERIFIER).ok


def test_only_the_first_break_counts_and_the_rest_is_not_read() -> None:
    def entries() -> Iterator[bytes]:
        yield TOKENS[0]
        yield TOKENS[2]
        raise AssertionError("read past the first break")

    report = verify_log(entries(), VERIFIER)
    assert report.first_break is not None and report.first_break.index == 1
    checker = LogVerifier(VERIFIER)
    first = checker.feed(TOKENS[1])
    assert first is not None and checker.feed(TOKENS[0]) is first


# -- participant records (draft §11.4) -----------------------------------------------


def _rollback() -> Rollback:
    return Rollback(
        id="rb-1",
        sender=COORDINATOR,
        recipient=WORKER,
        iat=T0 + 10,
        recovery="r-1",
        trigger="sig-1",
        execution=ExecRef(agent=WORKER, exec="x"),
        target=2,
        action=Action.COMPENSATE,
        reason=Reason(kind=ReasonKind.ORIGIN),
    )


def _result(rollback: Rollback, outcome: Outcome, iat: int) -> RollbackResult:
    residual = (Residual(description="mail sent"),) if outcome is Outcome.FAILED else ()
    return RollbackResult(
        id="p-7",
        sender=WORKER,
        recipient=COORDINATOR,
        iat=iat,
        recovery=rollback.recovery,
        trigger=rollback.trigger,
        reply_to=rollback.id,
        execution=rollback.execution,
        outcome=outcome.value,
        checkpoint=2,
        residual=residual,
    )


def test_a_participant_record_holds_what_was_asked_and_answered() -> None:
    request = _rollback()
    rec = participant_record(
        id="p-8", request=request, result=_result(request, Outcome.FAILED, T0 + 20), created=T0
    )
    assert (rec.sender, rec.recipient) == (WORKER, COORDINATOR)
    assert (rec.created, rec.closed, rec.result) == (T0, T0 + 20, RecordResult.PARTIAL)
    (member,) = rec.members
    assert (member.target, member.action, member.outcome) == (2, Action.COMPENSATE, "failed")
    assert member.residual == (Residual(description="mail sent"),)
    worker = signer(WORKER, seed=3)
    assert verify_log([seal(rec, GENESIS, worker).token], verifier(worker)).ok


def test_a_participant_record_never_closes_before_it_was_created() -> None:
    # The halt's created comes from the coordinator's clock, which may run ahead.
    request = _rollback()
    rec = participant_record(
        id="p-8", request=request, result=_result(request, Outcome.RESTORED, T0), created=T0 + 99
    )
    assert rec.closed == rec.created == T0 + 99
    assert rec.result is RecordResult.COMPLETED


def test_a_participant_record_refuses_a_result_for_another_request() -> None:
    request = _rollback()
    result = dataclasses.replace(_result(request, Outcome.RESTORED, T0), reply_to="rb-2")
    with pytest.raises(LocalProtocolError) as info:
        participant_record(id="p-8", request=request, result=result, created=T0)
    assert info.value.code is ErrorCode.MALFORMED
