"""Shared test configuration.

Hypothesis profiles: ``ci`` (default, modest) and ``long`` (at least 100,000
examples for the fuzz and round-trip properties). Select with
``HYPOTHESIS_PROFILE=long``; see the README.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile(
    "long",
    max_examples=100_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
