"""Run every check against a target, from outside, over the HTTP binding (draft §12.2).

The target is an implementation under test that loaded the fixture
(``conformance/fixture.json``; ours: ``agent-recovery serve --config
conformance/fixture.json``). The runner reads the same fixture: the target's
agent id, the agents the runner plays and their keys, and the address where
the target sends those agents' messages, on which the runner listens.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..bindings.http import DEFAULT_PATH, build_app, listen, serving
from ..security import Signer, Verifier, load_jwk_set
from ._as_coordinator import run_coordinator_scenarios
from ._as_participant import run_participant_scenarios
from ._kit import DEPLOYER, Kit
from ._on_the_wire import run_attack_corpus, run_http_checks, run_vectors
from ._peers import Peers
from ._report import Level, Report
from ._scope import run_scope_vectors

__all__ = ["Fixture", "FixtureError", "load_fixture", "run_conformance"]


class FixtureError(ValueError):
    """The fixture cannot drive a run (missing member, unreadable key)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixture:
    target: str
    listen: str
    signers: tuple[Signer, ...]
    trusted: Path
    burst: int
    base: Path


def load_fixture(path: Path) -> Fixture:
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        base = path.resolve().parent
        section = doc["conformance"]
        signers = tuple(Signer.from_file(base / p) for p in section["agents"].values())
        policy = doc.get("rate_limits", {}).get("failure-signal", {})
        return Fixture(
            target=doc["agent"],
            listen=section["listen"],
            signers=signers,
            trusted=base / doc["trusted_keys"],
            burst=int(policy.get("burst", 10)),
            base=base,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FixtureError(f"{path}: {exc}") from exc
    except Exception as exc:  # a key the security module refuses
        raise FixtureError(f"{path}: {exc}") from exc


def _endpoint(target: str) -> str:
    parts = urlsplit(target)
    return target if parts.path not in ("", "/") else target.rstrip("/") + DEFAULT_PATH


async def run_conformance(
    target: str,
    fixture: Fixture,
    *,
    vectors: Path | None = None,
    attacks: Path | None = None,
    scope: Path | None = None,
) -> Report:
    """Every check, in order: HTTP, vectors, attacks, participant, coordinator, scope."""
    report = Report(target=target)
    where = urlsplit(fixture.listen)
    sock = listen(where.hostname or "127.0.0.1", where.port or 80)
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    async with httpx.AsyncClient(timeout=30.0, trust_env=False, transport=transport) as client:
        peers = Peers(
            target=fixture.target,
            endpoint=_endpoint(target),
            signers=fixture.signers,
            verifier=Verifier(load_jwk_set(fixture.trusted)),
            client=client,
        )
        kit = Kit(peers=peers, report=report, target=fixture.target, burst=fixture.burst)
        async with serving(build_app(peers.handle), sock):
            try:
                response = await client.post(peers.endpoint, content=b"")
                reachable = response.status_code >= 400
                detail = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reachable, detail = False, str(exc)
            kit.check(
                "target.reachable",
                "target",
                Level.MUST,
                "12.2",
                "the target's recovery endpoint answers",
                reachable,
                detail,
            )
            if not reachable:
                return report
            root = fixture.base
            await run_http_checks(kit)
            signer = next(s for s in fixture.signers if s.owner == DEPLOYER)
            await run_vectors(kit, vectors or root / "vectors", signer)
            await run_attack_corpus(kit, attacks or root / "attacks")
            await run_participant_scenarios(kit)
            await run_coordinator_scenarios(kit)
            await run_scope_vectors(kit, scope or root / "scope")
    return report
