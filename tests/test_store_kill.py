"""A record whose append returned survives SIGKILL of its process (draft §11.2).

Each test runs a real child process that writes to a real SQLite file and
reports on standard output what has returned; the parent then kills it with
SIGKILL (no cleanup, no atexit, no close) and reopens the file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_records_kit import signer, verifier

from agent_recovery._coordinator import Coordinator
from agent_recovery._records import verify_log
from agent_recovery._wire import decode
from agent_recovery.store import DurableParty, Store

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

TESTS = Path(__file__).resolve().parent

APPENDER = textwrap.dedent(
    """
    import sys, time
    from agent_recovery.store import Store
    from test_records_kit import record, signer

    store, sign = Store(sys.argv[1]), signer()
    first = store.head(sign.owner).next_seq
    for i in range(first, first + int(sys.argv[2])):
        store.append(sign, [record(i)])
        print("appended", i, flush=True)
    time.sleep(60)
    """
)

STEPPER = textwrap.dedent(
    """
    import sys, time
    from agent_recovery._coordinator import Coordinator
    from agent_recovery._model import EffectState, ExecRef, Severity, Facts, Status
    from agent_recovery._model import Reversibility
    from agent_recovery._participant import Participant
    from agent_recovery.store import DurableParty, Store
    from test_records_kit import signer

    C, P = "urn:example:c", "urn:example:p"
    x = ExecRef(agent=P, exec="x")

    def create():
        engine = Coordinator(agent=C)
        engine.add_execution(x, [C])
        return engine

    party = DurableParty(Store(sys.argv[1]), name="coordinator", signer=signer(C, seed=5),
                         create=create, restore=Coordinator.from_snapshot)
    worker = Participant(agent=P)
    worker.register_execution(
        x, Facts(status=Status.ACTIVE, reversibility=Reversibility.RESTORABLE, checkpoint=0), [C])
    worker.signal_failure(execution=x, to=C, failure_type="tool-error", severity=Severity.ERROR,
                          retryable=False, effect_state=EffectState.PARTIAL, checkpoint=0,
                          now=1_800_000_000_000)
    (signal,) = worker.data_to_send()
    step = party.receive(P, signal, 1_800_000_000_000)
    print("stepped", ",".join(o.message_id for o in step.outbound), flush=True)
    time.sleep(60)
    """
)


def _run_until(script: str, args: list[str], lines: int) -> list[str]:
    """Start ``script``, read ``lines`` lines, SIGKILL it; return what it printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    seen: list[str] = []
    try:
        while len(seen) < lines:
            line = child.stdout.readline()
            assert line, f"child ended early: {seen}"
            seen.append(line.strip())
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return seen


def test_a_record_whose_append_returned_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    assert _run_until(APPENDER, [str(path), "1"], 1) == ["appended 0"]
    with Store(path) as store:
        (entry,) = store.entries(signer().owner)
        assert entry.record_id == "rec-0"
        assert verify_log([entry.token], verifier(signer())).ok


def test_every_returned_append_survives_a_kill_in_the_middle_of_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    seen = _run_until(APPENDER, [str(path), "1000000"], 40)
    with Store(path) as store:
        entries = list(store.entries(signer().owner))
    # Every append that returned is there; at most the one in progress may be too.
    assert [f"appended {e.seq}" for e in entries[: len(seen)]] == seen
    assert len(entries) in (len(seen), len(seen) + 1)
    # A second life appends after it, and the chain still verifies end to end.
    again = _run_until(APPENDER, [str(path), "3"], 3)
    assert again[0] == f"appended {len(entries)}"
    with Store(path) as store:
        report = verify_log((e.token for e in store.entries(signer().owner)), verifier(signer()))
    assert report.ok and report.checked == len(entries) + 3


def test_a_committed_engine_step_survives_sigkill_with_its_outbox(tmp_path: Path) -> None:
    path = tmp_path / "coordinator.db"
    (line,) = _run_until(STEPPER, [str(path)], 1)
    sent = line.removeprefix("stepped ").split(",")
    assert len(sent) >= 2  # the ack of the signal and the halt of its execution
    sign = signer("urn:example:c", seed=5)
    with Store(path) as store:
        party = DurableParty(
            store,
            name="coordinator",
            signer=sign,
            create=lambda: pytest.fail("the snapshot was lost"),
            restore=Coordinator.from_snapshot,
        )
        pending = party.pending_outbox()
        assert [o.message_id for o in pending] == sent
        types = [decode(verifier(sign).verify(o.token).payload).TYPE for o in pending]
        assert types[0] == "ack" and "halt" in types
        assert len(party.engine.recoveries()) == 1
