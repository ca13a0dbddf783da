"""The A2A binding as data: where each protocol message sits in A2A objects (draft §12.3).

Pure functions, no I/O: they build and read a2a-sdk protobuf objects and never
decode, verify or sign a protocol message. Every protocol message crosses A2A as
its JWS compact serialization (media type ``application/agent-recovery+jws``,
draft §9.1), a string. A2A metadata is a ``google.protobuf.Struct`` whose numbers
are IEEE doubles, so a counter or a timestamp put there as a number could lose
precision; as a string inside a signed JWS it cannot, and the signature covers
the exact bytes the sender produced.

The A2A placement (draft §12.3):

* the extension is declared in ``AgentCard.capabilities.extensions[]``;
* a client activates it with the ``A2A-Extensions`` service parameter;
* a protocol message travels in ``Message.metadata[EXTENSION_URI]`` as the
  object ``{"messages": [<JWS compact>]}``, and the A2A message lists the URI in
  ``Message.extensions``; a response holds the reply, or an empty array;
* a FAILED task carries its failure signal in the metadata of its status
  message (``Task.status.message``): A2A v1 ``TaskStatus`` has no metadata of
  its own, and the status message is where A2A already explains a failure.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from a2a.types import (
    AgentCard,
    AgentExtension,
    Message,
    Part,
    Role,
    Task,
    TaskState,
    TaskStatusUpdateEvent,
)
from google.protobuf import json_format

from ..._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from ..._wire import MAX_MESSAGE_SIZE

__all__ = [
    "EXTENSION_URI",
    "MAX_JWS_LENGTH",
    "MEDIA_TYPE",
    "MESSAGES_MEMBER",
    "PROTOCOL_VERSIONS",
    "ExtensionRole",
    "carried_messages",
    "carrier",
    "extension_declaration",
    "failure_signal",
    "failure_status_message",
    "is_activated",
    "peer_roles",
    "protocol_message",
    "uses_extension",
]

# draft §12.3.1: a URN under the IETF protocol-parameter namespace (RFC 3553), like
# the problem type URIs of draft §10; "v1" changes with any breaking change, as
# A2A requires a new URI for one.
EXTENSION_URI: Final = "urn:ietf:params:agent-recovery:a2a:v1"
MEDIA_TYPE: Final = "application/agent-recovery+jws"
MESSAGES_MEMBER: Final = "messages"
# Protocol versions ("v", draft §6.1) as strings: Struct numbers are doubles.
PROTOCOL_VERSIONS: Final = ("1",)
# draft §12.3.4: a JWS may be as long as the largest message (draft §6.x)
# base64url-encoded, plus 2 KiB of header and signature, as
# security.endpoint.MAX_JWS_SIZE: the binding never refuses what the endpoint
# accepts. Checked before anything reaches the engine.
MAX_JWS_LENGTH: Final = -(-MAX_MESSAGE_SIZE * 4 // 3) + 2048

# RFC 7515 §7.1: three base64url segments; ours always have a header, a payload
# and a signature, so none is empty.
_JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_NOTE = "Agent recovery protocol message; see the metadata."


class ExtensionRole(enum.StrEnum):
    """What an agent accepts over the extension (the ``roles`` parameter, draft §12.3.2)."""

    # Accepts failure signals: it is a recovery authority (draft §5.3).
    COORDINATOR = "coordinator"
    # Accepts halt, rollback, resume and status-query for its executions (draft §8).
    PARTICIPANT = "participant"


def extension_declaration(
    roles: Iterable[ExtensionRole],
    *,
    description: str = "Failure signals and coordinated rollback (agent recovery protocol).",
) -> AgentExtension:
    """The ``AgentExtension`` an agent lists in ``AgentCard.capabilities.extensions``."""
    names = sorted({ExtensionRole(role).value for role in roles})
    if not names:
        raise LocalProtocolError(ErrorCode.MALFORMED, "an agent declares at least one role")
    # required stays false: the agent also serves ordinary tasks to clients that
    # never activate the extension (draft §12.3.7).
    return AgentExtension(
        uri=EXTENSION_URI,
        description=description,
        required=False,
        params={
            "versions": list(PROTOCOL_VERSIONS),
            "roles": names,
            "media_type": MEDIA_TYPE,
        },
    )


def peer_roles(card: AgentCard) -> frozenset[ExtensionRole]:
    """The roles a peer's card declares for this extension; empty if none usable.

    Unknown roles are ignored; a declaration naming no protocol version we speak,
    or naming versions as numbers, counts as absent (draft §12.3.2).
    """
    for extension in card.capabilities.extensions:
        if extension.uri != EXTENSION_URI:
            continue
        params = json_format.MessageToDict(extension.params)
        versions = params.get("versions")
        roles = params.get("roles")
        if not isinstance(versions, list) or not set(PROTOCOL_VERSIONS) & set(versions):
            return frozenset()
        if not isinstance(roles, list):
            return frozenset()
        known = {role.value for role in ExtensionRole}
        return frozenset(ExtensionRole(r) for r in roles if isinstance(r, str) and r in known)
    return frozenset()


def is_activated(requested_extensions: Iterable[str]) -> bool:
    """Whether the client activated the extension for this request (``A2A-Extensions``)."""
    return EXTENSION_URI in set(requested_extensions)


def carrier(messages: Sequence[str]) -> dict[str, object]:
    """The metadata value ``{"messages": [...]}`` for at most one outbound JWS string."""
    if isinstance(messages, str):
        raise LocalProtocolError(ErrorCode.MALFORMED, "messages: a sequence of JWS strings")
    try:
        return {MESSAGES_MEMBER: list(_checked({MESSAGES_MEMBER: list(messages)}))}
    except RemoteProtocolError as exc:
        # The same rules as inbound, but here the fault is ours (draft §10).
        raise LocalProtocolError(exc.code, exc.detail) from None


def uses_extension(message: Message) -> bool:
    """Whether an A2A message claims to carry this extension's data."""
    return EXTENSION_URI in message.metadata.fields or EXTENSION_URI in message.extensions


def carried_messages(message: Message) -> tuple[str, ...] | None:
    """The JWS string (zero or one) an inbound A2A message carries; ``None``: no carrier.

    Raises :class:`RemoteProtocolError` (``malformed`` or ``too-large``) when the
    value under the extension URI is not the carrier object; unknown members of
    that object are ignored (draft §6.1).
    """
    if EXTENSION_URI not in message.metadata.fields:
        return None
    value = json_format.MessageToDict(message.metadata).get(EXTENSION_URI)
    return _checked(value)


def protocol_message(
    messages: Sequence[str],
    *,
    message_id: str,
    from_agent: bool,
    context_id: str = "",
    task_id: str = "",
    reference_task_ids: Sequence[str] = (),
) -> Message:
    """An A2A message carrying a protocol message, or a reply, or none (draft §12.3.4).

    The single text part is inert on purpose: A2A requires a part, and an agent
    that ignored the metadata must not find an instruction there.
    """
    return Message(
        message_id=message_id,
        role=Role.ROLE_AGENT if from_agent else Role.ROLE_USER,
        context_id=context_id,
        task_id=task_id,
        parts=[Part(text=_NOTE, media_type="text/plain")],
        metadata={EXTENSION_URI: carrier(messages)},
        extensions=[EXTENSION_URI],
        reference_task_ids=list(reference_task_ids),
    )


def failure_status_message(
    *,
    detail: str,
    signal: str | None,
    message_id: str,
    task_id: str,
    context_id: str,
) -> Message:
    """The status message of a FAILED task: free text, plus the signal if activated.

    ``signal`` is ``None`` for a client that did not activate the extension: it
    gets the plain A2A failure and no protocol data (draft §12.3.7).
    """
    message = Message(
        message_id=message_id,
        role=Role.ROLE_AGENT,
        task_id=task_id,
        context_id=context_id,
        parts=[Part(text=detail, media_type="text/plain")],
    )
    if signal is not None:
        message.metadata.update({EXTENSION_URI: carrier([signal])})
        message.extensions.append(EXTENSION_URI)
    return message


def failure_signal(task: Task | TaskStatusUpdateEvent) -> str | None:
    """The failure signal a FAILED task carries in its status message, if any (draft §12.3.5).

    ``task`` is the task itself (a response, a task query) or one update of
    its status (a streamed event, a push notification).
    """
    if task.status.state != TaskState.TASK_STATE_FAILED or not task.status.HasField("message"):
        return None
    carried = carried_messages(task.status.message)
    return carried[0] if carried else None


def _checked(value: object) -> tuple[str, ...]:
    if not isinstance(value, Mapping):
        raise RemoteProtocolError(ErrorCode.MALFORMED, "extension metadata is not an object")
    messages = value.get(MESSAGES_MEMBER)
    if not isinstance(messages, list):
        raise RemoteProtocolError(ErrorCode.MALFORMED, "'messages' is not an array")
    # draft §12.3.4: one message per carrier, as one per HTTP request (§12.2), so a
    # refusal always concerns the whole A2A request and nothing is half-processed.
    if len(messages) > 1:
        raise RemoteProtocolError(ErrorCode.TOO_LARGE, "more than one message")
    for jws in messages:
        # A number here arrived as a double: refused, never coerced (draft §12.3.4).
        if not isinstance(jws, str):
            raise RemoteProtocolError(ErrorCode.MALFORMED, "a message is not a string")
        if len(jws) > MAX_JWS_LENGTH:
            raise RemoteProtocolError(ErrorCode.TOO_LARGE, "JWS longer than the binding limit")
        if _JWS_COMPACT.fullmatch(jws) is None:
            raise RemoteProtocolError(ErrorCode.MALFORMED, "not a JWS compact serialization")
    return tuple(messages)
