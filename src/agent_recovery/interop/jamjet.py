"""JamJet ``DelegationFailureInfo`` to failure-signal fields (draft appendix "JamJet").

JamJet (``jamjet-protocols``, ``failure.rs``) reports a failed delegation as::

    {"failure": {"type": "timeout", "deadline_secs": 30, "elapsed_secs": 35},
     "severity": "error", "retryable": true, "partial_output": {...},
     "recommended_fallback": "backup-agent", "audit_ref": "audit-12345",
     "timestamp": "2026-03-15T00:00:00Z"}

:func:`convert` turns that into the members a failure signal carries, following
the table ``JAMJET_MAPPING`` in ``_registry.py``, from which the draft's
appendix is generated. Two variants are not failures and never become a
signal: ``approval_required`` (a pending state) and ``fallback_invoked`` (a
recovery action already taken); they yield :class:`NotAFailure`, which says
where the information goes instead.

JamJet has no signal id, no issuer, no execution reference and no checkpoint;
the caller supplies them when it builds the signal with
:meth:`SignalFields.to_signal`. Without a checkpoint the conservative value 0
(restart from the beginning) is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .._messages import FailureSignal, JSONValue, Progress, freeze_object
from .._model import EffectState, ExecRef, Severity
from .._registry import (
    JAMJET_BY_VARIANT,
    FailureType,
    JamJetDisposition,
    JamJetMapping,
)
from .._wire import parse_timestamp

__all__ = ["NotAFailure", "SignalFields", "convert", "convert_failure"]

# The free-text field of each variant, if any, which also becomes ``detail``.
_DETAIL_FIELD = {
    "delegate_unreachable": "message",
    "policy_denied": "reason",
    "verification_failed": "message",
    "tool_dependency_failed": "error",
}


def _bad(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.MALFORMED, f"jamjet: {detail}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalFields:
    """The failure-signal members a JamJet report determines (draft §6.2)."""

    failure_type: str
    severity: Severity
    retryable: bool
    effect_state: EffectState
    progress: Progress | None = None
    partial_output: str | None = None
    detail: str | None = None
    params: Mapping[str, JSONValue] | None = field(default=None, hash=False)
    evidence: tuple[str, ...] = ()
    iat: int | None = None
    mapping: JamJetMapping | None = None

    def to_signal(
        self,
        *,
        id: str,
        sender: str,
        recipient: str,
        execution: ExecRef,
        iat: int | None = None,
        checkpoint: int = 0,
    ) -> FailureSignal:
        """Build the signal; ``iat`` defaults to JamJet's own timestamp."""
        issued = iat if iat is not None else self.iat
        if issued is None:
            raise _bad("no timestamp and no iat given")
        return FailureSignal(
            id=id,
            sender=sender,
            recipient=recipient,
            iat=issued,
            execution=execution,
            failure_type=self.failure_type,
            severity=self.severity,
            retryable=self.retryable,
            effect_state=self.effect_state,
            checkpoint=checkpoint,
            progress=self.progress,
            partial_output=self.partial_output,
            detail=self.detail,
            params=self.params,
            evidence=self.evidence,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NotAFailure:
    """A JamJet variant that must not become a failure signal, and where it goes."""

    variant: str
    disposition: JamJetDisposition
    fields: Mapping[str, JSONValue] = field(hash=False)
    carried_as: str

    @property
    def detail(self) -> str:
        """One line for a log entry, or for the detail of a later signal."""
        if self.disposition is JamJetDisposition.PENDING:
            return f"awaiting approval: {self.fields.get('prompt', '')}"
        return (
            f"fell back from {self.fields.get('original_delegate', '?')} to "
            f"{self.fields.get('fallback_delegate', '?')}: {self.fields.get('reason', '')}"
        )


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(f"{what} is not an object")
    return value


def convert_failure(
    failure: Mapping[str, Any],
    *,
    severity: Severity = Severity.ERROR,
    retryable: bool = False,
    partial_output_ref: str | None = None,
) -> SignalFields | NotAFailure:
    """Convert a bare ``DelegationFailure`` (the tagged variant object).

    A bare variant has no severity or retryable flag; the defaults ask for
    recovery (``error``) and do not presume a retry helps.
    """
    failure = _object(failure, "failure")
    variant = failure.get("type")
    if not isinstance(variant, str):
        raise _bad("failure has no type tag")
    values = {key: value for key, value in failure.items() if key != "type"}
    try:
        params = freeze_object(values)
    except LocalProtocolError:
        raise _bad(f"{variant}: fields are not I-JSON") from None
    mapping = JAMJET_BY_VARIANT.get(variant)
    if mapping is None:
        # A variant added after this table: a failure of unknown kind, never success.
        return SignalFields(
            failure_type=FailureType.UNSPECIFIED,
            severity=severity,
            retryable=retryable,
            effect_state=EffectState.UNKNOWN,
            detail=f"JamJet failure {variant}",
            params={"jamjet_type": variant, **params},
        )
    if mapping.failure_type is None:
        return NotAFailure(
            variant=variant,
            disposition=mapping.disposition,
            fields=params,
            carried_as=mapping.carried_as,
        )
    assert mapping.effect_state is not None
    progress = None
    detail = None
    if mapping.disposition is JamJetDisposition.EFFECT_STATE:
        # partial_completion: how far the work got, not why it failed.
        completed, total = values.get("completed_steps"), values.get("total_steps")
        if not isinstance(completed, int) or not isinstance(total, int):
            raise _bad("partial_completion: step counts are not integers")
        try:
            progress = Progress(completed=completed, total=total)
        except LocalProtocolError:
            raise _bad("partial_completion: bad step counts") from None
        output = params.get("output")
        params = {} if output is None or partial_output_ref is not None else {"output": output}
    elif variant in _DETAIL_FIELD and isinstance(values.get(_DETAIL_FIELD[variant]), str):
        detail = values[_DETAIL_FIELD[variant]]
    return SignalFields(
        failure_type=mapping.failure_type,
        severity=severity,
        retryable=retryable,
        effect_state=mapping.effect_state,
        progress=progress,
        partial_output=partial_output_ref,
        detail=detail,
        params=params or None,
        mapping=mapping,
    )


def convert(
    info: Mapping[str, Any], *, partial_output_ref: str | None = None
) -> SignalFields | NotAFailure:
    """Convert a ``DelegationFailureInfo`` JSON object (parsed).

    ``partial_output_ref`` is where the caller stored JamJet's inline partial
    output, if it did: a failure signal carries a reference, not the content
    (draft §6.2). If no reference is given, the inline value is kept in
    ``params`` so nothing is lost.
    """
    info = _object(info, "info")
    severity_raw = info.get("severity")
    if severity_raw not in {s.value for s in Severity}:
        raise _bad("severity is not warning, error or fatal")
    retryable = info.get("retryable")
    if not isinstance(retryable, bool):
        raise _bad("retryable is not a boolean")
    result = convert_failure(
        _object(info.get("failure"), "failure"),
        severity=Severity(severity_raw),
        retryable=retryable,
        partial_output_ref=partial_output_ref,
    )
    if isinstance(result, NotAFailure):
        return result
    params: dict[str, JSONValue] = dict(result.params or {})
    inline = info.get("partial_output")
    if inline is not None and partial_output_ref is None:
        params["partial_output"] = inline
    fallback = info.get("recommended_fallback")
    if fallback is not None:
        # A fallback agent or strategy name, not one of the registered actions:
        # kept as a parameter; the recovery authority decides.
        params["recommended_fallback"] = fallback
    audit = info.get("audit_ref")
    evidence = (audit,) if isinstance(audit, str) else ()
    timestamp = info.get("timestamp")
    iat = None
    if isinstance(timestamp, str):
        try:
            iat = parse_timestamp(timestamp)
        except LocalProtocolError:  # JamJet says ISO 8601; a signal needs RFC 3339
            raise _bad("timestamp is not an RFC 3339 date-time") from None
    try:
        frozen = freeze_object(params) if params else None
    except LocalProtocolError:
        raise _bad("partial output is not I-JSON") from None
    return SignalFields(
        failure_type=result.failure_type,
        severity=result.severity,
        retryable=result.retryable,
        effect_state=result.effect_state,
        progress=result.progress,
        partial_output=result.partial_output,
        detail=result.detail,
        params=frozen,
        evidence=evidence,
        iat=iat,
        mapping=result.mapping,
    )
