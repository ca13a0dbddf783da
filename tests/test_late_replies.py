"""A reply to an earlier transmission of a request is a reply to the request (draft §12.2.3).

A sender retransmits on its own schedule even while an earlier exchange is
still outstanding (for example an HTTP exchange waiting for its transport
timeout); a reply that then arrives to the earlier transmission is processed
like any other, and no transmission causes a second effect.
"""

from __future__ import annotations

from test_coordinator import ORIGIN, Net, X

from agent_recovery._messages import Error, Halt, Halted
from agent_recovery._state import RecoveryState


def test_a_late_reply_to_an_earlier_transmission_is_accepted() -> None:
    net = Net()
    held: list[Halted] = []

    def hold_first_halted_of_x(m: object) -> bool:
        if isinstance(m, Halted) and m.execution == X and not held:
            held.append(m)
            return True
        return False

    net.drop = hold_first_halted_of_x
    net.signal()
    # Run until the coordinator has retransmitted its halt of x.
    for _ in range(1_000):
        if len([m for m in net.log if isinstance(m, Halt) and m.execution == X]) >= 2:
            break
        assert net.step()
    net.drop = lambda m: False
    (late,) = held
    first, again = [m for m in net.log if isinstance(m, Halt) and m.execution == X][:2]
    assert late.reply_to == first.id != again.id  # a new message, not a copy
    net.c.receive(late.sender, late, net.now)  # the late reply, to the first halt
    net.pull()
    assert not [m for m in net.queue if isinstance(m, Error) and m.recipient == X.agent]
    net.run()
    assert net.c.recovery_state(net.rid()) is RecoveryState.CLOSED
    # Each execution was asked to undo its work exactly once.
    asked = [e.execution for e in net.asked]
    assert asked.count(X) == 1 and asked.count(ORIGIN) == 1
