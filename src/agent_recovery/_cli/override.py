"""``agent-recovery override``: sign an operator override and send it to a coordinator (draft §8.7).

The instruction is signed with an operator key (a private JWK made with
``agent-recovery keys generate``, whose public key is in the coordinator's
``operators`` key set, never in an agent key set) and posted to the
coordinator's ``/operator/override``. Prints the coordinator's answer; exit
status 0 if the override was applied, 1 if it was refused, 2 on a usage or
connection error. Examples::

    agent-recovery override http://127.0.0.1:8001 --key ops/op-1.jwk \\
        --to spiffe://example.net/planner --recovery R --action abort \\
        --reason "change window closed"
    agent-recovery override http://127.0.0.1:8001 --key ops/op-1.jwk \\
        --to spiffe://example.net/planner --recovery R --action force-outcome \\
        --agent spiffe://example.net/pusher-r1 --exec chg-1042/push-r1 \\
        --outcome restored --reason "restored by hand, ticket OPS-7"
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

import httpx

from .._errors import ProtocolError
from .._model import ExecRef, Residual
from ..security import Signer
from ..security.override import OVERRIDE_JWS_TYPE, Override, OverrideAction, sign_override

PATH = "/operator/override"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser(
        "override",
        help="send a signed operator override to a coordinator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("url", help="the coordinator's base URL")
    cmd.add_argument("--key", required=True, type=Path, help="the operator's private JWK")
    cmd.add_argument("--to", required=True, help="the coordinator's agent id")
    cmd.add_argument("--recovery", required=True, help="the recovery id")
    cmd.add_argument("--action", required=True, choices=[a.value for a in OverrideAction])
    cmd.add_argument("--reason", required=True, help="why, for the record")
    cmd.add_argument("--agent", help="the member's agent (force-outcome, release)")
    cmd.add_argument("--exec", dest="exec_id", help="the member's execution id")
    cmd.add_argument("--outcome", help="the outcome to set (force-outcome)")
    cmd.add_argument(
        "--residual", action="append", default=[], help="a residual effect (repeatable)"
    )
    cmd.set_defaults(func=_override)


def _override(args: argparse.Namespace) -> int:
    try:
        signer = Signer.from_file(args.key, typ=OVERRIDE_JWS_TYPE)
        execution = None
        if args.agent is not None or args.exec_id is not None:
            execution = ExecRef(agent=args.agent or "", exec=args.exec_id or "")
        override = Override(
            id=f"ov-{secrets.token_urlsafe(12)}",
            operator=signer.owner,
            coordinator=args.to,
            iat=time.time_ns() // 1_000_000,
            action=OverrideAction(args.action),
            recovery=args.recovery,
            reason=args.reason,
            execution=execution,
            outcome=args.outcome,
            residual=tuple(Residual(description=text) for text in args.residual),
        )
        token = sign_override(signer, override)
    except ProtocolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = args.url.rstrip("/") + PATH
    try:
        response = httpx.post(url, content=token, timeout=30.0, trust_env=False)
    except httpx.HTTPError as exc:
        print(f"error: {url}: {exc}", file=sys.stderr)
        return 2
    print(response.text)
    return 0 if response.status_code == 200 else 1
