"""Fill the draft's generated regions from the code, or check that they match.

The draft marks every block that the code owns:

    <!-- BEGIN GENERATED name -->  ...  <!-- END GENERATED name -->

and this script regenerates what lies between the markers: the CDDL (from
``src/agent_recovery/schemas/messages.cddl``), the message examples (from the
conformance vectors), the state tables (from ``_state.py``) and the registry
tables (from the code's registries). ``--check`` fails when the draft differs
from what the code generates, so the draft and the code cannot drift.

    python scripts/sync_draft.py            # rewrite the draft in place
    python scripts/sync_draft.py --check    # exit 1 on any difference
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pathlib
import re
import sys
from collections.abc import Callable
from html import escape

ROOT = pathlib.Path(__file__).resolve().parents[1]
DRAFT = ROOT / "draft" / "draft-agent-recovery-rollback-00.xml"
CDDL = ROOT / "src" / "agent_recovery" / "schemas" / "messages.cddl"
VECTORS = ROOT / "conformance" / "vectors"

# Text output puts block content at a 3-column indent; sourcecode lines must fit 72.
MAX_LINE = 69

_REGION = re.compile(
    r"(?P<begin><!-- BEGIN GENERATED (?P<name>[^ ]+) -->)(?P<body>.*?)"
    r"(?P<end>[ \t]*<!-- END GENERATED (?P=name) -->)",
    re.DOTALL,
)


class SyncError(Exception):
    pass


def _cdata(text: str) -> str:
    if "]]>" in text:
        raise SyncError("generated text contains ']]>'")
    return f"<![CDATA[\n{text.rstrip()}\n]]>"


def _check_width(name: str, text: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise SyncError(f"{name}: line {number} is {len(line)} columns (max {MAX_LINE})")


def gen_cddl(_: str) -> str:
    if not CDDL.exists():
        raise SyncError(f"{CDDL.relative_to(ROOT)} does not exist yet")
    text = CDDL.read_text(encoding="utf-8")
    _check_width("cddl", text)
    return (
        '<sourcecode type="cddl" name="agent-recovery.cddl" markers="true">'
        f"{_cdata(text)}</sourcecode>"
    )


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def gen_example(name: str) -> str:
    stem = name.split(":", 1)[1]
    path = VECTORS / f"{stem}.json"
    if not path.exists():
        raise SyncError(f"{path.relative_to(ROOT)} does not exist yet")
    vector = json.loads(path.read_text(encoding="utf-8"))
    if vector.get("verdict") != "valid":
        raise SyncError(f"{stem}: only valid vectors can be draft examples")
    text = _pretty(json.loads(vector["input"]))
    _check_width(name, text)
    title = escape(vector.get("description", stem), quote=False)
    return (
        f'<figure anchor="{stem}">\n<name>{title}</name>\n'
        f'<sourcecode type="json">{_cdata(text)}</sourcecode>\n</figure>'
    )


def _load_script(name: str) -> object:
    path = ROOT / "scripts" / f"{name}.py"
    if not path.exists():
        raise SyncError(f"scripts/{name}.py does not exist yet")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SyncError(f"cannot load scripts/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gen_state_tables(_: str) -> str:
    module = _load_script("gen_state_tables")
    text: str = module.render()  # type: ignore[attr-defined]
    return text.strip()


def _table(title: str, anchor: str, head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    cells = "".join(f"<th>{escape(h, quote=False)}</th>" for h in head)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{escape(c, quote=False)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return (
        f'<table anchor="{anchor}">\n<name>{escape(title, quote=False)}</name>\n'
        f"<thead><tr>{cells}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def gen_registry(name: str) -> str:
    which = name.split(":", 1)[1]
    tables = _load_script("registry_tables")
    rows_for: Callable[[str], tuple[str, str, tuple[str, ...], list[tuple[str, ...]]]]
    rows_for = tables.registry_rows  # type: ignore[attr-defined]
    title, anchor, head, rows = rows_for(which)
    return _table(title, anchor, head, rows)


def gen_jamjet(_: str) -> str:
    tables = _load_script("registry_tables")
    title, anchor, head, rows = tables.registry_rows("jamjet")  # type: ignore[attr-defined]
    return _table(title, anchor, head, rows)


GENERATORS: dict[str, Callable[[str], str]] = {
    "cddl": gen_cddl,
    "state-tables": gen_state_tables,
    "jamjet-mapping": gen_jamjet,
}
PREFIXES: dict[str, Callable[[str], str]] = {
    "example": gen_example,
    "registry": gen_registry,
}


def generate(name: str) -> str:
    if name in GENERATORS:
        return GENERATORS[name](name)
    prefix = name.split(":", 1)[0]
    if ":" in name and prefix in PREFIXES:
        return PREFIXES[prefix](name)
    raise SyncError(f"unknown generated region {name!r}")


def sync(text: str) -> tuple[str, list[str]]:
    """Return the regenerated draft text and the names of the regions that changed.

    Raises SyncError if any region cannot be generated.
    """
    new, changed, errors = sync_partial(text)
    if errors:
        raise SyncError("; ".join(errors))
    return new, changed


def sync_partial(text: str) -> tuple[str, list[str], list[str]]:
    """Regenerate every region that can be; also return the errors of the others."""
    changed: list[str] = []
    errors: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        try:
            body = "\n" + generate(name) + "\n"
        except SyncError as exc:
            errors.append(str(exc))
            return match[0]
        if body != match["body"]:
            changed.append(name)
        return match["begin"] + body + match["end"].lstrip(" \t")

    return _REGION.sub(replace, text), changed, errors


def regions(text: str) -> list[str]:
    return [match["name"] for match in _REGION.finditer(text)]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    draft = pathlib.Path(next((a for a in argv if not a.startswith("-")), DRAFT))
    text = draft.read_text(encoding="utf-8")
    new, changed, errors = sync_partial(text)
    for error in errors:
        print(f"sync_draft: {error}", file=sys.stderr)
    if check:
        if errors:
            return 1
        if changed:
            print("draft differs from the code in: " + ", ".join(changed), file=sys.stderr)
            print("run: .venv/bin/python scripts/sync_draft.py", file=sys.stderr)
            return 1
        print(f"draft generated regions match the code ({len(regions(text))} regions)")
        return 0
    if new != text:
        draft.write_text(new, encoding="utf-8")
    print(f"updated {len(changed)} of {len(regions(text))} generated regions")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
