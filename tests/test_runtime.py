"""The agent runtime: configuration, the real resource, and two agents over real HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_recovery._model import Reversibility
from agent_recovery._records import verify_log
from agent_recovery.bindings.http import listen, serving
from agent_recovery.runtime import (
    AgentRuntime,
    ConfigError,
    Resource,
    StepKind,
    agent_app,
    load_config,
    parse_config,
    start_plans,
)
from agent_recovery.runtime._scenario import write_keys
from agent_recovery.security import Verifier, load_jwk_set
from agent_recovery.store import Store

BOSS = "spiffe://t/boss"
WORKER = "spiffe://t/worker"


def _base(**extra: Any) -> dict[str, Any]:
    return {"agent": WORKER, "key": "k.jwk", "trusted_keys": "jwks.json", **extra}


# -- configuration -----------------------------------------------------------------


def test_a_configuration_is_read_with_paths_relative_to_its_file(tmp_path: Path) -> None:
    doc = _base(
        state="s/state.db",
        peers={BOSS: "http://127.0.0.1:9"},
        retry={"initial": 100, "ceiling": 400, "attempts": 3},
        coordinator={
            "executions": [
                {"agent": BOSS, "exec": "e", "authority": [BOSS]},
                {"agent": BOSS, "exec": "f", "reversibility": "compensable"},
            ]
        },
        executions=[
            {
                "id": "job",
                "reversibility": "compensable",
                "authority": [BOSS],
                "steps": [
                    {"checkpoint": "start"},
                    {"consume": {"agent": BOSS, "exec": "e", "output": "o"}},
                    {"apply": {"ticket": {"id": "T-1", "status": "open"}}},
                    {
                        "depend": {
                            "consumer": {"agent": BOSS, "exec": "x"},
                            "produced_after": 0,
                            "consumed_after": 0,
                        }
                    },
                    {"fail": {"failure_type": "timeout", "checkpoint": 1}},
                ],
            }
        ],
    )
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(doc))
    config = load_config(path)
    assert config.key == tmp_path / "k.jwk"
    assert config.state == tmp_path / "s" / "state.db"
    assert config.retry.initial == 100 and config.coordinator
    # draft §13.6: the reversibility declared at delegation, when the coordinator knows it.
    assert [c.reversibility for c in config.coordinated] == [None, Reversibility.COMPENSABLE]
    steps = config.executions[0].steps
    assert [s.kind for s in steps] == [
        StepKind.CHECKPOINT,
        StepKind.CONSUME,
        StepKind.APPLY,
        StepKind.DEPEND,
        StepKind.FAIL,
    ]
    assert steps[3].edge is not None and steps[3].edge.producer.agent == WORKER
    assert steps[4].failure is not None and steps[4].failure.checkpoint == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "unknown member 'colour'"),
        ({"agent": "has space"}, "agent"),
        ({"executions": [{"id": "a", "reversibility": "restorable"}]}, "recovery authority"),
        (
            {"executions": [{"id": "a", "reversibility": "maybe", "authority": [BOSS]}]},
            "reversibility",
        ),
        (
            {
                "executions": [
                    {
                        "id": "a",
                        "reversibility": "restorable",
                        "authority": [BOSS],
                        "steps": [{"checkpoint": "x", "complete": "y"}],
                    }
                ]
            },
            "exactly one",
        ),
        (
            {
                "executions": [
                    {
                        "id": "a",
                        "reversibility": "restorable",
                        "authority": [BOSS],
                        "steps": [{"apply": {"config": "not lines"}}],
                    }
                ]
            },
            "config",
        ),
        (
            {
                "executions": [
                    {"id": "a", "reversibility": "restorable", "authority": [BOSS]},
                    {"id": "a", "reversibility": "restorable", "authority": [BOSS]},
                ]
            },
            "same id",
        ),
        (
            {"coordinator": {"executions": [{"agent": BOSS, "exec": "e", "reversibility": "?"}]}},
            r"coordinator\.executions\[0\]\.reversibility",
        ),
        ({"peers": {BOSS: "ftp://x"}}, "URL"),
        ({"retry": {"initial": 0}}, "retry"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_member(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_base(**change), base=tmp_path)


def test_an_unreadable_configuration_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not JSON"):
        (tmp_path / "c.json").write_text("{")
        load_config(tmp_path / "c.json")
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.json")


# -- the resource ------------------------------------------------------------------------


def test_restore_writes_back_the_checkpoint_image(tmp_path: Path) -> None:
    r = Resource(tmp_path / "r.db", devices={"r1": ["hostname r1"]})
    r.begin("push", "r1", 0)
    r.checkpoint("push", "r1", 1, "saved", 1)
    r.apply("push", "r1", {"config": ["vlan 42"]}, 1, 2)
    r.put_output("push", "done", "ok", 1)
    assert r.dump()["config"]["r1"] == ["hostname r1", "vlan 42"]
    result = r.restore("push", "r1", 1, "rec-1", 3)
    assert result.outcome == "restored" and not result.repeated
    assert r.dump()["config"]["r1"] == ["hostname r1"]
    assert r.output("push", "done") is None  # made after the checkpoint: gone
    # Asked again for the same recovery (a replay after a crash): not done twice.
    r.apply("push", "r1", {"config": ["vlan 43"]}, 1, 4)
    again = r.restore("push", "r1", 1, "rec-1", 5)
    assert again.repeated and again.outcome == "restored"
    assert r.dump()["config"]["r1"] == ["hostname r1", "vlan 43"]
    assert r.undo_count() == {"push": 1}
    r.close()


def test_compensation_appends_and_never_deletes(tmp_path: Path) -> None:
    r = Resource(tmp_path / "r.db")
    r.apply("t", None, {"ticket": {"id": "CHG-1", "status": "scheduled"}}, 0, 1)
    r.apply("t", None, {"ticket": {"id": "CHG-1", "status": "implemented"}}, 1, 2)
    result = r.compensate("t", 1, "rec-1", 3)
    assert result.outcome == "compensated" and len(result.details) == 1
    dump = r.dump()
    assert dump["tickets"] == [{"id": "CHG-1", "title": "CHG-1", "status": "cancelled"}]
    assert [j["status"] for j in dump["journal"]] == ["scheduled", "implemented", "cancelled"]
    assert r.compensate("t", 1, "rec-1", 4).repeated
    assert len(r.dump()["journal"]) == 3
    r.close()


def test_sent_notifications_are_residual_effects(tmp_path: Path) -> None:
    r = Resource(tmp_path / "r.db")
    r.apply("n", None, {"notify": {"to": "noc@x", "subject": "done"}}, 0, 1)
    assert r.spool is not None and "noc@x" in r.spool.read_text()
    result = r.residual("n", 0, "rec-1", 2)
    assert result.outcome == "irreversible"
    assert result.details == ("notification #1 to noc@x sent: 'done'",)
    assert r.residual("n", 1, "rec-2", 3).outcome == "not-needed"
    r.close()


# -- two agents, two runtimes, real HTTP -----------------------------------------------------


def _write(tmp: Path, *, audit_declared: str | None = None) -> tuple[Path, Path]:
    write_keys(tmp / "keys", {"boss": BOSS, "worker": WORKER})
    common = {
        "trusted_keys": "keys/jwks.json",
        "peers_file": "peers.json",
        "retry": {"initial": 200, "ceiling": 800, "attempts": 4},
    }
    boss = {
        **common,
        "agent": BOSS,
        "key": "keys/boss.jwk",
        "state": "boss.db",
        "trace": "boss.trace",
        "coordinator": {
            "executions": [
                {"agent": WORKER, "exec": "push", "authority": [BOSS]},
                {"agent": WORKER, "exec": "audit", "authority": [BOSS]}
                | ({"reversibility": audit_declared} if audit_declared else {}),
            ]
        },
        "executions": [
            {
                "id": "plan",
                "reversibility": "restorable",
                "authority": [BOSS],
                "steps": [{"produce": "intent", "value": ["vlan 7"]}, {"complete": "planned"}],
            }
        ],
    }
    worker = {
        **common,
        "agent": WORKER,
        "key": "keys/worker.jwk",
        "state": "worker.db",
        "resource": "worker-resource.db",
        "devices": {"r1": ["hostname r1"]},
        "executions": [
            {
                "id": "push",
                "reversibility": "restorable",
                "authority": [BOSS],
                "device": "r1",
                "steps": [
                    {"checkpoint": "saved"},
                    {"consume": {"agent": BOSS, "exec": "plan", "output": "intent"}},
                    {"apply": {"config": ["vlan 7"]}},
                    {"produce": "pushed"},
                    {"complete": "pushed"},
                ],
            },
            {
                "id": "audit",
                "reversibility": "restorable",
                "authority": [BOSS],
                "steps": [
                    {"checkpoint": "start"},
                    {"consume": {"agent": WORKER, "exec": "push", "output": "pushed"}},
                    {"apply": {"record": {"key": "audit", "value": "r1 has vlan 7"}}},
                    {"complete": "audited"},
                ],
            },
        ],
    }
    (tmp / "boss.json").write_text(json.dumps(boss))
    (tmp / "worker.json").write_text(json.dumps(worker))
    return tmp / "boss.json", tmp / "worker.json"


async def _until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _recover(tmp_path: Path, **write: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Boss delegates push and audit to worker; push fails; returns outcomes and worker state."""
    boss_path, worker_path = _write(tmp_path, **write)
    out: tuple[dict[str, str], dict[str, Any]] = ({}, {})

    async def main() -> None:
        nonlocal out
        boss = AgentRuntime(load_config(boss_path))
        worker = AgentRuntime(load_config(worker_path))
        await boss.start()
        await worker.start()
        try:
            async with (
                serving(agent_app(boss), listen()) as boss_url,
                serving(agent_app(worker), listen()) as worker_url,
            ):
                (tmp_path / "peers.json").write_text(
                    json.dumps({BOSS: boss_url, WORKER: worker_url})
                )
                start_plans(boss)
                start_plans(worker)
                done = {"done"}
                await _until(lambda: all(x["plan"] in done for x in worker.state()["executions"]))
                assert worker.resource.dump()["config"]["r1"] == ["hostname r1", "vlan 7"]
                async with httpx.AsyncClient(trust_env=False) as client:
                    response = await client.post(
                        worker_url + "/admin/fail",
                        json={
                            "exec": "push",
                            "failure_type": "verification-failed",
                            "checkpoint": 1,
                            "effect_state": "complete",
                        },
                    )
                assert response.status_code == 202

                def finished() -> bool:
                    recoveries = boss.state().get("recoveries", [])
                    return (
                        bool(recoveries)
                        and recoveries[0]["state"] in ("closed", "escalated")
                        and not (recoveries[0]["busy"])
                        and all(x["state"] == "idle" for x in worker.state()["executions"])
                    )

                await _until(finished)
                recovery = boss.state()["recoveries"][0]
                members = {m["exec"]: m["outcome"] for m in recovery["members"]}
                out = (members, {"recovery": recovery["id"], "resource": worker.resource.dump()})
        finally:
            await boss.stop()
            await worker.stop()

    asyncio.run(main())
    return out


def test_two_agents_recover_over_real_http(tmp_path: Path) -> None:
    members, worker = _recover(tmp_path)
    # The audit consumed push's output made after push's checkpoint 1.
    assert members == {"push": "restored", "audit": "restored"}
    # draft §5.1: the recovery id carries 96 random bits (16 base64url
    # characters) before the coordinator's counter.
    epoch, _, counter = worker["recovery"].partition(".")
    assert len(epoch) == 16 and counter.startswith("c"), worker["recovery"]
    assert worker["resource"]["config"]["r1"] == ["hostname r1"]
    verifier = Verifier(load_jwk_set(tmp_path / "keys" / "jwks.json"))
    with Store(tmp_path / "boss.db", readonly=True) as store:
        report = verify_log((e.token for e in store.entries(BOSS)), verifier, issuer=BOSS)
    assert report.ok and report.checked >= 1
    trace = [json.loads(x) for x in (tmp_path / "boss.trace").read_text().splitlines()]
    kinds = [t["kind"] for t in trace]
    assert "recovery-started" in kinds and "recovery-ended" in kinds
    assert "reversibility-discrepancy" not in kinds


def test_a_reversibility_unlike_the_declared_one_is_traced_and_not_believed(
    tmp_path: Path,
) -> None:
    # draft §13.6: the boss delegated audit as irreversible; the worker's halted
    # reply says restorable. The boss asks for no undo (the declared class),
    # the worker refuses the mismatched request, audit's record stays,
    # and the discrepancy is in the boss's trace.
    members, worker = _recover(tmp_path, audit_declared="irreversible")
    assert members == {"push": "restored", "audit": "refused"}
    assert worker["resource"]["records"]["audit:audit"] == "r1 has vlan 7"
    trace = [json.loads(x) for x in (tmp_path / "boss.trace").read_text().splitlines()]
    (entry,) = [t for t in trace if t["kind"] == "reversibility-discrepancy"]
    assert (entry["exec"], entry["declared"], entry["reported"]) == (
        "audit",
        "irreversible",
        "restorable",
    )


# -- requests processed together (group commit) ---------------------------------------------


def test_messages_that_arrive_together_are_processed_together(tmp_path: Path) -> None:
    from agent_recovery._messages import Halt, Halted, Rollback, RollbackResult
    from agent_recovery._model import Action, ExecRef, Reason, ReasonKind
    from agent_recovery._wire import decode, encode
    from agent_recovery.bindings.http import parse_problem
    from agent_recovery.security import Signer

    write_keys(tmp_path / "keys", {"boss": BOSS, "worker": WORKER})
    doc = {
        "agent": WORKER,
        "key": "keys/worker.jwk",
        "trusted_keys": "keys/jwks.json",
        "state": "worker.db",
        "resource": "resource.db",
        "executions": [
            {
                "id": name,
                "reversibility": "restorable",
                "authority": [BOSS],
                "steps": [{"checkpoint": "c1"}],
            }
            for name in ("a", "b")
        ],
    }
    boss = Signer.from_file(tmp_path / "keys" / "boss.jwk")
    verifier = Verifier(load_jwk_set(tmp_path / "keys" / "jwks.json"))

    async def main() -> None:
        runtime = AgentRuntime(parse_config(doc, base=tmp_path))
        await runtime.start()
        try:
            now = runtime.clock()

            def halt(exec_id: str) -> bytes:
                return boss.sign(
                    encode(
                        Halt(
                            id=f"h-{exec_id}",
                            sender=BOSS,
                            recipient=WORKER,
                            iat=now,
                            recovery="r-1",
                            trigger="s-1",
                            execution=ExecRef(agent=WORKER, exec=exec_id),
                            created=now,
                        )
                    )
                )

            batch = [halt("a"), halt("a"), halt("b"), b"garbage"]
            answers = runtime._process(batch)
            statuses = [a.status for a in answers]
            assert statuses == [200, 200, 200, 400]
            # The second copy was answered from the replay cache: the same octets.
            assert answers[0].body == answers[1].body
            replies = [decode(verifier.verify(a.body).payload) for a in answers[:3]]
            assert all(isinstance(r, Halted) for r in replies)
            assert parse_problem(answers[3].body, 400).code is not None
            # A rollback whose undo is done at once is answered with its result,
            # not with an acknowledgement followed by a second exchange.
            rollback = Rollback(
                id="rb-a",
                sender=BOSS,
                recipient=WORKER,
                iat=now,
                recovery="r-1",
                trigger="s-1",
                execution=ExecRef(agent=WORKER, exec="a"),
                target=0,
                action=Action.RESTORE,
                reason=Reason(kind=ReasonKind.ORIGIN),
            )
            (answer,) = runtime._process([boss.sign(encode(rollback))])
            result = decode(verifier.verify(answer.body).payload)
            # (Its work has not started: nothing after checkpoint 0 to undo.)
            assert isinstance(result, RollbackResult) and result.outcome == "not-needed"
            assert result.reply_to == rollback.id
        finally:
            await runtime.stop()

    asyncio.run(main())


def test_compensation_needs_the_agents_own_permission(tmp_path: Path) -> None:
    # draft §9.2, §13.7: a rollback grants no permission. An execution whose
    # agent may not compensate is answered refused/unauthorized and nothing is
    # done; the same request for an execution it may compensate is carried out.
    from agent_recovery._messages import Halt, Rollback, RollbackResult
    from agent_recovery._model import Action, ExecRef, Reason, ReasonKind
    from agent_recovery._wire import decode, encode
    from agent_recovery.security import Signer

    write_keys(tmp_path / "keys", {"boss": BOSS, "worker": WORKER})
    doc = {
        "agent": WORKER,
        "key": "keys/worker.jwk",
        "trusted_keys": "keys/jwks.json",
        "state": "worker.db",
        "resource": "resource.db",
        "executions": [
            {"id": "denied", "reversibility": "compensable", "authority": [BOSS]},
            {"id": "allowed", "reversibility": "compensable", "authority": [BOSS]},
        ],
    }
    doc["executions"][0]["permitted"] = ["restore"]
    boss = Signer.from_file(tmp_path / "keys" / "boss.jwk")
    verifier = Verifier(load_jwk_set(tmp_path / "keys" / "jwks.json"))

    async def main() -> dict[str, RollbackResult]:
        runtime = AgentRuntime(parse_config(doc, base=tmp_path))
        await runtime.start()
        results: dict[str, RollbackResult] = {}
        try:
            now = runtime.clock()
            for name in ("denied", "allowed"):
                ref = ExecRef(agent=WORKER, exec=name)
                runtime.call(lambda p, r=ref: p.take_checkpoint(r))
                runtime.call(lambda p, r=ref: p.record_effect(r))
                common = {"sender": BOSS, "recipient": WORKER, "iat": now, "trigger": "s-1"}
                halt = Halt(id=f"h-{name}", recovery="r-1", execution=ref, created=now, **common)
                runtime._process([boss.sign(encode(halt))])
                rollback = Rollback(
                    id=f"rb-{name}",
                    recovery="r-1",
                    execution=ref,
                    target=1,
                    action=Action.COMPENSATE,
                    reason=Reason(kind=ReasonKind.ORIGIN),
                    **common,
                )
                (answer,) = runtime._process([boss.sign(encode(rollback))])
                result = decode(verifier.verify(answer.body).payload)
                assert isinstance(result, RollbackResult)
                results[name] = result
        finally:
            await runtime.stop()
        return results

    results = asyncio.run(main())
    assert results["denied"].outcome == "refused"
    assert results["denied"].code == "unauthorized"
    assert results["allowed"].outcome == "compensated"
    with pytest.raises(ConfigError, match="permitted"):
        parse_config(
            {**doc, "executions": [{**doc["executions"][0], "permitted": ["delete"]}]},
            base=tmp_path,
        )
