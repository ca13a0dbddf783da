"""Registries: values that can grow without a new protocol version (draft §16).

Every registry-valued member is *open*: a receiver that does not know a value
keeps the raw string (so the message round-trips and its signature stays
verifiable over the same bytes) and acts on the registry's declared fallback,
which is never a success value (draft §6.13). Closed sets (severity, effect
state, action, reason kind, record result) are enums in ``_model.py``; an
unknown value there is a malformed message.

The Failure Types registry (draft §6.2, §16) is seeded from JamJet's
``DelegationFailure`` taxonomy, cleaned of the variants that are not failures.
:data:`JAMJET_MAPPING` accounts for all eleven variants as data; the draft's
appendix is generated from it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

from ._errors import ErrorCode
from ._model import EffectState, Outcome

__all__ = [
    "ERROR_CODES",
    "FAILURE_TYPES",
    "JAMJET_BY_VARIANT",
    "JAMJET_MAPPING",
    "OUTCOMES",
    "RECOMMENDED_ACTIONS",
    "FailureType",
    "JamJetDisposition",
    "JamJetMapping",
    "RecommendedAction",
    "Registry",
    "RegistryEntry",
]

E = TypeVar("E", bound=enum.StrEnum)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryEntry:
    """One registered value: its more general fallback and a one-line definition."""

    value: str
    fallback: str
    definition: str
    reference: str


class Registry(Generic[E]):
    """An open registry whose initial values are the members of an enum.

    ``effective(raw)`` is what a receiver acts on: the value itself when it is
    registered, else the registry's fallback (draft §6.13).
    """

    __slots__ = ("_by_value", "entries", "fallback", "name", "values")

    def __init__(self, name: str, values: type[E], fallback: E, entries: tuple[RegistryEntry, ...]):
        self.name = name
        self.values = values
        self.fallback = fallback
        self.entries: Mapping[str, RegistryEntry] = MappingProxyType({e.value: e for e in entries})
        self._by_value: Mapping[str, E] = MappingProxyType({m.value: m for m in values})
        # The table and the enum are two views of one registry: they must not drift.
        if set(self.entries) != set(self._by_value):
            raise AssertionError(f"{name}: entries and enum differ")
        for entry in entries:
            if entry.fallback not in self._by_value:
                raise AssertionError(f"{name}: {entry.value} falls back to an unknown value")

    def __contains__(self, raw: object) -> bool:
        return raw in self._by_value

    def effective(self, raw: str) -> E:
        """The registered value for ``raw``, or the fallback if ``raw`` is not registered."""
        return self._by_value.get(raw, self.fallback)

    def generalize(self, value: E) -> E:
        """The more general value a receiver without specific handling treats ``value`` as."""
        return self._by_value[self.entries[value.value].fallback]


class FailureType(enum.StrEnum):
    """Initial contents of the Failure Types registry (draft §6.2, §16)."""

    UNSPECIFIED = "unspecified"
    EXECUTION_ERROR = "execution-error"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    CAPABILITY_MISMATCH = "capability-mismatch"
    TOOL_FAILED = "tool-failed"
    POLICY_DENIED = "policy-denied"
    BUDGET_EXCEEDED = "budget-exceeded"
    TRUST_CROSSING_DENIED = "trust-crossing-denied"
    VERIFICATION_FAILED = "verification-failed"
    INPUT_INVALIDATED = "input-invalidated"


_U = FailureType.UNSPECIFIED.value
_FT_REF = "draft §6.2"

FAILURE_TYPES: Registry[FailureType] = Registry(
    "Failure Types",
    FailureType,
    FailureType.UNSPECIFIED,
    (
        RegistryEntry(
            value="unspecified",
            fallback=_U,
            definition="The execution failed; no more specific type is given or known.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="execution-error",
            fallback=_U,
            definition="The execution's own processing failed (not a party it relied on).",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="unreachable",
            fallback=_U,
            definition="An agent or service the execution delegated to could not be reached.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="timeout",
            fallback=_U,
            definition="The execution, or work it waited for, exceeded its deadline.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="capability-mismatch",
            fallback=_U,
            definition="The capability the execution needed is not offered by its delegate.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="tool-failed",
            fallback=_U,
            definition="A tool or service the execution invoked returned an error.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="policy-denied",
            fallback=_U,
            definition="A governance policy refused an operation the execution needed.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="budget-exceeded",
            fallback="policy-denied",
            definition="Continuing would exceed an allocated budget (cost, tokens, time).",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="trust-crossing-denied",
            fallback="policy-denied",
            definition="An operation would have crossed a trust boundary that policy forbids.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="verification-failed",
            fallback=_U,
            definition="A check on produced or received data (signature, hash, test) failed.",
            reference=_FT_REF,
        ),
        RegistryEntry(
            value="input-invalidated",
            fallback=_U,
            definition="An input the execution consumed was withdrawn or found invalid.",
            reference=_FT_REF,
        ),
    ),
)


class RecommendedAction(enum.StrEnum):
    """Initial contents of the Recommended Actions registry (draft §6.2, §16).

    Advice from the failing agent to its recovery authority; the authority
    decides. An unknown recommendation is treated as ``escalate`` (let policy or
    an operator decide), never as ``none``.
    """

    RETRY = "retry"
    RESTORE = "restore"
    COMPENSATE = "compensate"
    ESCALATE = "escalate"
    NONE = "none"


_RA_REF = "draft §6.2"
_ESC = RecommendedAction.ESCALATE.value

RECOMMENDED_ACTIONS: Registry[RecommendedAction] = Registry(
    "Recommended Actions",
    RecommendedAction,
    RecommendedAction.ESCALATE,
    (
        RegistryEntry(
            value="retry",
            fallback=_ESC,
            definition="Run the failed work again from the signalled checkpoint.",
            reference=_RA_REF,
        ),
        RegistryEntry(
            value="restore",
            fallback=_ESC,
            definition="Roll the execution and its dependents back to the checkpoint.",
            reference=_RA_REF,
        ),
        RegistryEntry(
            value="compensate",
            fallback=_ESC,
            definition="Undo the effects by compensating actions; restoring is not possible.",
            reference=_RA_REF,
        ),
        RegistryEntry(
            value="escalate",
            fallback=_ESC,
            definition="Hand the decision to policy or an operator.",
            reference=_RA_REF,
        ),
        RegistryEntry(
            value="none",
            fallback=_ESC,
            definition="No recovery is needed (typical for severity warning).",
            reference=_RA_REF,
        ),
    ),
)

_OUT_REF = "draft §8.2"
_UNK = Outcome.UNKNOWN.value

OUTCOMES: Registry[Outcome] = Registry(
    "Member Outcomes",
    Outcome,
    # An outcome the coordinator does not understand is not a success (draft §8.4).
    Outcome.UNKNOWN,
    (
        RegistryEntry(
            value="restored",
            fallback=_UNK,
            definition="The execution is back at the target checkpoint.",
            reference=_OUT_REF,
        ),
        RegistryEntry(
            value="compensated",
            fallback=_UNK,
            definition="Compensating actions undid the effects after the target.",
            reference=_OUT_REF,
        ),
        RegistryEntry(
            value="irreversible",
            fallback=_UNK,
            definition="Effects could not be undone; residual effects are disclosed.",
            reference=_OUT_REF,
        ),
        RegistryEntry(
            value="failed",
            fallback=_UNK,
            definition="Restoring or compensating was attempted and did not succeed.",
            reference=_OUT_REF,
        ),
        RegistryEntry(
            value="refused",
            fallback=_UNK,
            definition="The participant declined the request; an error code says why.",
            reference=_OUT_REF,
        ),
        RegistryEntry(
            value="not-needed",
            fallback=_UNK,
            definition="Nothing after the target was affected; nothing had to be undone.",
            reference=_OUT_REF,
        ),
        RegistryEntry(
            value="unknown",
            fallback=_UNK,
            definition="The outcome is not known (e.g. timeout); resolved later by status.",
            reference=_OUT_REF,
        ),
    ),
)

ERROR_CODES: Registry[ErrorCode] = Registry(
    "Error Codes",
    ErrorCode,
    # An unknown code still means "not processed, nothing changed"; like internal
    # it blames neither side, so a later retry is allowed (draft §10).
    ErrorCode.INTERNAL,
    tuple(
        RegistryEntry(
            value=code.value,
            fallback=ErrorCode.INTERNAL.value,
            definition=code.description,
            reference="draft §10",
        )
        for code in ErrorCode
    ),
)


class JamJetDisposition(enum.StrEnum):
    """Where a JamJet ``DelegationFailure`` variant goes in this protocol (draft appendix)."""

    FAILURE_TYPE = "failure-type"  # a failure signal with this failure type
    EFFECT_STATE = "effect-state"  # a failure signal; the variant describes effects/progress
    PENDING = "pending"  # not a failure: the execution waits (for approval)
    ACTION_TAKEN = "action-taken"  # not a failure: a recovery action was already taken


@dataclass(frozen=True, slots=True, kw_only=True)
class JamJetMapping:
    """How one JamJet variant is accounted for (draft appendix "JamJet mapping")."""

    variant: str
    disposition: JamJetDisposition
    failure_type: FailureType | None
    effect_state: EffectState | None  # what JamJet's variant implies about effects
    fields: tuple[str, ...]
    carried_as: str
    rationale: str


JAMJET_MAPPING: tuple[JamJetMapping, ...] = (
    JamJetMapping(
        variant="delegate_unreachable",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.UNREACHABLE,
        effect_state=EffectState.NONE,
        fields=("url", "message"),
        carried_as="params.url, params.message; message also as detail",
        rationale="A real failure of the delegation; the name drops 'delegate' because "
        "any agent or service the execution relies on can be unreachable.",
    ),
    JamJetMapping(
        variant="capability_mismatch",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.CAPABILITY_MISMATCH,
        effect_state=EffectState.NONE,
        fields=("requested", "available"),
        carried_as="params.requested, params.available",
        rationale="A real failure: the work cannot be done by this delegate.",
    ),
    JamJetMapping(
        variant="policy_denied",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.POLICY_DENIED,
        effect_state=EffectState.NONE,
        fields=("policy_id", "reason"),
        carried_as="params.policy_id, params.reason; reason also as detail",
        rationale="A real failure: a policy refused the operation.",
    ),
    JamJetMapping(
        variant="approval_required",
        disposition=JamJetDisposition.PENDING,
        failure_type=None,
        effect_state=None,
        fields=("prompt",),
        carried_as="no failure signal; the host protocol's input-required state",
        rationale="A pending state: the execution waits for a decision and nothing "
        "has failed. Signalling it would start containment for work that is healthy.",
    ),
    JamJetMapping(
        variant="budget_exceeded",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.BUDGET_EXCEEDED,
        effect_state=EffectState.NONE,
        fields=("limit", "actual", "unit"),
        carried_as="params.limit, params.actual, params.unit",
        rationale="A real failure; registered with fallback policy-denied since a "
        "budget is a policy limit.",
    ),
    JamJetMapping(
        variant="trust_crossing_denied",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.TRUST_CROSSING_DENIED,
        effect_state=EffectState.NONE,
        fields=("from_domain", "to_domain"),
        carried_as="params.from_domain, params.to_domain",
        rationale="A real failure; registered with fallback policy-denied.",
    ),
    JamJetMapping(
        variant="verification_failed",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.VERIFICATION_FAILED,
        effect_state=EffectState.UNKNOWN,
        fields=("check", "message"),
        carried_as="params.check, params.message; message also as detail",
        rationale="A real failure: produced or received data did not pass a check.",
    ),
    JamJetMapping(
        variant="tool_dependency_failed",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.TOOL_FAILED,
        effect_state=EffectState.UNKNOWN,
        fields=("tool", "error"),
        carried_as="params.tool, params.error; error also as detail",
        rationale="A real failure; renamed because 'dependency' is the protocol's "
        "term for an edge between executions.",
    ),
    JamJetMapping(
        variant="partial_completion",
        disposition=JamJetDisposition.EFFECT_STATE,
        failure_type=FailureType.UNSPECIFIED,
        effect_state=EffectState.PARTIAL,
        fields=("completed_steps", "total_steps", "output"),
        carried_as="effect_state partial, progress.completed, progress.total, "
        "partial_output (reference) or params.output",
        rationale="Describes how far the work got, not why it failed; every failure "
        "signal can carry it, so it is effect state and progress, not a type.",
    ),
    JamJetMapping(
        variant="fallback_invoked",
        disposition=JamJetDisposition.ACTION_TAKEN,
        failure_type=None,
        effect_state=None,
        fields=("original_delegate", "fallback_delegate", "reason"),
        carried_as="no failure signal; a note for the local log, or the detail or "
        "evidence of a later signal if the fallback also fails",
        rationale="A recovery action already taken and, so far, successful; a signal "
        "would ask for a recovery that is not needed.",
    ),
    JamJetMapping(
        variant="timeout",
        disposition=JamJetDisposition.FAILURE_TYPE,
        failure_type=FailureType.TIMEOUT,
        effect_state=EffectState.UNKNOWN,
        fields=("deadline_secs", "elapsed_secs"),
        carried_as="params.deadline_secs, params.elapsed_secs",
        rationale="A real failure; effect state is usually unknown after a timeout.",
    ),
)

JAMJET_BY_VARIANT: Mapping[str, JamJetMapping] = MappingProxyType(
    {entry.variant: entry for entry in JAMJET_MAPPING}
)
