"""Every BCP 14 requirement of the draft is traced (``scripts/requirements.py``).

The trace in ``conformance/requirements.json`` must match the draft sentence for
sentence and name only tests that exist.  The negative tests break temporary
copies of the draft and of the trace and check that the gate notices.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import requirements  # noqa: E402

DRAFT = requirements.DRAFT
TRACE = requirements.REQUIREMENTS


@pytest.fixture(scope="module")
def extracted() -> list[requirements.Requirement]:
    return requirements.extract(DRAFT)


@pytest.fixture
def entries() -> list[dict[str, Any]]:
    return requirements.load(TRACE)


def _draft_with(tmp_path: pathlib.Path, old: str, new: str) -> pathlib.Path:
    """A copy of the draft with ``old`` (matched across line breaks) replaced by ``new``."""
    text = DRAFT.read_text(encoding="utf-8")
    pattern = r"\s+".join(re.escape(word) for word in old.split())
    changed, count = re.subn(pattern, lambda _: new, text)
    assert count == 1, old
    path = tmp_path / DRAFT.name
    path.write_text(changed, encoding="utf-8")
    return path


def test_the_trace_matches_the_draft_and_the_tests(
    extracted: list[requirements.Requirement], entries: list[dict[str, Any]]
) -> None:
    assert requirements.check(extracted, entries) == []


def test_every_key_word_of_the_draft_is_in_some_sentence(
    extracted: list[requirements.Requirement],
) -> None:
    tree = requirements.etree.parse(str(DRAFT), requirements._parser())
    marked = [
        " ".join("".join(e.itertext()).split())
        for e in tree.iter("bcp14")
        if requirements._section_of(e) not in requirements.SKIPPED_SECTIONS
    ]
    normative = [k for k in marked if k in requirements.NORMATIVE]
    words = "|".join(sorted(requirements.NORMATIVE, key=len, reverse=True))
    found = [k for r in extracted for k in re.findall(rf"\b(?:{words})\b", r.text)]
    assert len(normative) > 150
    assert sorted(found) == sorted(normative)


def test_sentences_are_split_around_inline_elements(tmp_path: pathlib.Path) -> None:
    draft = _draft_with(
        tmp_path,
        '<section anchor="model-ids">',
        '<section anchor="model-ids"><t>Receivers (see <xref target="errors"/>, '
        "e.g. <tt>x.y</tt>) <bcp14>MUST</bcp14> do one thing.  A sender "
        "<bcp14>SHOULD NOT</bcp14> do another, per "
        '<xref target="RFC3339" section="5.6"/>.  This one is only a remark; '
        "this one <bcp14>MAY</bcp14> be ignored.  A reply <bcp14>MUST</bcp14>\n"
        '   say "done."  <bcp14>MUST NOT</bcp14> stop.</t>',
    )
    found = [r for r in requirements.extract(draft) if r.section == "model-ids"][:4]
    assert [(r.keywords, r.text) for r in found] == [
        (("MUST",), "Receivers (see [errors], e.g. x.y) MUST do one thing."),
        (("SHOULD NOT",), "A sender SHOULD NOT do another, per [RFC3339, Section 5.6]."),
        (("MUST",), 'A reply MUST say "done."'),
        (("MUST NOT",), "MUST NOT stop."),
    ]


def test_a_new_unmapped_must_fails_the_check(
    tmp_path: pathlib.Path, entries: list[dict[str, Any]]
) -> None:
    sentence = "A receiver <bcp14>MUST</bcp14> refuse a message from the future."
    draft = _draft_with(
        tmp_path,
        '<section anchor="proc-replay">',
        f'<section anchor="proc-replay"><t>{sentence}</t>',
    )
    problems = requirements.check(requirements.extract(draft), entries)
    assert problems == [
        "no entry for requirement in section proc-replay ['MUST']: "
        "A receiver MUST refuse a message from the future."
    ]
    # --update adds it with an empty mapping, which the check still refuses.
    updated, log = requirements.update(requirements.extract(draft), entries)
    assert log == ["added R-proc-replay-7: A receiver MUST refuse a message from the future."]
    (added,) = [e for e in updated if e["id"] == "R-proc-replay-7"]
    assert (added["tests"], added["checks"], added["untestable"]) == ([], [], None)
    assert requirements.check(requirements.extract(draft), updated) == [
        "R-proc-replay-7: no test, no check, no untestable reason and no gap"
    ]


def test_a_mapping_to_a_missing_test_fails_the_check(
    extracted: list[requirements.Requirement], entries: list[dict[str, Any]]
) -> None:
    entry = next(e for e in entries if e["tests"])
    entry["tests"] = [
        *entry["tests"],
        "tests/test_wire.py::test_that_does_not_exist",
        "tests/test_nowhere.py::test_x",
        "tests/test_wire.py::test_parse_timestamp[with-params]",
    ]
    entry["checks"] = [*entry["checks"], "cc.no-such-check"]
    problems = requirements.check(extracted, entries)
    assert problems == [
        f"{entry['id']}: test tests/test_wire.py::test_that_does_not_exist does not exist",
        f"{entry['id']}: test file tests/test_nowhere.py does not exist",
        f"{entry['id']}: no conformance check 'cc.no-such-check' in the kit",
    ]


def test_a_reworded_sentence_keeps_its_mapping_for_review(
    tmp_path: pathlib.Path, entries: list[dict[str, Any]]
) -> None:
    old = "Senders <bcp14>MUST NOT</bcp14> reuse a message identifier with different content."
    new = "Senders <bcp14>MUST NOT</bcp14> reuse a message identifier with other content."
    draft = _draft_with(tmp_path, old, new)
    before = next(
        e
        for e in entries
        if e["text"] == requirements.normalize(old.replace("<bcp14>", "").replace("</bcp14>", ""))
    )
    updated, log = requirements.update(requirements.extract(draft), entries)
    (after,) = [e for e in updated if e["id"] == before["id"]]
    assert after["tests"] == before["tests"] and "review" in after
    assert log == [f"changed {before['id']}: mapping kept, marked for review"]
    problems = requirements.check(requirements.extract(draft), updated)
    assert len(problems) == 1 and "re-read the mapping" in problems[0]


def test_a_vanished_requirement_fails_the_check_and_update_drops_it(
    tmp_path: pathlib.Path, entries: list[dict[str, Any]]
) -> None:
    sentence = 'A key set <bcp14>MUST NOT</bcp14> contain two keys with the same "kid".'
    draft = _draft_with(tmp_path, sentence, "")
    problems = requirements.check(requirements.extract(draft), entries)
    assert len(problems) == 1 and "no longer in the draft" in problems[0]
    updated, log = requirements.update(requirements.extract(draft), entries)
    assert len(updated) == len(entries) - 1 and log[0].startswith("dropped ")


def test_an_entry_without_any_reason_or_with_both_fails(
    extracted: list[requirements.Requirement], entries: list[dict[str, Any]]
) -> None:
    mapped = next(e for e in entries if e["tests"])
    mapped["untestable"] = "because"
    bare = next(e for e in entries if e["untestable"])
    bare["untestable"] = None
    assert sorted(requirements.check(extracted, entries)) == sorted(
        [
            f"{mapped['id']}: marked untestable but also mapped or listed as a gap",
            f"{bare['id']}: no test, no check, no untestable reason and no gap",
        ]
    )


def test_the_command_line(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert requirements.main(["--check"]) == 0
    assert "no problem" in capsys.readouterr().out
    assert requirements.main(["--summary"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "key", "word", "entries", "tested", "checked", "untestable", "gap", "partial",
    ]  # fmt: skip
    broken = tmp_path / "requirements.json"
    data = json.loads(TRACE.read_text(encoding="utf-8"))
    broken.write_text(json.dumps(data[1:]), encoding="utf-8")
    assert requirements.main(["--check", "--requirements", str(broken)]) == 1
    assert "no entry for requirement" in capsys.readouterr().out
    assert requirements.main(["--update", "--requirements", str(broken)]) == 0
    assert len(json.loads(broken.read_text(encoding="utf-8"))) == len(data)
