"""Generate the attack corpus: one JSON file per case (see README.md).

    python conformance/attacks/generate.py          # (re)write the case files
    python conformance/attacks/generate.py --check  # exit 1 if any file differs

Every case is built against a fixture of ``world.py`` (real engines, real
signatures with the fixed keys in ``../keys/``). Ed25519 signatures and this
implementation's ES256 signatures (RFC 6979) are deterministic, so the output
is byte-for-byte reproducible. The expected code of each case is written here
from the draft's rules, never read back from the implementation.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import world as w
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from agent_recovery._messages import (
    FailureSignal,
    Halt,
    Halted,
    Message,
    Resume,
    Rollback,
    RollbackResult,
    StatusQuery,
)
from agent_recovery._model import (
    Action,
    EffectState,
    ExecRef,
    Facts,
    Outcome,
    Reason,
    ReasonKind,
    Reversibility,
    Severity,
    Status,
)
from agent_recovery._wire import encode, format_timestamp
from agent_recovery.security.jws import JWS_TYPE, Signer
from agent_recovery.security.keys import b64url_decode, b64url_encode, public_jwk
from agent_recovery.security.override import (
    OVERRIDE_JWS_TYPE,
    Override,
    OverrideAction,
    encode_override,
)

HERE = Path(__file__).resolve().parent
MINUTE = 60_000


@dataclass
class Case:
    id: str
    title: str
    section: str
    fixture: str
    receiver: str
    code: str
    reply: str  # "none" | "error" | "cached"
    input: dict[str, Any]
    at: int  # receiver's clock, ms
    channel: str = "message"  # or "override"
    context: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "section": self.section,
            "fixture": self.fixture,
            "channel": self.channel,
            "receiver": self.receiver,
            "now": format_timestamp(self.at),
        }
        if self.context is not None:
            out["context"] = self.context
        out["input"] = self.input
        out["expected"] = {"code": self.code, "reply": self.reply}
        return out


# -- building blocks ------------------------------------------------------------------


def jws(data: bytes) -> dict[str, str]:
    return {"jws": data.decode("ascii")}


def text(data: bytes) -> dict[str, str]:
    return {"text": data.decode("utf-8")}


def sign(agent: str, message: Message) -> bytes:
    return w.signer(agent).sign(encode(message))


def forge(header: dict[str, Any], payload: bytes, signer: Signer | None = None) -> bytes:
    """A compact JWS with an arbitrary header, signed with ``signer``'s key (or unsigned)."""
    head = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    signing_input = f"{head}.{b64url_encode(payload)}".encode()
    if signer is None:
        return signing_input + b"."
    return signing_input + b"." + raw_signature(signer, signing_input)


def raw_signature(signer: Signer, signing_input: bytes) -> bytes:
    """The base64url signature of ``signer``'s key over exactly ``signing_input``."""
    key = signer._key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return b64url_encode(key.sign(signing_input)).encode()
    r, s = decode_dss_signature(
        key.sign(signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    )
    return b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).encode()


def header(kid: str, alg: str = "EdDSA", **extra: Any) -> dict[str, Any]:
    return {"alg": alg, "kid": kid, "typ": JWS_TYPE, **extra}


def signal(now: int, **over: Any) -> FailureSignal:
    fields: dict[str, Any] = {
        "id": "sig-attack-1",
        "sender": w.DEPLOYER,
        "recipient": w.ORCHESTRATOR,
        "iat": now,
        "execution": w.DEPLOY,
        "failure_type": "timeout",
        "severity": Severity.ERROR,
        "retryable": False,
        "effect_state": EffectState.PARTIAL,
        "checkpoint": 1,
    }
    fields.update(over)
    return FailureSignal(**fields)


def signal_json(now: int, **over: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(encode(signal(now, **over)))
    return decoded


def scoped(world: w.World) -> dict[str, str]:
    """recovery and trigger of the fixture's (first) recovery."""
    first = next(s.message for s in world.sent if s.message.TYPE == "halt")
    assert first.recovery is not None and first.trigger is not None
    return {"recovery": first.recovery, "trigger": first.trigger}


def request_id(world: w.World, type_: str, recipient: str) -> str:
    return world.last(type_, recipient=recipient).message.id


# -- the cases ---------------------------------------------------------------------------

Builder = Callable[[], list[Case]]
BUILDERS: list[Builder] = []


def builder(fn: Builder) -> Builder:
    BUILDERS.append(fn)
    return fn


@builder
def message_protection() -> list[Case]:
    """draft §9.1: structure, algorithm allowlist, key type, key source, signature."""
    world = w.FIXTURES["idle"]()
    now = world.now + w.STEP
    deployer = w.signer(w.DEPLOYER)
    payload = encode(signal(now))
    good = deployer.sign(payload)
    head, body, sig = good.split(b".")
    rogue = w.rogue_signer()

    def case(id_: str, title: str, code: str, input_: dict[str, Any], **kw: Any) -> Case:
        return Case(
            id=id_,
            title=title,
            section="9.1",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code=code,
            reply=kw.pop("reply", "none"),
            input=input_,
            at=now,
            **kw,
        )

    altered = encode(signal(now, checkpoint=0))
    secret = json.dumps(public_jwk(deployer.verification_key().public_key)).encode()
    hs_input = (
        b64url_encode(json.dumps(header("deployer-1", "HS256")).encode())
        + "."
        + b64url_encode(payload)
    ).encode()
    hs = (
        hs_input
        + b"."
        + b64url_encode(hmac.new(secret, hs_input, hashlib.sha256).digest()).encode()
    )
    monitor = w.signer(w.MONITOR)
    m_payload = encode(signal(now, sender=w.MONITOR, execution=w.WATCH, id="sig-attack-2"))
    es_good = monitor.sign(m_payload)
    eh, eb, es = es_good.split(b".")
    es_bad = bytearray(b64url_decode(es))
    es_bad[5] ^= 0x40
    flattened = json.dumps(
        {"protected": head.decode(), "payload": body.decode(), "signature": sig.decode()}
    ).encode()
    return [
        case(
            "unsigned-bare-json",
            "A bare JSON message with no JWS around it",
            "unsigned",
            text(payload),
        ),
        case(
            "unsigned-empty-signature",
            "A JWS whose signature part is empty",
            "unsigned",
            jws(head + b"." + body + b"."),
        ),
        case(
            "unsigned-json-serialization",
            "The JWS JSON serialization instead of compact",
            "unsigned",
            text(flattened),
        ),
        case(
            "alg-none",
            "alg none with an empty signature",
            "alg-not-allowed",
            jws(forge({**header("deployer-1"), "alg": "none"}, payload)),
        ),
        case(
            "alg-hs256-public-key-as-secret",
            "HS256 keyed with the sender's public JWK (algorithm confusion)",
            "alg-not-allowed",
            jws(hs),
        ),
        case(
            "alg-rs256",
            "An algorithm outside the allowlist",
            "alg-not-allowed",
            jws(forge(header("deployer-1", "RS256"), payload, deployer)),
        ),
        case(
            "alg-es256-on-ed25519-key",
            "ES256 in the header, kid of an Ed25519 key: the key type decides",
            "alg-not-allowed",
            jws(forge(header("deployer-1", "ES256"), payload, deployer)),
        ),
        case(
            "alg-eddsa-on-p256-key",
            "EdDSA in the header, kid of a P-256 key: the key type decides",
            "alg-not-allowed",
            jws(
                b64url_encode(
                    json.dumps(header("monitor-1", "EdDSA"), separators=(",", ":")).encode()
                ).encode()
                + b"."
                + eb
                + b"."
                + es
            ),
        ),
        case(
            "unknown-kid",
            "Signed with a key the receiver does not have",
            "unknown-key",
            jws(rogue.sign(payload)),
        ),
        case(
            "kid-missing",
            "No kid in the header",
            "malformed",
            jws(forge({"alg": "EdDSA", "typ": JWS_TYPE}, payload, deployer)),
        ),
        case(
            "header-jwk-embedded",
            "The attacker's own public key offered in the header (jwk)",
            "malformed",
            jws(
                forge(
                    header(
                        "rogue-1",
                        jwk={**public_jwk(rogue.verification_key().public_key), "kid": "rogue-1"},
                    ),
                    payload,
                    rogue,
                )
            ),
        ),
        case(
            "header-jku",
            "A URL to fetch the key from (jku)",
            "malformed",
            jws(
                forge(
                    header("deployer-1", jku="https://attacker.example/jwks.json"),
                    payload,
                    deployer,
                )
            ),
        ),
        case(
            "header-x5u",
            "A URL to fetch a certificate from (x5u)",
            "malformed",
            jws(
                forge(
                    header("deployer-1", x5u="https://attacker.example/cert.pem"), payload, deployer
                )
            ),
        ),
        case(
            "header-x5c",
            "A certificate chain in the header (x5c)",
            "malformed",
            jws(forge(header("deployer-1", x5c=["MIIB"]), payload, deployer)),
        ),
        case(
            "header-crit",
            "A critical extension the profile does not define",
            "malformed",
            jws(forge(header("deployer-1", crit=["exp"], exp=1), payload, deployer)),
        ),
        case(
            "header-b64-false",
            "An unencoded payload (RFC 7797)",
            "malformed",
            jws(forge(header("deployer-1", b64=False, crit=["b64"]), payload, deployer)),
        ),
        case(
            "typ-jwt",
            "A JWT, signed with the right key, offered as a message",
            "malformed",
            jws(forge({**header("deployer-1"), "typ": "JWT"}, payload, deployer)),
        ),
        case(
            "typ-missing",
            "No typ in the header",
            "malformed",
            jws(forge({"alg": "EdDSA", "kid": "deployer-1"}, payload, deployer)),
        ),
        case(
            "header-duplicate-parameter",
            "The header names kid twice",
            "malformed",
            jws(_duplicate_kid(payload, deployer)),
        ),
        case(
            "header-not-json",
            "The header is not JSON",
            "malformed",
            jws(b64url_encode(b"alg=EdDSA").encode() + b"." + body + b"." + sig),
        ),
        case(
            "bad-signature-altered-payload",
            "Payload changed after signing (checkpoint 1 -> 0)",
            "bad-signature",
            jws(head + b"." + b64url_encode(altered).encode() + b"." + sig),
        ),
        case(
            "bad-signature-wrong-key-same-kid",
            "Signed by another key under the sender's kid",
            "bad-signature",
            jws(forge(header("deployer-1"), payload, rogue)),
        ),
        case(
            "bad-signature-truncated",
            "The signature lost its last 8 octets",
            "bad-signature",
            jws(head + b"." + body + b"." + b64url_encode(b64url_decode(sig)[:-8]).encode()),
        ),
        case(
            "bad-signature-es256",
            "An ES256 signature with one bit flipped",
            "bad-signature",
            jws(eh + b"." + eb + b"." + b64url_encode(bytes(es_bad)).encode()),
        ),
        case(
            "base64-padding",
            "Padding characters in a base64url segment",
            "malformed",
            jws(head + b"==." + body + b"." + sig),
        ),
        case(
            "base64-alphabet",
            "A character outside the base64url alphabet",
            "malformed",
            jws(head + b"." + body + b"." + sig[:-2] + b"+/"),
        ),
    ]


def _duplicate_kid(payload: bytes, signer: Signer) -> bytes:
    raw = b'{"alg":"EdDSA","kid":"intruder-1","typ":"agent-recovery+jws","kid":"deployer-1"}'
    signing_input = (b64url_encode(raw) + "." + b64url_encode(payload)).encode()
    return signing_input + b"." + raw_signature(signer, signing_input)


@builder
def encoding() -> list[Case]:
    """draft §6.x: a validly signed payload that is not a valid message."""
    world = w.FIXTURES["idle"]()
    now = world.now + w.STEP
    deployer = w.signer(w.DEPLOYER)
    base = signal_json(now)
    ts = format_timestamp(now)

    def case(id_: str, title: str, code: str, payload: bytes) -> Case:
        return Case(
            id=id_,
            title=title,
            section="6.x",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code=code,
            reply="none",
            input=jws(deployer.sign(payload)),
            at=now,
        )

    nested: dict[str, Any] = {}
    cursor = nested
    for _ in range(40):
        cursor["x"] = {}
        cursor = cursor["x"]
    big = json.dumps({**base, "detail": "x" * 70_000}, separators=(",", ":")).encode()
    return [
        case("payload-not-json", "The signed payload is not JSON", "malformed", b"not json"),
        case(
            "payload-array",
            "The signed payload is a JSON array",
            "malformed",
            json.dumps([base]).encode(),
        ),
        case(
            "payload-duplicate-member",
            "The message names id twice",
            "malformed",
            encode(signal(now))[:-1] + b',"id":"sig-other"}',
        ),
        case(
            "payload-deep-nesting",
            "params nested 40 levels deep",
            "too-large",
            json.dumps({**base, "params": nested}).encode(),
        ),
        case("payload-oversize", "A failure signal of 70 KB (limit 64 KiB)", "too-large", big),
        case(
            "payload-unsupported-version",
            "Protocol version 2",
            "unsupported-version",
            json.dumps({**base, "v": 2}).encode(),
        ),
        case(
            "payload-bad-timestamp",
            "iat is not an RFC 3339 date-time",
            "malformed",
            json.dumps({**base, "iat": ts.replace("T", " ")}).encode(),
        ),
        Case(
            id="jws-oversize",
            title="6 MiB of filler, refused before anything is parsed",
            section="6.x",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code="too-large",
            reply="none",
            input={"fill": "A", "size": 6 * 1024 * 1024},
            at=now,
        ),
    ]


@builder
def binding() -> list[Case]:
    """draft §9 steps 4 and 5: the key's owner is the sender; the message is for us."""
    idle = w.FIXTURES["idle"]()
    now = idle.now + w.STEP
    restoring = w.FIXTURES["restoring"]()
    rnow = restoring.now + w.STEP
    rs = scoped(restoring)
    query = StatusQuery(
        id="q-attack-1",
        sender=w.ORCHESTRATOR,
        recipient=w.MONITOR,
        iat=rnow,
        execution=w.WATCH,
        **rs,
    )
    return [
        Case(
            id="sender-another-agents-key",
            title="The intruder signs a failure signal that claims to be the deployer's",
            section="9.1",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code="unauthorized",
            reply="error",
            input=jws(w.signer(w.INTRUDER).sign(encode(signal(now)))),
            at=now,
        ),
        Case(
            id="protocol-message-signed-by-operator",
            title="An operator key signs a protocol message: operator keys are not agent keys",
            section="9.2",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code="unknown-key",
            reply="none",
            input=jws(w.signer(w.OPERATOR).sign(encode(signal(now, sender=w.OPERATOR)))),
            at=now,
        ),
        Case(
            id="wrong-recipient",
            title="A signal addressed to the monitor, delivered to the orchestrator",
            section="9",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code="wrong-recipient",
            reply="error",
            input=jws(sign(w.DEPLOYER, signal(now, recipient=w.MONITOR))),
            at=now,
        ),
        Case(
            id="recovery-context-mismatch",
            title="A status query for recovery c-1 on a binding whose context is another",
            section="9",
            fixture="restoring",
            receiver=w.MONITOR,
            code="wrong-recovery",
            reply="error",
            context="c-999",
            input=jws(sign(w.ORCHESTRATOR, query)),
            at=rnow,
        ),
    ]


@builder
def authorization() -> list[Case]:
    """draft §9.2: who may send what, decided before any state changes."""
    idle = w.FIXTURES["idle"]()
    now = idle.now + w.STEP
    restoring = w.FIXTURES["restoring"]()
    rnow = restoring.now + w.STEP
    rs = scoped(restoring)
    watch_rollback = request_id(restoring, "rollback", w.MONITOR)
    origin = Reason(kind=ReasonKind.ORIGIN)

    def result(sender: str, **over: Any) -> RollbackResult:
        fields: dict[str, Any] = {
            "id": "res-attack-1",
            "sender": sender,
            "recipient": w.ORCHESTRATOR,
            "iat": rnow,
            "reply_to": watch_rollback,
            "execution": w.WATCH,
            "outcome": Outcome.RESTORED.value,
            "checkpoint": 1,
            **rs,
        }
        fields.update(over)
        return RollbackResult(**fields)

    via = w.EDGE
    cases = [
        Case(
            id="signal-from-non-owner",
            title="The intruder signals a failure of the deployer's execution",
            section="9.2",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code="unauthorized",
            reply="error",
            input=jws(sign(w.INTRUDER, signal(now, sender=w.INTRUDER))),
            at=now,
        ),
        Case(
            id="signal-unknown-execution",
            title="A failure signal for an execution the orchestrator has no authority over",
            section="9.2",
            fixture="idle",
            receiver=w.ORCHESTRATOR,
            code="unknown-execution",
            reply="error",
            input=jws(
                sign(w.DEPLOYER, signal(now, execution=ExecRef(agent=w.DEPLOYER, exec="ghost-1")))
            ),
            at=now,
        ),
        Case(
            id="halt-from-unauthorized-coordinator",
            title="The intruder tries to contain the deployer's execution",
            section="9.2",
            fixture="idle",
            receiver=w.DEPLOYER,
            code="unauthorized",
            reply="error",
            input=jws(
                sign(
                    w.INTRUDER,
                    Halt(
                        id="h-attack-1",
                        sender=w.INTRUDER,
                        recipient=w.DEPLOYER,
                        iat=now,
                        recovery="r-evil",
                        trigger="t-evil",
                        execution=w.DEPLOY,
                        created=now - 10 * MINUTE,
                    ),
                )
            ),
            at=now,
        ),
        Case(
            id="rollback-from-unauthorized-coordinator",
            title="The intruder asks the deployer to roll back, naming the real recovery",
            section="9.2",
            fixture="restoring",
            receiver=w.DEPLOYER,
            code="unauthorized",
            reply="error",
            input=jws(
                sign(
                    w.INTRUDER,
                    Rollback(
                        id="rb-attack-1",
                        sender=w.INTRUDER,
                        recipient=w.DEPLOYER,
                        iat=rnow,
                        execution=w.DEPLOY,
                        target=0,
                        action=Action.RESTORE,
                        reason=origin,
                        **rs,
                    ),
                )
            ),
            at=rnow,
        ),
        Case(
            id="rollback-from-another-participant",
            title="The deployer (a member, not an authority) asks the monitor to roll back",
            section="9.2",
            fixture="restoring",
            receiver=w.MONITOR,
            code="unauthorized",
            reply="error",
            input=jws(
                sign(
                    w.DEPLOYER,
                    Rollback(
                        id="rb-attack-2",
                        sender=w.DEPLOYER,
                        recipient=w.MONITOR,
                        iat=rnow,
                        execution=w.WATCH,
                        target=0,
                        action=Action.RESTORE,
                        reason=Reason(kind=ReasonKind.DIRECT, via=via),
                        **rs,
                    ),
                )
            ),
            at=rnow,
        ),
        Case(
            id="resume-from-unauthorized-coordinator",
            title="The intruder tries to end containment of the monitor's execution",
            section="9.2",
            fixture="restoring",
            receiver=w.MONITOR,
            code="unauthorized",
            reply="error",
            input=jws(
                sign(
                    w.INTRUDER,
                    Resume(
                        id="rs-attack-1",
                        sender=w.INTRUDER,
                        recipient=w.MONITOR,
                        iat=rnow,
                        execution=w.WATCH,
                        **rs,
                    ),
                )
            ),
            at=rnow,
        ),
        Case(
            id="forged-result-by-intruder",
            title="The intruder reports the monitor's execution restored",
            section="9.2",
            fixture="restoring",
            receiver=w.ORCHESTRATOR,
            code="unauthorized",
            reply="error",
            input=jws(sign(w.INTRUDER, result(w.INTRUDER))),
            at=rnow,
        ),
        Case(
            id="forged-result-by-other-member",
            title="The deployer (another member) reports the monitor's execution restored",
            section="9.2",
            fixture="restoring",
            receiver=w.ORCHESTRATOR,
            code="unauthorized",
            reply="error",
            input=jws(sign(w.DEPLOYER, result(w.DEPLOYER))),
            at=rnow,
        ),
        Case(
            id="result-answers-no-request",
            title="The monitor's result names a request the orchestrator never sent",
            section="9.2",
            fixture="restoring",
            receiver=w.ORCHESTRATOR,
            code="unauthorized",
            reply="error",
            input=jws(sign(w.MONITOR, result(w.MONITOR, reply_to="c-999"))),
            at=rnow,
        ),
        Case(
            id="result-wrong-trigger",
            title="The monitor's result carries another trigger than its recovery's",
            section="9.3",
            fixture="restoring",
            receiver=w.ORCHESTRATOR,
            code="wrong-recovery",
            reply="error",
            input=jws(sign(w.MONITOR, result(w.MONITOR, trigger="sig-other"))),
            at=rnow,
        ),
        Case(
            id="halted-unknown-recovery",
            title="A halted reply for a recovery the orchestrator does not run",
            section="9.2",
            fixture="restoring",
            receiver=w.ORCHESTRATOR,
            code="unknown-recovery",
            reply="error",
            input=jws(
                sign(
                    w.MONITOR,
                    Halted(
                        id="hd-attack-1",
                        sender=w.MONITOR,
                        recipient=w.ORCHESTRATOR,
                        iat=rnow,
                        recovery="c-999",
                        trigger=rs["trigger"],
                        reply_to="c-4",
                        execution=w.WATCH,
                        facts=Facts(
                            status=Status.ACTIVE,
                            reversibility=Reversibility.RESTORABLE,
                            checkpoint=2,
                        ),
                    ),
                )
            ),
            at=rnow,
        ),
        Case(
            id="halt-for-unknown-execution",
            title="The orchestrator asks the monitor to halt an execution it does not run",
            section="9.2",
            fixture="idle",
            receiver=w.MONITOR,
            code="unknown-execution",
            reply="error",
            input=jws(
                sign(
                    w.ORCHESTRATOR,
                    Halt(
                        id="h-attack-2",
                        sender=w.ORCHESTRATOR,
                        recipient=w.MONITOR,
                        iat=now,
                        recovery="c-77",
                        trigger="sig-77",
                        execution=ExecRef(agent=w.MONITOR, exec="ghost-2"),
                        created=now,
                    ),
                )
            ),
            at=now,
        ),
    ]
    return cases


@builder
def replay() -> list[Case]:
    """draft §9.3: duplicates, staleness, altered and cross-recovery reuse."""
    closed = w.FIXTURES["closed"]()
    now = closed.now + w.STEP
    second = w.FIXTURES["second-recovery"]()
    snow = second.now + w.STEP
    first = scoped(closed)
    sig = closed.last("failure-signal", recipient=w.ORCHESTRATOR)
    rollback = closed.last("rollback", recipient=w.DEPLOYER)
    halt = next(s for s in closed.sent if s.message.TYPE == "halt" and s.recipient == w.DEPLOYER)
    resume = closed.last("resume", recipient=w.DEPLOYER)
    halted = closed.last("halted", recipient=w.ORCHESTRATOR)
    assert isinstance(rollback.message, Rollback)
    altered = Rollback(
        id=rollback.message.id,
        sender=w.ORCHESTRATOR,
        recipient=w.DEPLOYER,
        iat=rollback.message.iat,
        execution=w.DEPLOY,
        target=0,
        action=Action.RESTORE,
        reason=Reason(kind=ReasonKind.ORIGIN),
        **first,
    )

    def fresh_halt(iat: int, id_: str) -> bytes:
        return sign(
            w.ORCHESTRATOR,
            Halt(
                id=id_,
                sender=w.ORCHESTRATOR,
                recipient=w.DEPLOYER,
                iat=iat,
                recovery="c-50",
                trigger="sig-50",
                execution=w.DEPLOY,
                created=iat,
            ),
        )

    def case(  # noqa: PLR0917 - a table of cases reads best positionally
        id_: str,
        title: str,
        fixture: str,
        receiver: str,
        code: str,
        reply: str,
        data: bytes,
        at: int,
        /,
    ) -> Case:
        return Case(
            id=id_,
            title=title,
            section="9.3",
            fixture=fixture,
            receiver=receiver,
            code=code,
            reply=reply,
            input=jws(data),
            at=at,
        )

    return [
        case(
            "replay-exact-failure-signal",
            "The deployer's failure signal again: answered from the cache, no new recovery",
            "closed",
            w.ORCHESTRATOR,
            "replay",
            "cached",
            sig.data,
            now,
        ),
        case(
            "replay-exact-rollback",
            "The orchestrator's rollback again: answered with the cached result, not undone twice",
            "closed",
            w.DEPLOYER,
            "replay",
            "cached",
            rollback.data,
            now,
        ),
        case(
            "replay-exact-halted",
            "A halted reply again: absorbed, nothing learned twice",
            "closed",
            w.ORCHESTRATOR,
            "replay",
            "cached",
            halted.data,
            now,
        ),
        case(
            "replay-stale-after-window",
            "The accepted resume, six minutes later: stale (window 5 min)",
            "closed",
            w.DEPLOYER,
            "stale",
            "error",
            resume.data,
            resume.at + 6 * MINUTE,
        ),
        case(
            "replay-stale-never-seen",
            "A halt issued 301 s ago, never delivered",
            "closed",
            w.DEPLOYER,
            "stale",
            "error",
            fresh_halt(now - 301_000, "h-old-1"),
            now,
        ),
        case(
            "replay-future-iat",
            "A halt issued 31 s in the future (skew 30 s)",
            "closed",
            w.DEPLOYER,
            "stale",
            "error",
            fresh_halt(now + 31_000, "h-future-1"),
            now,
        ),
        case(
            "replay-altered-same-id",
            "The rollback's id reused for other content (target 0)",
            "closed",
            w.DEPLOYER,
            "conflict",
            "error",
            sign(w.ORCHESTRATOR, altered),
            now,
        ),
        case(
            "replay-id-reused-in-another-recovery",
            "The halt's id reused for a message of another recovery",
            "closed",
            w.DEPLOYER,
            "wrong-recovery",
            "error",
            fresh_halt(now, halt.message.id),
            now,
        ),
        case(
            "replay-cross-recovery-rollback",
            "The first recovery's rollback replayed while a second recovery holds the "
            "execution: not applied to the second",
            "second-recovery",
            w.DEPLOYER,
            "replay",
            "cached",
            rollback.data,
            snow,
        ),
        case(
            "replay-cross-recovery-halt",
            "The first recovery's halt replayed during the second recovery",
            "second-recovery",
            w.DEPLOYER,
            "replay",
            "cached",
            halt.data,
            snow,
        ),
    ]


@builder
def rate_limits() -> list[Case]:
    """draft §13.4: per-agent budget for failure signals."""
    world = w.FIXTURES["signals-exhausted"]()
    now = world.now
    return [
        Case(
            id="rate-limited-failure-signal",
            title="An eleventh failure signal in the same second (burst 10)",
            section="13.4",
            fixture="signals-exhausted",
            receiver=w.ORCHESTRATOR,
            code="rate-limited",
            reply="none",
            input=jws(sign(w.DEPLOYER, signal(now, id="sig-eleventh"))),
            at=now,
        ),
        Case(
            id="rate-limited-before-refill",
            title="One millisecond before the next token (one per 6 s) is due",
            section="13.4",
            fixture="signals-exhausted",
            receiver=w.ORCHESTRATOR,
            code="rate-limited",
            reply="none",
            input=jws(sign(w.DEPLOYER, signal(now + 5_999, id="sig-twelfth"))),
            at=now + 5_999,
        ),
    ]


@builder
def overrides() -> list[Case]:
    """draft §9.2: operator override has its own credential."""
    world = w.FIXTURES["restoring"]()
    now = world.now + w.STEP
    rs = scoped(world)
    operator = w.signer(w.OPERATOR, typ=OVERRIDE_JWS_TYPE)

    def abort(**over: Any) -> Override:
        fields: dict[str, Any] = {
            "id": "ov-1",
            "operator": w.OPERATOR,
            "coordinator": w.ORCHESTRATOR,
            "iat": now,
            "action": OverrideAction.ABORT,
            "recovery": rs["recovery"],
            "reason": "change window closed",
        }
        fields.update(over)
        return Override(**fields)

    def case(id_: str, title: str, code: str, data: bytes) -> Case:
        return Case(
            id=id_,
            title=title,
            section="9.2",
            fixture="restoring",
            receiver=w.ORCHESTRATOR,
            channel="override",
            code=code,
            reply="none",
            input=jws(data),
            at=now,
        )

    agent_key = w.signer(w.ORCHESTRATOR, typ=OVERRIDE_JWS_TYPE)
    as_message = w.signer(w.OPERATOR)
    return [
        case(
            "override-signed-by-agent-key",
            "An abort signed with the coordinator's own (agent) key",
            "unknown-key",
            agent_key.sign(encode_override(abort(operator=w.ORCHESTRATOR))),
        ),
        case(
            "override-typed-as-message",
            "An operator-signed abort typed as a protocol message",
            "malformed",
            as_message.sign(encode_override(abort())),
        ),
        case(
            "override-impersonates-operator",
            "operator-1's key signs an abort claiming another operator",
            "unauthorized",
            operator.sign(encode_override(abort(operator="spiffe://ops.example/root"))),
        ),
        case(
            "override-wrong-coordinator",
            "An abort addressed to another coordinator",
            "wrong-recipient",
            operator.sign(encode_override(abort(coordinator=w.DEPLOYER))),
        ),
        case(
            "override-unknown-recovery",
            "Abort of a recovery that does not exist",
            "unknown-recovery",
            operator.sign(encode_override(abort(recovery="c-999"))),
        ),
        case(
            "override-stale",
            "An abort issued ten minutes ago",
            "stale",
            operator.sign(encode_override(abort(iat=now - 10 * MINUTE))),
        ),
    ]


def build() -> list[Case]:
    cases = [case for fn in BUILDERS for case in fn()]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case id"
    return cases


def render(case: Case) -> str:
    return json.dumps(case.to_json(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    cases = build()
    wanted = {f"{c.id}.json": render(c) for c in cases}
    present = {p.name for p in HERE.glob("*.json")}
    stale = sorted(present - set(wanted))
    differ = sorted(
        n
        for n, t in wanted.items()
        if not (HERE / n).exists() or (HERE / n).read_text(encoding="utf-8") != t
    )
    if args.check:
        for name in stale + differ:
            print(f"out of date: {name}")
        return 1 if stale or differ else 0
    for name in stale:
        (HERE / name).unlink()
    for name in differ:
        (HERE / name).write_text(wanted[name], encoding="utf-8")
    print(f"{len(cases)} cases; {len(differ)} written, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
