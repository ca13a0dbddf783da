"""The A2A binding: the protocol as an A2A extension over a2a-sdk (draft §12.3).

``_mapping`` says where each protocol message sits in A2A objects (pure);
``_adapter`` connects a protocol engine to a real a2a-sdk server and client.
"""

from ._adapter import ERROR_CODE_KEY as ERROR_CODE_KEY
from ._adapter import DeliveryError as DeliveryError
from ._adapter import Handler as Handler
from ._adapter import RecoveryClient as RecoveryClient
from ._adapter import RecoveryExecutor as RecoveryExecutor
from ._adapter import activation_context as activation_context
from ._adapter import agent_card as agent_card
from ._adapter import build_app as build_app
from ._adapter import fail_task as fail_task
from ._adapter import http_client as http_client
from ._adapter import listen as listen
from ._adapter import serving as serving
from ._mapping import EXTENSION_URI as EXTENSION_URI
from ._mapping import MAX_JWS_LENGTH as MAX_JWS_LENGTH
from ._mapping import MEDIA_TYPE as MEDIA_TYPE
from ._mapping import ExtensionRole as ExtensionRole
from ._mapping import carried_messages as carried_messages
from ._mapping import extension_declaration as extension_declaration
from ._mapping import failure_signal as failure_signal
from ._mapping import failure_status_message as failure_status_message
from ._mapping import is_activated as is_activated
from ._mapping import peer_roles as peer_roles
from ._mapping import protocol_message as protocol_message

__all__ = [
    "ERROR_CODE_KEY",
    "EXTENSION_URI",
    "MAX_JWS_LENGTH",
    "MEDIA_TYPE",
    "DeliveryError",
    "ExtensionRole",
    "Handler",
    "RecoveryClient",
    "RecoveryExecutor",
    "activation_context",
    "agent_card",
    "build_app",
    "carried_messages",
    "extension_declaration",
    "fail_task",
    "failure_signal",
    "failure_status_message",
    "http_client",
    "is_activated",
    "listen",
    "peer_roles",
    "protocol_message",
    "serving",
]
