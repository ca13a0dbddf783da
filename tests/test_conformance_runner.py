"""The conformance kit, run from outside against our own server (a real process).

``agent-recovery serve --config conformance/fixture.json`` is the target and
``agent-recovery conformance --target URL --json`` the runner, as CI runs
them. The fixture is copied with a free port for the runner's listener so
parallel runs cannot collide. A second test points the runner at a server
that accepts everything and answers nothing: it must fail MUST checks and
exit non-zero, or the kit would prove nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from agent_recovery.bindings.http import Answer, build_app, listen, serving
from agent_recovery.conformance_kit import Level, Verdict, load_fixture, run_conformance

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "conformance"


def _fixture(tmp: Path) -> Path:
    """The fixture with absolute key paths and a free port for the runner's listener."""
    doc = json.loads((CONFORMANCE / "fixture.json").read_text())
    probe = listen()
    port = probe.getsockname()[1]
    probe.close()
    url = f"http://127.0.0.1:{port}"
    doc["key"] = str(CONFORMANCE / doc["key"])
    doc["trusted_keys"] = str(CONFORMANCE / doc["trusted_keys"])
    doc["peers"] = {agent: url for agent in doc["peers"]}
    section = doc["conformance"]
    section["listen"] = url
    section["agents"] = {a: str(CONFORMANCE / p) for a, p in section["agents"].items()}
    section["untrusted_key"] = str(CONFORMANCE / section["untrusted_key"])
    path = tmp / "fixture.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def _serve(fixture: Path, ready: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent_recovery.cli",
            "serve",
            "--config",
            str(fixture),
            "--port",
            "0",
            "--ready",
            str(ready),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return process


def test_our_server_passes_every_must(tmp_path: Path) -> None:
    fixture = _fixture(tmp_path)
    ready = tmp_path / "ready.json"
    server = _serve(fixture, ready)
    try:
        url = json.loads(ready.read_text())["url"]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "agent_recovery.cli",
                "conformance",
                "--target",
                url,
                "--fixture",
                str(fixture),
                "--vectors",
                str(CONFORMANCE / "vectors"),
                "--attacks",
                str(CONFORMANCE / "attacks"),
                "--scope",
                str(CONFORMANCE / "scope"),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["must_failed"] == 0, json.dumps(summary["failures"], indent=1)
    assert done.returncode == 0, done.stderr[-2000:]
    # Every check is listed with its level and section, and the groups the
    # issue asks for are all there.
    listed = [line for line in done.stdout.splitlines() if line[:4] in ("ok  ", "FAIL", "skip")]
    assert len(listed) == summary["checks"] >= 200
    assert summary["levels"]["MUST"]["pass"] >= 150
    text = done.stdout
    for group in (
        "HTTP binding",
        "message vectors",
        "attack corpus",
        "participant: happy path",
        "participant: duplicates",
        "participant: late messages",
        "participant: unknown recovery",
        "participant: busy and takeover",
        "coordinator: happy path",
        "coordinator: timeout gives unknown",
    ):
        assert f"== {group}" in text, group


def test_a_target_that_answers_nothing_fails(tmp_path: Path) -> None:
    fixture = load_fixture(_fixture(tmp_path))

    async def accept_everything(body: bytes) -> Answer:
        return Answer(status=204)

    async def main() -> None:
        async with serving(build_app(accept_everything), listen()) as url:
            report = await run_conformance(
                url,
                fixture,
                vectors=CONFORMANCE / "vectors",
                attacks=CONFORMANCE / "attacks",
                scope=tmp_path / "no-scope",
            )
        failed = [c for c in report.checks if c.verdict is Verdict.FAIL and c.level is Level.MUST]
        ids = {c.id for c in failed}
        assert report.must_failed == len(failed) > 50
        assert {"http.problem", "pt.halt.halted", "cc.happy.ack", "attack.alg-none"} <= ids
        summary = json.loads(report.to_json())
        assert summary["must_failed"] == report.must_failed

    asyncio.run(main())
