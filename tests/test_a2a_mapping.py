"""The A2A binding's pure mapping (draft §12.3): declaration, activation, carriage."""

from __future__ import annotations

import base64

import pytest
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    Message,
    Task,
    TaskState,
    TaskStatus,
)
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st

from agent_recovery._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from agent_recovery.bindings.a2a import (
    EXTENSION_URI,
    MAX_JWS_LENGTH,
    MEDIA_TYPE,
    ExtensionRole,
    carried_messages,
    extension_declaration,
    failure_signal,
    failure_status_message,
    is_activated,
    peer_roles,
    protocol_message,
)

B64URL = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1)
JWS = st.builds(lambda h, p, s: f"{h}.{p}.{s}", B64URL, B64URL, B64URL)
SAMPLE = "eyJhbGciOiJFZERTQSJ9.eyJ2IjoxfQ.c2ln"


def _card(*extensions: AgentExtension) -> AgentCard:
    return AgentCard(name="a", capabilities=AgentCapabilities(extensions=list(extensions)))


def _over_the_wire(message: Message) -> Message:
    """What a peer decodes: protobuf binary, then the JSON-RPC JSON form, and back."""
    binary = Message.FromString(message.SerializeToString())
    decoded: Message = json_format.ParseDict(json_format.MessageToDict(binary), Message())
    return decoded


def test_declaration_lists_uri_roles_and_string_only_params() -> None:
    ext = extension_declaration([ExtensionRole.PARTICIPANT, ExtensionRole.COORDINATOR])
    params = json_format.MessageToDict(ext.params)
    assert ext.uri == EXTENSION_URI == "urn:ietf:params:agent-recovery:a2a:v1"
    assert ext.required is False
    assert params == {
        "versions": ["1"],
        "roles": ["coordinator", "participant"],
        "media_type": MEDIA_TYPE,
    }
    assert peer_roles(_card(ext)) == {ExtensionRole.PARTICIPANT, ExtensionRole.COORDINATOR}


def test_a_declaration_needs_a_role() -> None:
    with pytest.raises(LocalProtocolError):
        extension_declaration([])


def test_peer_roles_ignore_other_uris_unknown_roles_and_other_versions() -> None:
    other = AgentExtension(uri=EXTENSION_URI + "x", params={"versions": ["1"], "roles": ["x"]})
    assert peer_roles(_card(other)) == frozenset()
    assert peer_roles(_card()) == frozenset()
    unknown = AgentExtension(uri=EXTENSION_URI, params={"versions": ["1"], "roles": ["auditor"]})
    assert peer_roles(_card(unknown)) == frozenset()
    # A2A: no silent fallback to another version of an extension.
    v2 = AgentExtension(uri=EXTENSION_URI, params={"versions": ["2"], "roles": ["participant"]})
    assert peer_roles(_card(v2)) == frozenset()
    numeric = AgentExtension(uri=EXTENSION_URI, params={"versions": [1], "roles": ["participant"]})
    assert peer_roles(_card(numeric)) == frozenset()
    no_roles = AgentExtension(uri=EXTENSION_URI, params={"versions": ["1"]})
    assert peer_roles(_card(no_roles)) == frozenset()


def test_activation_is_exact_uri_membership() -> None:
    assert is_activated({EXTENSION_URI, "https://example.com/other"})
    assert not is_activated(set())
    assert not is_activated({EXTENSION_URI.upper(), EXTENSION_URI + "/"})


@given(st.lists(JWS, max_size=1), st.booleans())
def test_protocol_messages_survive_the_wire_unchanged(messages: list[str], agent: bool) -> None:
    sent = protocol_message(messages, message_id="m1", from_agent=agent, reference_task_ids=["t"])
    received = _over_the_wire(sent)
    assert carried_messages(received) == tuple(messages)
    assert list(received.extensions) == [EXTENSION_URI]
    assert list(received.reference_task_ids) == ["t"]
    assert len(received.parts) == 1  # A2A requires a part; ours is inert text


def test_a_struct_number_loses_what_a_jws_string_keeps() -> None:
    # Why the binding carries strings only: a Struct number is a double.
    big = 2**53 + 1
    lossy = _over_the_wire(Message(metadata={"seq": big}))
    assert json_format.MessageToDict(lossy.metadata)["seq"] != big
    payload = base64.urlsafe_b64encode(b'{"seq":%d}' % big).rstrip(b"=").decode()
    jws = f"eyJhbGciOiJFZERTQSJ9.{payload}.c2ln"
    sent = protocol_message([jws], message_id="m", from_agent=False)
    (received,) = carried_messages(_over_the_wire(sent)) or ()
    encoded = received.split(".")[1]
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == b'{"seq":%d}' % big


def test_a_message_without_our_key_carries_nothing() -> None:
    assert carried_messages(Message(metadata={"https://example.com/x": {"messages": []}})) is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("text", ErrorCode.MALFORMED),
        ({"msgs": [SAMPLE]}, ErrorCode.MALFORMED),
        ({"messages": SAMPLE}, ErrorCode.MALFORMED),
        ({"messages": [1.0]}, ErrorCode.MALFORMED),
        ({"messages": ["not a jws"]}, ErrorCode.MALFORMED),
        ({"messages": ["a.b"]}, ErrorCode.MALFORMED),
        ({"messages": ["a..c"]}, ErrorCode.MALFORMED),
        # One message per carrier (draft §12.3.4): a batch is refused whole.
        ({"messages": [SAMPLE, SAMPLE]}, ErrorCode.TOO_LARGE),
        ({"messages": ["a." + "b" * MAX_JWS_LENGTH + ".c"]}, ErrorCode.TOO_LARGE),
    ],
)
def test_a_bad_carrier_is_refused_with_a_code(value: object, code: ErrorCode) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        carried_messages(Message(metadata={EXTENSION_URI: value}))
    assert info.value.code is code


def test_unknown_carrier_members_are_ignored() -> None:
    message = Message(metadata={EXTENSION_URI: {"messages": [SAMPLE], "later": "x"}})
    assert carried_messages(message) == (SAMPLE,)


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        (SAMPLE, ErrorCode.MALFORMED),
        (["x"], ErrorCode.MALFORMED),
        ([SAMPLE, SAMPLE], ErrorCode.TOO_LARGE),
        (["a." + "b" * MAX_JWS_LENGTH + ".c"], ErrorCode.TOO_LARGE),
    ],
)
def test_we_never_send_a_bad_carrier(messages: list[str], code: ErrorCode) -> None:
    with pytest.raises(LocalProtocolError) as info:
        protocol_message(messages, message_id="m", from_agent=False)
    assert info.value.code is code


def _failed(message: Message, state: TaskState = TaskState.TASK_STATE_FAILED) -> Task:
    return Task(id="t", status=TaskStatus(state=state, message=message))


def test_failure_status_carries_the_signal_beside_the_free_text() -> None:
    message = failure_status_message(
        detail="quota exceeded", signal=SAMPLE, message_id="m", task_id="t", context_id="c"
    )
    assert message.parts[0].text == "quota exceeded"
    assert failure_signal(_failed(message)) == SAMPLE
    # Only a FAILED task carries a failure signal.
    assert failure_signal(_failed(message, TaskState.TASK_STATE_COMPLETED)) is None


def test_failure_status_without_signal_is_plain_a2a() -> None:
    message = failure_status_message(
        detail="quota exceeded", signal=None, message_id="m", task_id="t", context_id="c"
    )
    assert not message.metadata.fields
    assert not message.extensions
    assert failure_signal(_failed(message)) is None
    assert failure_signal(Task(status=TaskStatus(state=TaskState.TASK_STATE_FAILED))) is None


def test_the_binding_accepts_every_jws_the_endpoint_accepts() -> None:
    from agent_recovery.security.endpoint import MAX_JWS_SIZE

    assert MAX_JWS_LENGTH == MAX_JWS_SIZE
    largest = "a." + "b" * (MAX_JWS_LENGTH - 4) + ".c"
    assert carried_messages(Message(metadata={EXTENSION_URI: {"messages": [largest]}})) == (
        largest,
    )
