"""Render and check the Internet-Draft offline.

Used by ``make demo`` (render) and by ``tests/test_draft.py`` (gates). Every
check works on any copy of the draft, so the negative tests can run it on
broken temporary copies.

    python scripts/drafttools.py render     # build/<docName>.txt and .html
    python scripts/drafttools.py check      # render + idnits + CDDL/examples
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from lxml import etree

ROOT = pathlib.Path(__file__).resolve().parents[1]
DRAFT = ROOT / "draft" / "draft-agent-recovery-rollback-00.xml"
BIBXML = ROOT / "draft" / "bibxml"
BUILD = ROOT / "build"
IDNITS = ROOT / "tools" / "node_modules" / ".bin" / "idnits"


def _xml2rfc() -> str:
    """The xml2rfc next to the running interpreter (the project's venv), else PATH."""
    local = pathlib.Path(sys.executable).with_name("xml2rfc")
    if local.exists():
        return str(local)
    found = shutil.which("xml2rfc")
    if found is None:
        raise RuntimeError("xml2rfc is not installed; run `make test` or `make demo`")
    return found


# idnits 3 nits we accept, each with the reason. Anything else fails the build.
IDNITS_ALLOWLIST: dict[str, dict[str, str]] = {
    "txt": {
        "PREFER_BCP14_REF": (
            "idnits 3 suggests citing BCP 14 instead of RFC 2119/RFC 8174; the draft keeps "
            "the exact RFC 8174 boilerplate, which cites both RFCs, as the RFC Editor expects"
        ),
        "MULTIPLE_REFERENCES_SECTION_TITLES": (
            "the draft has two top-level reference sections, 'Normative References' and "
            "'Informative References'; the nested form makes idnits 3.0.0-alpha.74 report "
            "INVALID_REFERENCES_NAME on the XML and, offline, a status-lookup nit for every "
            "reference, so this single advisory nit is the lesser evil"
        ),
    },
    "xml": {
        "PREFER_BCP14_REF": "same as for the text rendering",
        "MISSING_DOC_DATE": (
            "the source uses <date/> so that xml2rfc stamps the submission date; idnits reads "
            "only explicit year/month/day attributes in XML mode (the rendered text has a date)"
        ),
    },
}


@dataclass
class RenderResult:
    returncode: int
    log: str
    txt: pathlib.Path
    html: pathlib.Path
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.problems


def doc_name(draft: pathlib.Path) -> str:
    root = etree.parse(str(draft), _parser()).getroot()
    name = root.get("docName")
    if not name:
        raise ValueError(f"{draft}: no docName")
    return name


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)


def render(draft: pathlib.Path = DRAFT, out: pathlib.Path = BUILD) -> RenderResult:
    """Render .txt and .html with xml2rfc, offline; every warning is a problem."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            _xml2rfc(),
            "--no-network",
            "--cache",
            str(BIBXML),
            "--text",
            "--html",
            "--path",
            str(out),
            str(draft),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    problems = [line for line in log.splitlines() if "Warning:" in line or "Error:" in line]
    stem = draft.stem
    return RenderResult(proc.returncode, log, out / f"{stem}.txt", out / f"{stem}.html", problems)


def idnits(path: pathlib.Path) -> list[dict[str, str]]:
    """Run idnits 3 offline on a .txt or .xml file; return the nits not allowlisted.

    idnits exits 0 even when it finds errors, so the JSON report is the gate.
    """
    if not IDNITS.exists():
        raise RuntimeError("idnits is not installed; run `make test` (it runs npm ci)")
    proc = subprocess.run(
        [str(IDNITS), "--offline", "-o", "json", "--no-color", "--no-progress", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    start = proc.stdout.find("{")
    if start < 0:
        raise RuntimeError(f"idnits produced no report: {proc.stdout}{proc.stderr}")
    report = json.loads(proc.stdout[start:])
    allowed = IDNITS_ALLOWLIST[path.suffix.lstrip(".")]
    return [
        nit
        for nit in report.get("nits", [])
        if nit.get("code") not in allowed and not _is_regex_class(nit)
    ]


# idnits reads any bracketed token as a citation. The CDDL's .regexp patterns
# contain character classes such as [0-9] or [a-z0-9-]; only those, and no
# other missing reference, are accepted (a real missing citation still fails).
_REGEX_CLASS = re.compile(r"Document has (\[(?:[a-z0-9]-[a-z0-9]|[a-z0-9])+-?\])")


def _is_regex_class(nit: dict[str, str]) -> bool:
    if nit.get("code") != "REFERENCE_MISSING_IN_REFERENCE_SECTION":
        return False
    match = _REGEX_CLASS.match(str(nit.get("desc", nit.get("message", ""))))
    return match is not None


def sourcecode_blocks(draft: pathlib.Path, kind: str) -> list[tuple[str | None, str]]:
    """(name or anchor, text) of every <sourcecode type=kind> in the draft source."""
    tree = etree.parse(str(draft), _parser())
    blocks = []
    for element in tree.iter("sourcecode"):
        if element.get("type") == kind:
            label = element.get("name") or element.get("anchor")
            if label is None:
                parent = element.getparent()
                label = parent.get("anchor") if parent is not None else None
            blocks.append((label, element.text or ""))
    return blocks


def cddl_text(draft: pathlib.Path) -> str:
    """All CDDL blocks of the draft joined, first block first (its first rule is the root)."""
    return "\n".join(text for _, text in sourcecode_blocks(draft, "cddl"))


def _pycddl_text(cddl: str) -> str:
    # pycddl 0.6.4 does not anchor .regexp as RFC 8610 section 3.8.3 requires
    # (XSD regular expressions match whole strings): anchor each one explicitly.
    return re.sub(r'\.regexp(\s+)"([^"]*)"', r'.regexp\1"^(?:\2)$"', cddl)


def _root_rule(cddl: str) -> str:
    match = re.search(r"^([A-Za-z][\w-]*)\s*=", cddl, re.MULTILINE)
    if match is None:
        raise ValueError("the CDDL has no rule")
    return match.group(1)


def _alternatives(cddl: str, root: str) -> list[str]:
    """The rule names of the root's type choice (``message = a / b / ...``)."""
    match = re.search(rf"^{re.escape(root)}\s*=(.*?)(?=^\S|\Z)", cddl, re.MULTILINE | re.DOTALL)
    body = re.sub(r";[^\n]*", "", match.group(1)) if match else ""
    return [name.strip() for name in body.split("/") if name.strip()]


def check_examples(draft: pathlib.Path) -> list[str]:
    """Validate every JSON example of the draft against the draft's own CDDL.

    An example is valid if it matches one alternative of the root rule. Each
    alternative is tried on its own: pycddl 0.6.4 misjudges a choice between
    maps that allow extra members (``* tstr => any``), so the choice is made
    here, as RFC 8610 defines it (valid if any alternative matches).
    """
    import cbor2
    import pycddl

    problems: list[str] = []
    cddl = cddl_text(draft)
    examples = sourcecode_blocks(draft, "json")
    if not cddl.strip():
        return ["the draft has no CDDL" if examples else "the draft has no CDDL and no examples"]
    text = _pycddl_text(cddl)
    try:
        root = _root_rule(text)
        schemas = [
            (name, pycddl.Schema(f"example-root = {name}\n{text}"))
            for name in _alternatives(text, root) or [root]
        ]
    except ValueError as exc:
        return [f"the draft's CDDL does not parse: {exc}"]
    for label, example in examples:
        try:
            value = json.loads(example)
        except ValueError as exc:
            problems.append(f"example {label}: not JSON: {exc}")
            continue
        data = cbor2.dumps(value)
        errors: list[str] = []
        for name, schema in schemas:
            try:
                schema.validate_cbor(data)
                break
            except pycddl.ValidationError as exc:
                errors.append(f"{name}: {str(exc).splitlines()[0]}")
        else:
            hint = next((e for e in errors if str(value.get("type")) in e), errors[0])
            problems.append(f"example {label}: does not match the CDDL: {hint}")
    return problems


def check(draft: pathlib.Path = DRAFT, out: pathlib.Path | None = None) -> list[str]:
    """Every gate on one draft file; an empty list means it passes."""
    with tempfile.TemporaryDirectory() as scratch:
        where = out or pathlib.Path(scratch)
        result = render(draft, where)
        problems = [f"xml2rfc: {line}" for line in result.problems]
        if result.returncode != 0:
            problems.append(f"xml2rfc exited {result.returncode}")
            return problems
        for target in (result.txt, draft):
            problems += [
                f"idnits {target.suffix}: {nit.get('code')}: {nit.get('desc', nit.get('message'))}"
                for nit in idnits(target)
            ]
    problems += check_examples(draft)
    return problems


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "render":
        result = render()
        print(result.log.strip())
        if not result.ok:
            print("draft render failed:", *result.problems, sep="\n  ", file=sys.stderr)
            return 1
        print(f"rendered {result.txt.relative_to(ROOT)} and {result.html.relative_to(ROOT)}")
        return 0
    if command == "check":
        problems = check(out=BUILD)
        for problem in problems:
            print(problem, file=sys.stderr)
        print("draft checks:", "FAILED" if problems else "passed")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
