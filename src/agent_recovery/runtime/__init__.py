"""Runnable agents: the I/O shell that hosts one agent's engines (``agent-recovery serve``).

``_config`` reads an agent's configuration file; ``_resource`` is the real
state its work changes and undoes; ``_engines`` joins its participant and
coordinator behind one security endpoint, each step durable; ``_agent`` is the
runtime (clock, timers, sending, events); ``_plans`` runs the configured work;
``_routes`` is its HTTP app; ``_serve`` runs it under uvicorn.
"""

from ._agent import AgentRuntime as AgentRuntime
from ._agent import Trace as Trace
from ._agent import wall_clock as wall_clock
from ._config import AgentConfig as AgentConfig
from ._config import ConfigError as ConfigError
from ._config import CoordinatedExecution as CoordinatedExecution
from ._config import ExecutionConfig as ExecutionConfig
from ._config import FailureSpec as FailureSpec
from ._config import Step as Step
from ._config import StepKind as StepKind
from ._config import load_config as load_config
from ._config import parse_config as parse_config
from ._engines import AgentEngines as AgentEngines
from ._engines import Outbound as Outbound
from ._plans import Plan as Plan
from ._plans import PlanState as PlanState
from ._plans import start_plans as start_plans
from ._resource import Resource as Resource
from ._resource import ResourceError as ResourceError
from ._resource import UndoResult as UndoResult
from ._routes import agent_app as agent_app
from ._serve import serve_agent as serve_agent

__all__ = [
    "AgentConfig",
    "AgentEngines",
    "AgentRuntime",
    "ConfigError",
    "CoordinatedExecution",
    "ExecutionConfig",
    "FailureSpec",
    "Outbound",
    "Plan",
    "PlanState",
    "Resource",
    "ResourceError",
    "Step",
    "StepKind",
    "Trace",
    "UndoResult",
    "agent_app",
    "load_config",
    "parse_config",
    "serve_agent",
    "start_plans",
    "wall_clock",
]
