"""Gates on the Internet-Draft (draft §all): it renders offline with no warning,
idnits finds nothing beyond the documented allowlist, every JSON example matches
the draft's CDDL, and the generated regions equal what the code generates.

The negative tests break temporary copies of the draft and check that each gate
notices: a gate that cannot fail is not a gate.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import drafttools  # noqa: E402
import sync_draft  # noqa: E402

DRAFT = drafttools.DRAFT


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> drafttools.RenderResult:
    return drafttools.render(DRAFT, tmp_path_factory.mktemp("render"))


def _copy(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    # idnits checks that the file name equals the docName, so keep the name.
    path = tmp_path / DRAFT.name
    path.write_text(text, encoding="utf-8")
    return path


def test_renders_offline_without_warnings(rendered: drafttools.RenderResult) -> None:
    assert rendered.returncode == 0, rendered.log
    assert rendered.problems == []
    assert rendered.txt.stat().st_size > 0
    assert rendered.html.stat().st_size > 0


def test_front_matter() -> None:
    root = drafttools.etree.parse(str(DRAFT), drafttools._parser()).getroot()
    assert root.get("category") == "exp"
    assert root.get("ipr") == "trust200902"
    assert root.get("submissionType") == "IETF"
    assert root.get("version") == "3"
    assert root.get("docName") == DRAFT.stem
    front = root.find("front")
    assert front is not None
    for author in front.findall("author"):
        # The author is an organization; no person is named.
        assert not (author.get("fullname") or author.get("surname") or author.get("initials"))
        assert (author.findtext("organization") or "").strip()


def test_idnits_txt_has_no_unexpected_nits(rendered: drafttools.RenderResult) -> None:
    assert drafttools.idnits(rendered.txt) == []


def test_idnits_xml_has_no_unexpected_nits() -> None:
    assert drafttools.idnits(DRAFT) == []


def test_every_allowlisted_nit_has_a_reason() -> None:
    for entries in drafttools.IDNITS_ALLOWLIST.values():
        for code, reason in entries.items():
            assert code.isupper() and len(reason) > 20


def test_examples_match_the_cddl() -> None:
    assert drafttools.check_examples(DRAFT) == []


def test_generated_regions_match_the_code() -> None:
    text = DRAFT.read_text(encoding="utf-8")
    new, changed = sync_draft.sync(text)
    assert changed == [], "run: .venv/bin/python scripts/sync_draft.py"
    assert new == text


def test_every_cited_reference_is_cached_offline() -> None:
    text = DRAFT.read_text(encoding="utf-8")
    for href in re.findall(r'<xi:include href="([^"]+)"', text):
        assert (drafttools.BIBXML / href.rsplit("/", 1)[1]).exists(), href


# --- negative tests: each gate must notice a broken copy -------------------


def test_gate_catches_an_overlong_line(tmp_path: pathlib.Path) -> None:
    text = DRAFT.read_text(encoding="utf-8")
    long_line = "x" * 90
    broken = text.replace(
        "</section>",
        f"<figure><artwork><![CDATA[\n{long_line}\n]]></artwork></figure></section>",
        1,
    )
    problems = drafttools.check(_copy(tmp_path, broken))
    assert any("Too long line" in p or "LINE_TOO_LONG" in p for p in problems), problems


def test_gate_catches_a_missing_security_section(tmp_path: pathlib.Path) -> None:
    text = DRAFT.read_text(encoding="utf-8")
    # Keep the anchor (other sections refer to it); only the section goes away.
    broken, count = re.subn(
        r"<name>Security Considerations</name>", "<name>Threats</name>", text, count=1
    )
    assert count == 1
    problems = drafttools.check(_copy(tmp_path, broken))
    assert any("SECURITY" in p for p in problems), problems


def test_gate_catches_an_example_that_breaks_the_cddl(tmp_path: pathlib.Path) -> None:
    text = DRAFT.read_text(encoding="utf-8")
    # Turn the first example's protocol version into a string.
    broken, count = re.subn(r'"v": 1,', '"v": "one",', text, count=1)
    assert count == 1
    shutil.copytree(drafttools.BIBXML, tmp_path / "bibxml")
    problems = drafttools.check_examples(_copy(tmp_path, broken))
    assert problems and "does not match the CDDL" in problems[0]


def test_sync_check_catches_drift() -> None:
    text = DRAFT.read_text(encoding="utf-8")
    names = sync_draft.regions(text)
    assert names, "the draft has no generated regions"
    name = names[0]
    drifted = text.replace(
        f"<!-- END GENERATED {name} -->", f"<t>edited by hand</t>\n<!-- END GENERATED {name} -->"
    )
    _, changed = sync_draft.sync(drifted)
    assert name in changed


def test_gate_catches_a_citation_with_no_reference(tmp_path: pathlib.Path) -> None:
    # Regex character classes in the CDDL are tolerated; a real citation is not.
    text = DRAFT.read_text(encoding="utf-8")
    broken = text.replace("</section>", "<t>As [FOO-BAR] shows.</t></section>", 1)
    problems = drafttools.check(_copy(tmp_path, broken))
    assert any("REFERENCE_MISSING_IN_REFERENCE_SECTION" in p for p in problems), problems
