"""``agent-recovery records verify|export``: check and dump recovery logs (draft §11).

``verify PATH --keys JWKS`` checks every chain in PATH (a SQLite store or a
JSON Lines export) as draft §11.6 says: signatures by a key bound to the
record's issuer, well-formed records, ``seq`` without gaps, ``prev`` links,
unique ids, valid ``supersedes``. It reports, per chain, the records verified
and the chain head, or the FIRST break: its position (index in the chain and
the ``seq`` expected there), kind and detail. Exit status 0 if every chain
verifies, 1 if one does not, 2 if PATH or the key set cannot be read.

``export PATH`` writes every record as JSON Lines, chain by chain in ``seq``
order: ``{"chain", "seq", "id", "recovery", "jws", "record"}``. ``jws`` is the
record as signed and is what ``verify`` checks; ``record`` is its payload, for
reading, and ``verify`` refuses an export whose ``record`` or ``seq``
disagrees with its ``jws``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .._errors import ProtocolError
from .._records import BreakKind, ChainBreak, LogVerifier, Report
from ..security.jws import Verifier
from ..security.keys import b64url_decode, load_jwk_set
from ..store import Store, StoreError, is_store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    records = subparsers.add_parser("records", help="verify or export recovery logs")
    sub = records.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    verify = sub.add_parser(
        "verify",
        help="check the chains of a recovery log; report the first break of each",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("path", type=Path, help="a store file or a JSON Lines export")
    verify.add_argument(
        "--keys", required=True, type=Path, help="JWK set with the issuers' public keys"
    )
    verify.add_argument("--issuer", help="verify only this issuer's chain (it must be present)")
    verify.add_argument(
        "--json", action="store_true", help="end with one JSON object describing the result"
    )
    verify.set_defaults(func=_verify)
    export = sub.add_parser(
        "export",
        help="write every record as JSON Lines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("path", type=Path, help="a store file")
    export.add_argument("--out", type=Path, help="output file (default: standard output)")
    export.set_defaults(func=_export)


class _UnreadableError(Exception):
    """PATH cannot be read as a log (exit status 2)."""


@dataclass(slots=True)
class _Line:
    token: bytes
    seq: object = None
    record: object = None


def _verify(args: argparse.Namespace) -> int:
    try:
        keys = load_jwk_set(args.keys)
    except ProtocolError as exc:
        return _fail(f"key set: {exc.detail or exc}")
    verifier = Verifier(keys)
    try:
        reports = [
            _check(issuer, lines, verifier, export=not from_store)
            for from_store, issuer, lines in _chains(args.path, args.issuer)
        ]
    except _UnreadableError as exc:
        return _fail(str(exc))
    ok = all(r.ok for r in reports)
    for report in reports:
        print(_describe(report))
    if not reports:
        print(f"{args.path}: no records")
    if args.json:
        summary = {
            "path": str(args.path),
            "ok": ok,
            "chains": [_report_json(r) for r in reports],
        }
        print(json.dumps(summary, separators=(",", ":")))
    return 0 if ok else 1


def _chains(path: Path, issuer: str | None) -> Iterator[tuple[bool, str, Iterable[_Line]]]:
    """(from a store, issuer, lines) per chain, in issuer order; a store is read lazily."""
    if is_store(path):
        try:
            store = Store(path, readonly=True)
        except StoreError as exc:
            raise _UnreadableError(str(exc)) from None
        with store:
            for name in _select(path, store.chains(), issuer):
                yield True, name, (_Line(token=e.token) for e in store.entries(name))
        return
    chains = _read_export(path)
    for name in _select(path, list(chains), issuer):
        yield False, name, chains[name]


def _select(path: Path, names: list[str], issuer: str | None) -> list[str]:
    if issuer is not None:
        if issuer not in names:
            raise _UnreadableError(f"{path}: no chain issued by {issuer!r}")
        return [issuer]
    return names


def _read_export(path: Path) -> dict[str, list[_Line]]:
    chains: dict[str, list[_Line]] = {}
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise _UnreadableError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                obj = None
            if (
                not isinstance(obj, dict)
                or not isinstance(obj.get("chain"), str)
                or not isinstance(obj.get("jws"), str)
            ):
                raise _UnreadableError(f"{path}:{number}: not a record line (chain, jws)")
            chains.setdefault(obj["chain"], []).append(
                _Line(
                    token=obj["jws"].encode("utf-8"),
                    seq=obj.get("seq"),
                    record=obj.get("record"),
                )
            )
    return chains


def _check(issuer: str, lines: Iterable[_Line], verifier: Verifier, *, export: bool) -> Report:
    checker = LogVerifier(verifier, issuer=issuer)
    for index, line in enumerate(lines):
        if checker.feed(line.token) is not None:
            break
        if export:
            # The convenience members must say what the signed bytes say.
            payload = json.loads(b64url_decode(line.token.split(b".")[1]))
            problem = None
            if line.seq is not None and line.seq != payload["seq"]:
                problem = f"line says seq {line.seq!r}, its jws {payload['seq']}"
            elif line.record is not None and line.record != payload:
                problem = "line's record differs from its jws payload"
            if problem is not None:
                report = checker.report()
                return Report(
                    issuer=report.issuer,
                    checked=index,
                    head=report.head,
                    first_break=ChainBreak(
                        index=index,
                        seq=payload["seq"],
                        kind=BreakKind.MALFORMED,
                        detail=problem,
                        record_id=payload.get("id"),
                    ),
                )
    return checker.report()


def _describe(report: Report) -> str:
    issuer = report.issuer
    if report.first_break is None:
        head = report.head
        last = "empty" if head.next_seq == 0 else f"head seq {head.next_seq - 1}"
        return f"chain {issuer}: OK, {report.checked} records verified ({last})"
    b = report.first_break
    where = f"index {b.index} (seq {b.seq})"
    record = f" [record {b.record_id}]" if b.record_id is not None else ""
    return (
        f"chain {issuer}: BROKEN at {where}: {b.kind.value}: {b.detail}{record};"
        f" {report.checked} records before it verified"
    )


def _report_json(report: Report) -> dict[str, object]:
    b = report.first_break
    return {
        "issuer": report.issuer,
        "ok": report.ok,
        "checked": report.checked,
        "head": {"next_seq": report.head.next_seq, "prev": report.head.prev},
        "break": None
        if b is None
        else {
            "index": b.index,
            "seq": b.seq,
            "kind": b.kind.value,
            "detail": b.detail,
            "record_id": b.record_id,
        },
    }


def _export(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not is_store(path):
        return _fail(f"{path}: not a store file")
    try:
        store = Store(path, readonly=True)
    except StoreError as exc:
        return _fail(str(exc))
    with store:
        if args.out is None:
            _write_lines(store, sys.stdout)
        else:
            tmp = args.out.with_name(args.out.name + ".tmp")
            try:
                with tmp.open("w", encoding="utf-8") as out:
                    _write_lines(store, out)
            except OSError as exc:
                return _fail(f"{args.out}: {exc.strerror or exc}")
            tmp.replace(args.out)  # readers never see half an export
    return 0


def _write_lines(store: Store, out: TextIO) -> None:
    for chain in store.chains():
        for entry in store.entries(chain):
            token = entry.token.decode("ascii")
            line = {
                "chain": entry.chain,
                "seq": entry.seq,
                "id": entry.record_id,
                "recovery": entry.recovery,
                "jws": token,
                "record": json.loads(b64url_decode(token.split(".")[1])),
            }
            out.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
