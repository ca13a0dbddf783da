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

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_runs_the_whole_recovery_and_verifies_it(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "agent_recovery.cli", "demo", "--json", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
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
