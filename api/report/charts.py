"""The report's charts as inline SVG (pure): no script, no external file, readable on paper.

Each chart is an ``<svg role="img">`` with a ``<title>`` naming what it shows; the numbers
are also in a table beside it in the report, for screen readers and for copying. No
``xmlns``: SVG inside HTML needs none, and the report must hold no URL at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

INK = "#1b2430"
MUTED = "#4a5868"
GRID = "#c9d2dc"
GOOD, FAIR, POOR = "#1f6f3a", "#b06a00", "#8a1c12"


@dataclass(frozen=True, kw_only=True)
class Bar:
    """One bar: its label and value (None: no data, drawn as a gap)."""

    label: str
    value: float | None


def score_colour(score: float) -> str:
    """Green from 80, orange from 60, red below (the scorecard board's steps)."""
    return GOOD if score >= 80 else FAIR if score >= 60 else POOR


def _svg(width: int, height: int, title: str, body: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )


def column_chart(title: str, bars: Sequence[Bar], *, maximum: float = 100.0) -> str:
    """Vertical bars on a 0..``maximum`` axis (the daily score), gridlines every quarter."""
    width, height, left, bottom, top = max(320, 40 + 18 * len(bars)), 200, 34, 24, 8
    plot = height - bottom - top
    step = (width - left - 6) / max(1, len(bars))
    parts = []
    for k in range(5):
        value = maximum * k / 4
        y = top + plot - plot * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="{MUTED}">{value:g}</text>'
        )
    for i, bar in enumerate(bars):
        x = left + i * step + step * 0.15
        if bar.value is not None:
            h = plot * max(0.0, min(bar.value, maximum)) / maximum
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot - h:.1f}" width="{step * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{score_colour(bar.value)}"><title>'
                f"{escape(bar.label)}: {bar.value:.1f}</title></rect>"
            )
        if len(bars) <= 16 or i % 2 == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - 8}" font-size="10" '
                f'text-anchor="middle" fill="{INK}">{escape(bar.label)}</text>'
            )
    return _svg(width, height, title, "".join(parts))


def bar_chart(title: str, bars: Sequence[Bar], *, maximum: float = 100.0, unit: str = "") -> str:
    """Horizontal bars with their value written after them (components, districts)."""
    row, label_w, width = 22, 230, 560
    height = 10 + row * max(1, len(bars))
    span = width - label_w - 60
    parts = []
    for i, bar in enumerate(bars):
        y = 6 + i * row
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="12" text-anchor="end" '
            f'fill="{INK}">{escape(bar.label)}</text>'
        )
        if bar.value is None:
            continue
        w = span * max(0.0, min(bar.value, maximum)) / maximum
        colour = score_colour(100 * bar.value / maximum)
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 8}" fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="12" fill="{INK}">'
            f"{bar.value:.0f}{escape(unit)}</text>"
        )
    return _svg(width, height, title, "".join(parts))


@dataclass(frozen=True, kw_only=True)
class Interval:
    """An estimate with its interval (an experiment's effect)."""

    label: str
    estimate: float
    low: float
    high: float


def interval_chart(title: str, rows: Sequence[Interval], *, unit: str) -> str:
    """Each estimate as a dot on its interval, against a line at zero (a forest plot)."""
    row, label_w, width = 28, 230, 560
    height = 30 + row * max(1, len(rows))
    ends = [v for r in rows for v in (r.low, r.high)] + [0.0]
    lo, hi = min(ends), max(ends)
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    span = width - label_w - 20

    def x(value: float) -> float:
        return label_w + span * (value - lo) / (hi - lo)

    parts = [
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="4" y2="{height - 18}" stroke="{MUTED}" '
        'stroke-dasharray="4 3"/>',
        f'<text x="{x(0):.1f}" y="{height - 4}" font-size="10" text-anchor="middle" '
        f'fill="{MUTED}">0 {escape(unit)}</text>',
    ]
    for i, r in enumerate(rows):
        y = 8 + i * row + row / 2
        colour = MUTED if r.low <= 0 <= r.high else INK
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="{INK}">{escape(r.label)}</text>'
            f'<line x1="{x(r.low):.1f}" x2="{x(r.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<circle cx="{x(r.estimate):.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>'
            f"{escape(r.label)}: {r.estimate:+.2f} ({r.low:+.2f} to {r.high:+.2f}) "
            f"{escape(unit)}</title></circle>"
        )
    return _svg(width, height, title, "".join(parts))
