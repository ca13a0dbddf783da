"""The JWS profile of draft §9.1: exact bytes, an allowlist, and the key type decides."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery.security.jws import FORBIDDEN_HEADER_PARAMETERS, JWS_TYPE, Signer, Verifier
from agent_recovery.security.keys import (
    Algorithm,
    JwkSet,
    VerificationKey,
    b64url_decode,
    b64url_encode,
    public_jwk,
)

ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
EC_KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())
PAYLOAD = b'{"v":1,"type":"resume","id":"m-1"}'


def _signer(alg: Algorithm, kid: str = "k-1", owner: str = "agent-a") -> Signer:
    return Signer(ED_KEY if alg is Algorithm.EDDSA else EC_KEY, kid=kid, owner=owner)


def _verifier(*signers: Signer) -> Verifier:
    return Verifier(JwkSet([s.verification_key() for s in signers]))


def _token(header: dict[str, object], payload: bytes, signature: bytes) -> bytes:
    head = b64url_encode(json.dumps(header).encode())
    return f"{head}.{b64url_encode(payload)}.{b64url_encode(signature)}".encode()


def _ed_token(header: dict[str, object], payload: bytes = PAYLOAD) -> bytes:
    """A token over ``header`` with a *valid* Ed25519 signature: only the header is at fault."""
    head = b64url_encode(json.dumps(header).encode())
    signing_input = f"{head}.{b64url_encode(payload)}".encode()
    return signing_input + b"." + b64url_encode(ED_KEY.sign(signing_input)).encode()


def _refused(verifier: Verifier, token: bytes) -> ErrorCode:
    with pytest.raises(RemoteProtocolError) as info:
        verifier.verify(token)
    return info.value.code


GOOD_HEADER: dict[str, object] = {"alg": "EdDSA", "kid": "k-1", "typ": JWS_TYPE}


@pytest.mark.parametrize("alg", list(Algorithm))
def test_round_trip_returns_exact_bytes_kid_and_owner(alg: Algorithm) -> None:
    signer = _signer(alg)
    verified = _verifier(signer).verify(signer.sign(PAYLOAD))
    assert (verified.payload, verified.kid, verified.owner) == (PAYLOAD, "k-1", "agent-a")


@pytest.mark.parametrize("alg", list(Algorithm))
def test_signatures_are_deterministic(alg: Algorithm) -> None:
    # RFC 8032 for Ed25519, RFC 6979 for ES256: reproducible test vectors.
    assert _signer(alg).sign(PAYLOAD) == _signer(alg).sign(PAYLOAD)


def test_header_is_exactly_alg_kid_typ() -> None:
    head = _signer(Algorithm.EDDSA).sign(PAYLOAD).split(b".")[0]
    assert json.loads(b64url_decode(head)) == GOOD_HEADER


@given(st.binary(max_size=2048))
def test_any_payload_round_trips(payload: bytes) -> None:
    signer = _signer(Algorithm.EDDSA)
    assert _verifier(signer).verify(signer.sign(payload)).payload == payload


@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_the_typed_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        _verifier(_signer(Algorithm.EDDSA)).verify(data)


@pytest.mark.parametrize(
    "token",
    [PAYLOAD, b"", b"a.b", b"a.b.c.d", b"a.b.c.d.e"],
    ids=["plain-json", "empty", "two-parts", "four-parts", "jwe-five-parts"],
)
def test_not_a_compact_jws_is_unsigned(token: bytes) -> None:
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.UNSIGNED


def test_empty_signature_is_unsigned() -> None:
    token = _signer(Algorithm.EDDSA).sign(PAYLOAD)
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token.rsplit(b".", 1)[0] + b".") is (
        ErrorCode.UNSIGNED
    )


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "RS256", "PS256", "ES384", "ES256K", ""])
def test_algorithms_outside_the_allowlist(alg: str) -> None:
    token = _ed_token({**GOOD_HEADER, "alg": alg})
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.ALG_NOT_ALLOWED


@pytest.mark.parametrize("alg", [None, 1, ["EdDSA"]])
def test_missing_or_non_text_alg(alg: object) -> None:
    header: dict[str, object] = {k: v for k, v in GOOD_HEADER.items() if k != "alg"}
    if alg is not None:
        header["alg"] = alg
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), _ed_token(header)) is (
        ErrorCode.ALG_NOT_ALLOWED
    )


def test_alg_none_with_empty_signature() -> None:
    token = _token({**GOOD_HEADER, "alg": "none"}, PAYLOAD, b"")
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.ALG_NOT_ALLOWED


@pytest.mark.parametrize("alg", list(Algorithm))
def test_hmac_with_the_public_key_as_secret(alg: Algorithm) -> None:
    # The classic confusion: a verifier that let the header pick HMAC would
    # accept this, since the "secret" is public.
    signer = _signer(alg)
    secret = json.dumps(public_jwk(signer.verification_key().public_key)).encode()
    head = b64url_encode(json.dumps({**GOOD_HEADER, "alg": "HS256"}).encode())
    signing_input = f"{head}.{b64url_encode(PAYLOAD)}".encode()
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    token = signing_input + b"." + b64url_encode(mac).encode()
    assert _refused(_verifier(signer), token) is ErrorCode.ALG_NOT_ALLOWED


def test_es256_header_on_an_ed25519_key_is_refused_by_key_type() -> None:
    token = _ed_token({**GOOD_HEADER, "alg": "ES256"})
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.ALG_NOT_ALLOWED


def test_eddsa_header_on_a_p256_key_is_refused_by_key_type() -> None:
    es = _signer(Algorithm.ES256)
    _head, body, sig = es.sign(PAYLOAD).split(b".")
    forged_head = b64url_encode(json.dumps({**GOOD_HEADER, "alg": "EdDSA"}).encode()).encode()
    assert _refused(_verifier(es), b".".join([forged_head, body, sig])) is (
        ErrorCode.ALG_NOT_ALLOWED
    )


def test_unknown_kid() -> None:
    token = _signer(Algorithm.EDDSA, kid="k-other").sign(PAYLOAD)
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.UNKNOWN_KEY


@pytest.mark.parametrize("kid", [None, "", 7])
def test_kid_is_required(kid: object) -> None:
    header: dict[str, object] = {k: v for k, v in GOOD_HEADER.items() if k != "kid"}
    if kid is not None:
        header["kid"] = kid
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), _ed_token(header)) is ErrorCode.MALFORMED


@pytest.mark.parametrize("name", sorted(FORBIDDEN_HEADER_PARAMETERS))
def test_forbidden_header_parameters(name: str) -> None:
    value: object = False if name == "b64" else ["exp"] if name == "crit" else "x"
    if name == "jwk":  # the attacker's own key, offered in the header
        value = {**public_jwk(ED_KEY.public_key()), "kid": "k-1"}
    token = _ed_token({**GOOD_HEADER, name: value})
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.MALFORMED


@pytest.mark.parametrize("typ", [None, "JWT", "wimse-exec+jwt", "agent-recovery+json", 3])
def test_typ_must_name_this_protocol(typ: object) -> None:
    header: dict[str, object] = {k: v for k, v in GOOD_HEADER.items() if k != "typ"}
    if typ is not None:
        header["typ"] = typ
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), _ed_token(header)) is ErrorCode.MALFORMED


@pytest.mark.parametrize("typ", ["application/agent-recovery+jws", "Agent-Recovery+JWS"])
def test_typ_spellings_of_rfc7515(typ: str) -> None:
    verified = _verifier(_signer(Algorithm.EDDSA)).verify(_ed_token({**GOOD_HEADER, "typ": typ}))
    assert verified.payload == PAYLOAD


def test_unknown_header_parameters_are_ignored() -> None:
    token = _ed_token({**GOOD_HEADER, "x-extra": 1})
    assert _verifier(_signer(Algorithm.EDDSA)).verify(token).payload == PAYLOAD


def test_duplicate_header_parameter() -> None:
    head = b64url_encode(b'{"alg":"EdDSA","kid":"k-1","typ":"agent-recovery+jws","kid":"k-2"}')
    signing_input = f"{head}.{b64url_encode(PAYLOAD)}".encode()
    token = signing_input + b"." + b64url_encode(ED_KEY.sign(signing_input)).encode()
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.MALFORMED


@pytest.mark.parametrize("header", [b"[]", b"not json", b'"x"', b"\xff\xfe", b"[" * 5000])
def test_header_that_is_not_a_json_object(header: bytes) -> None:
    signing_input = f"{b64url_encode(header)}.{b64url_encode(PAYLOAD)}".encode()
    token = signing_input + b"." + b64url_encode(ED_KEY.sign(signing_input)).encode()
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.MALFORMED


@pytest.mark.parametrize("alg", list(Algorithm))
@pytest.mark.parametrize("part", [0, 1, 2])
def test_any_flipped_bit_breaks_the_signature(alg: Algorithm, part: int) -> None:
    signer = _signer(alg)
    parts = signer.sign(PAYLOAD).split(b".")
    raw = bytearray(b64url_decode(parts[part]))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = b64url_encode(bytes(raw)).encode()
    code = _refused(_verifier(signer), b".".join(parts))
    # A flipped header bit may break the header itself first; refused either way.
    if part:
        assert code is ErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize("alg", list(Algorithm))
def test_right_kid_wrong_key(alg: Algorithm) -> None:
    other = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32))
    if alg is Algorithm.ES256:
        forger = Signer(ec.derive_private_key(99, ec.SECP256R1()), kid="k-1", owner="agent-a")
    else:
        forger = Signer(other, kid="k-1", owner="agent-a")
    token = forger.sign(PAYLOAD)
    assert _refused(_verifier(_signer(alg)), token) is ErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize("length", [1, 63, 65, 128])
def test_signature_of_the_wrong_length(length: int) -> None:
    head, body, _ = _signer(Algorithm.EDDSA).sign(PAYLOAD).split(b".")
    token = head + b"." + body + b"." + b64url_encode(b"\x01" * length).encode()
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize("mutation", [b"=", b"+", b"/", b" ", b"\n", b"*"])
def test_base64url_is_strict(mutation: bytes) -> None:
    head, body, sig = _signer(Algorithm.EDDSA).sign(PAYLOAD).split(b".")
    token = head + b"." + body + mutation + b"." + sig
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) in {
        ErrorCode.MALFORMED,
        ErrorCode.BAD_SIGNATURE,
    }
    # The payload is never decoded before its signature verified.
    token = head + mutation + b"." + body + b"." + sig
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.MALFORMED


def test_padding_in_the_signature_segment_is_malformed() -> None:
    token = _signer(Algorithm.EDDSA).sign(PAYLOAD) + b"=="
    assert _refused(_verifier(_signer(Algorithm.EDDSA)), token) is ErrorCode.MALFORMED


def test_key_lookup_happens_for_every_message() -> None:
    signer = _signer(Algorithm.EDDSA)
    keyset = JwkSet([signer.verification_key()])
    verifier = Verifier(keyset)
    verifier.verify(signer.sign(PAYLOAD))  # header now cached
    verifier.resolver = JwkSet()  # the key was withdrawn
    assert _refused(verifier, signer.sign(PAYLOAD)) is ErrorCode.UNKNOWN_KEY


def test_failed_messages_do_not_grow_the_header_cache() -> None:
    verifier = _verifier(_signer(Algorithm.EDDSA))
    for i in range(300):
        head = b64url_encode(json.dumps({**GOOD_HEADER, "n": i}).encode())
        token = f"{head}.{b64url_encode(PAYLOAD)}.{b64url_encode(bytes(64))}".encode()
        assert _refused(verifier, token) is ErrorCode.BAD_SIGNATURE
    assert verifier._headers == {}


def test_owner_comes_from_the_key_binding_not_the_message() -> None:
    signer = Signer(ED_KEY, kid="k-1", owner="agent-a")
    keyset = JwkSet([VerificationKey(kid="k-1", owner="agent-b", public_key=ED_KEY.public_key())])
    assert Verifier(keyset).verify(signer.sign(PAYLOAD)).owner == "agent-b"


def _with_trailing_bits(segment: bytes) -> bytes:
    """The same bytes, spelled with a non-zero unused bit in the last character."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(segment) % 4 in (2, 3)
    last = alphabet.index(segment[-1:])
    return segment[:-1] + alphabet[last | 1 : (last | 1) + 1]


def test_a_signature_has_one_encoding_only() -> None:
    # RFC 4648 §3.5: a 64-byte signature is 86 characters whose last one has
    # four unused bits.  Setting one decodes to the same signature, which
    # would give one signed message a second spelling (draft §9.3 replay).
    signer = _signer(Algorithm.EDDSA)
    head, body, sig = signer.sign(PAYLOAD).split(b".")
    token = head + b"." + body + b"." + _with_trailing_bits(sig)
    assert _refused(_verifier(signer), token) is ErrorCode.MALFORMED
    # The canonical spelling still verifies.
    assert _verifier(signer).verify(head + b"." + body + b"." + sig).payload == PAYLOAD


@pytest.mark.parametrize("data", [b"\x00", b"\x00\x01", b"\xff" * 5])
def test_b64url_decode_refuses_non_canonical_spellings(data: bytes) -> None:
    text = b64url_encode(data).encode()
    assert b64url_decode(text) == data
    with pytest.raises(ValueError, match="canonical"):
        b64url_decode(_with_trailing_bits(text))
