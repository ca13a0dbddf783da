"""The A2A binding's examples (docs/draft-text/a2a.md, draft §12.3) are what the code accepts.

Each example is parsed with a2a-sdk's own JSON mapping, its protocol messages are
taken out with the binding, their signatures verified with the example keys of
draft §12.3.9, and their payloads decoded by the wire codec.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
from typing import Any

import pytest
from a2a.types import AgentCard, Message, SendMessageRequest, Task, TaskState
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import json_format

from agent_recovery._messages import FailureSignal, Halt, Halted
from agent_recovery._wire import decode
from agent_recovery.bindings.a2a import (
    EXTENSION_URI,
    ExtensionRole,
    carried_messages,
    failure_signal,
    peer_roles,
)

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "draft-text" / "a2a.md"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# draft §12.3.9: RFC 8037 A.1's key for the planner; octets 0..31 for the inventory agent.
KEYS = {
    "planner-1": ed25519.Ed25519PrivateKey.from_private_bytes(
        _unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
    ).public_key(),
    "inventory-1": ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key(),
}


def _blocks() -> list[dict[str, Any]]:
    text = DOC.read_text(encoding="utf-8")
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", text, flags=re.S)]


def _open(jws: str) -> object:
    """Verify an example JWS with the key its ``kid`` names, and decode its payload."""
    header, payload, signature = jws.split(".")
    protected = json.loads(_unb64(header))
    assert protected["alg"] == "EdDSA" and protected["typ"] == "agent-recovery+jws"
    KEYS[protected["kid"]].verify(_unb64(signature), f"{header}.{payload}".encode("ascii"))
    return decode(_unb64(payload))


def test_the_document_names_the_keys_it_uses() -> None:
    text = DOC.read_text(encoding="utf-8")
    for key in KEYS.values():
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert _b64(raw) in text


def test_there_are_four_examples() -> None:
    assert len(_blocks()) == 4


def test_the_card_example_declares_both_roles() -> None:
    card = json_format.ParseDict(_blocks()[0], AgentCard())
    assert peer_roles(card) == {ExtensionRole.COORDINATOR, ExtensionRole.PARTICIPANT}


def test_the_failed_task_example_carries_a_verifiable_failure_signal() -> None:
    task = json_format.ParseDict(_blocks()[1]["result"]["task"], Task())
    assert task.status.state == TaskState.TASK_STATE_FAILED
    jws = failure_signal(task)
    assert jws is not None
    signal = _open(jws)
    assert isinstance(signal, FailureSignal)
    assert signal.execution.exec == task.id  # the RECOMMENDED mapping of §12.3.5


def test_the_halt_request_and_halted_reply_examples_match() -> None:
    request = json_format.ParseDict(_blocks()[2]["params"], SendMessageRequest())
    response = json_format.ParseDict(_blocks()[3]["result"]["message"], Message())
    (halt_jws,) = carried_messages(request.message) or ()
    (halted_jws,) = carried_messages(response) or ()
    halt, halted = _open(halt_jws), _open(halted_jws)
    assert isinstance(halt, Halt) and isinstance(halted, Halted)
    assert halted.reply_to == halt.id
    assert list(request.message.reference_task_ids) == [halt.execution.exec]
    assert request.message.task_id == ""
    for message in (request.message, response):
        assert list(message.extensions) == [EXTENSION_URI]


@pytest.mark.parametrize("index", [1, 2, 3])
def test_a_tampered_example_does_not_verify(index: int) -> None:
    text = json.dumps(_blocks()[index])
    (jws,) = re.findall(r"eyJ[A-Za-z0-9_.-]+", text)
    header, payload, signature = jws.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(InvalidSignature):
        _open(f"{header}.{flipped}.{signature}")
