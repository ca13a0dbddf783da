"""``agent-recovery demo``: seven agent processes, a real failure, a verified recovery.

This is the README's first command. It runs here exactly as a user runs it (a
subprocess, real processes, real HTTP on loopback) and the test checks what
it promises: the recovery's outcome per member, the untouched executions,
the real state before and after, the verified log, the picture.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _demo(out: Path, binding: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_recovery.cli",
            "demo",
            "--json",
            "--out",
            str(out),
            "--binding",
            binding,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return done, summary


@pytest.fixture(scope="module")
def http_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("http") / "demo"
    return (out, *_demo(out, "http"))


def test_the_demo_runs_the_whole_recovery_and_verifies_it(
    http_demo: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    out, done, summary = http_demo
    assert summary["ok"] is True
    assert summary["origin"] == "chg-1042/verify"
    # An irreversible member makes the result partial, never "completed" (draft §11).
    assert summary["result"] == "partial"
    members = summary["members"]
    assert sorted(members["restored"]) == [
        "chg-1042/push-r1",
        "chg-1042/push-r2",
        "chg-1042/push-r3",
        "chg-1042/verify",
    ]
    assert members["compensated"] == ["chg-1042/ticket"]
    assert members["irreversible"] == ["chg-1042/notify"]
    # The forecast used only the baseline made before the verifier's restore point.
    assert sorted(members["untouched"]) == ["chg-1042/forecast", "chg-1042/plan"]
    assert summary["records"]["verified"] is True
    assert summary["records"]["count"] >= 7  # the coordinator's and each member's

    # The timeline tells the story in order: contain, then restore, then close.
    text = done.stdout
    assert text.index("FAILURE chg-1042/verify") < text.index("-> halt")
    assert text.index("-> halt") < text.index("-> rollback") < text.index("-> resume")
    assert text.index("-> rollback chg-1042/notify") < text.index("-> rollback chg-1042/verify")

    # Real state: configurations restored, the ticket compensated, mail still sent.
    state = json.loads(Path(summary["paths"]["state"]).read_text())
    r1 = state["pusher-r1"]
    assert "vlan 42 name customer-42" in r1["before"]["config"]["r1.example.net"]
    assert r1["after"]["config"]["r1.example.net"] == [
        "hostname r1",
        "interface xe-0/0/1 description uplink-a",
        "interface xe-0/0/1 mtu 9192",
    ]
    ticket = state["ticketing"]["after"]["tickets"][0]
    assert (ticket["id"], ticket["status"]) == ("CHG-1042", "cancelled")
    assert len(state["notifier"]["after"]["notifications"]) == 2
    assert state["planner"]["after"]["records"]["chg-1042/forecast:forecast"]

    picture = Path(summary["paths"]["picture"]).read_text()
    assert picture.startswith("<svg") and picture.rstrip().endswith("</svg>")
    for word in ("Legend", "failed", "restored", "compensated", "irreversible", "untouched"):
        assert word in picture
    log = Path(summary["paths"]["log"]).read_text().splitlines()
    assert len(log) == summary["records"]["count"]
    # Every process was stopped.
    for ready in (out / "run").glob("*.ready.json"):
        pid = json.loads(ready.read_text())["pid"]
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )


@pytest.mark.slow  # seven a2a-sdk processes: ~25-35 s on two busy cores
def test_the_a2a_demo_has_the_same_outcome_as_the_http_demo(
    tmp_path: Path, http_demo: tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    """The same scenario over a2a-sdk agents (draft §12.3): same members, same outcome."""
    _, _, http = http_demo
    done, a2a = _demo(tmp_path / "demo", "a2a")
    assert a2a["ok"] is True and a2a["binding"] == "a2a"
    for key in ("scenario", "result", "origin"):
        assert a2a[key] == http[key]
    members = {k: sorted(v) for k, v in a2a["members"].items()}
    assert members == {k: sorted(v) for k, v in http["members"].items()}
    assert a2a["records"]["verified"] is True
    assert a2a["records"]["chains"] == http["records"]["chains"]
    assert Path(a2a["paths"]["picture"]).read_text().startswith("<svg")
    # The work was delegated as A2A tasks, and the failure came back as one.
    text = done.stdout
    assert "as A2A task" in text
    assert "FAILED, failure-signal in its status message" in text
    assert text.index("failure-signal read from the status") < text.index("-> halt")
