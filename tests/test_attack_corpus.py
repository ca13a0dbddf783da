"""The attack corpus (conformance/attacks/): every case refused with its code, nothing changed.

Each case runs against real engines behind real endpoints, in the fixture it
names (``conformance/attacks/world.py``). The test asserts the error code, the
kind of reply (none, a signed ``error``, or the cached reply of an exact
duplicate), that the refusal was recorded as a security event, and that the
receiver's state is the same before and after: engine snapshot, replay cache,
rate-limit buckets, pending output, and no new application event.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery._messages import Error
from agent_recovery._wire import decode, parse_timestamp
from agent_recovery.security.endpoint import Accepted, InboundError
from agent_recovery.security.events import EventKind
from agent_recovery.security.jws import Verifier

ATTACKS = Path(__file__).resolve().parents[1] / "conformance" / "attacks"
CASES = sorted(ATTACKS.glob("*.json"))


def _load(name: str) -> ModuleType:
    if str(ATTACKS) not in sys.path:
        sys.path.insert(0, str(ATTACKS))
    spec = importlib.util.spec_from_file_location(name, ATTACKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


world_module = _load("world")


def _input(case: dict[str, Any]) -> bytes:
    given = case["input"]
    if "jws" in given:
        return str(given["jws"]).encode("ascii")
    if "text" in given:
        return str(given["text"]).encode("utf-8")
    return str(given["fill"]).encode("ascii") * int(given["size"])


def test_the_corpus_is_large_and_well_formed() -> None:
    assert len(CASES) >= 40
    fixtures = set(world_module.FIXTURES)
    for path in CASES:
        case = json.loads(path.read_text(encoding="utf-8"))
        assert case["id"] == path.stem
        assert case["fixture"] in fixtures
        assert ErrorCode(case["expected"]["code"])  # a registered code
        assert case["expected"]["reply"] in {"none", "error", "cached"}
        assert case["channel"] in {"message", "override"}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_attack_is_refused_and_changes_nothing(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    world = world_module.FIXTURES[case["fixture"]]()
    receiver = case["receiver"]
    now = parse_timestamp(case["now"])
    code = ErrorCode(case["expected"]["code"])
    log = world.logs[receiver]
    events_before = log.total
    before = world.state(receiver, now)

    if case["channel"] == "override":
        with pytest.raises(RemoteProtocolError) as info:
            world.override.receive(_input(case), now)
        assert info.value.code is code, info.value.detail
        assert list(log)[-1].kind is EventKind.OVERRIDE_REFUSED
    else:
        outcome = world.deliver(receiver, _input(case), now, context=case.get("context"))
        _check_outcome(world, case, outcome, code)
        kind = EventKind.DUPLICATE if isinstance(outcome, Accepted) else EventKind.REFUSED
        assert list(log)[-1].kind is kind

    # Recorded, and nothing else happened.
    assert log.total == events_before + 1
    assert list(log)[-1].code is code
    assert world.state(receiver, now) == before
    assert world.engines[receiver].next_event() is None


def _check_outcome(
    world: Any, case: dict[str, Any], outcome: Accepted | InboundError, code: ErrorCode
) -> None:
    reply_kind = case["expected"]["reply"]
    receiver = case["receiver"]
    if reply_kind == "cached":
        assert isinstance(outcome, Accepted), outcome
        assert outcome.duplicate
        entry = world.endpoints[receiver].replay.snapshot(parse_timestamp(case["now"]))[
            (outcome.message.sender, outcome.message.id)
        ]
        assert outcome.reply == entry.reply
        return
    assert isinstance(outcome, InboundError), outcome
    assert outcome.code is code, outcome.detail
    if reply_kind == "none":
        assert outcome.reply is None
        return
    # A signed error, by the receiver, to the authenticated sender, answering the message.
    assert outcome.reply is not None and outcome.agent is not None
    verified = Verifier(world.keys).verify(outcome.reply)
    assert verified.owner == receiver
    error = decode(verified.payload)
    assert isinstance(error, Error)
    assert error.effective_code is code
    assert error.recipient == outcome.agent
    assert outcome.message is not None and error.reply_to == outcome.message.id


def test_the_corpus_is_reproducible() -> None:
    generate = _load("generate")
    for case in generate.build():
        path = ATTACKS / f"{case.id}.json"
        assert path.read_text(encoding="utf-8") == generate.render(case), case.id
