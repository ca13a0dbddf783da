"""A self-contained SVG of the dependency graph and the rollback set.

Executions are boxes laid out in columns by dependency depth (producers left
of their consumers), coloured by what the recovery did to them; an edge is
solid red when the output it carried was undone by restoring its producer
(it brought the consumer into the rollback set, draft §7) and dashed grey
when it was made before the producer's restore point. A legend explains the
colours. No scripts, fonts or external resources: any browser shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["CATEGORIES", "Node", "render_svg"]

# category -> (fill, stroke, legend text)
CATEGORIES: Mapping[str, tuple[str, str, str]] = {
    "failed": ("#fde2e1", "#c0392b", "failed (origin of the recovery)"),
    "restored": ("#dbeafe", "#1d4ed8", "restored to a checkpoint"),
    "compensated": ("#fef3c7", "#b45309", "compensated"),
    "irreversible": ("#ede9fe", "#6d28d9", "irreversible: residual effects disclosed"),
    "not-needed": ("#dcfce7", "#15803d", "contained, nothing to undo, resumed"),
    "unknown": ("#f3f4f6", "#111827", "unknown outcome (timeout)"),
    "refused": ("#fee2e2", "#7f1d1d", "refused"),
    "untouched": ("#ffffff", "#9ca3af", "not in the rollback set: untouched, continues"),
}

_W, _H = 230, 74  # box size
_GX, _GY = 130, 34  # gaps between columns and rows
_MARGIN = 30
_TOP = 70


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    key: tuple[str, str]  # (agent name, execution id)
    agent: str
    label: str
    category: str
    note: str
    reversibility: str


def render_svg(
    *,
    title: str,
    subtitle: str = "",
    nodes: Sequence[Node],
    edges: Sequence[tuple[tuple[str, str], tuple[str, str], int, int]],
    targets: Mapping[tuple[str, str], int],
) -> str:
    """The picture; ``edges`` are (producer, consumer, produced_after, consumed_after)."""
    keys = [n.key for n in nodes]
    depth = _depths(keys, [(p, c) for p, c, _, _ in edges])
    columns: dict[int, list[Node]] = {}
    for node in nodes:
        columns.setdefault(depth[node.key], []).append(node)
    position: dict[tuple[str, str], tuple[float, float]] = {}
    rows = max((len(c) for c in columns.values()), default=1)
    for col, members in sorted(columns.items()):
        offset = (rows - len(members)) * (_H + _GY) / 2
        for row, node in enumerate(members):
            position[node.key] = (
                float(_MARGIN + col * (_W + _GX)),
                _TOP + offset + row * (_H + _GY),
            )
    width = _MARGIN * 2 + (max(columns, default=0) + 1) * (_W + _GX) - _GX
    legend_top = _TOP + rows * (_H + _GY) + 10
    height = legend_top + 30 + 22 * ((len(CATEGORIES) + 1) // 2) + 50
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
        "<defs>",
        _marker("tainted", "#c0392b"),
        _marker("clean", "#9ca3af"),
        "</defs>",
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="{_MARGIN}" y="32" font-size="17" font-weight="bold">{escape(title)}</text>',
        f'<text x="{_MARGIN}" y="52" font-size="12" fill="#374151">'
        f"{escape(subtitle or 'Dependency graph and rollback set.')} Arrows go from producer "
        "to consumer: 'cp a → cp b' = made after the producer's checkpoint a, used after the "
        "consumer's checkpoint b.</text>",
    ]
    labels: list[str] = []
    fan_in: dict[tuple[str, str], int] = {}
    for _, consumer, _, _ in edges:
        fan_in[consumer] = fan_in.get(consumer, 0) + 1
    for producer, consumer, produced_after, consumed_after in edges:
        if producer not in position or consumer not in position:
            continue
        target = targets.get(producer)
        tainted = target is not None and produced_after >= target
        x1, y1 = position[producer]
        x2, y2 = position[consumer]
        sx, sy = x1 + _W, y1 + _H / 2
        ex, ey = x2, y2 + _H / 2
        mid = (sx + ex) / 2
        colour = "#c0392b" if tainted else "#9ca3af"
        dash = "" if tainted else ' stroke-dasharray="6 4"'
        out.append(
            f'<path d="M{sx:.1f},{sy:.1f} C{mid:.1f},{sy:.1f} {mid:.1f},{ey:.1f} '
            f'{ex - 6:.1f},{ey:.1f}" fill="none" stroke="{colour}" stroke-width="1.8"{dash} '
            f'marker-end="url(#{"tainted" if tainted else "clean"})"/>'
        )
        # The label sits on the curve's midpoint, over a white pill, after all
        # curves are drawn, so no curve crosses a label.
        # Labels go where neighbouring edges are apart: near the consumer when
        # edges fan out of a producer, near the producer when they fan in.
        t = 0.3 if fan_in[consumer] > 1 else 0.7
        lx = (1 - t) ** 3 * sx + 3 * (1 - t) * t * mid + t**3 * (ex - 6)
        ly = ((1 - t) ** 3 + 3 * (1 - t) ** 2 * t) * sy + (3 * (1 - t) * t**2 + t**3) * ey
        labels.append(
            f'<rect x="{lx - 34:.1f}" y="{ly - 8:.1f}" width="68" height="15" rx="7" '
            f'fill="#ffffff" stroke="{colour}" stroke-width="0.8"/>'
            f'<text x="{lx:.1f}" y="{ly + 3.5:.1f}" font-size="10" fill="{colour}" '
            f'text-anchor="middle">cp {produced_after} → cp {consumed_after}</text>'
        )
    out.extend(labels)
    for node in nodes:
        x, y = position[node.key]
        fill, stroke, _ = CATEGORIES.get(node.category, CATEGORIES["unknown"])
        width_line = 3.0 if node.category == "failed" else 1.6
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_W}" height="{_H}" rx="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width_line}"/>'
        )
        out.append(
            f'<text x="{x + 10:.1f}" y="{y + 20:.1f}" font-size="13" font-weight="bold" '
            f'fill="#111827">{escape(node.label)}</text>'
        )
        out.append(
            f'<text x="{x + 10:.1f}" y="{y + 38:.1f}" font-size="11" fill="#374151">'
            f"{escape(node.agent)} · {escape(node.reversibility)}</text>"
        )
        out.append(
            f'<text x="{x + 10:.1f}" y="{y + 58:.1f}" font-size="11" fill="{stroke}">'
            f"{escape(_fit(node.note, 38))}</text>"
        )
    out.append(
        f'<text x="{_MARGIN}" y="{legend_top + 10:.0f}" font-size="13" font-weight="bold">'
        "Legend</text>"
    )
    present = [c for c in CATEGORIES if any(n.category == c for n in nodes)]
    for i, category in enumerate(present):
        fill, stroke, text = CATEGORIES[category]
        lx = _MARGIN + (i % 2) * 380
        ly = legend_top + 24 + (i // 2) * 22
        out.append(
            f'<rect x="{lx}" y="{ly:.0f}" width="26" height="14" rx="3" fill="{fill}" '
            f'stroke="{stroke}"/>'
        )
        out.append(f'<text x="{lx + 34}" y="{ly + 11:.0f}" font-size="12">{escape(text)}</text>')
    ly = legend_top + 24 + ((len(present) + 1) // 2) * 22 + 8
    out += [
        f'<line x1="{_MARGIN}" y1="{ly:.0f}" x2="{_MARGIN + 26}" y2="{ly:.0f}" '
        'stroke="#c0392b" stroke-width="2"/>',
        f'<text x="{_MARGIN + 34}" y="{ly + 4:.0f}" font-size="12">output undone by '
        "restoring its producer: the consumer is in the rollback set</text>",
        f'<line x1="{_MARGIN}" y1="{ly + 22:.0f}" x2="{_MARGIN + 26}" y2="{ly + 22:.0f}" '
        'stroke="#9ca3af" stroke-width="2" stroke-dasharray="6 4"/>',
        f'<text x="{_MARGIN + 34}" y="{ly + 26:.0f}" font-size="12">output made before '
        "the producer's restore point: not tainted</text>",
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def _marker(name: str, colour: str) -> str:
    return (
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{colour}"/></marker>'
    )


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _depths(
    keys: Sequence[tuple[str, str]], edges: Sequence[tuple[tuple[str, str], tuple[str, str]]]
) -> dict[tuple[str, str], int]:
    """Longest path from a source, for the column of each node (cycles are cut)."""
    depth = dict.fromkeys(keys, 0)
    for _ in range(len(keys)):
        changed = False
        for producer, consumer in edges:
            if (
                producer in depth
                and consumer in depth
                and depth[consumer] < depth[producer] + 1 < len(keys)
            ):
                depth[consumer] = depth[producer] + 1
                changed = True
        if not changed:
            break
    return depth
