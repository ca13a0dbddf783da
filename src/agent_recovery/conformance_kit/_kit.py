"""Message builders shared by the scenarios: fresh ids, the current time, the fixture's names."""

from __future__ import annotations

from dataclasses import dataclass

from .._messages import FailureSignal, Halt, Resume, Rollback, StatusQuery
from .._model import Action, EffectState, ExecRef, Reason, ReasonKind, Severity
from ._peers import Peers
from ._report import Level, Report

__all__ = ["DEPLOYER", "INTRUDER", "MONITOR", "Kit"]

DEPLOYER = "spiffe://ops.example/deployer"
MONITOR = "spiffe://ops.example/monitor"
INTRUDER = "spiffe://ops.example/intruder"


@dataclass(slots=True)
class Kit:
    """What every scenario needs: the simulated peers, the report, the target's name."""

    peers: Peers
    report: Report
    target: str
    burst: int = 10  # the fixture's failure-signal burst (draft §13.4)

    def mine(self, exec_id: str) -> ExecRef:
        """One of the target's own executions (it is their participant)."""
        return ExecRef(agent=self.target, exec=exec_id)

    def recovery(self) -> tuple[str, str]:
        """A fresh (recovery id, trigger id) for the runner acting as a coordinator."""
        return self.peers.next_id("rcv"), self.peers.next_id("sig")

    def check(  # noqa: PLR0917 - one row of the report, in column order
        self,
        id: str,
        group: str,
        level: Level,
        section: str,
        title: str,
        ok: bool | None,
        detail: str = "",
    ) -> bool:
        self.report.add(id, group, level, section, title, ok, detail)
        return bool(ok)

    # -- requests of a coordinator (the runner) to the target as participant ---------------

    def halt(
        self, sender: str, execution: ExecRef, recovery: str, trigger: str, created: int
    ) -> Halt:
        return Halt(
            id=self.peers.next_id("h"),
            sender=sender,
            recipient=self.target,
            iat=self.peers.now(),
            recovery=recovery,
            trigger=trigger,
            execution=execution,
            created=created,
        )

    def rollback(
        self,
        sender: str,
        execution: ExecRef,
        recovery: str,
        trigger: str,
        *,
        target: int,
        action: Action,
    ) -> Rollback:
        return Rollback(
            id=self.peers.next_id("rb"),
            sender=sender,
            recipient=self.target,
            iat=self.peers.now(),
            recovery=recovery,
            trigger=trigger,
            execution=execution,
            target=target,
            action=action,
            reason=Reason(kind=ReasonKind.ORIGIN),
        )

    def resume(self, sender: str, execution: ExecRef, recovery: str, trigger: str) -> Resume:
        return Resume(
            id=self.peers.next_id("rs"),
            sender=sender,
            recipient=self.target,
            iat=self.peers.now(),
            recovery=recovery,
            trigger=trigger,
            execution=execution,
        )

    def status_query(
        self, sender: str, execution: ExecRef, recovery: str, trigger: str
    ) -> StatusQuery:
        return StatusQuery(
            id=self.peers.next_id("sq"),
            sender=sender,
            recipient=self.target,
            iat=self.peers.now(),
            recovery=recovery,
            trigger=trigger,
            execution=execution,
        )

    # -- a participant (the runner) signalling the target as coordinator --------------------

    def signal(
        self,
        sender: str,
        execution: ExecRef,
        *,
        checkpoint: int,
        severity: Severity = Severity.ERROR,
        iat: int | None = None,
        id: str | None = None,
    ) -> FailureSignal:
        return FailureSignal(
            id=id or self.peers.next_id("sig"),
            sender=sender,
            recipient=self.target,
            iat=self.peers.now() if iat is None else iat,
            execution=execution,
            failure_type="execution-error",
            severity=severity,
            retryable=severity is Severity.WARNING,
            effect_state=EffectState.PARTIAL,
            checkpoint=checkpoint,
        )
