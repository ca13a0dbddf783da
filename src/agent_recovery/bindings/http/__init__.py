"""The HTTP binding: POST a signed message, get the signed reply (draft §12.2).

``_mapping`` says what goes on the wire for each outcome (status codes, media
types, RFC 9457 problem details, Retry-After) as pure functions; ``_server``
is a thin Starlette app and uvicorn runner around a bytes-in, answer-out
handler; ``_client`` posts messages with httpx.
"""

from ._client import Delivery as Delivery
from ._client import DeliveryError as DeliveryError
from ._client import RecoveryClient as RecoveryClient
from ._client import read_response as read_response
from ._mapping import DEFAULT_PATH as DEFAULT_PATH
from ._mapping import DEFAULT_RETRY_AFTER as DEFAULT_RETRY_AFTER
from ._mapping import JWS_MEDIA_TYPE as JWS_MEDIA_TYPE
from ._mapping import MAX_BODY_SIZE as MAX_BODY_SIZE
from ._mapping import PROBLEM_MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from ._mapping import RESPONSE_HEADERS as RESPONSE_HEADERS
from ._mapping import RETRY_AFTER_CODES as RETRY_AFTER_CODES
from ._mapping import STATUS_FOR_CODE as STATUS_FOR_CODE
from ._mapping import Answer as Answer
from ._mapping import Problem as Problem
from ._mapping import answer_for_refusal as answer_for_refusal
from ._mapping import answer_for_reply as answer_for_reply
from ._mapping import code_for_type as code_for_type
from ._mapping import is_jws_media_type as is_jws_media_type
from ._mapping import parse_problem as parse_problem
from ._mapping import parse_retry_after as parse_retry_after
from ._mapping import peek as peek
from ._mapping import problem_body as problem_body
from ._mapping import retry_after_seconds as retry_after_seconds
from ._server import Handler as Handler
from ._server import answer_inbound as answer_inbound
from ._server import build_app as build_app
from ._server import listen as listen
from ._server import serving as serving

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_RETRY_AFTER",
    "JWS_MEDIA_TYPE",
    "MAX_BODY_SIZE",
    "PROBLEM_MEDIA_TYPE",
    "RETRY_AFTER_CODES",
    "STATUS_FOR_CODE",
    "Answer",
    "Delivery",
    "DeliveryError",
    "Handler",
    "Problem",
    "RecoveryClient",
    "answer_for_refusal",
    "answer_for_reply",
    "answer_inbound",
    "build_app",
    "code_for_type",
    "is_jws_media_type",
    "listen",
    "parse_problem",
    "parse_retry_after",
    "peek",
    "problem_body",
    "read_response",
    "retry_after_seconds",
    "serving",
]
