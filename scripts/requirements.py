"""Trace every BCP 14 requirement of the draft to the tests that exercise it.

Project rule: every MUST/SHOULD of the draft is exercised by a test or a
conformance-kit check, or is listed as untestable with a reason, or is listed as
a gap saying what is missing.  ``conformance/requirements.json`` holds one entry
per normative sentence; this script extracts the sentences from the draft and
checks the file against the draft and the test tree.

    python scripts/requirements.py --check     # exit 1 and list every problem
    python scripts/requirements.py --summary   # counts per key word
    python scripts/requirements.py --update    # add new sentences, drop vanished ones

``--update`` keeps the mapping of every sentence that is still in the draft.  A
sentence whose wording changed keeps its id and mapping when it is close to the
old wording (same section), but gets a ``review`` member holding the old text:
``--check`` fails until someone re-reads the mapping and deletes that member.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import pathlib
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

ROOT = pathlib.Path(__file__).resolve().parents[1]
DRAFT = ROOT / "draft" / "draft-agent-recovery-rollback-00.xml"
REQUIREMENTS = ROOT / "conformance" / "requirements.json"
KIT = ROOT / "src" / "agent_recovery" / "conformance_kit"

# Key words that make a sentence a requirement (RFC 2119 / RFC 8174).  MAY and
# OPTIONAL sentences grant a freedom; they are not extracted.
NORMATIVE = (
    "MUST",
    "MUST NOT",
    "SHALL",
    "SHALL NOT",
    "REQUIRED",
    "SHOULD",
    "SHOULD NOT",
    "RECOMMENDED",
    "NOT RECOMMENDED",
)
ALL_KEYWORDS = (*NORMATIVE, "MAY", "OPTIONAL")

# The BCP 14 boilerplate quotes every key word; it states no requirement.
SKIPPED_SECTIONS = frozenset({"bcp14"})

# Elements whose text is read as one paragraph.  A block nested in another
# block (a <t> inside an <li>) is a paragraph of its own.
BLOCKS = frozenset({"t", "li", "dt", "dd", "td", "th", "blockquote", "aside", "name"})
# Never prose: code, figures' art, comments.
OPAQUE = frozenset({"artwork", "sourcecode"})

_OPEN, _CLOSE = "\x01", "\x02"  # bracket a <bcp14> inside the gathered text
_ABBREVIATIONS = ("e.g.", "i.e.", "cf.", "vs.", "etc.", "Sect.", "No.")
# A sentence ends at ".", "!" or "?" (and any closing quote or bracket) followed
# by white space and a capital, a digit, an opening quote or bracket, or a key word.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(\s+)(?=[\"'(\[]?[A-Z0-9\x01])")


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One sentence of the draft that carries at least one normative key word."""

    section: str
    keywords: tuple[str, ...]
    text: str


# -- extraction ------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)


def normalize(text: str) -> str:
    """Whitespace-normalized text: the key used to match entries to the draft."""
    return " ".join(text.split())


def _xref_text(element: Any) -> str:
    """An empty <xref/> renders as its target; xml2rfc would print a section number."""
    target = element.get("target", "")
    section = element.get("section")
    return f"[{target}, Section {section}]" if section else f"[{target}]"


def _gather(element: Any, out: list[str]) -> None:
    """Text of element's content, skipping nested blocks (they are paragraphs of their own)."""
    if element.text:
        out.append(element.text)
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in BLOCKS or tag in OPAQUE or tag in {"ul", "ol", "dl", "table", "figure"}:
            pass
        elif tag == "bcp14":
            out.append(_OPEN + normalize("".join(child.itertext())) + _CLOSE)
        elif tag in {"xref", "eref"} and not "".join(child.itertext()).strip():
            out.append(_xref_text(child) if tag == "xref" else child.get("target", ""))
        elif tag:
            _gather(child, out)
        if child.tail:
            out.append(child.tail)


def split_sentences(text: str) -> list[str]:
    """Split normalized paragraph text into sentences; abbreviations do not end one."""
    protected = text
    for i, abbreviation in enumerate(_ABBREVIATIONS):
        protected = protected.replace(abbreviation, f"\x03{i}\x03")
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(protected):
        pieces.append(protected[start : match.start(1)])
        start = match.end(1)
    pieces.append(protected[start:])
    sentences = []
    for piece in pieces:
        restored = piece
        for i, abbreviation in enumerate(_ABBREVIATIONS):
            restored = restored.replace(f"\x03{i}\x03", abbreviation)
        if restored.strip():
            sentences.append(restored.strip())
    return sentences


def _section_of(element: Any) -> str | None:
    for ancestor in element.iterancestors():
        if ancestor.tag == "section":
            return str(ancestor.get("anchor") or "")
    return None


def _blocks_with_keywords(root: Any) -> Iterator[Any]:
    seen: set[Any] = set()
    for bcp14 in root.iter("bcp14"):
        block = next((a for a in bcp14.iterancestors() if a.tag in BLOCKS), None)
        if block is not None and block not in seen:
            seen.add(block)
            yield block


def extract(draft_path: pathlib.Path | str = DRAFT) -> list[Requirement]:
    """Every sentence of the draft that holds a normative key word, in document order."""
    root = etree.parse(str(draft_path), _parser()).getroot()
    found: list[Requirement] = []
    for block in _blocks_with_keywords(root):
        section = _section_of(block)
        if section is None or section in SKIPPED_SECTIONS:
            continue
        parts: list[str] = []
        _gather(block, parts)
        for sentence in split_sentences(normalize("".join(parts))):
            keywords = re.findall(f"{_OPEN}(.*?){_CLOSE}", sentence)
            unknown = [k for k in keywords if k not in ALL_KEYWORDS]
            if unknown:
                raise ValueError(f"{section}: <bcp14> around a non key word: {unknown}")
            if not any(k in NORMATIVE for k in keywords):
                continue
            text = normalize(sentence.replace(_OPEN, "").replace(_CLOSE, ""))
            ordered = tuple(dict.fromkeys(keywords))
            found.append(Requirement(section=section, keywords=ordered, text=text))
    return found


# -- the requirements file -------------------------------------------------------------------


def load(path: pathlib.Path = REQUIREMENTS) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of entries")
    return data


def dump(entries: Sequence[dict[str, Any]], path: pathlib.Path = REQUIREMENTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(entries), indent=2, ensure_ascii=False) + "\n", "utf-8")


def _key(section: str, text: str) -> tuple[str, str]:
    return section, normalize(text)


def _new_id(section: str, taken: set[str]) -> str:
    n = 1
    while f"R-{section}-{n}" in taken:
        n += 1
    taken.add(f"R-{section}-{n}")
    return f"R-{section}-{n}"


def _empty_entry(requirement: Requirement, id: str) -> dict[str, Any]:
    return {
        "id": id,
        "section": requirement.section,
        "keywords": list(requirement.keywords),
        "text": requirement.text,
        "tests": [],
        "checks": [],
        "untestable": None,
    }


def update(
    requirements: Sequence[Requirement], entries: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """New entries in draft order: mappings kept, new sentences empty, vanished ones dropped.

    Returns the entries and a log of what changed.
    """
    by_key = {_key(e["section"], e["text"]): e for e in entries}
    unmatched = {k: e for k, e in by_key.items()}
    for requirement in requirements:
        unmatched.pop(_key(requirement.section, requirement.text), None)
    taken = {str(e["id"]) for e in entries}
    log: list[str] = []
    result: list[dict[str, Any]] = []
    used: set[str] = set()
    for requirement in requirements:
        entry = by_key.get(_key(requirement.section, requirement.text))
        if entry is not None and entry["id"] in used:
            entry = None  # the same sentence twice in a section: a second entry
        if entry is not None:
            used.add(entry["id"])
            entry = dict(entry)
            entry["keywords"] = list(requirement.keywords)
            result.append(entry)
            continue
        similar = _closest(requirement, unmatched.values())
        if similar is not None:
            unmatched.pop(_key(similar["section"], similar["text"]))
            entry = dict(similar)
            entry.setdefault("review", similar["text"])
            entry["keywords"] = list(requirement.keywords)
            entry["text"] = requirement.text
            log.append(f"changed {entry['id']}: mapping kept, marked for review")
        else:
            entry = _empty_entry(requirement, _new_id(requirement.section, taken))
            log.append(f"added {entry['id']}: {requirement.text}")
        result.append(entry)
    log.extend(f"dropped {e['id']}: {e['text']}" for e in unmatched.values())
    return result, log


def _closest(
    requirement: Requirement, candidates: Iterable[dict[str, Any]]
) -> dict[str, Any] | None:
    best, best_ratio = None, 0.8  # below this the sentence is a new requirement
    for entry in candidates:
        if entry["section"] != requirement.section:
            continue
        ratio = difflib.SequenceMatcher(None, entry["text"], requirement.text).ratio()
        if ratio >= best_ratio:
            best, best_ratio = entry, ratio
    return best


# -- checking --------------------------------------------------------------------------------


def test_functions(path: pathlib.Path) -> set[str]:
    """Names of the test functions and Class::method pairs a pytest file defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return {n for n in names if n.rsplit("::", 1)[-1].startswith("test")}


def _node_problem(node: str, root: pathlib.Path, cache: dict[pathlib.Path, set[str]]) -> str:
    file, sep, name = node.partition("::")
    if not sep or not name:
        return f"test {node!r} is not of the form tests/file.py::test_name"
    path = root / file
    if not path.is_file():
        return f"test file {file} does not exist"
    if path not in cache:
        cache[path] = test_functions(path)
    # A parametrized node id names the function followed by [params].
    if name.split("[", 1)[0] not in cache[path]:
        return f"test {node} does not exist"
    return ""


def kit_checks(kit: pathlib.Path = KIT) -> list[re.Pattern[str]]:
    """The conformance kit's check ids, read statically from its ``kit.check(...)`` calls.

    An f-string id (``f"scope.{name}.set"``) becomes a pattern whose fields match
    any non-empty text.
    """
    patterns: list[re.Pattern[str]] = []
    for path in sorted(kit.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "check"
                and node.args
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                patterns.append(re.compile(re.escape(first.value)))
            elif isinstance(first, ast.JoinedStr):
                regex = "".join(
                    re.escape(v.value) if isinstance(v, ast.Constant) else ".+"
                    for v in first.values
                )
                patterns.append(re.compile(regex))
    return patterns


def check(
    requirements: Sequence[Requirement],
    entries: Sequence[dict[str, Any]],
    root: pathlib.Path = ROOT,
) -> list[str]:
    """Every problem with the entries; empty when the file is in order."""
    problems: list[str] = []
    wanted = {_key(r.section, r.text): r for r in requirements}
    have: dict[tuple[str, str], dict[str, Any]] = {}
    ids: set[str] = set()
    cache: dict[pathlib.Path, set[str]] = {}
    checks = kit_checks(root / "src" / "agent_recovery" / "conformance_kit")
    fields = {"id", "section", "keywords", "text", "tests", "checks", "untestable"}
    for entry in entries:
        label = str(entry.get("id", "<no id>"))
        missing = fields - entry.keys()
        if missing:
            problems.append(f"{label}: missing members {sorted(missing)}")
            continue
        if label in ids:
            problems.append(f"{label}: duplicate id")
        ids.add(label)
        key = _key(entry["section"], entry["text"])
        if key in have:
            problems.append(f"{label}: same sentence as {have[key]['id']}")
        have[key] = entry
        requirement = wanted.get(key)
        if requirement is None:
            problems.append(
                f"{label}: no longer in the draft (section {entry['section']}): {entry['text']}"
            )
        elif list(requirement.keywords) != list(entry["keywords"]):
            problems.append(
                f"{label}: key words {entry['keywords']} but the draft has "
                f"{list(requirement.keywords)}"
            )
        if "review" in entry:
            problems.append(
                f"{label}: the wording changed since the mapping was made; re-read the "
                f"mapping, then delete 'review' (was: {entry['review']})"
            )
        for node in entry["tests"]:
            problem = _node_problem(str(node), root, cache)
            if problem:
                problems.append(f"{label}: {problem}")
        for check_id in entry["checks"]:
            if not any(p.fullmatch(str(check_id)) for p in checks):
                problems.append(f"{label}: no conformance check {check_id!r} in the kit")
        gap = entry.get("gap")
        reasons = [bool(entry["tests"] or entry["checks"]), bool(entry["untestable"]), bool(gap)]
        if not any(reasons):
            problems.append(f"{label}: no test, no check, no untestable reason and no gap")
        if entry["untestable"] and (entry["tests"] or entry["checks"] or gap):
            problems.append(f"{label}: marked untestable but also mapped or listed as a gap")
        if entry["tests"] and gap and not entry.get("partial"):
            # A gap beside tests is allowed only when it says what the tests leave out.
            problems.append(f"{label}: has tests and a gap; set 'partial': true if intended")
    for key, requirement in wanted.items():
        if key not in have:
            problems.append(
                f"no entry for requirement in section {requirement.section} "
                f"{list(requirement.keywords)}: {requirement.text}"
            )
    return problems


_COLUMNS = ("entries", "tested", "checked", "untestable", "gap", "partial")


def summary(entries: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per key word: entries, tested, checked, untestable, gap, partial.

    An entry counts once under each of its key words.  "gap" counts entries with
    no test or check at all; "partial" those whose tests leave a part uncovered.
    """
    table: dict[str, dict[str, int]] = {}
    for entry in entries:
        for keyword in entry["keywords"]:
            if keyword not in NORMATIVE:
                continue
            row = table.setdefault(keyword, dict.fromkeys(_COLUMNS, 0))
            covered = bool(entry["tests"] or entry["checks"])
            row["entries"] += 1
            row["tested"] += bool(entry["tests"])
            row["checked"] += bool(entry["checks"])
            row["untestable"] += bool(entry["untestable"])
            row["gap"] += bool(entry.get("gap")) and not covered
            row["partial"] += bool(entry.get("gap")) and covered
    return {k: table[k] for k in NORMATIVE if k in table}


def _print_summary(entries: Sequence[dict[str, Any]]) -> None:
    table = summary(entries)
    print(f"{'key word':<16}" + "".join(f"{c:>11}" for c in _COLUMNS))
    for keyword, row in table.items():
        print(f"{keyword:<16}" + "".join(f"{row[c]:>11}" for c in _COLUMNS))
    print(f"{'sentences':<16}{len(entries):>11}")
    covered = sum(bool(e["tests"] or e["checks"]) for e in entries)
    gaps = [e for e in entries if e.get("gap")]
    partly = sum(bool(e["tests"] or e["checks"]) for e in gaps)
    print(
        f"tested or checked: {covered} (partly: {partly}), "
        f"untestable: {sum(bool(e['untestable']) for e in entries)}, "
        f"gap: {len(gaps) - partly}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--draft", type=pathlib.Path, default=DRAFT)
    parser.add_argument("--requirements", type=pathlib.Path, default=REQUIREMENTS)
    parser.add_argument("--root", type=pathlib.Path, default=ROOT, help="where tests/ lives")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 on any problem")
    mode.add_argument("--summary", action="store_true", help="counts per key word")
    mode.add_argument("--update", action="store_true", help="sync entries with the draft")
    mode.add_argument("--list", action="store_true", help="print the extracted sentences")
    args = parser.parse_args(argv)

    requirements = extract(args.draft)
    if args.list:
        for r in requirements:
            print(f"{r.section}\t{'/'.join(r.keywords)}\t{r.text}")
        return 0
    entries = load(args.requirements) if args.requirements.exists() else []
    if args.update:
        entries, log = update(requirements, entries)
        dump(entries, args.requirements)
        print("\n".join(log) or "no change")
        return 0
    if args.summary:
        _print_summary(entries)
        return 0
    problems = check(requirements, entries, args.root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {args.requirements}", file=sys.stderr)
        return 1
    print(f"{len(entries)} requirements traced; no problem")
    return 0


if __name__ == "__main__":
    sys.exit(main())
