"""The coordinator killed with SIGKILL at a random point of a recovery, restarted, per trial.

Each trial starts one coordinator and two participants as separate OS
processes (``agent-recovery serve``, each with its durable store), lets them
record a rollback set of seven members (restorable and compensable, over both
participants), signals the origin's failure, kills the coordinator with
SIGKILL after a random delay drawn from the duration of an undisturbed
recovery, restarts it on the same port from its store, and waits for the
recovery to finish. A trial counts as:

- ``completed`` when the coordinator's recovery reached a final state with its
  record and every member was resumed;
- a ``double effect`` for every execution whose real state was undone more than
  once (its resource's undo log holds more than one entry);
- ``chains verified`` when every agent's chain of recovery records verifies
  (signatures, ``seq``, ``prev`` links) after the trial.

    python bench/crash.py [--trials 20] [--seed 1]

The last line is one JSON object:
``{"trials": N, "completed": ..., "double_effects": ..., "chains_verified": ...,
"killed_before_record": ...}`` (the last: trials whose kill fell before the
coordinator's record was committed).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from agent_recovery._records import verify_log
from agent_recovery.runtime._cluster import Cluster, ClusterError
from agent_recovery.runtime._scenario import write_keys
from agent_recovery.security import Verifier, load_jwk_set
from agent_recovery.store import Store

DOMAIN = "spiffe://crash.example"
AGENTS = {"coordinator": f"{DOMAIN}/coordinator", "p1": f"{DOMAIN}/p1", "p2": f"{DOMAIN}/p2"}
_FINAL = {"closed", "escalated", "rejected", "aborted"}


def write(work: Path) -> dict[str, Path]:
    write_keys(work / "keys", AGENTS)
    c, p1, p2 = AGENTS["coordinator"], AGENTS["p1"], AGENTS["p2"]
    origin = {"agent": p1, "exec": "origin"}
    members = [
        ("p1", "m1", "restorable"),
        ("p2", "m2", "restorable"),
        ("p2", "m3", "compensable"),
        ("p1", "m4", "compensable"),
        ("p2", "m5", "restorable"),
        ("p1", "m6", "restorable"),
    ]
    execs: dict[str, list[dict[str, Any]]] = {"p1": [], "p2": []}
    origin_steps: list[dict[str, Any]] = [
        {"checkpoint": "start"},
        {"apply": {"record": {"key": "o", "value": 1}}},
    ]
    for owner, name, kind in members:
        consumer = {"agent": AGENTS[owner], "exec": name}
        origin_steps.append(
            {"depend": {"consumer": consumer, "produced_after": 1, "consumed_after": 1}}
        )
        change = (
            {"record": {"key": "w", "value": name}}
            if kind == "restorable"
            else {"ticket": {"id": f"T-{name}", "status": "done"}}
        )
        execs[owner].append(
            {
                "id": name,
                "reversibility": kind,
                "authority": [c],
                "steps": [
                    {"checkpoint": "start"},
                    {"depend": {"producer": origin, "produced_after": 1, "consumed_after": 1}},
                    {"apply": change},
                    {"complete": "done"},
                ],
            }
        )
    execs["p1"].insert(
        0, {"id": "origin", "reversibility": "restorable", "authority": [c], "steps": origin_steps}
    )
    common = {
        "trusted_keys": "keys/jwks.json",
        "peers_file": "peers.json",
        "retry": {
            "initial": 300,
            "ceiling": 1200,
            "attempts": 8,
            "patience": 60000,
            "follow_up_interval": 500,
            "follow_up": 120000,
        },
    }
    configs = {
        "coordinator": {
            **common,
            "agent": c,
            "key": "keys/coordinator.jwk",
            "state": "state/coordinator.db",
            "trace": "trace/coordinator.jsonl",
            "coordinator": {"executions": [{**origin, "authority": [c]}]},
        },
        "p1": {
            **common,
            "agent": p1,
            "key": "keys/p1.jwk",
            "state": "state/p1.db",
            "resource": "state/p1-resource.db",
            "trace": "trace/p1.jsonl",
            "executions": execs["p1"],
        },
        "p2": {
            **common,
            "agent": p2,
            "key": "keys/p2.jwk",
            "state": "state/p2.db",
            "resource": "state/p2-resource.db",
            "trace": "trace/p2.jsonl",
            "executions": execs["p2"],
        },
    }
    paths = {}
    for name, config in configs.items():
        paths[name] = work / f"{name}.json"
        paths[name].write_text(json.dumps(config), encoding="utf-8")
    return paths


def _setup_done(cluster: Cluster) -> bool:
    plans = [x["plan"] for n in ("p1", "p2") for x in cluster.state(n)["executions"]]
    if "error" in plans:
        raise ClusterError("setup failed")
    return all(p == "done" for p in plans)


def _finished(cluster: Cluster) -> bool:
    recoveries = cluster.state("coordinator").get("recoveries", [])
    if not recoveries or any(r["state"] not in _FINAL or r["busy"] for r in recoveries):
        return False
    return all(x["state"] == "idle" for n in ("p1", "p2") for x in cluster.state(n)["executions"])


def trial(work: Path, kill_after: float | None, timeout: float) -> dict[str, Any]:
    paths = write(work)
    result: dict[str, Any] = {"completed": False, "double_effects": 0, "chains_verified": False}
    with Cluster(work) as cluster:
        for name, path in paths.items():
            cluster.add(name, AGENTS[name], path)
        cluster.start(timeout=timeout)
        cluster.wait("setup", lambda: _setup_done(cluster), timeout=timeout)
        started = time.monotonic()
        cluster.fail(
            "p1",
            {
                "exec": "origin",
                "failure_type": "execution-error",
                "checkpoint": 1,
                "effect_state": "complete",
            },
        )
        if kill_after is not None:
            time.sleep(kill_after)
            coordinator = cluster.agents["coordinator"]
            coordinator.extra["port"] = int(coordinator.url.rsplit(":", 1)[1])
            cluster.kill("coordinator")
            # Where the kill fell: before the coordinator's record was committed,
            # the restarted coordinator has real recovery work left to do.
            with Store(work / "state" / "coordinator.db", readonly=True) as store:
                result["killed_before_record"] = store.count(AGENTS["coordinator"]) == 0
            cluster.start(["coordinator"], timeout=timeout)
        try:
            cluster.wait("the recovery", lambda: _finished(cluster), timeout=timeout)
            result["completed"] = True
        except ClusterError as exc:
            result["error"] = str(exc)
        result["seconds"] = time.monotonic() - started
        undo: dict[str, int] = {}
        for n in ("p1", "p2"):
            for row in cluster.state(n)["resource"]["undo"]:
                undo[row["exec"]] = undo.get(row["exec"], 0) + 1
        result["undo"] = undo
        result["double_effects"] = sum(1 for count in undo.values() if count > 1)
        cluster.stop()
    verifier = Verifier(load_jwk_set(work / "keys" / "jwks.json"))
    ok = True
    records = 0
    for name in AGENTS:
        with Store(work / "state" / f"{name}.db", readonly=True) as store:
            for chain in store.chains():
                report = verify_log((e.token for e in store.entries(chain)), verifier, issuer=chain)
                ok = ok and report.ok
                records += report.checked
    result["chains_verified"] = ok and records > 0
    result["records"] = records
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    try:
        calibration = trial(root / "calibration", None, args.timeout)
        span = max(0.2, float(calibration["seconds"]))
        print(
            f"undisturbed recovery: {span:.2f} s, {calibration['records']} records, "
            f"completed {calibration['completed']}"
        )
        totals = {"completed": 0, "double_effects": 0, "chains_verified": 0}
        before_record = 0
        for n in range(args.trials):
            delay = rng.uniform(0.0, span)
            outcome = trial(root / f"trial-{n}", delay, args.timeout)
            totals["completed"] += int(outcome["completed"])
            totals["double_effects"] += outcome["double_effects"]
            totals["chains_verified"] += int(outcome["chains_verified"])
            before_record += int(outcome.get("killed_before_record", False))
            print(
                f"trial {n:>2}: SIGKILL after {delay:.3f} s"
                f"{' (before the record)' if outcome.get('killed_before_record') else ''}"
                f" -> completed {outcome['completed']}"
                f" in {outcome['seconds']:.2f} s, undo {sorted(outcome['undo'].items())}, "
                f"double {outcome['double_effects']}, chains {outcome['chains_verified']} "
                f"({outcome['records']} records) {outcome.get('error', '')}"
            )
            shutil.rmtree(root / f"trial-{n}", ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {"trials": args.trials, **totals, "killed_before_record": before_record}
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
