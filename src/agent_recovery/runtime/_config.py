"""The agent configuration file: who the agent is and what work it does.

One JSON object per agent. Relative paths are resolved against the file's
directory. Every member is checked when the file is loaded; a bad file raises
:class:`ConfigError` naming the member, and no agent starts from it.

.. code-block:: json

    {
      "agent": "spiffe://example.net/pusher-r1",
      "key": "keys/pusher-r1.jwk",
      "trusted_keys": "keys/jwks.json",
      "state": "state/pusher-r1.db",
      "resource": "state/pusher-r1-resource.db",
      "devices": {"r1.example.net": ["hostname r1", "interface xe-0/0/1"]},
      "trace": "state/pusher-r1.trace.jsonl",
      "peers": {"spiffe://example.net/planner": "http://127.0.0.1:8001"},
      "peers_file": "peers.json",
      "retry": {"initial": 500, "ceiling": 4000, "attempts": 6},
      "rate_limits": {"failure-signal": {"burst": 10, "interval_ms": 6000}},
      "coordinator": {"executions": [{"agent": "...", "exec": "...", "authority": [],
                                      "reversibility": "restorable"}],
                      "max_members": 10000, "max_depth": 64},
      "executions": [{
        "id": "chg-1042/push-r1", "reversibility": "restorable",
        "authority": ["spiffe://example.net/planner"], "domain": "network",
        "device": "r1.example.net",
        "steps": [{"checkpoint": "running configuration saved"},
                  {"consume": {"agent": "...", "exec": "...", "output": "intent"}},
                  {"apply": {"config": ["interface xe-0/0/1", " vlan 42"]}},
                  {"produce": "applied"}, {"checkpoint": "change applied"},
                  {"complete": "change applied and committed"}]
      }]
    }

``operators`` names the JWK set of the operators' public keys (no agent key
in it); a coordinator with one accepts operator overrides (draft §8.7) at
``POST /operator/override``. The member ``conformance`` is for the
conformance runner and is ignored here.
A peer's URL is its base URL (the recovery endpoint is ``DEFAULT_PATH`` under
it) or the full endpoint URL. ``peers_file`` names a JSON object of the same
shape that is read again whenever an unknown peer is needed, so processes can
be started on ephemeral ports and introduced afterwards. An execution's
``permitted`` lists the undo actions this agent's own policy allows for it
(``"restore"``, ``"compensate"``; both by default); a rollback that asks for
another is refused with ``unauthorized`` (draft §13.7).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ProtocolError
from .._model import Dependency, EffectState, ExecRef, Reversibility, Severity, check_identifier
from .._scope import Bounds
from .._state import Retry

__all__ = [
    "UNDO_ACTIONS",
    "AgentConfig",
    "ConfigError",
    "CoordinatedExecution",
    "ExecutionConfig",
    "FailureSpec",
    "Step",
    "StepKind",
    "load_config",
    "parse_config",
]


# The two kinds of undo an agent's policy can allow or deny: "restore" (also
# for cancel-restore) and "compensate".
UNDO_ACTIONS: frozenset[str] = frozenset({"compensate", "restore"})


class ConfigError(ValueError):
    """The configuration file is unusable; the message names the member."""


class StepKind(enum.StrEnum):
    """One step of an execution's work, in the order the file lists them."""

    CHECKPOINT = "checkpoint"  # take a restore point (draft §5.2)
    CONSUME = "consume"  # use another execution's output, over the work API (draft §5.4)
    PRODUCE = "produce"  # make an output others may consume
    APPLY = "apply"  # change the local resource
    DEPEND = "depend"  # record a dependency learnt out of band (declared in the file)
    COMPLETE = "complete"  # the execution finished its work
    HOLD = "hold"  # stop here, still active (waiting for something outside the demo)
    FAIL = "fail"  # the execution fails and signals it (draft §6.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureSpec:
    """The content of a failure signal the agent sends for one of its executions."""

    failure_type: str
    checkpoint: int
    severity: Severity = Severity.ERROR
    retryable: bool = False
    effect_state: EffectState = EffectState.PARTIAL
    detail: str | None = None
    to: str | None = None  # the recovery authority to tell; default: the first one


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    kind: StepKind
    note: str = ""
    output: str | None = None  # produce, consume
    producer: ExecRef | None = None  # consume
    value: Any = None  # produce: the output; apply: the change
    edge: Dependency | None = None  # depend
    failure: FailureSpec | None = None  # fail


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionConfig:
    id: str
    reversibility: Reversibility
    authority: tuple[str, ...]
    domain: str | None = None
    device: str | None = None  # the device whose configuration ``apply`` changes
    steps: tuple[Step, ...] = ()
    # The undo actions this agent's own policy lets it take for the execution
    # (draft §13.7: a rollback grants no permission the agent lacks).
    permitted: frozenset[str] = frozenset(UNDO_ACTIONS)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoordinatedExecution:
    """An execution this agent is a recovery authority for (draft §5.3)."""

    execution: ExecRef
    authority: tuple[str, ...] = ()
    # What the execution's agent declared when the work was delegated, if known
    # (draft §13.6: the coordinator compares it with what halted replies report).
    reversibility: Reversibility | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    agent: str
    key: Path
    trusted_keys: Path
    base: Path  # the directory relative paths were resolved against
    state: Path | None = None
    resource: Path | None = None
    trace: Path | None = None
    peers: Mapping[str, str] = field(default_factory=dict)
    peers_file: Path | None = None
    retry: Retry = field(default_factory=Retry)
    coordinator: bool = False
    coordinated: tuple[CoordinatedExecution, ...] = ()
    bounds: Bounds = field(default_factory=Bounds)
    executions: tuple[ExecutionConfig, ...] = ()
    admin: bool = True
    devices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # initial configs
    # message type -> (burst, interval in ms); default: the security module's (draft §13.4)
    rate_limits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # The operators' public keys (draft §8.7): a key set that holds no agent key.
    # A coordinator with one accepts signed overrides at POST /operator/override.
    operators: Path | None = None


def load_config(path: str | Path) -> AgentConfig:
    """Read and check an agent configuration file."""
    file = Path(path)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: not JSON: {exc}") from exc
    return parse_config(document, base=file.resolve().parent)


def parse_config(document: object, *, base: Path) -> AgentConfig:
    """Check a configuration document; relative paths are taken from ``base``."""
    doc = _object(document, "configuration")
    try:
        return _parse(doc, base)
    except ProtocolError as exc:  # an identifier or number the model refused
        raise ConfigError(f"configuration: {exc.detail or exc.code.value}") from exc


def _parse(doc: Mapping[str, Any], base: Path) -> AgentConfig:
    _known(
        doc,
        "configuration",
        {
            "agent",
            "key",
            "trusted_keys",
            "state",
            "resource",
            "trace",
            "peers",
            "peers_file",
            "retry",
            "coordinator",
            "operators",
            "executions",
            "admin",
            "devices",
            "rate_limits",
            "conformance",
            "description",
        },
    )
    agent = check_identifier(_text(doc, "agent", "configuration"), "agent")
    peers = _object(doc.get("peers", {}), "peers")
    for name, url in peers.items():
        check_identifier(name, "peer")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"peers[{name!r}]: not an http(s) URL")
    coordinator = doc.get("coordinator")
    coordinated: tuple[CoordinatedExecution, ...] = ()
    bounds = Bounds()
    if coordinator is not None and coordinator is not False:
        section = {} if coordinator is True else _object(coordinator, "coordinator")
        _known(section, "coordinator", {"executions", "max_members", "max_depth", "domains"})
        coordinated = tuple(
            _coordinated(item, f"coordinator.executions[{i}]")
            for i, item in enumerate(_array(section.get("executions", []), "coordinator"))
        )
        domains = section.get("domains")
        bounds = Bounds(
            max_members=section.get("max_members"),
            max_depth=section.get("max_depth"),
            allowed_domains=None
            if domains is None
            else frozenset(_array(domains, "coordinator.domains")),
        )
    executions = tuple(
        _execution(item, f"executions[{i}]", agent)
        for i, item in enumerate(_array(doc.get("executions", []), "executions"))
    )
    ids = [x.id for x in executions]
    if len(set(ids)) != len(ids):
        raise ConfigError("executions: two executions have the same id")
    admin = doc.get("admin", True)
    if not isinstance(admin, bool):
        raise ConfigError("admin: not a boolean")
    rate_limits: dict[str, tuple[int, int]] = {}
    for name, policy in _object(doc.get("rate_limits", {}), "rate_limits").items():
        item = _object(policy, f"rate_limits[{name!r}]")
        _known(item, f"rate_limits[{name!r}]", {"burst", "interval_ms"})
        burst, interval = item.get("burst"), item.get("interval_ms")
        if not isinstance(burst, int) or not isinstance(interval, int) or burst < 1 or interval < 1:
            raise ConfigError(f"rate_limits[{name!r}]: burst and interval_ms are positive")
        rate_limits[name] = (burst, interval)
    devices: dict[str, tuple[str, ...]] = {}
    for name, lines in _object(doc.get("devices", {}), "devices").items():
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise ConfigError(f"devices[{name!r}]: lines of text")
        devices[name] = tuple(lines)
    return AgentConfig(
        agent=agent,
        key=_path(base, _text(doc, "key", "configuration")),
        trusted_keys=_path(base, _text(doc, "trusted_keys", "configuration")),
        base=base,
        state=_optional_path(base, doc, "state"),
        resource=_optional_path(base, doc, "resource"),
        trace=_optional_path(base, doc, "trace"),
        peers=dict(peers),
        peers_file=_optional_path(base, doc, "peers_file"),
        retry=_retry(doc.get("retry", {})),
        coordinator=coordinator is not None and coordinator is not False,
        coordinated=coordinated,
        bounds=bounds,
        executions=executions,
        admin=admin,
        devices=devices,
        rate_limits=rate_limits,
        operators=_optional_path(base, doc, "operators"),
    )


def _retry(value: object) -> Retry:
    section = _object(value, "retry")
    names = {"initial", "ceiling", "attempts", "patience", "follow_up_interval", "follow_up"}
    _known(section, "retry", names)
    return Retry(**{k: v for k, v in section.items() if k in names})


def _coordinated(value: object, where: str) -> CoordinatedExecution:
    item = _object(value, where)
    _known(item, where, {"agent", "exec", "authority", "reversibility"})
    reversibility = None
    if "reversibility" in item:
        try:
            reversibility = Reversibility(_text(item, "reversibility", where))
        except ValueError as exc:
            raise ConfigError(f"{where}.reversibility: unknown value") from exc
    return CoordinatedExecution(
        execution=ExecRef(agent=_text(item, "agent", where), exec=_text(item, "exec", where)),
        authority=tuple(
            check_identifier(a, f"{where}.authority")
            for a in _array(item.get("authority", []), f"{where}.authority")
        ),
        reversibility=reversibility,
    )


def _execution(value: object, where: str, agent: str) -> ExecutionConfig:
    item = _object(value, where)
    _known(
        item,
        where,
        {"id", "reversibility", "authority", "domain", "device", "steps", "note", "permitted"},
    )
    try:
        reversibility = Reversibility(_text(item, "reversibility", where))
    except ValueError as exc:
        raise ConfigError(f"{where}.reversibility: unknown value") from exc
    authority = tuple(
        check_identifier(a, f"{where}.authority")
        for a in _array(item.get("authority", []), f"{where}.authority")
    )
    if not authority:
        # draft §5.3: the recovery authority is fixed when the execution starts.
        raise ConfigError(f"{where}.authority: at least one recovery authority is required")
    exec_id = check_identifier(_text(item, "id", where), f"{where}.id")
    me = ExecRef(agent=agent, exec=exec_id)
    steps = tuple(
        _step(s, f"{where}.steps[{i}]", me)
        for i, s in enumerate(_array(item.get("steps", []), f"{where}.steps"))
    )
    domain = item.get("domain")
    device = item.get("device")
    if device is not None and not isinstance(device, str):
        raise ConfigError(f"{where}.device: not text")
    permitted = frozenset(_array(item.get("permitted", sorted(UNDO_ACTIONS)), f"{where}.permitted"))
    if not permitted <= UNDO_ACTIONS:
        raise ConfigError(f"{where}.permitted: only {sorted(UNDO_ACTIONS)}")
    return ExecutionConfig(
        permitted=permitted,
        id=exec_id,
        reversibility=reversibility,
        authority=authority,
        domain=None if domain is None else check_identifier(domain, f"{where}.domain"),
        device=device,
        steps=steps,
    )


_STEP_MEMBERS = {k.value for k in StepKind} | {"note", "value"}


def _step(value: object, where: str, me: ExecRef) -> Step:
    item = _object(value, where)
    _known(item, where, _STEP_MEMBERS)
    kinds = [k for k in StepKind if k.value in item]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: exactly one of {sorted(k.value for k in StepKind)}")
    kind = kinds[0]
    body = item[kind.value]
    note = item.get("note", body if isinstance(body, str) else "")
    if not isinstance(note, str):
        raise ConfigError(f"{where}.note: not text")
    if kind is StepKind.CONSUME:
        source = _object(body, f"{where}.consume")
        _known(source, f"{where}.consume", {"agent", "exec", "output"})
        return Step(
            kind=kind,
            note=note,
            output=_text(source, "output", f"{where}.consume"),
            producer=ExecRef(
                agent=_text(source, "agent", f"{where}.consume"),
                exec=_text(source, "exec", f"{where}.consume"),
            ),
        )
    if kind is StepKind.PRODUCE:
        if not isinstance(body, str) or not body:
            raise ConfigError(f"{where}.produce: the output's name")
        return Step(kind=kind, note=item.get("note", ""), output=body, value=item.get("value"))
    if kind is StepKind.APPLY:
        return Step(kind=kind, note=note, value=_change(body, f"{where}.apply"))
    if kind is StepKind.DEPEND:
        return Step(kind=kind, note=note, edge=_edge(body, f"{where}.depend", me))
    if kind is StepKind.FAIL:
        return Step(kind=kind, note=note, failure=failure_spec(body, f"{where}.fail"))
    return Step(kind=kind, note=note)


def _change(value: object, where: str) -> dict[str, Any]:
    """An ``apply`` body: exactly one resource change (see ``_resource.py``)."""
    change = _object(value, where)
    kinds = {"config", "ticket", "notify", "record"} & set(change)
    if len(kinds) != 1:
        raise ConfigError(f"{where}: exactly one of config, ticket, notify, record")
    kind = kinds.pop()
    if kind == "config":
        lines = _array(change["config"], f"{where}.config")
        if not all(isinstance(line, str) for line in lines):
            raise ConfigError(f"{where}.config: lines of text")
    elif kind == "ticket":
        ticket = _object(change["ticket"], f"{where}.ticket")
        _text(ticket, "id", f"{where}.ticket")
        _text(ticket, "status", f"{where}.ticket")
    elif kind == "notify":
        notify = _object(change["notify"], f"{where}.notify")
        _text(notify, "to", f"{where}.notify")
        _text(notify, "subject", f"{where}.notify")
    else:
        record = _object(change["record"], f"{where}.record")
        _text(record, "key", f"{where}.record")
    return dict(change)


def _edge(value: object, where: str, me: ExecRef) -> Dependency:
    item = _object(value, where)
    _known(item, where, {"producer", "consumer", "produced_after", "consumed_after"})
    if ("producer" in item) == ("consumer" in item):
        raise ConfigError(f"{where}: name the other party: producer or consumer")
    other_name = "producer" if "producer" in item else "consumer"
    other = _object(item[other_name], f"{where}.{other_name}")
    ref = ExecRef(
        agent=_text(other, "agent", f"{where}.{other_name}"),
        exec=_text(other, "exec", f"{where}.{other_name}"),
    )
    produced, consumed = item.get("produced_after"), item.get("consumed_after")
    if not isinstance(produced, int) or not isinstance(consumed, int):
        raise ConfigError(f"{where}: produced_after and consumed_after are integers")
    producer, consumer = (ref, me) if other_name == "producer" else (me, ref)
    return Dependency(
        consumer=consumer, producer=producer, produced_after=produced, consumed_after=consumed
    )


def failure_spec(value: object, where: str) -> FailureSpec:
    """A failure signal's content, from a configuration step or an admin request."""
    item = _object(value, where)
    _known(
        item,
        where,
        {"failure_type", "checkpoint", "severity", "retryable", "effect_state", "detail", "to"},
    )
    checkpoint = item.get("checkpoint")
    if not isinstance(checkpoint, int) or isinstance(checkpoint, bool) or checkpoint < 0:
        raise ConfigError(f"{where}.checkpoint: a checkpoint number")
    retryable = item.get("retryable", False)
    if not isinstance(retryable, bool):
        raise ConfigError(f"{where}.retryable: not a boolean")
    try:
        severity = Severity(item.get("severity", "error"))
        effect = EffectState(item.get("effect_state", "partial"))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    detail, to = item.get("detail"), item.get("to")
    if detail is not None and not isinstance(detail, str):
        raise ConfigError(f"{where}.detail: not text")
    return FailureSpec(
        failure_type=_text(item, "failure_type", where),
        checkpoint=checkpoint,
        severity=severity,
        retryable=retryable,
        effect_state=effect,
        detail=detail,
        to=None if to is None else check_identifier(to, f"{where}.to"),
    )


# -- small readers -------------------------------------------------------------


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: not an object")
    return value


def _array(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: not an array")
    return value


def _text(doc: Mapping[str, Any], name: str, where: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{name}: missing or not text")
    return value


def _known(doc: Mapping[str, Any], where: str, names: set[str]) -> None:
    # A misspelt member would otherwise be ignored silently: refuse it.
    unknown = sorted(set(doc) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown member {unknown[0]!r}")


def _path(base: Path, text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else base / path


def _optional_path(base: Path, doc: Mapping[str, Any], name: str) -> Path | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}: not a path")
    return _path(base, value)
