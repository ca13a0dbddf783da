"""End-to-end recovery over real HTTP between agent processes, against a signed-echo baseline.

One coordinator process and ``--participants`` participant processes (``agent-
recovery serve``) host three independent rollback sets of 10, 100 and 1,000
members (``--sizes``): an origin execution and its consumers, spread round robin
over the participants, every consumer having used output the origin made after
the checkpoint it is restored to. For each size the bench injects the origin's
failure and measures the time from the failure signal to the coordinator's
recovery record, signed, chained and verified by the bench (draft §11): halt,
discovery, rollback in reverse dependency order, results, record.

Baseline, in the same run: the same number of signed HTTP round trips (every
message of the recovery is one POST: signal, halts, rollbacks, results,
resumes) in the same phases and at the same concurrency, between processes
that only verify the request's signature and answer with a signed reply, with
no protocol logic and no persistence. ``ratio`` = protocol time / baseline time.

What is measured is the protocol: every engine step is committed to the
agents' stores (SQLite, ``synchronous=FULL``) exactly as in production. The
application's own state, the configuration each undo restores, is kept in
memory by default (``--app-state memory``): making it durable is the
application's cost, the same with or without this protocol, and the baseline
has no application. ``--app-state file`` keeps it in a SQLite file per
participant (one synced commit per undo) and includes that cost.

    python bench/e2e.py [--sizes 10,100,1000] [--participants 4] [--app-state memory|file]

The last line is one JSON object. Figures are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from agent_recovery._records import verify_log
from agent_recovery.bindings.http import (
    JWS_MEDIA_TYPE,
    Answer,
    RecoveryClient,
    build_app,
    listen,
)
from agent_recovery.runtime._scenario import write_keys
from agent_recovery.security import Signer, Verifier, load_jwk_set

DOMAIN = "spiffe://bench.example"
COORDINATOR = f"{DOMAIN}/coordinator"


def _participant(i: int) -> str:
    return f"{DOMAIN}/p{i}"


# -- configuration ------------------------------------------------------------------------


def write_configs(
    work: Path, sizes: list[int], participants: int, app_state: str = "memory"
) -> dict[str, Path]:
    names = {"coordinator": COORDINATOR} | {f"p{i}": _participant(i) for i in range(participants)}
    write_keys(work / "keys", names)
    # Generous timers: no retransmission while a large set is still being processed.
    retry = {"initial": 60000, "ceiling": 120000, "attempts": 4, "patience": 600000}
    executions: dict[int, list[dict[str, Any]]] = {i: [] for i in range(participants)}
    coordinated = []
    for size in sizes:
        origin_agent = _participant(0)
        origin = f"g{size}-origin"
        steps: list[dict[str, Any]] = [{"checkpoint": "start"}, {"checkpoint": "mid"}]
        for m in range(1, size):
            # The origin's agent runs only origins: members live on the others.
            owner = 1 + m % (participants - 1)
            consumer = {"agent": _participant(owner), "exec": f"g{size}-m{m}"}
            steps.append(
                {"depend": {"consumer": consumer, "produced_after": 2, "consumed_after": 1}}
            )
            executions[owner].append(
                {
                    "id": consumer["exec"],
                    "reversibility": "restorable",
                    "authority": [COORDINATOR],
                    "steps": [
                        {"checkpoint": "start"},
                        {
                            "depend": {
                                "producer": {"agent": origin_agent, "exec": origin},
                                "produced_after": 2,
                                "consumed_after": 1,
                            }
                        },
                        {"apply": {"record": {"key": "work", "value": m}}},
                        {"complete": "done"},
                    ],
                }
            )
        executions[0].append(
            {
                "id": origin,
                "reversibility": "restorable",
                "authority": [COORDINATOR],
                "steps": steps,
            }
        )
        coordinated.append({"agent": origin_agent, "exec": origin, "authority": [COORDINATOR]})
    common = {
        "trusted_keys": "keys/jwks.json",
        "peers_file": "peers.json",
        "retry": retry,
        "rate_limits": {"failure-signal": {"burst": 1000, "interval_ms": 1}},
    }
    configs = {}
    coordinator = {
        **common,
        "agent": COORDINATOR,
        "key": "keys/coordinator.jwk",
        "state": "state/coordinator.db",
        "coordinator": {"executions": coordinated},
    }
    configs["coordinator"] = coordinator
    for i in range(participants):
        configs[f"p{i}"] = {
            **common,
            "agent": _participant(i),
            "key": f"keys/p{i}.jwk",
            "state": f"state/p{i}.db",
            "executions": executions[i],
        }
        if app_state == "file":
            configs[f"p{i}"]["resource"] = f"state/p{i}-resource.db"
    paths = {}
    for name, config in configs.items():
        paths[name] = work / f"{name}.json"
        paths[name].write_text(json.dumps(config), encoding="utf-8")
    return paths


# -- processes -------------------------------------------------------------------------------


def start(command: list[str], ready: Path, log: Path) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def wait_ready(ready: Path, process: subprocess.Popen[bytes], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"process for {ready.name} did not start")
        time.sleep(0.02)
    url: str = json.loads(ready.read_text())["url"]
    return url


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# -- the protocol run ---------------------------------------------------------------------------


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


def protocol(
    work: Path, sizes: list[int], participants: int, app_state: str = "memory"
) -> dict[int, dict[str, Any]]:
    paths = write_configs(work, sizes, participants, app_state)
    (work / "run").mkdir(exist_ok=True)
    processes, urls = [], {}
    try:
        for name, path in paths.items():
            ready = work / "run" / f"{name}.ready"
            processes.append(
                start(
                    [
                        sys.executable,
                        "-m",
                        "agent_recovery.cli",
                        "serve",
                        "--config",
                        str(path),
                        "--port",
                        "0",
                        "--ready",
                        str(ready),
                    ],
                    ready,
                    work / "run" / f"{name}.log",
                )
            )
        for (name, _), process in zip(paths.items(), processes, strict=True):
            urls[name] = wait_ready(work / "run" / f"{name}.ready", process)
        agents = {COORDINATOR: urls["coordinator"]} | {
            _participant(i): urls[f"p{i}"] for i in range(participants)
        }
        (work / "peers.json").write_text(json.dumps(agents))
        http = httpx.Client(timeout=600, trust_env=False)
        deadline = time.monotonic() + 600
        while True:  # the work (checkpoints, dependencies) is recorded
            states = [http.get(u + "/admin/state").json() for u in urls.values()]
            plans = [x["plan"] for s in states for x in s["executions"]]
            if "error" in plans:
                raise SystemExit("setup failed: see the agents' logs in " + str(work / "run"))
            if all(p == "done" for p in plans):
                break
            if time.monotonic() > deadline:
                raise SystemExit("setup did not finish")
            time.sleep(0.2)
        verifier = Verifier(load_jwk_set(work / "keys" / "jwks.json"))
        results = {}
        seen = 0
        for size in sizes:
            t0 = time.perf_counter()
            response = http.post(
                urls["p0"] + "/admin/fail",
                json={
                    "exec": f"g{size}-origin",
                    "failure_type": "execution-error",
                    "checkpoint": 1,
                    "effect_state": "complete",
                },
            )
            response.raise_for_status()
            while True:  # the record: issued, fetched, verified
                tokens = http.get(
                    urls["coordinator"] + "/admin/records", params={"since": seen}
                ).json()["records"]
                mine = [t for t in tokens if _payload(t).get("to") == COORDINATOR]
                if mine:
                    break
                # Each poll is a request the coordinator serves: the interval grows
                # with the time elapsed (an error of at most ~0.5%), so that polling
                # does not load the process being measured.
                time.sleep(min(0.05, 0.005 + (time.perf_counter() - t0) / 200))
            all_tokens = http.get(urls["coordinator"] + "/admin/records").json()["records"]
            report = verify_log((t.encode() for t in all_tokens), verifier, issuer=COORDINATOR)
            elapsed = time.perf_counter() - t0
            record = _payload(mine[0])
            outcomes: dict[str, int] = {}
            for m in record["members"]:
                outcomes[m.get("outcome") or "unknown"] = (
                    outcomes.get(m.get("outcome") or "unknown", 0) + 1
                )
            results[size] = {
                "seconds": elapsed,
                "verified": report.ok,
                "result": record["result"],
                "members": len(record["members"]),
                "outcomes": outcomes,
            }
            seen = len(all_tokens)
            # Let the releases finish before the next size.
            time.sleep(0.5 + size / 1000)
        http.close()
        return results
    finally:
        stop(processes)


# -- the baseline -----------------------------------------------------------------------------


def echo_server(key: Path, jwks: Path, ready: Path) -> None:
    """Verify each request's signature, answer with a signed reply; nothing else."""
    import uvicorn

    signer = Signer.from_file(key)
    verifier = Verifier(load_jwk_set(jwks))
    counter = 0

    async def handle(body: bytes) -> Answer:
        nonlocal counter
        verified = verifier.verify(body)
        counter += 1
        reply = b'{"v":1,"type":"ack","id":"e%d","reply_to":"%d","n":%d}' % (
            counter,
            len(verified.payload),
            counter,
        )
        return Answer(status=200, body=signer.sign(reply), content_type=JWS_MEDIA_TYPE)

    sock = listen()
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(build_app(handle), log_level="warning", access_log=False, lifespan="off")
    )
    tmp = ready.with_name(ready.name + ".tmp")  # written whole: the bench polls for it
    tmp.write_text(json.dumps({"url": f"http://{host}:{port}", "pid": os.getpid()}))
    tmp.replace(ready)
    asyncio.run(server.serve(sockets=[sock]))


def phases(size: int) -> list[int]:
    """Round trips of one recovery of ``size`` members, phase by phase, as the protocol runs."""
    others = size - 1
    # signal; halt the origin; halt the others; roll the others back (each result
    # comes back in the response); roll the origin back; resume everyone.
    return [1, 1, others, others, 1, size]


async def baseline_run(
    urls: list[str], key: Path, verifier: Verifier, size: int, limit: int
) -> float:
    signer = Signer.from_file(key)
    counter = 0
    async with RecoveryClient(max_connections=limit) as client:
        semaphore = asyncio.Semaphore(limit)

        async def one(i: int) -> None:
            nonlocal counter
            counter += 1
            body = signer.sign(b'{"v":1,"type":"halt","id":"b%d","i":%d}' % (counter, i))
            async with semaphore:
                delivery = await client.send(
                    urls[i % len(urls)] + "/.well-known/agent-recovery", body
                )
            assert delivery.reply is not None
            verifier.verify(delivery.reply)

        await one(0)  # warm the connections, as the protocol run's setup did
        t0 = time.perf_counter()
        for n in phases(size):
            await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0


def baseline(work: Path, sizes: list[int], participants: int) -> dict[int, float]:
    keys = work / "keys"
    (work / "run").mkdir(exist_ok=True)
    processes, urls = [], []
    try:
        for i in range(participants + 1):
            ready = work / "run" / f"echo{i}.ready"
            key = keys / ("coordinator.jwk" if i == 0 else f"p{i - 1}.jwk")
            processes.append(
                start(
                    [
                        sys.executable,
                        __file__,
                        "--echo-server",
                        str(key),
                        str(keys / "jwks.json"),
                        str(ready),
                    ],
                    ready,
                    work / "run" / f"echo{i}.log",
                )
            )
        for i, process in enumerate(processes):
            urls.append(wait_ready(work / "run" / f"echo{i}.ready", process))
        verifier = Verifier(load_jwk_set(keys / "jwks.json"))
        # The same concurrency as the coordinator's client (its connection pool).
        return {
            size: asyncio.run(baseline_run(urls[1:], keys / "coordinator.jwk", verifier, size, 100))
            for size in sizes
        }
    finally:
        stop(processes)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--echo-server":
        echo_server(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--participants", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--app-state",
        choices=["memory", "file"],
        default="memory",
        help="where participants keep the state their undo restores (see the docstring)",
    )
    args = parser.parse_args()
    if args.participants < 2:
        parser.error("--participants must be at least 2")
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    print(f"work directory: {work}")
    t = time.perf_counter()
    measured = protocol(work, sizes, args.participants, args.app_state)
    print(f"protocol run (with setup): {time.perf_counter() - t:.1f} s")
    base = baseline(work, sizes, args.participants)
    out = {
        "sizes": sizes,
        "participants": args.participants,
        "app_state": args.app_state,
        "protocol_s": [],
        "baseline_s": [],
        "ratio": [],
        "round_trips": [],
        "verified": [],
        "results": [],
    }
    print(f"{'members':>8} {'round trips':>12} {'protocol s':>11} {'baseline s':>11} {'ratio':>7}")
    for size in sizes:
        p, b = measured[size]["seconds"], base[size]
        trips = sum(phases(size))
        print(
            f"{size:>8} {trips:>12} {p:>11.3f} {b:>11.3f} {p / b:>7.2f}  "
            f"{measured[size]['result']} {measured[size]['outcomes']}"
        )
        out["protocol_s"].append(round(p, 4))
        out["baseline_s"].append(round(b, 4))
        out["ratio"].append(round(p / b, 2))
        out["round_trips"].append(trips)
        out["verified"].append(measured[size]["verified"])
        out["results"].append(measured[size]["result"])
    out["ratio_at_max"] = out["ratio"][-1]
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
