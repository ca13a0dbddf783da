"""Conformance vectors: the codec, the JSON Schemas and the draft's CDDL agree (draft §6).

Every file in ``conformance/vectors/`` is judged by one pipeline with three
stages, and each stage is run with every tool that implements it:

1. the strict I-JSON parse (``_wire.parse``): UTF-8, duplicate names, lone
   surrogates, number range, nesting and size. Neither JSON Schema nor CDDL
   can see these (a JSON parser has already lost them), so this step precedes
   schema validation in any implementation; ``layer: json`` vectors fail here;
2. shape validation, once with JSON Schema 2020-12 (``message.schema.json``)
   and once with the CDDL (``messages.cddl``, via pycddl over CBOR):
   ``layer: schema`` vectors must fail in BOTH and pass stage 1;
3. the codec's cross-member rules: ``layer: semantic`` vectors must pass
   stages 1 and 2 (in both notations) and be refused by ``decode``.

Valid vectors pass all three stages in every tool. For every invalid vector
``decode`` raises ``RemoteProtocolError`` with the vector's error code.

pycddl 0.6.4 needs two accommodations, both applied to a copy of the text, not
to the draft's CDDL: its ``.regexp`` is not anchored as RFC 8610 §3.8.3
requires (XSD regexes match whole strings), so each regex is wrapped in
``^(?:...)$``; and it misjudges choices between maps with ``* tstr => any``,
so the rule for the vector's ``type`` is checked directly (if the type is
unknown, every alternative must fail, which is what ``/`` means).
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import cbor2
import pycddl
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from agent_recovery._errors import ErrorCode, RemoteProtocolError
from agent_recovery._messages import MESSAGE_TYPES
from agent_recovery._wire import SPECS, decode, encode, parse

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "conformance" / "vectors"
SCHEMAS = ROOT / "src" / "agent_recovery" / "schemas"
FILES = sorted(VECTORS.glob("*.json"))
LAYERS = {"json", "schema", "semantic"}


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_schemas", ROOT / "scripts" / "gen_schemas.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()


def _vector(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _input(vector: dict[str, Any]) -> bytes:
    if "input_b64" in vector:
        return base64.b64decode(vector["input_b64"], validate=True)
    text: str = vector["input"]
    # surrogatepass: a vector may hold what no conforming encoder would emit.
    return text.encode("utf-8", "surrogatepass")


@functools.cache
def _json_schema() -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "message.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def _cddl_text() -> str:
    text = (SCHEMAS / "messages.cddl").read_text(encoding="utf-8")
    return re.sub(r'\.regexp(\s+)"([^"]*)"', r'.regexp\1"^(?:\2)$"', text)


@functools.cache
def _cddl_rule(rule: str) -> Any:
    return pycddl.Schema(f"vector-root = {rule}\n" + _cddl_text())


def _cddl_valid(obj: dict[str, Any]) -> bool:
    kind = obj.get("type")
    rules = [GEN.cddl_rule(kind)] if kind in SPECS else [GEN.cddl_rule(n) for n in SPECS]
    data = cbor2.dumps(obj)
    for rule in rules:
        try:
            _cddl_rule(rule).validate_cbor(data)
        except pycddl.ValidationError:
            continue
        return True
    return False


def _schema_valid(obj: dict[str, Any]) -> bool:
    return bool(_json_schema().is_valid(obj))


# ---------------------------------------------------------------------------
# The suite as a whole


def test_enough_vectors_of_every_kind() -> None:
    vectors = [_vector(p) for p in FILES]
    assert len(vectors) >= 60
    invalid_layers = {v["layer"] for v in vectors if v["verdict"] == "invalid"}
    assert invalid_layers == LAYERS
    examples = {
        json.loads(_vector(p)["input"])["type"] for p in FILES if p.stem.startswith("example-")
    }
    assert examples == set(MESSAGE_TYPES), "one example per message type"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_vector_file_format(path: Path) -> None:
    vector = _vector(path)
    assert set(vector) <= {
        "description",
        "section",
        "input",
        "input_b64",
        "verdict",
        "error",
        "layer",
    }
    assert vector["description"] and isinstance(vector["section"], str)
    assert ("input" in vector) != ("input_b64" in vector)
    assert vector["layer"] in LAYERS
    if path.name.startswith("invalid-"):
        assert vector["verdict"] == "invalid"
        assert ErrorCode(vector["error"])
    else:
        assert path.name.startswith(("valid-", "example-"))
        assert vector["verdict"] == "valid" and "error" not in vector


# ---------------------------------------------------------------------------
# Same verdict from codec, JSON Schema and CDDL


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_codec_schema_and_cddl_agree(path: Path) -> None:
    vector = _vector(path)
    data = _input(vector)
    layer, verdict = vector["layer"], vector["verdict"]

    if verdict == "invalid" and layer == "json":
        with pytest.raises(RemoteProtocolError) as parsed:
            parse(data)
        assert parsed.value.code == vector["error"]
    else:
        obj = parse(data)
        schema_ok, cddl_ok = _schema_valid(obj), _cddl_valid(obj)
        assert schema_ok == cddl_ok, f"JSON Schema says {schema_ok}, CDDL says {cddl_ok}"
        assert schema_ok == (verdict == "valid" or layer == "semantic")

    if verdict == "valid":
        message = decode(data)
        assert decode(encode(message)) == message
    else:
        with pytest.raises(RemoteProtocolError) as decoded:
            decode(data)
        assert decoded.value.code == vector["error"]


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.name.startswith("example-")], ids=lambda p: p.stem
)
def test_examples_are_canonical(path: Path) -> None:
    """The draft's examples are exactly what ``encode`` emits (draft §6.13)."""
    data = _input(_vector(path))
    assert encode(decode(data)) == data


@pytest.mark.parametrize("name", sorted(SPECS))
def test_per_type_schema_accepts_its_valid_vectors(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    seen = 0
    for path in FILES:
        vector = _vector(path)
        if vector["verdict"] != "valid":
            continue
        obj = parse(_input(vector))
        assert validator.is_valid(obj) == (obj["type"] == name), path.name
        seen += obj["type"] == name
    assert seen >= 1


# ---------------------------------------------------------------------------
# The generated files are current, and the CDDL fits the draft


def test_committed_schemas_match_generator() -> None:
    expected = GEN.expected_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.iterdir() if p.is_file()}
    assert set(committed) == set(expected), "run scripts/gen_schemas.py"
    for name, content in expected.items():
        assert committed[name] == content, f"{name} is stale: run scripts/gen_schemas.py"


def test_cddl_first_rule_is_message_and_fits_the_draft() -> None:
    text = (SCHEMAS / "messages.cddl").read_text(encoding="utf-8")
    assert text.startswith("message = failure-signal / ack / ")
    assert max(len(line) for line in text.splitlines()) <= 69
    # The unmodified text is what the draft carries: it must parse as is.
    pycddl.Schema(text)
    for name in SPECS:
        assert re.search(rf"^{GEN.cddl_rule(name)} = {{$", text, re.MULTILINE)
