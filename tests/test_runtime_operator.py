"""Operator overrides over real HTTP: POST /operator/override on a coordinator (draft §8.7)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from agent_recovery import cli
from agent_recovery._messages import RecoveryRecord
from agent_recovery._wire import decode
from agent_recovery.bindings.http import listen, serving
from agent_recovery.runtime import AgentRuntime, agent_app, load_config, start_plans
from agent_recovery.runtime._scenario import write_keys
from agent_recovery.security import Signer, Verifier, load_jwk_set
from agent_recovery.security.keys import Algorithm, JwkSet, generate_private_jwk, parse_public_jwk
from agent_recovery.security.override import (
    OVERRIDE_JWS_TYPE,
    Override,
    OverrideAction,
    sign_override,
)
from agent_recovery.store import Store

BOSS = "spiffe://t/boss"
GONE = "spiffe://t/gone"  # a consumer whose agent never answers
OPERATOR = "spiffe://t/operator"


def _setup(tmp: Path) -> Path:
    write_keys(tmp / "keys", {"boss": BOSS, "gone": GONE})
    jwk = generate_private_jwk(kid="op-1", owner=OPERATOR, alg=Algorithm.EDDSA)
    (tmp / "keys" / "operator.jwk").write_text(json.dumps(jwk))
    public = JwkSet([parse_public_jwk({k: v for k, v in jwk.items() if k != "d"})])
    (tmp / "keys" / "operators.json").write_text(json.dumps(public.to_json()))
    boss = {
        "agent": BOSS,
        "key": "keys/boss.jwk",
        "trusted_keys": "keys/jwks.json",
        "operators": "keys/operators.json",
        "state": "boss.db",
        "trace": "boss.trace",
        "peers": {GONE: "http://127.0.0.1:9"},
        # The halt of the unreachable consumer is retried for several seconds.
        "retry": {"initial": 500, "ceiling": 1000, "attempts": 20},
        "coordinator": {"executions": [{"agent": BOSS, "exec": "plan", "authority": [BOSS]}]},
        "executions": [
            {
                "id": "plan",
                "reversibility": "restorable",
                "authority": [BOSS],
                "steps": [
                    {"checkpoint": "start"},
                    {
                        "depend": {
                            "consumer": {"agent": GONE, "exec": "push"},
                            "produced_after": 0,
                            "consumed_after": 0,
                        }
                    },
                ],
            }
        ],
    }
    path = tmp / "boss.json"
    path.write_text(json.dumps(boss))
    return path


def _override(now: int, recovery: str, **over: Any) -> Override:
    fields: dict[str, Any] = {
        "id": "ov-1",
        "operator": OPERATOR,
        "coordinator": BOSS,
        "iat": now,
        "action": OverrideAction.ABORT,
        "recovery": recovery,
        "reason": "change window closed",
    }
    fields.update(over)
    return Override(**fields)


def test_an_operator_aborts_a_running_recovery_over_http(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    operator = Signer.from_file(tmp_path / "keys" / "operator.jwk", typ=OVERRIDE_JWS_TYPE)
    agent_key = Signer.from_file(tmp_path / "keys" / "boss.jwk", typ=OVERRIDE_JWS_TYPE)
    answers: dict[str, httpx.Response] = {}
    exits: list[int] = []

    async def main() -> None:
        boss = AgentRuntime(load_config(path))
        await boss.start()
        try:
            async with serving(agent_app(boss), listen()) as url:
                start_plans(boss)
                await asyncio.sleep(0.2)
                async with httpx.AsyncClient(trust_env=False) as client:
                    failed = await client.post(
                        url + "/admin/fail",
                        json={"exec": "plan", "failure_type": "timeout", "checkpoint": 0},
                    )
                    assert failed.status_code == 202
                    for _ in range(200):
                        recoveries = boss.state().get("recoveries", [])
                        if recoveries:
                            break
                        await asyncio.sleep(0.02)
                    rid = recoveries[0]["id"]
                    now = boss.clock()
                    post = client.post
                    endpoint = url + "/operator/override"
                    # Signed by an agent's key: not an operator (draft §8.7).
                    answers["agent"] = await post(
                        endpoint, content=_sign_as(agent_key, _override(now, rid, operator=BOSS))
                    )
                    # The command line signs with the operator key and posts.
                    command = [
                        "override",
                        url,
                        "--key",
                        str(tmp_path / "keys" / "operator.jwk"),
                        "--to",
                        BOSS,
                        "--recovery",
                        rid,
                        "--action",
                        "abort",
                        "--reason",
                        "change window closed",
                    ]
                    exits.append(await asyncio.to_thread(cli.main, command))
                    again = sign_override(operator, _override(now, rid))
                    answers["ended"] = await post(endpoint, content=again)
                    answers["stale"] = await post(
                        endpoint,
                        content=sign_override(operator, _override(now - 3_600_000, rid, id="ov-3")),
                    )
                    exits.append(await asyncio.to_thread(cli.main, command))
                    # An oversized instruction: refused as too-large, recorded.
                    answers["large"] = await post(endpoint, content=b"x" * (1 << 20))
                    answers["state"] = await client.get(url + "/admin/state")
        finally:
            await boss.stop()

    asyncio.run(main())
    assert answers["agent"].status_code in (400, 403)
    assert answers["agent"].headers["content-type"] == "application/problem+json"
    assert exits == [0, 1]  # applied; then refused: the recovery has ended
    assert answers["ended"].status_code == 409  # invalid-state: the recovery has ended
    assert answers["ended"].json()["type"].endswith("invalid-state")
    assert answers["stale"].status_code == 400
    assert answers["large"].status_code == 413
    assert answers["large"].json()["type"].endswith("too-large")
    (recovery,) = answers["state"].json()["recoveries"]
    assert recovery["state"] == "aborted"
    # The record of the aborted recovery refers to the operator's instruction,
    # and every override, applied or refused, is in the coordinator's trace.
    verifier = Verifier(load_jwk_set(tmp_path / "keys" / "jwks.json"))
    with Store(tmp_path / "boss.db", readonly=True) as store:
        tokens = [e.token for e in store.entries(BOSS)]
    records = [decode(verifier.verify(t).payload) for t in tokens]
    aborted = [r for r in records if isinstance(r, RecoveryRecord) and r.result.value == "aborted"]
    trace = [json.loads(x) for x in (tmp_path / "boss.trace").read_text().splitlines()]
    events = [t for t in trace if t["kind"].startswith("override")]
    (applied,) = [t for t in events if t["kind"] == "override"]
    assert aborted and "override:sha-256:" + applied["digest"] in aborted[-1].evidence
    assert applied["operator"] == OPERATOR and applied["action"] == "override:abort"
    assert len(events) - 1 >= 5  # the agent key, the ended recovery twice, stale, too large


def _sign_as(signer: Signer, override: Override) -> bytes:
    # sign_override refuses a key that is not the operator's; sign the same bytes directly.
    from agent_recovery.security.override import encode_override

    return signer.sign(encode_override(override))


def test_no_operator_keys_no_route(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    doc = json.loads(path.read_text())
    del doc["operators"]
    path.write_text(json.dumps(doc))
    runtime = AgentRuntime(load_config(path))
    assert runtime.override is None
    paths = [getattr(r, "path", "") for r in agent_app(runtime).routes]
    assert "/operator/override" not in paths
    asyncio.run(runtime.stop())
