"""JWS compact serialization over the exact message bytes (draft §9.1, RFC 7515).

Every message travels as ``BASE64URL(header) '.' BASE64URL(message bytes) '.'
BASE64URL(signature)``. The signature covers the encoded message exactly as
sent, so no canonicalization is needed and a receiver verifies the bytes it
will decode. The profile is deliberately narrow:

- ``alg`` is ``EdDSA`` (Ed25519, mandatory to implement) or ``ES256``; nothing
  else, and the *key's* type must match it (the header never chooses how a key
  is used: this is what defeats ``none`` and HS256-with-a-public-key).
- ``kid`` is required; the key comes only from the receiver's
  :class:`~agent_recovery.security.keys.KeyResolver`, never from the message, so
  ``jwk``, ``jku``, ``x5u`` and ``x5c`` are refused, as are ``crit`` and
  ``b64`` (RFC 7797: unencoded payloads would reopen canonicalization).
- ``typ`` is ``agent-recovery+jws``, so a token signed for another protocol
  with the same key (a JWT, an ECT) is not accepted as a message.

Refusals raise :class:`RemoteProtocolError` with the draft §10 code and change
no state. Signature arithmetic is pyca/cryptography's; only the compact form is
parsed here.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .keys import (
    Algorithm,
    KeyResolver,
    PrivateKey,
    VerificationKey,
    algorithm_of,
    b64url_encode,
    parse_private_jwk,
)

__all__ = [
    "FORBIDDEN_HEADER_PARAMETERS",
    "JWS_TYPE",
    "Signer",
    "Verified",
    "Verifier",
]

JWS_TYPE: Final = "agent-recovery+jws"
# draft §9.1: no key material, no extensions, no unencoded payloads.
FORBIDDEN_HEADER_PARAMETERS: Final = frozenset({"crit", "jku", "jwk", "x5u", "x5c", "b64"})
_ALGORITHMS: Final = {a.value: a for a in Algorithm}
_SIGNATURE_LEN: Final = 64  # Ed25519, and ES256 as R || S (RFC 7518 §3.4)
_ECDSA: Final = ec.ECDSA(hashes.SHA256())
_ECDSA_DETERMINISTIC: Final = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
# Parsed headers are cached by their encoded form, which is the same for every
# message a given key signs.  Only headers of verified messages are cached and
# the cache never grows past this size, so a flood of junk cannot grow it.
_HEADER_CACHE_MAX: Final = 256
_TO_STANDARD: Final = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING: Final = (b"", b"", b"==", b"=")
# RFC 4648 §3.5: the bits of the last character beyond the data must be zero.
# Without this check "AB" and "AC" would decode to the same byte, so one signed
# message would have several encodings; the bit mask is indexed by len % 4.
_TRAILING_MASK: Final = (0, 0, 0x0F, 0x03)
_B64URL_VALUE: Final = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}


def _refuse(code: ErrorCode, detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(code, detail)


def _b64d(segment: bytes, what: str) -> bytes:
    # Strict base64url without padding (RFC 7515 §2), in one pass: the table
    # maps '-' and '_' to the standard alphabet and the standard alphabet's own
    # '+', '/' and '=' to a character that binascii's strict mode rejects.
    rest = len(segment) % 4
    if rest == 1:
        raise _refuse(ErrorCode.MALFORMED, f"JWS {what} is not base64url")
    if rest and _B64URL_VALUE.get(segment[-1], 0) & _TRAILING_MASK[rest]:
        raise _refuse(ErrorCode.MALFORMED, f"JWS {what} is not canonical base64url")
    try:
        return binascii.a2b_base64(
            segment.translate(_TO_STANDARD) + _PADDING[rest], strict_mode=True
        )
    except binascii.Error:
        raise _refuse(ErrorCode.MALFORMED, f"JWS {what} is not base64url") from None


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # RFC 7515 §4: header parameter names must be unique; we reject duplicates.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _refuse(ErrorCode.MALFORMED, "JWS header has a duplicate parameter")
    return result


def _parse_header(segment: bytes, types: frozenset[str]) -> tuple[Algorithm, str]:
    raw = _b64d(segment, "header")
    try:
        header = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _refuse(ErrorCode.MALFORMED, "JWS header is not JSON") from None
    if not isinstance(header, dict):
        raise _refuse(ErrorCode.MALFORMED, "JWS header is not a JSON object")
    forbidden = FORBIDDEN_HEADER_PARAMETERS.intersection(header)
    if forbidden:
        raise _refuse(ErrorCode.MALFORMED, f"JWS header parameter {min(forbidden)!r} not allowed")
    alg = header.get("alg")
    algorithm = _ALGORITHMS.get(alg) if isinstance(alg, str) else None
    if algorithm is None:
        raise _refuse(ErrorCode.ALG_NOT_ALLOWED, f"JWS alg {alg!r} is not allowed")
    typ = header.get("typ")
    # RFC 7515 §4.1.9: media type names compare case-insensitively.
    if not isinstance(typ, str) or typ.lower() not in types:
        raise _refuse(ErrorCode.MALFORMED, f"JWS typ must be {min(types)!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse(ErrorCode.MALFORMED, "JWS header has no kid")
    return algorithm, kid


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """A verified message: its exact bytes, the key that signed it, and whose key it is."""

    payload: bytes
    kid: str
    owner: str


class Verifier:
    """Verifies compact JWS messages against keys from a :class:`KeyResolver`."""

    __slots__ = ("_headers", "_types", "resolver")

    def __init__(self, resolver: KeyResolver, *, typ: str = JWS_TYPE) -> None:
        self.resolver = resolver
        # RFC 7515 §4.1.9: "application/" may be omitted; compared case-insensitively.
        self._types = frozenset({typ.lower(), "application/" + typ.lower()})
        self._headers: dict[bytes, tuple[Algorithm, str]] = {}

    def verify(self, token: bytes) -> Verified:
        """Return the verified payload, or raise :class:`RemoteProtocolError`.

        Check order (draft §9.1): structure, header, key lookup, key type
        against ``alg``, signature. Nothing is decoded from the payload before
        its signature has been checked.
        """
        parts = token.split(b".")
        if len(parts) != 3:
            raise _refuse(ErrorCode.UNSIGNED, "not a JWS compact serialization")
        head, body, signature_b64 = parts
        cached = self._headers.get(head)
        algorithm, kid = cached if cached is not None else _parse_header(head, self._types)
        key = self.resolver.resolve(kid)
        if key is None:
            raise _refuse(ErrorCode.UNKNOWN_KEY, f"no key {kid!r}")
        if key.alg is not algorithm:
            # The key's type decides (draft §9.1): an Ed25519 key is never
            # used for ES256 and vice versa, whatever the header says.
            raise _refuse(ErrorCode.ALG_NOT_ALLOWED, f"key {kid!r} is not an {algorithm} key")
        if not signature_b64:
            raise _refuse(ErrorCode.UNSIGNED, "empty JWS signature")
        signature = _b64d(signature_b64, "signature")
        signing_input = token[: len(head) + 1 + len(body)]
        if not _check_signature(key, signature, signing_input):
            raise _refuse(ErrorCode.BAD_SIGNATURE, f"signature does not verify with {kid!r}")
        if cached is None and len(self._headers) < _HEADER_CACHE_MAX:
            self._headers[head] = (algorithm, kid)
        return Verified(payload=_b64d(body, "payload"), kid=kid, owner=key.owner)


def _check_signature(key: VerificationKey, signature: bytes, data: bytes) -> bool:
    if len(signature) != _SIGNATURE_LEN:
        return False
    public = key.public_key
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        else:
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            public.verify(encode_dss_signature(r, s), data, _ECDSA)
    except InvalidSignature:
        return False
    return True


class Signer:
    """Signs message bytes as compact JWS with one private key (draft §9.1).

    ES256 signatures are deterministic (RFC 6979), so a signer's output is a
    pure function of its key and the message, like Ed25519's.
    """

    __slots__ = ("_head", "_key", "alg", "kid", "owner", "typ")

    def __init__(
        self, private_key: PrivateKey, *, kid: str, owner: str, typ: str = JWS_TYPE
    ) -> None:
        self.alg = algorithm_of(private_key)
        # Constructing the verification key validates kid and owner.
        VerificationKey(kid=kid, owner=owner, public_key=private_key.public_key())
        self._key = private_key
        self.kid = kid
        self.owner = owner
        self.typ = typ
        header = {"alg": self.alg.value, "kid": kid, "typ": typ}
        self._head = b64url_encode(json.dumps(header, separators=(",", ":")).encode()).encode()

    @classmethod
    def from_jwk(cls, jwk: dict[str, object], *, typ: str = JWS_TYPE) -> Signer:
        private, kid, owner = parse_private_jwk(jwk)
        return cls(private, kid=kid, owner=owner, typ=typ)

    @classmethod
    def from_file(cls, path: str | Path, *, typ: str = JWS_TYPE) -> Signer:
        try:
            jwk = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LocalProtocolError(ErrorCode.MALFORMED, f"private JWK {path}: {exc}") from exc
        if not isinstance(jwk, dict):
            raise LocalProtocolError(ErrorCode.MALFORMED, f"private JWK {path}: not an object")
        return cls.from_jwk(jwk, typ=typ)

    def verification_key(self) -> VerificationKey:
        return VerificationKey(kid=self.kid, owner=self.owner, public_key=self._key.public_key())

    def sign(self, payload: bytes) -> bytes:
        """Return the compact JWS of ``payload``, which is signed as is."""
        signing_input = self._head + b"." + b64url_encode(payload).encode()
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            signature = key.sign(signing_input)
        else:
            r, s = decode_dss_signature(key.sign(signing_input, _ECDSA_DETERMINISTIC))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input + b"." + b64url_encode(signature).encode()
