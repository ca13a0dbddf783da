"""``agent-recovery records verify|export`` (draft §11.6): the first break of each
chain with its exact position, in words and as the last line's JSON object."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from test_records_kit import COORDINATOR, WORKER, record, signer

from agent_recovery.cli import main
from agent_recovery.store import Store

SIGNER = signer()
WORKER_SIGNER = signer(WORKER, seed=3)
N = 6


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "agent.db"
    with Store(path) as store:
        store.append(SIGNER, [record(i) for i in range(N)])
        store.append(WORKER_SIGNER, [record(i, issuer=WORKER) for i in range(2)])
    return path


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    from agent_recovery.security.keys import JwkSet

    path = tmp_path / "jwks.json"
    keyset = JwkSet([SIGNER.verification_key(), WORKER_SIGNER.verification_key()])
    path.write_text(json.dumps(keyset.to_json()), encoding="utf-8")
    return path


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code = main(["records", "verify", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1]), out


def _export(capsys: pytest.CaptureFixture[str], path: Path) -> list[dict]:  # type: ignore[type-arg]
    assert main(["records", "export", str(path)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _write(path: Path, lines: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_an_intact_store_verifies(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path
) -> None:
    code, result, out = _verify(capsys, str(log), "--keys", str(keys))
    assert code == 0 and result["ok"] is True
    chains = {c["issuer"]: c for c in result["chains"]}
    assert chains[COORDINATOR]["checked"] == N and chains[WORKER]["checked"] == 2
    assert chains[COORDINATOR]["head"]["next_seq"] == N
    assert f"chain {COORDINATOR}: OK, {N} records verified" in out


def test_export_is_json_lines_that_verify_again(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path, tmp_path: Path
) -> None:
    lines = _export(capsys, log)
    assert len(lines) == N + 2
    first = lines[0]
    assert set(first) == {"chain", "seq", "id", "recovery", "jws", "record"}
    assert first["record"]["type"] == "recovery-record" and first["record"]["seq"] == 0
    code, result, _ = _verify(capsys, str(_write(tmp_path / "e.jsonl", lines)), "--keys", str(keys))
    assert code == 0 and result["ok"] is True
    assert main(["records", "export", str(log), "--out", str(tmp_path / "o.jsonl")]) == 0
    assert [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()] == lines


def _coordinator_lines(capsys: pytest.CaptureFixture[str], log: Path) -> list[dict]:  # type: ignore[type-arg]
    return [line for line in _export(capsys, log) if line["chain"] == COORDINATOR]


def _break(capsys: pytest.CaptureFixture[str], path: Path, keys: Path) -> dict:  # type: ignore[type-arg]
    code, result, out = _verify(capsys, str(path), "--keys", str(keys), "--issuer", COORDINATOR)
    assert code == 1 and result["ok"] is False
    (chain,) = result["chains"]
    assert "BROKEN at index" in out
    return chain["break"]  # type: ignore[no-any-return]


def test_a_changed_byte_is_found_at_its_record(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path, tmp_path: Path
) -> None:
    lines = _coordinator_lines(capsys, log)
    jws = lines[3]["jws"]
    middle = len(jws) // 2
    lines[3]["jws"] = jws[:middle] + ("A" if jws[middle] != "A" else "B") + jws[middle + 1 :]
    found = _break(capsys, _write(tmp_path / "t.jsonl", lines), keys)
    assert (found["index"], found["seq"], found["kind"]) == (3, 3, "bad-signature")


def test_a_removed_record_is_found_where_it_was(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path, tmp_path: Path
) -> None:
    lines = _coordinator_lines(capsys, log)
    del lines[2]
    found = _break(capsys, _write(tmp_path / "t.jsonl", lines), keys)
    assert (found["index"], found["seq"], found["kind"]) == (2, 2, "seq-gap")
    assert found["record_id"] == "rec-3"


def test_two_swapped_records_are_found_at_the_first(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path, tmp_path: Path
) -> None:
    lines = _coordinator_lines(capsys, log)
    lines[4], lines[1] = lines[1], lines[4]
    found = _break(capsys, _write(tmp_path / "t.jsonl", lines), keys)
    assert (found["index"], found["seq"], found["kind"]) == (1, 1, "seq-gap")


def test_an_export_line_that_disagrees_with_its_jws_is_refused(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path, tmp_path: Path
) -> None:
    lines = _coordinator_lines(capsys, log)
    lines[2]["record"]["members"][0]["outcome"] = "failed"
    found = _break(capsys, _write(tmp_path / "t.jsonl", lines), keys)
    assert (found["index"], found["kind"]) == (2, "malformed")
    lines = _coordinator_lines(capsys, log)
    lines[4]["seq"] = 40
    found = _break(capsys, _write(tmp_path / "u.jsonl", lines), keys)
    assert (found["index"], found["kind"]) == (4, "malformed")


def test_tampering_inside_the_store_file_is_found(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path
) -> None:
    # An attacker with write access to the file drops the guard and edits a row.
    with sqlite3.connect(log) as conn:
        conn.execute("DROP TRIGGER log_no_update")
        (token,) = conn.execute(
            "SELECT token FROM log WHERE chain = ? AND seq = 4", (COORDINATOR,)
        ).fetchone()
        edited = bytes(token).replace(b".", b".e", 1)
        conn.execute("UPDATE log SET token = ? WHERE chain = ? AND seq = 4", (edited, COORDINATOR))
    found = _break(capsys, log, keys)
    assert (found["index"], found["seq"], found["kind"]) == (4, 4, "bad-signature")


def test_unreadable_inputs_exit_2(
    capsys: pytest.CaptureFixture[str], log: Path, keys: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n", encoding="utf-8")
    cases = [
        [str(log), "--keys", str(tmp_path / "missing.json")],
        [str(tmp_path / "missing.db"), "--keys", str(keys)],
        [str(junk), "--keys", str(keys)],
        [str(log), "--keys", str(keys), "--issuer", "urn:nobody"],
    ]
    for args in cases:
        assert main(["records", "verify", *args]) == 2, args
        assert capsys.readouterr().err.startswith("error: ")
    assert main(["records", "export", str(junk)]) == 2
