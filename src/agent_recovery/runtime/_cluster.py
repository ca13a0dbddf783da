"""Agent processes on loopback: start them, introduce them, watch them, stop them.

Used by ``agent-recovery demo``, the conformance test and the benchmarks.
Every agent is a separate OS process running ``agent-recovery serve`` on an
ephemeral port; it reports its URL in a ready file, and the cluster writes
the peers file every agent reads to find the others. The cluster is a context
manager: on leaving it (also on an exception) every process is stopped,
SIGTERM first and SIGKILL for any that does not exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = ["AgentProcess", "Cluster", "ClusterError"]


class ClusterError(Exception):
    """An agent process did not start, answer or finish in time."""


@dataclass(slots=True)
class AgentProcess:
    name: str
    agent: str
    config: Path
    ready: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    """A set of agent processes sharing one peers file."""

    def __init__(
        self, workdir: Path, *, peers_file: Path | None = None, binding: str = "http"
    ) -> None:
        self.workdir = workdir
        self.binding = binding  # passed to every ``serve`` (``--binding``)
        self.peers_file = peers_file if peers_file is not None else workdir / "peers.json"
        self.agents: dict[str, AgentProcess] = {}
        self.http = httpx.Client(timeout=10.0, trust_env=False)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.http.close()

    # -- processes ------------------------------------------------------------------

    def add(self, name: str, agent: str, config: Path) -> AgentProcess:
        proc = AgentProcess(
            name=name,
            agent=agent,
            config=config,
            ready=self.workdir / "run" / f"{name}.ready.json",
            log=self.workdir / "run" / f"{name}.log",
        )
        self.agents[name] = proc
        return proc

    def start(self, names: Sequence[str] | None = None, *, timeout: float = 30.0) -> None:
        """Start the named agents (default: all not running) and wait until each serves."""
        chosen = [self.agents[n] for n in (names or list(self.agents))]
        for proc in chosen:
            if proc.running:
                continue
            proc.ready.parent.mkdir(parents=True, exist_ok=True)
            proc.ready.unlink(missing_ok=True)
            port = str(proc.extra.get("port", 0))
            with proc.log.open("ab") as log:
                proc.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "agent_recovery.cli",
                        "serve",
                        "--config",
                        str(proc.config),
                        "--port",
                        port,
                        "--ready",
                        str(proc.ready),
                        "--binding",
                        self.binding,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
        deadline = time.monotonic() + timeout
        for proc in chosen:
            while not proc.ready.exists():
                if proc.process is not None and proc.process.poll() is not None:
                    raise ClusterError(f"{proc.name} exited: {self.tail(proc)}")
                if time.monotonic() > deadline:
                    raise ClusterError(f"{proc.name} did not start in {timeout:.0f} s")
                time.sleep(0.02)
            proc.url = json.loads(proc.ready.read_text(encoding="utf-8"))["url"]
        self.write_peers()

    def write_peers(self) -> None:
        peers = {p.agent: p.url for p in self.agents.values() if p.url}
        tmp = self.peers_file.with_name(self.peers_file.name + ".tmp")
        tmp.write_text(json.dumps(peers, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.peers_file)

    def kill(self, name: str) -> None:
        """SIGKILL one agent: no clean-up of any kind, like a power cut."""
        proc = self.agents[name]
        if proc.process is not None and proc.process.poll() is None:
            proc.process.send_signal(signal.SIGKILL)
            proc.process.wait()

    def stop(self, names: Sequence[str] | None = None, *, grace: float = 5.0) -> None:
        chosen = [self.agents[n] for n in (names or list(self.agents))]
        live = [p for p in chosen if p.running]
        for proc in live:
            assert proc.process is not None
            proc.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in live:
            assert proc.process is not None
            try:
                proc.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait()

    def tail(self, proc: AgentProcess, lines: int = 20) -> str:
        try:
            text = proc.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- the local admin API -------------------------------------------------------

    def state(self, name: str) -> dict[str, Any]:
        response = self.http.get(self.agents[name].url + "/admin/state")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def states(self) -> dict[str, dict[str, Any]]:
        return {name: self.state(name) for name in self.agents}

    def fail(self, name: str, spec: Mapping[str, Any]) -> str:
        response = self.http.post(self.agents[name].url + "/admin/fail", json=dict(spec))
        if response.status_code != 202:
            raise ClusterError(f"failure injection refused: {response.text}")
        signal_id: str = response.json()["signal"]
        return signal_id

    def wait(self, what: str, ready: Any, *, timeout: float = 60.0, poll: float = 0.05) -> Any:
        """Poll ``ready()`` until it returns something true; raise after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for proc in self.agents.values():
                if proc.process is not None and proc.process.poll() is not None:
                    raise ClusterError(f"{proc.name} exited while waiting for {what}")
            try:
                result = ready()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(poll)

    def traces(self, paths: Iterator[Path] | Sequence[Path]) -> list[dict[str, Any]]:
        """Every trace line of the given files, in time order."""
        lines: list[dict[str, Any]] = []
        for path in paths:
            if path.exists():
                with path.open(encoding="utf-8") as handle:
                    lines.extend(json.loads(line) for line in handle if line.strip())
        lines.sort(key=lambda d: (d["at"], d.get("agent", "")))
        return lines
