"""Registries and their fallbacks (draft §6.2, §16); the JamJet accounting table."""

from __future__ import annotations

import enum

import pytest

from agent_recovery._errors import ErrorCode
from agent_recovery._model import Outcome
from agent_recovery._registry import (
    ERROR_CODES,
    FAILURE_TYPES,
    JAMJET_BY_VARIANT,
    JAMJET_MAPPING,
    OUTCOMES,
    RECOMMENDED_ACTIONS,
    FailureType,
    JamJetDisposition,
    RecommendedAction,
    Registry,
    RegistryEntry,
)

# The eleven variants of JamJet's DelegationFailure enum (failure.rs, lines 16-60).
JAMJET_VARIANTS = {
    "delegate_unreachable", "capability_mismatch", "policy_denied", "approval_required",
    "budget_exceeded", "trust_crossing_denied", "verification_failed", "tool_dependency_failed",
    "partial_completion", "fallback_invoked", "timeout",
}  # fmt: skip

REGISTRIES: list[Registry[enum.StrEnum]] = [
    FAILURE_TYPES,  # type: ignore[list-item]
    RECOMMENDED_ACTIONS,  # type: ignore[list-item]
    OUTCOMES,  # type: ignore[list-item]
    ERROR_CODES,  # type: ignore[list-item]
]
SUCCESS = {Outcome.RESTORED, Outcome.COMPENSATED, Outcome.NOT_NEEDED, RecommendedAction.NONE}


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.name)
def test_registry_entries_are_one_line_tokens_with_registered_fallbacks(
    registry: Registry[enum.StrEnum],
) -> None:
    assert set(registry.entries) == {m.value for m in registry.values}
    for value, entry in registry.entries.items():
        assert value == entry.value and entry.fallback in registry
        assert "\n" not in entry.definition and len(entry.definition) <= 90
        assert entry.reference.startswith("draft §")
        assert registry.effective(value) == value


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.name)
def test_unregistered_values_take_the_fallback_which_is_never_success(
    registry: Registry[enum.StrEnum],
) -> None:
    assert registry.effective("value-registered-next-year") is registry.fallback
    assert registry.fallback not in SUCCESS
    assert "value-registered-next-year" not in registry


def test_declared_fallbacks() -> None:
    assert FAILURE_TYPES.fallback is FailureType.UNSPECIFIED
    assert RECOMMENDED_ACTIONS.fallback is RecommendedAction.ESCALATE
    assert OUTCOMES.fallback is Outcome.UNKNOWN
    assert ERROR_CODES.fallback is ErrorCode.INTERNAL


def test_failure_type_fallbacks_lead_to_unspecified_without_cycles() -> None:
    for failure_type in FailureType:
        seen = {failure_type}
        current = failure_type
        while current is not FailureType.UNSPECIFIED:
            current = FAILURE_TYPES.generalize(current)
            assert current not in seen, f"cycle at {failure_type}"
            seen.add(current)
    assert FAILURE_TYPES.generalize(FailureType.BUDGET_EXCEEDED) is FailureType.POLICY_DENIED


def test_a_registry_table_cannot_drift_from_its_enum() -> None:
    class Two(enum.StrEnum):
        A = "a"
        B = "b"

    entry = RegistryEntry(value="a", fallback="a", definition="x", reference="draft §1")
    with pytest.raises(AssertionError):
        Registry("broken", Two, Two.A, (entry,))
    wrong = RegistryEntry(value="b", fallback="c", definition="x", reference="draft §1")
    with pytest.raises(AssertionError):
        Registry("broken", Two, Two.A, (entry, wrong))


# ---------------------------------------------------------------------------
# JamJet (draft appendix)


def test_every_jamjet_variant_is_accounted_for_once() -> None:
    assert [m.variant for m in JAMJET_MAPPING] == list(JAMJET_BY_VARIANT)
    assert set(JAMJET_BY_VARIANT) == JAMJET_VARIANTS


def test_jamjet_non_failures_do_not_become_failure_types() -> None:
    pending = JAMJET_BY_VARIANT["approval_required"]
    taken = JAMJET_BY_VARIANT["fallback_invoked"]
    assert pending.disposition is JamJetDisposition.PENDING
    assert taken.disposition is JamJetDisposition.ACTION_TAKEN
    for mapping in (pending, taken):
        assert mapping.failure_type is None and mapping.effect_state is None
    progress = JAMJET_BY_VARIANT["partial_completion"]
    assert progress.disposition is JamJetDisposition.EFFECT_STATE
    assert progress.failure_type is FailureType.UNSPECIFIED


def test_jamjet_failures_map_to_registered_types() -> None:
    failures = [m for m in JAMJET_MAPPING if m.disposition is JamJetDisposition.FAILURE_TYPE]
    assert len(failures) == 8
    assert len({m.failure_type for m in failures}) == 8
    for mapping in JAMJET_MAPPING:
        assert mapping.fields and mapping.carried_as and mapping.rationale
        if mapping.failure_type is not None:
            assert mapping.failure_type.value in FAILURE_TYPES
            assert mapping.effect_state is not None
