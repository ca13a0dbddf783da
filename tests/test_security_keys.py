"""Key resolution (draft §9.1): JWK parsing, the static JWK set, and ``agent-recovery keys``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from agent_recovery import cli
from agent_recovery._errors import ErrorCode, LocalProtocolError
from agent_recovery.security.jws import Signer, Verifier
from agent_recovery.security.keys import (
    Algorithm,
    JwkSet,
    VerificationKey,
    b64url_decode,
    b64url_encode,
    generate_private_jwk,
    load_jwk_set,
    parse_private_jwk,
    parse_public_jwk,
    public_jwk,
)


def _public(jwk: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in jwk.items() if k != "d"}


def _code(exc: pytest.ExceptionInfo[LocalProtocolError]) -> ErrorCode:
    return exc.value.code


@pytest.mark.parametrize("alg", list(Algorithm))
def test_generated_key_signs_and_its_public_half_verifies(alg: Algorithm) -> None:
    jwk = generate_private_jwk(kid="k", owner="spiffe://example.org/planner", alg=alg)
    signer = Signer.from_jwk(dict(jwk))
    key = parse_public_jwk(_public(jwk))
    assert (key.kid, key.owner, key.alg, signer.alg) == (
        "k",
        "spiffe://example.org/planner",
        alg,
        alg,
    )
    assert Verifier(JwkSet([key])).verify(signer.sign(b"x")).payload == b"x"


@pytest.mark.parametrize("alg", list(Algorithm))
def test_private_jwk_round_trip(alg: Algorithm) -> None:
    jwk = generate_private_jwk(kid="k", owner="a", alg=alg)
    private, kid, owner = parse_private_jwk(jwk)
    assert (kid, owner) == ("k", "a")
    assert public_jwk(private.public_key()) == {
        k: v for k, v in jwk.items() if k in {"kty", "crv", "x", "y"}
    }


def test_public_set_must_not_hold_private_keys() -> None:
    jwk = generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA)
    with pytest.raises(LocalProtocolError) as info:
        parse_public_jwk(jwk)
    assert _code(info) is ErrorCode.MALFORMED


def test_private_half_must_match_public_half() -> None:
    jwk = generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA)
    other = generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA)
    with pytest.raises(LocalProtocolError):
        parse_private_jwk({**jwk, "d": other["d"]})


@pytest.mark.parametrize(
    "change",
    [
        {"kty": "RSA"},
        {"crv": "X25519"},
        {"crv": "P-384"},
        {"kty": "oct"},
    ],
)
def test_only_ed25519_and_p256_keys(change: dict[str, str]) -> None:
    jwk = _public(generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA))
    with pytest.raises(LocalProtocolError) as info:
        parse_public_jwk({**jwk, **change})
    assert _code(info) is ErrorCode.ALG_NOT_ALLOWED


def test_declared_alg_must_fit_the_key_type() -> None:
    jwk = _public(generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA))
    with pytest.raises(LocalProtocolError) as info:
        parse_public_jwk({**jwk, "alg": "ES256"})
    assert _code(info) is ErrorCode.ALG_NOT_ALLOWED
    with pytest.raises(LocalProtocolError):
        parse_public_jwk({**jwk, "alg": "HS256"})


@pytest.mark.parametrize(
    "change",
    [{"use": "enc"}, {"key_ops": ["encrypt"]}, {"key_ops": "verify"}],
)
def test_key_restricted_to_other_uses(change: dict[str, object]) -> None:
    jwk = _public(generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA))
    with pytest.raises(LocalProtocolError):
        parse_public_jwk({**jwk, **change})


def test_p256_point_must_be_on_the_curve() -> None:
    jwk = _public(generate_private_jwk(kid="k", owner="a", alg=Algorithm.ES256))
    y = bytearray(b64url_decode(jwk["y"]))
    y[-1] ^= 1
    with pytest.raises(LocalProtocolError) as info:
        parse_public_jwk({**jwk, "y": b64url_encode(bytes(y))})
    assert _code(info) is ErrorCode.MALFORMED


@pytest.mark.parametrize(
    "change",
    [{"x": "AAAA"}, {"x": "not*base64"}, {"kid": ""}, {"sub": "has space"}, {"sub": ""}],
)
def test_malformed_members(change: dict[str, str]) -> None:
    jwk = _public(generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA))
    with pytest.raises(LocalProtocolError) as info:
        parse_public_jwk({**jwk, **change})
    assert _code(info) is ErrorCode.MALFORMED


def test_missing_owner_is_malformed() -> None:
    jwk = _public(generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA))
    del jwk["sub"]
    with pytest.raises(LocalProtocolError):
        parse_public_jwk(jwk)
    assert parse_public_jwk(jwk, owner="b").owner == "b"


def test_duplicate_kid_makes_the_set_invalid() -> None:
    a = _public(generate_private_jwk(kid="k", owner="a", alg=Algorithm.EDDSA))
    b = _public(generate_private_jwk(kid="k", owner="b", alg=Algorithm.EDDSA))
    with pytest.raises(LocalProtocolError):
        JwkSet.from_json({"keys": [a, b]})


@pytest.mark.parametrize("document", [{}, {"keys": {}}, {"keys": ["x"]}])
def test_malformed_sets(document: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        JwkSet.from_json(document)


def test_set_file_round_trip(tmp_path: Path) -> None:
    keys = [
        parse_public_jwk(_public(generate_private_jwk(kid=f"k{i}", owner=f"a{i}", alg=alg)))
        for i, alg in enumerate(Algorithm)
    ]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(JwkSet(keys).to_json()))
    loaded = load_jwk_set(path)
    assert [(k.kid, k.owner, k.alg) for k in loaded] == [(k.kid, k.owner, k.alg) for k in keys]
    assert len(loaded) == 2
    assert loaded.resolve("nope") is None


@pytest.mark.parametrize("content", ["not json", "[]", '{"keys": 1}'])
def test_unreadable_set_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content)
    with pytest.raises(LocalProtocolError):
        load_jwk_set(path)
    with pytest.raises(LocalProtocolError):
        load_jwk_set(tmp_path / "missing.json")


def test_verification_key_refuses_other_key_types() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(LocalProtocolError):
        VerificationKey(kid="k", owner="a", public_key=rsa_key)  # type: ignore[arg-type]
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(LocalProtocolError):
        VerificationKey(kid="k", owner="a", public_key=p384)
    with pytest.raises(LocalProtocolError):
        Signer(ec.generate_private_key(ec.SECP384R1()), kid="k", owner="a")
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(LocalProtocolError):
        VerificationKey(kid="", owner="a", public_key=ed)


def test_signer_from_file(tmp_path: Path) -> None:
    path = tmp_path / "k.jwk"
    path.write_text(json.dumps(generate_private_jwk(kid="k", owner="a", alg=Algorithm.ES256)))
    assert Signer.from_file(path).alg is Algorithm.ES256
    path.write_text("[]")
    with pytest.raises(LocalProtocolError):
        Signer.from_file(path)
    with pytest.raises(LocalProtocolError):
        Signer.from_file(tmp_path / "missing.jwk")


def test_cli_generates_keys_into_one_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["keys", "generate", "--out", str(tmp_path)]
    assert cli.main([*base, "--kid", "k1", "--alg", "EdDSA", "--owner", "agent-a"]) == 0
    assert cli.main([*base, "--kid", "k2", "--alg", "ES256"]) == 0
    keyset = load_jwk_set(tmp_path / "jwks.json")
    assert [(k.kid, k.owner, k.alg) for k in keyset] == [
        ("k1", "agent-a", Algorithm.EDDSA),
        ("k2", "k2", Algorithm.ES256),
    ]
    private = tmp_path / "k1.jwk"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    signer = Signer.from_file(private)
    assert Verifier(keyset).verify(signer.sign(b"m")).owner == "agent-a"
    capsys.readouterr()


def test_cli_never_overwrites_or_reuses_a_kid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["keys", "generate", "--kid", "k1", "--alg", "EdDSA", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    before = (tmp_path / "k1.jwk").read_bytes(), (tmp_path / "jwks.json").read_bytes()
    assert cli.main(args) == 1
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    assert cli.main(args) == 1  # the private key file exists
    assert (tmp_path / "k1.jwk").read_bytes() == before[0]
    assert "error" in capsys.readouterr().err


def test_cli_reports_a_broken_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "jwks.json").write_text("nope")
    args = ["keys", "generate", "--kid", "k1", "--alg", "EdDSA", "--out", str(tmp_path)]
    assert cli.main(args) == 1
    assert not (tmp_path / "k1.jwk").exists()
    assert "error" in capsys.readouterr().err
