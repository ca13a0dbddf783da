"""Render the draft's state figures and tables from ``agent_recovery._state``.

``render()`` returns RFCXML v3 fragments for draft §8.6: a figure and a table
for the recovery machine (coordinator, per recovery), a figure and a table for
the member machine (participant, per execution), and a table for the
coordinator's tracking of each member. ``scripts/sync_draft.py`` injects the
result between ``<!-- BEGIN GENERATED state-tables -->`` and its END marker,
and CI fails when the draft differs, so the draft cannot drift from the code.

The figures are laid out by hand (a layout is a human decision) but are
checked here against the tables: every arrow drawn must be a transition in the
table and every state-changing transition must be drawn, or rendering fails.

    python scripts/gen_state_tables.py          # print the fragments
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from html import escape

from agent_recovery._state import (
    MEMBER_MESSAGE_INPUTS,
    MEMBER_TRANSITIONS,
    RECOVERY_TRANSITIONS,
    TERMINAL_MEMBER_STATES,
    TRACK_MESSAGE_INPUTS,
    TRACK_TRANSITIONS,
    MemberEffect,
    MemberInput,
    MemberReply,
    MemberState,
    RecoveryState,
    Relation,
    TrackAction,
    TrackInput,
    TrackState,
    member_relations,
)

MAX_LINE = 69

RECOVERY_FIGURE = r"""
                       failure signal
                             |
                             v
  abort    +--------------------------+  bound hit, halt refused
 +---------|        containing        |----------------------+
 |         +--------------------------+  or unanswered       |
 |                           | scope closed                  |
 |                           v                               |
 |  abort  +--------------------------+  escalate            |
 +---------|        appraising        |----------------------+
 |         +--------------------------+                      |
 |                 | accept           | reject               |
 |                 v                  v                      v
 |  abort  +--------------+    +------------+        +-------------+
 +---------|  restoring   |    |  rejected  |        |  escalated  |
 |         +--------------+    +------------+        +-------------+
 v                 | all settled
+---------+        v
| aborted |  +--------------+
+---------+  |  releasing   |
             +--------------+
                   | all released
                   v
             +--------------+
             |    closed    |
             +--------------+
"""

# (from, to) pairs the recovery figure draws, by the name of the input.
RECOVERY_ARROWS = {
    ("containing", "appraising"): "scope closed",
    ("containing", "escalated"): "scope undetermined",
    ("containing", "aborted"): "operator: abort",
    ("appraising", "restoring"): "appraisal: accept",
    ("appraising", "rejected"): "appraisal: reject",
    ("appraising", "escalated"): "appraisal: escalate",
    ("appraising", "aborted"): "operator: abort",
    ("restoring", "releasing"): "all settled",
    ("restoring", "aborted"): "operator: abort",
    ("releasing", "closed"): "all released",
}

MEMBER_FIGURE = r"""
          halt (no owner)          rollback (owner)
 +------+ ------------> +--------+ --------------> +--------------+
 | idle |               | halted |                 | rolling-back |
 +------+ <------------ +--------+                 +--------------+
   ^      resume (owner)    ^                             |
   |                        | halt (older recovery:       | outcome
   |                        | takes over, suspends)       | reported
   |                        |                             v
   |  resume (owner)  +---------------------------------------+
   +----------------- | restored, compensated, irreversible,  |
                      | failed, refused, not-needed (sticky)  |
                      +---------------------------------------+
"""

# (from, to, input, relation) the member figure draws; "terminal" stands for
# every terminal state.
MEMBER_ARROWS = {
    ("idle", "halted", "halt", "none"),
    ("halted", "rolling-back", "rollback", "owner"),
    ("halted", "idle", "resume", "owner"),
    ("rolling-back", "terminal", "done", "owner"),
    ("terminal", "idle", "resume", "owner"),
    ("terminal", "halted", "halt", "older"),
}


class RenderError(Exception):
    pass


def _check_width(name: str, text: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise RenderError(f"{name}: line {number} is {len(line)} columns (max {MAX_LINE})")


def _check_recovery_figure() -> None:
    drawn = {}
    for (state, event), step in RECOVERY_TRANSITIONS.items():
        if step.next is not state:
            drawn[state.value, step.next.value] = drawn.get((state.value, step.next.value), set())
            drawn[state.value, step.next.value].add(event.value)
    for (a, b), label in RECOVERY_ARROWS.items():
        if label not in drawn.get((a, b), set()):
            raise RenderError(f"recovery figure draws {a} -> {b} ({label}): not in the table")
    missing = set(drawn) - set(RECOVERY_ARROWS)
    if missing:
        raise RenderError(f"recovery figure lacks transitions {sorted(missing)}")


def _group(state: MemberState) -> str:
    return "terminal" if state in TERMINAL_MEMBER_STATES else state.value


def _check_member_figure() -> None:
    drawn = set()
    for (state, event, relation), step in MEMBER_TRANSITIONS.items():
        if step.next is not state:
            name = "done" if event.value.startswith("done") else event.value
            drawn.add((_group(state), _group(step.next), name, relation.value))
    if drawn != MEMBER_ARROWS:
        raise RenderError(
            "member figure differs from the table: "
            f"drawn but absent {sorted(MEMBER_ARROWS - drawn)}, "
            f"present but not drawn {sorted(drawn - MEMBER_ARROWS)}"
        )


def _figure(anchor: str, title: str, art: str) -> str:
    art = art.strip("\n")
    _check_width(anchor, art)
    return (
        f'<figure anchor="{anchor}">\n<name>{escape(title, quote=False)}</name>\n'
        f'<artwork type="ascii-art"><![CDATA[\n{art}\n]]></artwork>\n</figure>'
    )


def _table(anchor: str, title: str, head: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    cells = "".join(f"<th>{escape(h, quote=False)}</th>" for h in head)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{escape(c, quote=False)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return (
        f'<table anchor="{anchor}">\n<name>{escape(title, quote=False)}</name>\n'
        f"<thead><tr>{cells}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def _states(states: list[MemberState]) -> str:
    """A compact, ordered list of member states: the six terminal ones as "terminal"."""
    order = list(MemberState)
    chosen = sorted(set(states), key=order.index)
    if len(chosen) == len(order):
        return "any"
    names: list[str] = []
    if set(chosen) >= TERMINAL_MEMBER_STATES:
        chosen = [s for s in chosen if s not in TERMINAL_MEMBER_STATES]
        names = [s.value for s in chosen] + ["terminal"]
    else:
        names = [s.value for s in chosen]
    return ", ".join(names)


def _reply(reply: MemberReply, effect: MemberEffect) -> str:
    parts = [] if reply is MemberReply.NOTHING else [reply.value]
    if effect is not MemberEffect.NONE:
        parts.append(effect.value)
    return "; ".join(parts) or "-"


def member_rows() -> list[tuple[str, ...]]:
    """Rows (state, input, from, next, reply/effect), states with one behaviour merged."""
    rows: list[tuple[str, ...]] = []
    inputs = [*MEMBER_MESSAGE_INPUTS, *(i for i in MemberInput if i not in MEMBER_MESSAGE_INPUTS)]
    relations = list(Relation)
    for event in inputs:
        merged: dict[tuple[str, str, str], list[str]] = {}
        for relation in relations:
            groups: dict[tuple[str, str], list[MemberState]] = {}
            for state in MemberState:
                step = MEMBER_TRANSITIONS.get((state, event, relation))
                if step is None:
                    continue
                nxt = "(same)" if step.next is state else step.next.value
                key = (nxt, _reply(step.reply, step.effect))
                groups.setdefault(key, []).append(state)
            for (nxt, reply), states in groups.items():
                merged.setdefault((_states(states), nxt, reply), []).append(relation.value)
        for (states_text, nxt, reply), names in merged.items():
            rows.append((states_text, event.value, ", ".join(names), nxt, reply))
    return rows


def track_rows() -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for state in TrackState:
        ignored: list[str] = []
        for event in TrackInput:
            step = TRACK_TRANSITIONS.get((state, event))
            if step is None:
                continue
            if (
                event in TRACK_MESSAGE_INPUTS
                and step.next is state
                and step.action is TrackAction.NONE
            ):
                ignored.append(event.value)
                continue
            nxt = "(same)" if step.next is state else step.next.value
            rows.append((state.value, event.value, nxt, step.action.value))
        if ignored:
            label = "any other reply" if len(ignored) < len(TRACK_MESSAGE_INPUTS) else "any reply"
            rows.append((state.value, label, "(same)", "ignored (late or duplicate)"))
    return rows


def recovery_rows() -> list[tuple[str, ...]]:
    order = list(RecoveryState)
    return [
        (
            state.value,
            event.value,
            "(same)" if step.next is state else step.next.value,
            step.effect.value,
        )
        for (state, event), step in sorted(
            RECOVERY_TRANSITIONS.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1].value)
        )
    ]


def render() -> str:
    """The state figures and tables of draft §8.6, as RFCXML v3 fragments."""
    _check_recovery_figure()
    _check_member_figure()
    # Every message a participant can receive has an entry in every state.
    for state in MemberState:
        for event in MEMBER_MESSAGE_INPUTS:
            for relation in member_relations(state, event):
                if (state, event, relation) not in MEMBER_TRANSITIONS:
                    raise RenderError(f"member table lacks {state} {event} {relation}")
    parts = [
        _figure(
            "fig-recovery-machine", "Recovery Machine (Coordinator, per Recovery)", RECOVERY_FIGURE
        ),
        _table(
            "tab-recovery-machine",
            "Recovery Machine Transitions",
            ("State", "Input", "Next State", "Effect"),
            recovery_rows(),
        ),
        _figure("fig-member-machine", "Member Machine (Participant, per Execution)", MEMBER_FIGURE),
        _table(
            "tab-member-machine",
            "Member Machine Transitions",
            ("State", "Input", "From", "Next State", "Reply; Effect"),
            member_rows(),
        ),
        _table(
            "tab-tracking-machine",
            "Coordinator's Tracking of Each Member",
            ("State", "Input", "Next State", "Action"),
            track_rows(),
        ),
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    try:
        sys.stdout.write(render())
    except RenderError as exc:
        print(f"gen_state_tables: {exc}", file=sys.stderr)
        sys.exit(1)
