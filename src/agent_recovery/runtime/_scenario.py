"""A scenario: several agents and their work in one file, turned into agent configurations.

The scenario names agents by short names (``planner``); the configurations it
produces use agent identifiers (``spiffe://<trust_domain>/planner``), give each
agent a fresh signing key, a shared key set, its own store, resource and
trace, and make every agent with ``"coordinator": true`` the coordinator of
every execution whose recovery authority names it (draft §5.3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..security.keys import Algorithm, JwkSet, generate_private_jwk, parse_public_jwk
from ._config import ConfigError

__all__ = ["Scenario", "load_scenario", "write_keys"]


def write_keys(directory: Path, agents: Mapping[str, str]) -> Path:
    """A fresh Ed25519 key per agent (``NAME.jwk``, kid ``NAME-1``) and their ``jwks.json``.

    ``agents`` maps a short name to the agent identifier the key speaks for.
    Returns the key set's path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    public = []
    for name, agent in agents.items():
        jwk = generate_private_jwk(kid=f"{name}-1", owner=agent, alg=Algorithm.EDDSA)
        path = directory / f"{name}.jwk"
        path.write_text(json.dumps(jwk, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)
        public.append(parse_public_jwk({k: v for k, v in jwk.items() if k != "d"}))
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps(JwkSet(public).to_json(), indent=2) + "\n", encoding="utf-8")
    return jwks


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    title: str
    description: str
    trust_domain: str
    agents: Mapping[str, Mapping[str, Any]]
    failure: Mapping[str, Any]
    retry: Mapping[str, Any]

    def agent_id(self, name: str) -> str:
        return f"spiffe://{self.trust_domain}/{name}"

    def executions(self) -> list[tuple[str, Mapping[str, Any]]]:
        """(agent name, execution) for every execution, in file order."""
        return [(name, x) for name, a in self.agents.items() for x in a.get("executions", [])]

    def edges(self) -> list[tuple[tuple[str, str], tuple[str, str], str]]:
        """(producer (agent, exec), consumer (agent, exec), output) of every consume step."""
        out = []
        for name, x in self.executions():
            for step in x.get("steps", []):
                if "consume" in step:
                    c = step["consume"]
                    out.append(((c["agent"], c["exec"]), (name, x["id"]), c["output"]))
        return out

    def write_configs(self, workdir: Path) -> dict[str, Path]:
        """Keys, key set and one configuration file per agent under ``workdir``."""
        write_keys(workdir / "keys", {name: self.agent_id(name) for name in self.agents})
        configs: dict[str, Path] = {}
        for name, agent in self.agents.items():
            config = self._config(name, agent)
            path = workdir / "agents" / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            configs[name] = path
        return configs

    def _config(self, name: str, agent: Mapping[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {
            "description": agent.get("role", ""),
            "agent": self.agent_id(name),
            "key": f"../keys/{name}.jwk",
            "trusted_keys": "../keys/jwks.json",
            "state": f"../state/{name}.db",
            "resource": f"../state/{name}-resource.db",
            "trace": f"../trace/{name}.jsonl",
            "peers_file": "../peers.json",
            "retry": dict(self.retry),
            "devices": dict(agent.get("devices", {})),
            "executions": [self._execution(x) for x in agent.get("executions", [])],
        }
        if agent.get("coordinator"):
            coordinated = [
                {
                    "agent": self.agent_id(owner),
                    "exec": x["id"],
                    "authority": [self.agent_id(a) for a in x.get("authority", [])],
                    # Declared when the work was delegated (draft §13.6).
                    "reversibility": x["reversibility"],
                }
                for owner, x in self.executions()
                if name in x.get("authority", [])
            ]
            config["coordinator"] = {"executions": coordinated}
        return config

    def _execution(self, x: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(x)
        out["authority"] = [self.agent_id(a) for a in x.get("authority", [])]
        steps = []
        for original in x.get("steps", []):
            step = dict(original)
            if "consume" in step:
                step["consume"] = {
                    **step["consume"],
                    "agent": self.agent_id(step["consume"]["agent"]),
                }
            steps.append(step)
        out["steps"] = steps
        return out


def load_scenario(path: Path) -> Scenario:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("agents"), dict):
        raise ConfigError(f"{path}: a scenario is an object with 'agents'")
    failure = doc.get("failure")
    if not isinstance(failure, dict) or failure.get("agent") not in doc["agents"]:
        raise ConfigError(f"{path}: 'failure' must name one of the agents")
    return Scenario(
        title=str(doc.get("title", path.stem)),
        description=str(doc.get("description", "")),
        trust_domain=str(doc.get("trust_domain", "example.net")),
        agents=doc["agents"],
        failure=failure,
        retry=doc.get("retry", {}),
    )
