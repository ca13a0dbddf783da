"""Failure signaling and coordinated rollback for cooperating agents.

The reference implementation of draft-agent-recovery-rollback. The package root
re-exports the sans-I/O core only: values and messages (draft §5, §6), the
codec (§6.13), the rollback-set computation (§7), the state machines and the
coordinator and participant engines (§8), records (§11) and errors (§10).
Security back-ends, storage, bindings and the test kit live in subpackages and
are imported explicitly.
"""

from __future__ import annotations

from ._coordinator import AcceptAll as AcceptAll
from ._coordinator import AppraisalPolicy as AppraisalPolicy
from ._coordinator import Coordinator as Coordinator
from ._coordinator import Verdict as Verdict
from ._errors import ErrorCode as ErrorCode
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import ProtocolError as ProtocolError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._events import AppraisalRequired as AppraisalRequired
from ._events import Event as Event
from ._events import HaltRequested as HaltRequested
from ._events import ReasonDiscrepancy as ReasonDiscrepancy
from ._events import RecoveryEnded as RecoveryEnded
from ._events import RecoveryStarted as RecoveryStarted
from ._events import Resumed as Resumed
from ._events import ReversibilityDiscrepancy as ReversibilityDiscrepancy
from ._events import RollbackRequested as RollbackRequested
from ._events import SignalAcknowledged as SignalAcknowledged
from ._events import SignalRefused as SignalRefused
from ._events import SignalUndelivered as SignalUndelivered
from ._events import WarningReceived as WarningReceived
from ._messages import Ack as Ack
from ._messages import Error as Error
from ._messages import FailureSignal as FailureSignal
from ._messages import Halt as Halt
from ._messages import Halted as Halted
from ._messages import Message as Message
from ._messages import Owner as Owner
from ._messages import Progress as Progress
from ._messages import RecordMember as RecordMember
from ._messages import RecoveryRecord as RecoveryRecord
from ._messages import Resume as Resume
from ._messages import Rollback as Rollback
from ._messages import RollbackResult as RollbackResult
from ._messages import Status as Status
from ._messages import StatusQuery as StatusQuery
from ._model import Action as Action
from ._model import Dependency as Dependency
from ._model import EffectState as EffectState
from ._model import ExecRef as ExecRef
from ._model import Facts as Facts
from ._model import Outcome as Outcome
from ._model import Reason as Reason
from ._model import ReasonKind as ReasonKind
from ._model import Residual as Residual
from ._model import Reversibility as Reversibility
from ._model import Severity as Severity
from ._model import Status as ExecutionStatus
from ._participant import Participant as Participant
from ._records import LogVerifier as LogVerifier
from ._records import verify_log as verify_log
from ._registry import FailureType as FailureType
from ._registry import RecommendedAction as RecommendedAction
from ._scope import Bounds as Bounds
from ._scope import Member as ScopeMember
from ._scope import ScopeBuilder as ScopeBuilder
from ._scope import ScopeResult as ScopeResult
from ._scope import compute_rollback_set as compute_rollback_set
from ._state import MemberState as MemberState
from ._state import RecoveryState as RecoveryState
from ._state import Retry as Retry
from ._wire import decode as decode
from ._wire import encode as encode

__version__ = "0.1.0"

__all__ = [
    "AcceptAll",
    "Ack",
    "Action",
    "AppraisalPolicy",
    "AppraisalRequired",
    "Bounds",
    "Coordinator",
    "Dependency",
    "EffectState",
    "Error",
    "ErrorCode",
    "Event",
    "ExecRef",
    "ExecutionStatus",
    "Facts",
    "FailureSignal",
    "FailureType",
    "Halt",
    "HaltRequested",
    "Halted",
    "LocalProtocolError",
    "LogVerifier",
    "MemberState",
    "Message",
    "Outcome",
    "Owner",
    "Participant",
    "Progress",
    "ProtocolError",
    "Reason",
    "ReasonDiscrepancy",
    "ReasonKind",
    "RecommendedAction",
    "RecordMember",
    "RecoveryEnded",
    "RecoveryRecord",
    "RecoveryStarted",
    "RecoveryState",
    "RemoteProtocolError",
    "Residual",
    "Resume",
    "Resumed",
    "Retry",
    "Reversibility",
    "ReversibilityDiscrepancy",
    "Rollback",
    "RollbackRequested",
    "RollbackResult",
    "ScopeBuilder",
    "ScopeMember",
    "ScopeResult",
    "Severity",
    "SignalAcknowledged",
    "SignalRefused",
    "SignalUndelivered",
    "Status",
    "StatusQuery",
    "Verdict",
    "WarningReceived",
    "__version__",
    "compute_rollback_set",
    "decode",
    "encode",
    "verify_log",
]
