#!/usr/bin/env python3
"""Generate the JSON Schemas and the draft's CDDL from the codec's message shapes.

``agent_recovery._wire.SPECS`` is the single description of every message; this
script renders it as JSON Schema 2020-12 (one ``<type>.schema.json`` per message
type plus ``message.schema.json`` for any message) and as CDDL (RFC 8610,
``messages.cddl``, whose first rule is ``message``). The draft's CDDL figure is
injected from ``messages.cddl``, so the three cannot drift; ``tests/test_vectors.py``
checks that the committed files equal what this script produces.

Both renderings describe shapes only: members, types, identifier and timestamp
syntax, closed value sets. Cross-member rules (draft §6) are stated in prose and
enforced by the codec; neither notation gets rules the other cannot express, so
a schema validator and a CDDL validator reach the same verdict on any input.

Usage::

    .venv/bin/python scripts/gen_schemas.py          # write the files
    .venv/bin/python scripts/gen_schemas.py --check  # exit 1 if they differ
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent_recovery._messages import MAX_INTEGER
from agent_recovery._wire import (
    SPECS,
    VERSION,
    Choice,
    Kind,
    ListOf,
    Member,
    MessageSpec,
    Scalar,
    Scope,
)

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "src" / "agent_recovery" / "schemas"
CDDL_WIDTH = 69  # the draft indents figures by 3 in a 72-column page

# Regular expressions shared by both notations. They are written in the common
# subset of XSD (CDDL .regexp, implicitly anchored), ECMA-262 (JSON Schema,
# anchored here with ^...$) and Python's re: no escapes, no shorthand classes.
RE_ID = "[!-~]{1,255}"
RE_TOKEN = "[a-z][a-z0-9-]{0,62}"
RE_DIGEST = "[A-Za-z0-9_-]{43}"
# RFC 3339 date-time, split in three so each CDDL line fits the draft; a value
# must match all three (CDDL .and), i.e. their conjunction below.
RE_TS_DATE = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt].*"
RE_TS_TIME = ".{11}([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60).*"
RE_TS_ZONE = ".{19}([.][0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
RE_TIMESTAMP = (
    "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
    "([.][0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)

_SCALAR_SCHEMA: dict[Scalar, dict[str, Any]] = {
    Scalar.ID: {"type": "string", "pattern": f"^{RE_ID}$"},
    Scalar.UINT: {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER},
    Scalar.TIMESTAMP: {"type": "string", "pattern": f"^{RE_TIMESTAMP}$"},
    Scalar.TEXT: {"type": "string"},
    Scalar.NONEMPTY_TEXT: {"type": "string", "minLength": 1},
    Scalar.BOOL: {"type": "boolean"},
    Scalar.TOKEN: {"type": "string", "pattern": f"^{RE_TOKEN}$"},
    Scalar.DIGEST: {"type": "string", "pattern": f"^({RE_DIGEST})?$"},
    Scalar.OBJECT: {"type": "object"},
}
_SCALAR_DESCRIPTION = {
    Scalar.ID: "Identifier (draft Section 5.1).",
    Scalar.UINT: "Unsigned integer within the I-JSON exact range.",
    Scalar.TIMESTAMP: "RFC 3339 date-time (draft Section 5.1).",
    Scalar.TOKEN: "Registry value; unregistered values take the registry's fallback.",
    Scalar.DIGEST: "Unpadded base64url SHA-256 digest, or empty.",
}
# The CDDL rule name of each scalar; text, booleans and objects use the prelude.
_SCALAR_CDDL = {
    Scalar.ID: "identifier",
    Scalar.UINT: "uint53",
    Scalar.TIMESTAMP: "timestamp",
    Scalar.TEXT: "tstr",
    Scalar.NONEMPTY_TEXT: 'tstr .ne ""',
    Scalar.BOOL: "bool",
    Scalar.TOKEN: "token",
    Scalar.DIGEST: "digest",
    Scalar.OBJECT: "{ * tstr => any }",
}


# ---------------------------------------------------------------------------
# JSON Schema


def _schema_ref(kind: Kind, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(kind, Scalar):
        if kind in (Scalar.TEXT, Scalar.BOOL, Scalar.OBJECT, Scalar.NONEMPTY_TEXT):
            return dict(_SCALAR_SCHEMA[kind])
        name = _SCALAR_CDDL[kind]
        if name not in defs:
            defs[name] = {**_SCALAR_SCHEMA[kind], "description": _SCALAR_DESCRIPTION[kind]}
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(kind, Choice):
        if kind.name not in defs:
            defs[kind.name] = {"enum": list(kind.values)}
        return {"$ref": f"#/$defs/{kind.name}"}
    if isinstance(kind, ListOf):
        return {"type": "array", "items": _schema_ref(kind.item, defs)}
    if kind.name not in defs:
        defs[kind.name] = {}  # reserve the slot first: keeps $defs order stable
        defs[kind.name] = _schema_object(kind.members, defs, {})
    return {"$ref": f"#/$defs/{kind.name}"}


def _schema_object(
    members: tuple[Member, ...], defs: dict[str, Any], head: dict[str, Any]
) -> dict[str, Any]:
    properties = dict(head)
    for member in members:
        properties[member.name] = _schema_ref(member.kind, defs)
    required = [*head, *(m.name for m in members if m.required)]
    # Unknown members are ignored (draft §6.13): no additionalProperties.
    return {"type": "object", "required": required, "properties": properties}


def _message_schema(spec: MessageSpec, defs: dict[str, Any]) -> dict[str, Any]:
    head = {"v": {"const": VERSION}, "type": {"const": spec.name}}
    return _schema_object(spec.members, defs, head)


def json_schemas() -> dict[str, str]:
    """File name -> content for every JSON Schema file."""
    files: dict[str, str] = {}
    all_defs: dict[str, Any] = {}
    for spec in SPECS.values():
        defs: dict[str, Any] = {}
        body = _message_schema(spec, defs)
        all_defs[spec.name] = _message_schema(spec, all_defs)
        document = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"agent-recovery {spec.name} message",
            "description": "Generated by scripts/gen_schemas.py; see draft Section 6.",
            **body,
            "$defs": defs,
        }
        files[f"{spec.name}.schema.json"] = _dumps(document)
    union = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "agent-recovery message",
        "description": "Any message. Generated by scripts/gen_schemas.py.",
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in SPECS],
        "$defs": all_defs,
    }
    files["message.schema.json"] = _dumps(union)
    return files


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------
# CDDL


def _cddl_type(kind: Kind, rules: dict[str, list[str]]) -> str:
    if isinstance(kind, Scalar):
        return _SCALAR_CDDL[kind]
    if isinstance(kind, Choice):
        if kind.name not in rules:
            rules[kind.name] = _wrap(f"{kind.name} = ", [f'"{v}"' for v in kind.values], " / ")
        return kind.name
    if isinstance(kind, ListOf):
        return f"[* {_cddl_type(kind.item, rules)}]"
    if kind.name not in rules:
        rules[kind.name] = []
        rules[kind.name] = _cddl_map(kind.name, kind.members, rules, [])
    return kind.name


def _cddl_map(
    name: str, members: tuple[Member, ...], rules: dict[str, list[str]], head: list[str]
) -> list[str]:
    lines = [f"{name} = {{", *head]
    for member in members:
        optional = "" if member.required else "? "
        lines.append(f"  {optional}{member.name}: {_cddl_type(member.kind, rules)},")
    lines.append("  * tstr => any")  # unknown members are ignored
    lines.append("}")
    return lines


def _wrap(first: str, items: list[str], sep: str) -> list[str]:
    """``first`` followed by ``items`` joined by ``sep``, wrapped to the draft's width."""
    lines: list[str] = []
    line = first
    for index, item in enumerate(items):
        piece = item + (sep.rstrip() if index < len(items) - 1 else "")
        if len(line) + len(piece) > CDDL_WIDTH and line != first:
            lines.append(line.rstrip())
            line = " " * len(first)
        line += piece + " "
    lines.append(line.rstrip())
    return lines


def cddl_rule(message_type: str) -> str:
    """The CDDL rule name of a message type: the type itself, unless a member has
    that name (``status`` is also a member of ``exec-facts``)."""
    return f"{message_type}-reply" if message_type == "status" else message_type


def _check_no_bareword_collision(lines: list[str]) -> None:
    # RFC 8610 reads ``name:`` as a text key whatever rules exist, but some
    # validators resolve it as a rule reference; keep the two name sets apart.
    rules = {line.split(" = ")[0] for line in lines if " = " in line and line[0] != " "}
    keys = {
        line.strip().removeprefix("? ").split(":")[0]
        for line in lines
        if line.startswith("  ") and ":" in line and '"' not in line.split(":")[0]
    }
    if rules & keys:
        raise AssertionError(f"CDDL rule names used as member names: {sorted(rules & keys)}")


def cddl() -> str:
    """The CDDL for every message; the first rule is ``message``."""
    rules: dict[str, list[str]] = {}
    messages: list[list[str]] = []
    for spec in SPECS.values():
        head = [f"  v: {VERSION},", f'  type: "{spec.name}",', "  envelope,"]
        if spec.scope is Scope.REQUIRED:
            head.append("  in-recovery,")
        members = spec.body
        if spec.scope is Scope.OPTIONAL:
            # draft §6.1: both present or both absent (a rule of the codec).
            head += ["  ? recovery: identifier,", "  ? trigger: identifier,"]
        messages.append(_cddl_map(cddl_rule(spec.name), members, rules, head))
    out: list[str] = []
    out += _wrap("message = ", [cddl_rule(name) for name in SPECS], " / ")
    out.append("")
    for lines in messages:
        out += [*lines, ""]
    out += [
        "envelope = (",
        "  id: identifier,",
        "  from: identifier,",
        "  to: identifier,",
        "  iat: timestamp,",
        ")",
        "",
        "in-recovery = (",
        "  recovery: identifier,",
        "  trigger: identifier,",
        ")",
        "",
    ]
    for lines in rules.values():
        out += [*lines, ""]
    out += [
        "; Identifiers: printable ASCII, no space (Section 5.1).",
        f'identifier = tstr .regexp "{RE_ID}"',
        "",
        "; Registry values; unregistered ones take the registry's fallback.",
        f'token = tstr .regexp "{RE_TOKEN}"',
        "",
        "; Integers are exact in I-JSON only up to 2^53 - 1.",
        f"uint53 = 0..{MAX_INTEGER}",
        "",
        "; Unpadded base64url SHA-256 digest, or empty for the first record.",
        f'digest = "" / tstr .regexp "{RE_DIGEST}"',
        "",
        "; RFC 3339 date-time: a value matches all three expressions.",
        "timestamp = ts-date .and ts-clock",
        "ts-clock = ts-time .and ts-zone",
        "ts-date = tstr .regexp",
        f'  "{RE_TS_DATE}"',
        "ts-time = tstr .regexp",
        f'  "{RE_TS_TIME}"',
        "ts-zone = tstr .regexp",
        f'  "{RE_TS_ZONE}"',
    ]
    _check_no_bareword_collision(out)
    for line in out:
        if len(line) > CDDL_WIDTH:
            raise AssertionError(f"CDDL line longer than {CDDL_WIDTH}: {line!r}")
    return "\n".join(out) + "\n"


def expected_files() -> dict[str, str]:
    """Every generated file name -> content."""
    return {**json_schemas(), "messages.cddl": cddl()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for name, content in expected_files().items():
        path = SCHEMA_DIR / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    if args.check and stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
