"""Keys: JWK parsing, the key-resolution interface, and a static JWK set (draft §9.1).

This document does not define identity. What a deployment must supply is a
*binding* from a key id (`kid`) to a public key and to the agent id that key
speaks for; :class:`KeyResolver` is that interface. :class:`JwkSet` is the
simplest implementation: a JWK set (RFC 7517 §5) read from a file, where each
member names its owning agent in the member ``"sub"``. A WIMSE workload-identity
resolver or an X.509 one implements the same two-line protocol (see
``docs/draft-text/security.md``).

The *key type* decides the algorithm (draft §9.1): an Ed25519 key verifies only
``EdDSA`` and a P-256 key only ``ES256``, whatever a JWS header claims, so a
header can never make a key be used with another algorithm. Keys of any other
type are refused when a key set is loaded, not when a message arrives.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .._errors import ErrorCode, LocalProtocolError
from .._model import check_identifier

__all__ = [
    "OWNER_MEMBER",
    "Algorithm",
    "JwkSet",
    "KeyResolver",
    "PrivateKey",
    "PublicKey",
    "VerificationKey",
    "algorithm_of",
    "b64url_decode",
    "b64url_encode",
    "generate_private_jwk",
    "load_jwk_set",
    "parse_private_jwk",
    "parse_public_jwk",
    "public_jwk",
]

PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

# The owning agent id of a key in a JWK set (not a registered JWK parameter;
# RFC 7517 §4 says members an implementation does not understand are ignored).
OWNER_MEMBER = "sub"

_B64URL = re.compile(rb"[A-Za-z0-9_-]*")
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_P256_COORD_LEN = 32


class Algorithm(enum.StrEnum):
    """The JWS algorithms this protocol allows, and no others (draft §9.1)."""

    EDDSA = "EdDSA"  # RFC 8037; Ed25519 only.  Mandatory to implement.
    ES256 = "ES256"  # RFC 7518 §3.4; ECDSA P-256 with SHA-256.


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); raise ``ValueError`` otherwise."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    if _B64URL.fullmatch(raw) is None or len(raw) % 4 == 1:
        raise ValueError("not base64url")
    # RFC 4648 §3.5: the unused low bits of the last character must be zero,
    # so that every byte string has exactly one encoding.
    if len(raw) % 4 and _B64URL_ALPHABET.index(raw[-1]) & (0x0F if len(raw) % 4 == 2 else 0x03):
        raise ValueError("not canonical base64url")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise ValueError("not base64url") from exc


def algorithm_of(key: PublicKey | PrivateKey) -> Algorithm:
    """The one algorithm a key may be used with; its type decides (draft §9.1)."""
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return Algorithm.EDDSA
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return Algorithm.ES256
    raise LocalProtocolError(ErrorCode.ALG_NOT_ALLOWED, "only Ed25519 and P-256 keys are allowed")


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationKey:
    """A public key, its key id, and the agent id it speaks for.

    ``alg`` is derived from the key's type and cannot be set independently.
    """

    kid: str
    owner: str
    public_key: PublicKey

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not self.kid:
            raise LocalProtocolError(ErrorCode.MALFORMED, "kid: must be a non-empty string")
        check_identifier(self.owner, "key owner")
        algorithm_of(self.public_key)

    @property
    def alg(self) -> Algorithm:
        return algorithm_of(self.public_key)


class KeyResolver(Protocol):
    """Maps a key id to a verification key bound to an agent id, or ``None``.

    The binding of keys to agent identities belongs to the deployment (draft
    §9.1): a JWK set, a workload identity system, a certificate store. A resolver
    MUST NOT derive a key from anything carried in the message itself.
    """

    def resolve(self, kid: str) -> VerificationKey | None: ...


def _field(jwk: Mapping[str, object], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise LocalProtocolError(ErrorCode.MALFORMED, f"JWK: member {name!r} missing or not text")
    return value


def _b64field(jwk: Mapping[str, object], name: str, length: int) -> bytes:
    try:
        raw = b64url_decode(_field(jwk, name))
    except ValueError:
        raise LocalProtocolError(ErrorCode.MALFORMED, f"JWK: {name!r} is not base64url") from None
    if len(raw) != length:
        raise LocalProtocolError(ErrorCode.MALFORMED, f"JWK: {name!r} must be {length} octets")
    return raw


def _check_usage(jwk: Mapping[str, object], operation: str) -> None:
    # RFC 7517 §4.2, §4.3: a key restricted to other uses is not a signing key.
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise LocalProtocolError(ErrorCode.MALFORMED, "JWK: 'use' is not 'sig'")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or operation not in ops):
        raise LocalProtocolError(ErrorCode.MALFORMED, f"JWK: 'key_ops' lacks {operation!r}")


def _check_declared_alg(jwk: Mapping[str, object], actual: Algorithm) -> None:
    declared = jwk.get("alg")
    if declared is not None and declared != actual.value:
        raise LocalProtocolError(
            ErrorCode.ALG_NOT_ALLOWED, f"JWK: 'alg' {declared!r} does not fit a {actual} key"
        )


def _public_from(jwk: Mapping[str, object]) -> PublicKey:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64field(jwk, "x", 32))
    if kty == "EC" and crv == "P-256":
        x = int.from_bytes(_b64field(jwk, "x", _P256_COORD_LEN), "big")
        y = int.from_bytes(_b64field(jwk, "y", _P256_COORD_LEN), "big")
        try:  # rejects points that are not on the curve
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            raise LocalProtocolError(ErrorCode.MALFORMED, "JWK: point not on P-256") from None
    raise LocalProtocolError(
        ErrorCode.ALG_NOT_ALLOWED, f"JWK: key type {kty!r}/{crv!r} is not allowed"
    )


def parse_public_jwk(jwk: Mapping[str, object], *, owner: str | None = None) -> VerificationKey:
    """Build a :class:`VerificationKey` from a public JWK (RFC 7517, RFC 8037).

    The owner is ``owner`` if given, else the JWK's ``"sub"`` member. A JWK
    carrying private material (``"d"``) is refused: a verification key set
    that holds private keys is a deployment error worth stopping for.
    """
    if "d" in jwk:
        raise LocalProtocolError(ErrorCode.MALFORMED, "JWK: a public key set holds a private key")
    _check_usage(jwk, "verify")
    key = _public_from(jwk)
    _check_declared_alg(jwk, algorithm_of(key))
    return VerificationKey(
        kid=_field(jwk, "kid"),
        owner=owner if owner is not None else _field(jwk, OWNER_MEMBER),
        public_key=key,
    )


def parse_private_jwk(jwk: Mapping[str, object]) -> tuple[PrivateKey, str, str]:
    """Return (private key, kid, owner) from a private JWK; the public part must match."""
    _check_usage(jwk, "sign")
    public = _public_from(jwk)
    private: PrivateKey
    if isinstance(public, ed25519.Ed25519PublicKey):
        private = ed25519.Ed25519PrivateKey.from_private_bytes(_b64field(jwk, "d", 32))
    else:
        scalar = int.from_bytes(_b64field(jwk, "d", _P256_COORD_LEN), "big")
        try:
            private = ec.derive_private_key(scalar, ec.SECP256R1())
        except ValueError:
            raise LocalProtocolError(ErrorCode.MALFORMED, "JWK: 'd' out of range") from None
    if public_jwk(private.public_key()) != public_jwk(public):
        raise LocalProtocolError(ErrorCode.MALFORMED, "JWK: 'd' does not match the public key")
    _check_declared_alg(jwk, algorithm_of(private))
    return private, _field(jwk, "kid"), check_identifier(_field(jwk, OWNER_MEMBER), "key owner")


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The public JWK members of ``key`` (no kid, no owner)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    algorithm_of(key)  # refuses curves other than P-256
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(_P256_COORD_LEN, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_P256_COORD_LEN, "big")),
    }


def generate_private_jwk(*, kid: str, owner: str, alg: Algorithm) -> dict[str, str]:
    """A fresh private signing JWK (with ``kid``, ``sub`` and ``alg``)."""
    check_identifier(owner, "key owner")
    private: PrivateKey
    if alg is Algorithm.EDDSA:
        private = ed25519.Ed25519PrivateKey.generate()
        d = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        d = private.private_numbers().private_value.to_bytes(_P256_COORD_LEN, "big")
    return {
        **public_jwk(private.public_key()),
        "d": b64url_encode(d),
        "kid": kid,
        OWNER_MEMBER: owner,
        "alg": alg.value,
        "use": "sig",
    }


class JwkSet:
    """A static :class:`KeyResolver` over a JWK set (RFC 7517 §5).

    Key ids are unique within the set; a duplicate makes the whole set invalid
    rather than letting file order decide which key wins.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[VerificationKey] = ()) -> None:
        self._keys: dict[str, VerificationKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise LocalProtocolError(ErrorCode.MALFORMED, f"JWK set: duplicate kid {key.kid!r}")
            self._keys[key.kid] = key

    @classmethod
    def from_json(cls, document: Mapping[str, object]) -> JwkSet:
        members = document.get("keys")
        if not isinstance(members, list):
            raise LocalProtocolError(ErrorCode.MALFORMED, "JWK set: 'keys' is not an array")
        keys: list[VerificationKey] = []
        for member in members:
            if not isinstance(member, dict):
                raise LocalProtocolError(ErrorCode.MALFORMED, "JWK set: member is not an object")
            keys.append(parse_public_jwk(member))
        return cls(keys)

    def resolve(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)

    def __iter__(self) -> Iterator[VerificationKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def to_json(self) -> dict[str, list[dict[str, str]]]:
        return {
            "keys": [
                {**public_jwk(k.public_key), "kid": k.kid, OWNER_MEMBER: k.owner, "alg": k.alg}
                for k in self._keys.values()
            ]
        }


def load_jwk_set(path: str | Path) -> JwkSet:
    """Read a JWK set file (``application/jwk-set+json``)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LocalProtocolError(ErrorCode.MALFORMED, f"JWK set {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise LocalProtocolError(ErrorCode.MALFORMED, f"JWK set {path}: not a JSON object")
    return JwkSet.from_json(document)
