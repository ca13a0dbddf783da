"""The end-to-end demonstration: a scenario played by real agent processes.

:func:`run_demo` writes the agents' configurations, starts one ``agent-recovery
serve`` process per agent on loopback, lets their work run (real changes to
device configurations, tickets and notifications), injects the scenario's
failure, waits for the whole recovery to finish over real HTTP, stops every
process, then exports and verifies the recovery log and draws the dependency
graph with the rollback set. Nothing here takes part in the protocol: it
starts, watches and reports.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import Store
from ._cluster import Cluster
from ._picture import Node, render_svg
from ._scenario import Scenario, load_scenario

__all__ = ["DemoResult", "run_demo"]

_TERMINAL = {"closed", "escalated", "rejected", "aborted"}
_BINDINGS = {
    "http": "HTTP (draft §12.2)",
    "a2a": "A2A extension over a2a-sdk (draft §12.3); work delegated as A2A tasks",
}
_DONE_PLANS = {"done", "held", "failed", "stopped", "error"}


@dataclass(slots=True)
class DemoResult:
    """What the demonstration produced; ``summary()`` is the ``--json`` object."""

    scenario: Scenario
    workdir: Path
    binding: str = "http"
    recovery: str = ""
    result: str = ""
    origin: tuple[str, str] = ("", "")
    members: list[dict[str, Any]] = field(default_factory=list)
    untouched: list[tuple[str, str]] = field(default_factory=list)
    verified: bool = False
    verify_output: str = ""
    chains: int = 0
    records: int = 0
    paths: dict[str, str] = field(default_factory=dict)
    timeline: list[str] = field(default_factory=list)
    elapsed_ms: int = 0
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verified and self.result in ("completed", "partial")

    def by_outcome(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for m in self.members:
            out.setdefault(m["outcome"], []).append(m["exec"])
        out["untouched"] = [exec_id for _, exec_id in self.untouched]
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "scenario": self.scenario.title,
            "binding": self.binding,
            "recovery": self.recovery,
            "result": self.result,
            "origin": self.origin[1],
            "members": self.by_outcome(),
            "records": {"verified": self.verified, "chains": self.chains, "count": self.records},
            "recovery_ms": self.elapsed_ms,
            "paths": self.paths,
        }


def run_demo(
    scenario_path: Path,
    out: Path,
    *,
    say: Callable[[str], None] = print,
    timeout: float = 60.0,
    binding: str = "http",
) -> DemoResult:
    """Play ``scenario_path`` with one process per agent; write everything under ``out``.

    ``binding`` is what the agents speak: ``http`` (draft §12.2) or ``a2a``
    (draft §12.3: a2a-sdk servers and clients; the work is delegated as A2A
    tasks, and the failure reaches the coordinator as a failed task).
    """
    scenario = load_scenario(scenario_path)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result = DemoResult(scenario=scenario, workdir=out, binding=binding)
    configs = scenario.write_configs(out)
    say(f"== {scenario.title}")
    say(f"   {len(configs)} agents, one process each, on 127.0.0.1 (ephemeral ports)")
    say(f"   binding: {_BINDINGS.get(binding, binding)}")
    clock = time.monotonic()
    with Cluster(out, binding=binding) as cluster:
        for name, path in configs.items():
            cluster.add(name, scenario.agent_id(name), path)
        cluster.start(timeout=timeout)
        say(f"   all agents serving after {time.monotonic() - clock:.1f} s")
        for name, proc in cluster.agents.items():
            say(f"   {name:<10} {proc.url}  pid {proc.process.pid if proc.process else '-'}")
        say("== work: the change is carried out")
        clock = time.monotonic()
        cluster.wait("the work to finish", lambda: _work_done(cluster), timeout=timeout)
        say(f"   work finished after {time.monotonic() - clock:.1f} s")
        before = cluster.states()
        failure = dict(scenario.failure)
        victim = failure.pop("agent")
        say(f"== failure injected at {victim}: {failure.get('failure_type')}")
        started = time.monotonic()
        cluster.fail(victim, failure)
        coordinators = [n for n, a in scenario.agents.items() if a.get("coordinator")]
        cluster.wait(
            "the recovery to finish",
            lambda: _recovery_done(cluster, coordinators),
            timeout=timeout,
        )
        result.elapsed_ms = round((time.monotonic() - started) * 1000)
        after = cluster.states()
        clock = time.monotonic()
        cluster.stop()
        say(
            f"== recovery finished in {result.elapsed_ms} ms; agents stopped in "
            f"{time.monotonic() - clock:.1f} s"
        )
        result.resources = {
            n: {"before": before[n]["resource"], "after": after[n]["resource"]} for n in after
        }
        traces = cluster.traces(sorted((out / "trace").glob("*.jsonl")))
    _collect_records(result, out, coordinators)
    result.timeline = _timeline(scenario, traces)
    for line in result.timeline:
        say(line)
    clock = time.monotonic()
    _verify(result, out)
    say(f"== records verified in {time.monotonic() - clock:.1f} s: {result.verified}")
    _draw(result, traces)
    (out / "timeline.txt").write_text("\n".join(result.timeline) + "\n", encoding="utf-8")
    result.paths["timeline"] = str(out / "timeline.txt")
    (out / "state.json").write_text(json.dumps(result.resources, indent=2) + "\n", "utf-8")
    result.paths["state"] = str(out / "state.json")
    return result


def _work_done(cluster: Cluster) -> bool:
    for state in cluster.states().values():
        for x in state["executions"]:
            if x["plan"] not in _DONE_PLANS:
                return False
    return True


def _recovery_done(cluster: Cluster, coordinators: list[str]) -> bool:
    states = cluster.states()
    recoveries = [r for n in coordinators for r in states[n].get("recoveries", [])]
    if not recoveries or any(r["state"] not in _TERMINAL or r["busy"] for r in recoveries):
        return False
    # draft §8.3: done when every member has been resumed (contained no more).
    return all(x["state"] == "idle" for s in states.values() for x in s["executions"])


def _payload(token: bytes) -> dict[str, Any]:
    segment = token.split(b".")[1]
    data: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    )
    return data


def _collect_records(result: DemoResult, out: Path, coordinators: list[str]) -> None:
    """Export every agent's chain to one JSON Lines log; read the coordinator's verdict."""
    log = out / "recovery-log.jsonl"
    chains = 0
    count = 0
    latest: dict[str, Any] | None = None
    with log.open("w", encoding="utf-8") as handle:
        for name in result.scenario.agents:
            path = out / "state" / f"{name}.db"
            if not path.exists():
                continue
            with Store(path, readonly=True) as store:
                for chain in store.chains():
                    chains += 1
                    for entry in store.entries(chain):
                        count += 1
                        record = _payload(entry.token)
                        handle.write(
                            json.dumps(
                                {
                                    "chain": entry.chain,
                                    "seq": entry.seq,
                                    "id": entry.record_id,
                                    "recovery": entry.recovery,
                                    "jws": entry.token.decode("ascii"),
                                    "record": record,
                                },
                                separators=(",", ":"),
                            )
                            + "\n"
                        )
                        coordinator = name in coordinators and record.get("to") == record["from"]
                        if coordinator and (latest is None or record["seq"] > latest["seq"]):
                            latest = record
    result.chains, result.records = chains, count
    result.paths["log"] = str(log)
    if latest is None:
        return
    result.recovery = latest["recovery"]
    result.result = latest["result"]
    members = []
    for m in latest["members"]:
        agent, exec_id = m["execution"]["agent"], m["execution"]["exec"]
        members.append(
            {
                "agent": agent,
                "exec": exec_id,
                "outcome": m.get("outcome") or "unknown",
                "action": m["action"],
                "target": m["target"],
                "reason": m["reason"]["kind"],
                "residual": [r["description"] for r in m.get("residual", [])],
            }
        )
        if m["reason"]["kind"] == "origin":
            result.origin = (agent, exec_id)
    result.members = members
    inside = {(m["agent"], m["exec"]) for m in members}
    result.untouched = [
        (result.scenario.agent_id(n), x["id"])
        for n, x in result.scenario.executions()
        if (result.scenario.agent_id(n), x["id"]) not in inside
    ]


def _verify(result: DemoResult, out: Path) -> None:
    """Check the exported log with the records verifier (``agent-recovery records verify``)."""
    command = [
        sys.executable,
        "-m",
        "agent_recovery.cli",
        "records",
        "verify",
        str(out / "recovery-log.jsonl"),
        "--keys",
        str(out / "keys" / "jwks.json"),
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    result.verify_output = done.stdout.strip()
    try:
        verdict = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        verdict = {}
    result.verified = done.returncode == 0 and verdict.get("ok") is True


def _draw(result: DemoResult, traces: list[dict[str, Any]]) -> None:
    scenario = result.scenario
    members = {(m["agent"], m["exec"]): m for m in result.members}
    nodes: list[Node] = []
    for name, x in scenario.executions():
        agent = scenario.agent_id(name)
        m = members.get((agent, x["id"]))
        if m is None:
            category, note = "untouched", "not in the rollback set: continues"
        elif m["reason"] == "origin":
            category, note = "failed", f"failed; {m['outcome']} to checkpoint {m['target']}"
        else:
            category = m["outcome"]
            note = {
                "restored": f"restored to checkpoint {m['target']}",
                "compensated": f"compensated after checkpoint {m['target']}",
                "irreversible": f"irreversible: {len(m['residual'])} effect(s) remain",
                "not-needed": "nothing to undo; resumed",
            }.get(category, f"{category} ({m['action']})")
            if m["action"] == "cancel-restore":
                note = f"cancelled, restored to checkpoint {m['target']}"
        nodes.append(
            Node(
                key=(name, x["id"]),
                agent=name,
                label=x["id"],
                category=category,
                note=note,
                reversibility=x["reversibility"],
            )
        )
    edges = []
    for t in traces:
        if t["kind"] == "consume":
            producer = t["producer"]
            edges.append(
                (
                    (_short(scenario, producer[0]), producer[1]),
                    (_short(scenario, t["agent"]), t["exec"]),
                    int(t["produced_after"]),
                    int(t["consumed_after"]),
                )
            )
    targets = {(_short(scenario, a), e): m["target"] for (a, e), m in members.items()}
    subtitle = (
        f"Recovery {result.recovery}: result {result.result}, {len(result.members)} members; "
        f"records {'verified' if result.verified else 'NOT verified'}."
    )
    svg = render_svg(
        title=scenario.title, subtitle=subtitle, nodes=nodes, edges=edges, targets=targets
    )
    path = result.workdir / "rollback-set.svg"
    path.write_text(svg, encoding="utf-8")
    result.paths["picture"] = str(path)


def _short(scenario: Scenario, agent: str) -> str:
    prefix = f"spiffe://{scenario.trust_domain}/"
    return agent[len(prefix) :] if agent.startswith(prefix) else agent


# -- the timeline ---------------------------------------------------------------------

_WORK_KINDS = {"checkpoint", "effect", "consume", "completed", "hold"}


def _timeline(scenario: Scenario, traces: list[dict[str, Any]]) -> list[str]:
    """The readable story of what happened, from every agent's trace."""
    lines: list[str] = []
    failure_at = next((t["at"] for t in traces if t["kind"] == "failure"), None)
    start = traces[0]["at"] if traces else 0
    for t in traces:
        zero = failure_at if failure_at is not None and t["at"] >= failure_at else start
        text = _describe(scenario, t)
        if text is None:
            continue
        if t["kind"] == "failure":
            lines.append("== recovery (times from the failure signal)")
        stamp = f"+{(t['at'] - zero) / 1000:7.3f}s"
        lines.append(f"{stamp}  {_short(scenario, t['agent']):<10} {text}")
    return lines


def _describe(scenario: Scenario, t: dict[str, Any]) -> str | None:
    kind = t["kind"]

    def short(agent: str) -> str:
        return _short(scenario, agent)

    if kind in _WORK_KINDS:
        if kind == "checkpoint":
            return f"  {t['exec']}: checkpoint {t['seq']} ({t.get('note') or ''})"
        if kind == "effect":
            return f"  {t['exec']}: {t['text']}"
        if kind == "consume":
            return (
                f"  {t['exec']}: used {t['output']!r} of {short(t['producer'][0])}/"
                f"{t['producer'][1]} (made after its checkpoint {t['produced_after']})"
            )
        if kind == "completed":
            return f"  {t['exec']}: completed ({t.get('note') or ''})"
        return f"  {t['exec']}: on hold ({t.get('note') or ''})"
    if kind == "delegated":
        return f"-> delegated {t['exec']} to {short(t['to'])} as A2A task {t['task'][:8]}"
    if kind == "task" and t["state"] != "working":
        carried = ", failure-signal in its status message" if t.get("signal") else ""
        return f"  {t['exec']}: A2A task {t['task'][:8]} {t['state'].upper()}{carried}"
    if kind == "task-signal":
        return f"<- failure-signal read from the status of A2A task {(t['task'] or '')[:8]}"
    if kind == "failure":
        return (
            f"FAILURE {t['exec']}: {t['failure_type']}, last good checkpoint "
            f"{t['checkpoint']}; signal {t['signal']} -> {short(t['to'])}"
        )
    if kind == "recovery-started":
        return f"recovery {t['recovery']} opened for {t['origin'][1]} (trigger {t['trigger']})"
    if kind == "send" and t["type"] in ("halt", "rollback", "resume"):
        extra = ""
        if t["type"] == "rollback":
            extra = f" {t.get('action')} to checkpoint {t.get('target')}"
        return f"-> {t['type']:<8} {t['exec'][1]} @ {short(t['to'])}{extra}"
    if kind == "recv" and t["type"] == "halted":
        return f"<- halted   {t['exec'][1]} (from {short(t['from'])})"
    if kind in ("send", "recv") and t["type"] == "rollback-result":
        if kind == "recv":
            return f"<- result   {t['exec'][1]}: {t.get('outcome')} (from {short(t['from'])})"
        return None
    if kind == "undo":
        details = "; ".join(t.get("details") or []) or "nothing left to undo"
        return f"  {t['exec']}: {t['outcome'].upper()} ({t['action']}): {details}"
    if kind == "halted":
        return f"  {t['exec']}: contained (no effects, no outputs)"
    if kind == "resumed":
        return f"  {t['exec']}: released ({t.get('outcome') or 'unaffected'})"
    if kind == "recovery-ended":
        return f"recovery {t['recovery']} ended: {t['state']}, result {t['result']}"
    if kind == "undelivered":
        return f"(undelivered {t['type']} to {short(t['to'])}: retried by the engine)"
    if kind == "refused":
        return f"(refused: {t.get('code')} {t.get('detail') or ''})"
    return None
