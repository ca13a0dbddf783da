"""What the HTTP binding puts on the wire, as pure functions (draft §12.2).

No sockets and no clock here: this module says which status code, media type,
header and RFC 9457 problem details document goes with each outcome of
processing one request, and how a client reads them back. The server
(``_server.py``) and the client (``_client.py``) only move these values.

The binding in one paragraph. A message is sent as ``POST`` of its compact JWS,
media type ``application/agent-recovery+jws``, to the recipient's recovery
endpoint (``/.well-known/agent-recovery`` unless configured otherwise). The
response body is the recipient's signed reply (``200``), or nothing when the
message has no reply (``204``). Every refusal is an ``application/problem+json``
document whose ``type`` is the error code's URI in the error registry; when the
receiver authenticated the sender, the document also carries the receiver's
signed ``error`` message (member ``signed_error``), which is the protocol's
answer: the problem document is for HTTP software, the signed error for the
engine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from ..._errors import ErrorCode, ProtocolError, RemoteProtocolError
from ..._messages import Error, Message
from ..._model import Owner, format_timestamp, parse_timestamp
from ..._wire import MAX_MESSAGE_SIZE, decode
from ...security.keys import b64url_decode

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_RETRY_AFTER",
    "JWS_MEDIA_TYPE",
    "MAX_BODY_SIZE",
    "PROBLEM_MEDIA_TYPE",
    "RESPONSE_HEADERS",
    "RETRY_AFTER_CODES",
    "STATUS_FOR_CODE",
    "Answer",
    "Problem",
    "answer_for_refusal",
    "answer_for_reply",
    "code_for_type",
    "is_jws_media_type",
    "method_not_allowed",
    "not_found",
    "parse_problem",
    "parse_retry_after",
    "peek",
    "problem_body",
    "retry_after_seconds",
    "unsupported_media_type",
]

JWS_MEDIA_TYPE: Final = "application/agent-recovery+jws"
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
# draft §12.2: the default endpoint, a well-known URI (RFC 8615).
DEFAULT_PATH: Final = "/.well-known/agent-recovery"
# draft §6.12 and §12.2: a compact JWS grows the largest message by 4/3, plus a
# header and a signature; the same bound as ``security.endpoint.MAX_JWS_SIZE``.
MAX_BODY_SIZE: Final = -(-MAX_MESSAGE_SIZE * 4 // 3) + 2048
# draft §12.2: a client waits at least this long (seconds) after a refusal that
# says "later" without saying how long.
DEFAULT_RETRY_AFTER: Final = 1
_MAX_RETRY_AFTER: Final = 86_400
_MAX_PROBLEM_SIZE: Final = MAX_BODY_SIZE + 16 * 1024

# draft §12.2, the status code table. Codes that describe the request itself are
# 4xx; the three that mean "not now" carry Retry-After. ``busy`` is a conflict
# with another recovery's hold on the execution, not unavailability of the
# server, so it is 409 (a 503 would make intermediaries take the server out of
# service); its Retry-After is a hint, as RFC 9110 §10.2.3 allows.
STATUS_FOR_CODE: Final[Mapping[ErrorCode, int]] = MappingProxyType(
    {
        ErrorCode.MALFORMED: 400,
        ErrorCode.TOO_LARGE: 413,
        ErrorCode.UNSUPPORTED_VERSION: 400,
        ErrorCode.UNSIGNED: 400,
        ErrorCode.BAD_SIGNATURE: 400,
        ErrorCode.UNKNOWN_KEY: 400,
        ErrorCode.ALG_NOT_ALLOWED: 400,
        ErrorCode.UNAUTHORIZED: 403,
        ErrorCode.WRONG_RECIPIENT: 403,
        ErrorCode.REPLAY: 409,
        ErrorCode.STALE: 400,
        ErrorCode.CONFLICT: 409,
        ErrorCode.WRONG_RECOVERY: 409,
        ErrorCode.UNKNOWN_RECOVERY: 404,
        ErrorCode.UNKNOWN_EXECUTION: 404,
        ErrorCode.INVALID_STATE: 409,
        ErrorCode.BUSY: 409,
        ErrorCode.SUPERSEDED: 409,
        ErrorCode.RATE_LIMITED: 429,
        ErrorCode.SCOPE_EXCEEDED: 422,
        ErrorCode.OVERLOADED: 503,
        ErrorCode.INTERNAL: 500,
    }
)
# draft §12.2: every response; a reply is for its requester only, and a refusal
# may change as soon as state does.
RESPONSE_HEADERS: Final = (("Cache-Control", "no-store"),)
RETRY_AFTER_CODES: Final = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.OVERLOADED, ErrorCode.BUSY})
_TYPE_PREFIX: Final = "urn:ietf:params:agent-recovery:error:"
_CODE_FOR_TYPE: Final = MappingProxyType({code.type_uri: code for code in ErrorCode})


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """One HTTP response, as data: what the server sends for one request."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """An RFC 9457 problem details document of this binding.

    ``code`` is ``None`` when ``type`` is not one of the registry's URIs (for
    example ``about:blank`` from an intermediary). ``signed_error`` is the
    receiver's signed ``error`` message when it had authenticated the sender;
    a client gives it to its engine after verifying it like any message.
    """

    type: str
    status: int
    title: str
    detail: str = ""
    code: ErrorCode | None = None
    owner: Owner | None = None
    retry_after: int | None = None
    signed_error: bytes | None = None


# ---------------------------------------------------------------------------
# Server side


def is_jws_media_type(content_type: str | None) -> bool:
    """True if a ``Content-Type`` names ``application/agent-recovery+jws``.

    Media type names are case-insensitive (RFC 9110 §8.3.1); parameters are
    ignored, since the type defines none and the body is ASCII anyway.
    """
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == JWS_MEDIA_TYPE


def peek(jws: bytes) -> Message:
    """Decode the payload of a JWS without verifying it.

    Only for a reply this side signed itself (the server deciding how to send
    it) and for diagnostics; a received message is verified by the endpoint.
    Raises :class:`RemoteProtocolError` if it is not a JWS of a message.
    """
    parts = jws.split(b".")
    if len(parts) != 3:
        raise RemoteProtocolError(ErrorCode.UNSIGNED, "not a JWS compact serialization")
    try:
        payload = b64url_decode(parts[1])
    except (ValueError, RemoteProtocolError) as exc:
        raise RemoteProtocolError(ErrorCode.MALFORMED, "payload is not base64url") from exc
    return decode(payload)


def answer_for_reply(reply: bytes | None) -> Answer:
    """The response to an accepted message: its signed reply, or 204 (draft §12.2).

    A signed ``error`` reply (the engine refused the message after
    authenticating its sender) is sent as a problem document carrying it.
    """
    if reply is None:
        return Answer(status=204)
    message = peek(reply)
    if isinstance(message, Error):
        code = message.effective_code
        return answer_for_refusal(
            code,
            message.detail or "",
            owner=message.owner,
            signed_error=reply,
        )
    return Answer(status=200, body=reply, content_type=JWS_MEDIA_TYPE)


def answer_for_refusal(
    code: ErrorCode,
    detail: str = "",
    *,
    owner: Owner | None = None,
    signed_error: bytes | None = None,
    retry_after: int | None = None,
    status: int | None = None,
) -> Answer:
    """The problem details response for a refusal with ``code`` (draft §12.2).

    ``retry_after`` (seconds) is sent only with the codes that mean "not now";
    they get :data:`DEFAULT_RETRY_AFTER` if none is given. ``status``
    overrides the table only for the HTTP-level refusals (415).
    """
    wait: int | None = None
    if code in RETRY_AFTER_CODES:
        wait = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
        wait = max(1, min(wait, _MAX_RETRY_AFTER))
    problem = Problem(
        type=code.type_uri,
        status=STATUS_FOR_CODE[code] if status is None else status,
        title=code.description,
        detail=detail,
        code=code,
        owner=owner if code is ErrorCode.BUSY else None,
        retry_after=wait,
        signed_error=signed_error,
    )
    headers: tuple[tuple[str, str], ...] = ()
    if wait is not None:
        headers = (("Retry-After", str(wait)),)
    return Answer(
        status=problem.status,
        body=problem_body(problem),
        content_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def unsupported_media_type(content_type: str | None) -> Answer:
    """415: the body is not ``application/agent-recovery+jws`` (draft §12.2).

    The type is ``malformed``: the registry has no code for a media type, and
    the message could not be read as one of ours.
    """
    answer = answer_for_refusal(
        ErrorCode.MALFORMED,
        f"expected {JWS_MEDIA_TYPE}, got {content_type or 'no Content-Type'}",
        status=415,
    )
    return Answer(
        status=answer.status,
        body=answer.body,
        content_type=answer.content_type,
        headers=(("Accept-Post", JWS_MEDIA_TYPE),),
    )


def method_not_allowed() -> Answer:
    """405 with ``Allow: POST``; a plain problem (``about:blank``), not a protocol error."""
    problem = Problem(type="about:blank", status=405, title="Method Not Allowed")
    return Answer(
        status=405,
        body=problem_body(problem),
        content_type=PROBLEM_MEDIA_TYPE,
        headers=(("Allow", "POST"),),
    )


def not_found() -> Answer:
    problem = Problem(type="about:blank", status=404, title="Not Found")
    return Answer(status=404, body=problem_body(problem), content_type=PROBLEM_MEDIA_TYPE)


def problem_body(problem: Problem) -> bytes:
    """The JSON of a problem document (RFC 9457 §3), members in a fixed order."""
    doc: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        doc["detail"] = problem.detail
    if problem.code is not None:
        doc["code"] = problem.code.value
    if problem.owner is not None:
        doc["owner"] = {
            "recovery": problem.owner.recovery,
            "created": format_timestamp(problem.owner.created),
        }
    if problem.retry_after is not None:
        doc["retry_after"] = problem.retry_after
    if problem.signed_error is not None:
        doc["signed_error"] = problem.signed_error.decode("ascii")
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# ---------------------------------------------------------------------------
# Client side


def code_for_type(type_uri: str) -> ErrorCode | None:
    """The registry code whose problem type URI is ``type_uri``, if any."""
    return _CODE_FOR_TYPE.get(type_uri)


def parse_problem(body: bytes, status: int, retry_after: str | None = None) -> Problem:
    """Read a problem document, leniently, as RFC 9457 §3 asks of consumers.

    Unknown members are ignored; a member of the wrong type is treated as
    absent; a body that is not a JSON object yields a problem with only the
    HTTP status (an intermediary's error page, say). The ``Retry-After``
    header, when given, wins over the ``retry_after`` member.
    """
    doc: object = None
    if len(body) <= _MAX_PROBLEM_SIZE:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
    if not isinstance(doc, dict):
        doc = {}
    type_uri = _text(doc.get("type")) or "about:blank"
    # The type URI is authoritative; the "code" member only repeats it.
    code = code_for_type(type_uri)
    signed = _text(doc.get("signed_error"))
    wait = parse_retry_after(retry_after)
    if wait is None:
        member = doc.get("retry_after")
        if isinstance(member, int) and not isinstance(member, bool) and member >= 0:
            wait = min(member, _MAX_RETRY_AFTER)
    return Problem(
        type=type_uri,
        status=status,
        title=_text(doc.get("title")),
        detail=_text(doc.get("detail")),
        code=code,
        owner=_owner(doc.get("owner")) if code is ErrorCode.BUSY else None,
        retry_after=wait,
        signed_error=signed.encode("ascii") if signed and signed.isascii() else None,
    )


def parse_retry_after(value: str | None) -> int | None:
    """``Retry-After`` as delta-seconds (RFC 9110 §10.2.3), capped at a day.

    An HTTP-date is not interpreted (it needs a clock; this module has none):
    the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        return None
    return min(int(text), _MAX_RETRY_AFTER)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _owner(value: object) -> Owner | None:
    if not isinstance(value, dict):
        return None
    recovery, created = value.get("recovery"), value.get("created")
    if not isinstance(recovery, str) or not isinstance(created, str):
        return None
    try:
        return Owner(recovery=recovery, created=parse_timestamp(created))
    except ProtocolError:
        return None


def retry_after_seconds(milliseconds: int) -> int:
    """A wait in milliseconds as whole Retry-After seconds, rounded up, at least 1."""
    return max(1, min(math.ceil(milliseconds / 1000), _MAX_RETRY_AFTER))
