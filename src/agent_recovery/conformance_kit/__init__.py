"""The conformance kit: checks any implementation of the HTTP binding from outside.

Like a TCK (the MicroProfile LRA TCK and the A2A TCK are the habit of the
field), it drives a running implementation under test that loaded the fixture
``conformance/fixture.json``, plays the agents around it with the fixture's
test keys, and reports every check with its requirement level (MUST, SHOULD,
MAY) and the draft section it tests: the HTTP binding, the message vectors,
the attack corpus, behavioural scenarios with the target as participant and
as coordinator (happy path, duplicates, late messages, unknown recoveries,
timeouts that give unknown, busy and takeover), and the scope vectors.
"""

from ._report import Check as Check
from ._report import Level as Level
from ._report import Report as Report
from ._report import Verdict as Verdict
from ._runner import Fixture as Fixture
from ._runner import FixtureError as FixtureError
from ._runner import load_fixture as load_fixture
from ._runner import run_conformance as run_conformance

__all__ = [
    "Check",
    "Fixture",
    "FixtureError",
    "Level",
    "Report",
    "Verdict",
    "load_fixture",
    "run_conformance",
]
