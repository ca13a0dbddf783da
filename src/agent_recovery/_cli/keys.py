"""``agent-recovery keys generate``: a signing key and its entry in a JWK set (draft §9.1).

Writes the private JWK to ``DIR/<kid>.jwk`` (mode 0600) and adds the public key,
with its owning agent id in ``"sub"``, to a JWK set file (``DIR/jwks.json`` by
default), creating the set if needed. Never overwrites a key or reuses a kid.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from .._errors import ProtocolError
from ..security.keys import Algorithm, JwkSet, generate_private_jwk, load_jwk_set, parse_public_jwk

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser("keys", help="manage message-signing keys")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    gen = sub.add_parser(
        "generate",
        help="generate a signing key and add its public key to a JWK set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("--kid", required=True, help="key id (the JWS 'kid')")
    gen.add_argument(
        "--alg", required=True, choices=[a.value for a in Algorithm], help="signature algorithm"
    )
    gen.add_argument("--out", required=True, type=Path, help="directory for the key files")
    gen.add_argument(
        "--owner", help="agent id the key speaks for (JWK member 'sub'; default: the kid)"
    )
    gen.add_argument(
        "--set", dest="set_path", type=Path, help="JWK set file to add to (default: DIR/jwks.json)"
    )
    gen.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    set_path: Path = args.set_path or out / "jwks.json"
    private_path = out / f"{_UNSAFE.sub('_', args.kid)}.jwk"
    try:
        jwk = generate_private_jwk(
            kid=args.kid, owner=args.owner or args.kid, alg=Algorithm(args.alg)
        )
        keyset = load_jwk_set(set_path) if set_path.exists() else JwkSet()
        if keyset.resolve(args.kid) is not None:
            print(f"error: {set_path} already has a key {args.kid!r}", file=sys.stderr)
            return 1
        public = {k: v for k, v in jwk.items() if k != "d"}
        updated = JwkSet([*keyset, parse_public_jwk(public)])
        out.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a private key; 0600: readable by its owner only.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"error: {private_path} exists", file=sys.stderr)
        return 1
    except (ProtocolError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(jwk, handle, indent=2)
        handle.write("\n")
    tmp = set_path.with_name(set_path.name + ".tmp")
    tmp.write_text(json.dumps(updated.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(set_path)  # atomic: readers never see a half-written set
    print(f"private key: {private_path}\nkey set:     {set_path}")
    return 0
