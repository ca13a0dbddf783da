"""What a coordinator knows of the executions it is a recovery authority for.

Per execution: its whole recovery authority (draft §5.3), from which failure
signals are accepted, and, when the coordinator delegated the work, the
reversibility the execution's agent declared then (draft §13.6), against
which the facts of halted replies are compared. Persisted as one part of the
coordinator's snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._errors import ErrorCode, LocalProtocolError
from ._events import dump_ref, load_ref
from ._model import ExecRef, Reversibility, check_identifier

__all__ = ["Authorities"]


class Authorities:
    """Executions -> recovery authority, and the reversibility declared at delegation."""

    __slots__ = ("_declared", "_names")

    def __init__(self) -> None:
        self._names: dict[ExecRef, frozenset[str]] = {}
        self._declared: dict[ExecRef, Reversibility] = {}

    def add(
        self,
        execution: ExecRef,
        names: Iterable[str],
        reversibility: Reversibility | None,
    ) -> None:
        """Record ``execution``; everything is checked before anything changes."""
        checked = frozenset(check_identifier(a, "authority") for a in names)
        if reversibility is not None and type(reversibility) is not Reversibility:
            raise LocalProtocolError(ErrorCode.MALFORMED, "reversibility: not a Reversibility")
        self._names[execution] = checked
        if reversibility is None:
            self._declared.pop(execution, None)
        else:
            self._declared[execution] = reversibility

    def names(self, execution: ExecRef) -> frozenset[str] | None:
        """The recovery authority of ``execution``; ``None`` if it is not known here."""
        return self._names.get(execution)

    def declared(self, execution: ExecRef) -> Reversibility | None:
        return self._declared.get(execution)

    def dump(self) -> list[list[Any]]:
        # [ref, names] or, with a declared reversibility, [ref, names, reversibility].
        declared = self._declared
        return [
            [dump_ref(ref), sorted(names)] + ([declared[ref].value] if ref in declared else [])
            for ref, names in sorted(self._names.items())
        ]

    @classmethod
    def load(cls, data: list[list[Any]]) -> Authorities:
        table = cls()
        for ref, names, *declared in data:
            execution = load_ref(ref)
            table._names[execution] = frozenset(names)
            if declared:
                (value,) = declared
                table._declared[execution] = Reversibility(value)
        return table
