"""The public test kit: drive the engines through faults without any I/O.

- :class:`FakeClock`, :class:`InMemoryNetwork` with :class:`Faults` (loss,
  duplication, reordering, delay), and :class:`World`, which runs several
  agents' engines in time order and crashes and restarts any of them from
  their snapshots;
- :func:`simulate` / :func:`run_scenario`: random workflows under faults,
  checked against the safety properties S1-S4 and liveness L1, with the
  abort-all and local-only baselines;
- :func:`explore`: every interleaving of a small configuration;
- :class:`MemberBench` / :class:`TrackBench`: an engine in any state of its
  transition table, for table-driven tests.
"""

from ._builders import MemberBench as MemberBench
from ._builders import TrackBench as TrackBench
from ._clock import FakeClock as FakeClock
from ._explore import ExploreConfig as ExploreConfig
from ._explore import ExploreReport as ExploreReport
from ._explore import chain_config as chain_config
from ._explore import concurrent_config as concurrent_config
from ._explore import explore as explore
from ._network import Faults as Faults
from ._network import InMemoryNetwork as InMemoryNetwork
from ._network import NetworkStats as NetworkStats
from ._scenario import Scenario as Scenario
from ._scenario import generate as generate
from ._simulate import EvidencePolicy as EvidencePolicy
from ._simulate import ScenarioResult as ScenarioResult
from ._simulate import SimApp as SimApp
from ._simulate import combine as combine
from ._simulate import run_scenario as run_scenario
from ._simulate import simulate as simulate
from ._simulate import taint as taint
from ._world import AgentNode as AgentNode
from ._world import Application as Application
from ._world import World as World

__all__ = [
    "AgentNode",
    "Application",
    "EvidencePolicy",
    "ExploreConfig",
    "ExploreReport",
    "FakeClock",
    "Faults",
    "InMemoryNetwork",
    "MemberBench",
    "NetworkStats",
    "Scenario",
    "ScenarioResult",
    "SimApp",
    "TrackBench",
    "World",
    "chain_config",
    "combine",
    "concurrent_config",
    "explore",
    "generate",
    "run_scenario",
    "simulate",
    "taint",
]
