"""Message protection around the sans-I/O core (draft §9, §13).

Signing and verification (``jws``), key resolution (``keys``), the replay rule
(``replay``), rate limits (``ratelimit``), security events (``events``), the
inbound pipeline that puts them in front of an engine (``endpoint``) and the
operator override interface (``override``).
"""

from __future__ import annotations

from .endpoint import MAX_JWS_SIZE as MAX_JWS_SIZE
from .endpoint import Accepted as Accepted
from .endpoint import Endpoint as Endpoint
from .endpoint import Engine as Engine
from .endpoint import InboundError as InboundError
from .events import EventKind as EventKind
from .events import EventLog as EventLog
from .events import EventSink as EventSink
from .events import SecurityEvent as SecurityEvent
from .jws import JWS_TYPE as JWS_TYPE
from .jws import Signer as Signer
from .jws import Verified as Verified
from .jws import Verifier as Verifier
from .keys import Algorithm as Algorithm
from .keys import JwkSet as JwkSet
from .keys import KeyResolver as KeyResolver
from .keys import VerificationKey as VerificationKey
from .keys import generate_private_jwk as generate_private_jwk
from .keys import load_jwk_set as load_jwk_set
from .override import OVERRIDE_JWS_TYPE as OVERRIDE_JWS_TYPE
from .override import Override as Override
from .override import OverrideAction as OverrideAction
from .override import OverrideEndpoint as OverrideEndpoint
from .override import sign_override as sign_override
from .ratelimit import RateLimiter as RateLimiter
from .ratelimit import RatePolicy as RatePolicy
from .ratelimit import RecoveryCap as RecoveryCap
from .replay import ReplayCache as ReplayCache

__all__ = [
    "JWS_TYPE",
    "MAX_JWS_SIZE",
    "OVERRIDE_JWS_TYPE",
    "Accepted",
    "Algorithm",
    "Endpoint",
    "Engine",
    "EventKind",
    "EventLog",
    "EventSink",
    "InboundError",
    "JwkSet",
    "KeyResolver",
    "Override",
    "OverrideAction",
    "OverrideEndpoint",
    "RateLimiter",
    "RatePolicy",
    "RecoveryCap",
    "ReplayCache",
    "SecurityEvent",
    "Signer",
    "VerificationKey",
    "Verified",
    "Verifier",
    "generate_private_jwk",
    "load_jwk_set",
    "sign_override",
]
