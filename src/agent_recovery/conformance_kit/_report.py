"""Checks and the report: every check has a requirement level and a draft section."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Check", "Level", "Report", "Verdict"]


class Level(enum.StrEnum):
    """BCP 14 requirement level of the rule a check tests (RFC 2119, RFC 8174)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # not applicable to this target, or a precondition failed


@dataclass(slots=True, kw_only=True)
class Check:
    id: str
    group: str
    level: Level
    section: str
    title: str
    verdict: Verdict = Verdict.SKIP
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "level": self.level.value,
            "section": self.section,
            "title": self.title,
            "verdict": self.verdict.value,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Report:
    target: str
    checks: list[Check] = field(default_factory=list)

    def add(  # noqa: PLR0917 - one row of the report, in column order
        self,
        id: str,
        group: str,
        level: Level,
        section: str,
        title: str,
        ok: bool | None,
        detail: str = "",
    ) -> Check:
        """Record one check; ``ok=None`` records it as skipped."""
        verdict = Verdict.SKIP if ok is None else Verdict.PASS if ok else Verdict.FAIL
        check = Check(
            id=id,
            group=group,
            level=level,
            section=section,
            title=title,
            verdict=verdict,
            detail=detail,
        )
        self.checks.append(check)
        return check

    def count(self, verdict: Verdict, level: Level | None = None) -> int:
        return sum(
            1 for c in self.checks if c.verdict is verdict and (level is None or c.level is level)
        )

    @property
    def must_failed(self) -> int:
        return self.count(Verdict.FAIL, Level.MUST)

    def lines(self) -> list[str]:
        out = []
        group = None
        for c in self.checks:
            if c.group != group:
                group = c.group
                out.append(f"== {group}")
            mark = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[c.verdict.value]
            detail = f"  ({c.detail})" if c.detail and c.verdict is not Verdict.PASS else ""
            out.append(f"{mark} {c.level.value:<6} §{c.section:<6} {c.id}: {c.title}{detail}")
        out.append(
            f"== {len(self.checks)} checks: {self.count(Verdict.PASS)} passed, "
            f"{self.count(Verdict.FAIL)} failed ({self.must_failed} MUST, "
            f"{self.count(Verdict.FAIL, Level.SHOULD)} SHOULD, "
            f"{self.count(Verdict.FAIL, Level.MAY)} MAY), {self.count(Verdict.SKIP)} skipped"
        )
        return out

    def summary(self) -> dict[str, Any]:
        by_level = {
            level.value: {
                "pass": self.count(Verdict.PASS, level),
                "fail": self.count(Verdict.FAIL, level),
                "skip": self.count(Verdict.SKIP, level),
            }
            for level in Level
        }
        return {
            "target": self.target,
            "checks": len(self.checks),
            "passed": self.count(Verdict.PASS),
            "failed": self.count(Verdict.FAIL),
            "skipped": self.count(Verdict.SKIP),
            "must_failed": self.must_failed,
            "levels": by_level,
            "failures": [c.to_json() for c in self.checks if c.verdict is Verdict.FAIL],
        }

    def to_json(self) -> str:
        return json.dumps(self.summary(), separators=(",", ":"))
