"""Server-rendered SVG charts: a job's run durations and sizes over time.

Plain SVG from Python values (numbers only; every text escaped), with a title and a description
for screen readers, so the chart needs no script and no third-party library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 160
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 96, 8, 10, 24


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    failed: bool = False


def line_chart(points: Sequence[Point], *, title: str, unit: Callable[[float], str],
               colour: str = "#1d4f7a") -> Markup:
    """A line of ``points`` (oldest first) with failed runs marked; an empty chart says so."""
    label = escape(title)
    if not points:
        return Markup(f'<p class="chart-empty">{label}: no runs with this figure yet.</p>')
    first, last = points[0].at, points[-1].at
    span = (last - first).total_seconds() or 1.0
    top = max(p.value for p in points) or 1.0
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(p: Point) -> float:
        if len(points) == 1:
            return PAD_LEFT + inner_w / 2
        return PAD_LEFT + (p.at - first).total_seconds() / span * inner_w

    def y(p: Point) -> float:
        return PAD_TOP + inner_h - p.value / top * inner_h

    line = " ".join(f"{x(p):.1f},{y(p):.1f}" for p in points)
    marks = "".join(
        f'<circle cx="{x(p):.1f}" cy="{y(p):.1f}" r="{4 if p.failed else 2.5}" '
        f'class="{"mark-failed" if p.failed else "mark"}"/>' for p in points)
    low = min(p.value for p in points)
    desc = escape(f"{len(points)} runs from {first:%Y-%m-%d} to {last:%Y-%m-%d}; "
                  f"lowest {unit(low)}, highest {unit(top)}; "
                  f"{sum(p.failed for p in points)} failed.")
    axis = (f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + inner_h}" x2="{WIDTH - PAD_RIGHT}" '
            f'y2="{PAD_TOP + inner_h}" class="axis"/>'
            f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + inner_h}" '
            f'class="axis"/>'
            f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 10}" text-anchor="end">'
            f'{escape(unit(top))}</text>'
            f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + inner_h}" text-anchor="end">'
            f'{escape(unit(0))}</text>'
            f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}">{first:%Y-%m-%d}</text>'
            f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
            f'{last:%Y-%m-%d}</text>')
    return Markup(
        f'<figure class="chart"><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{_id(title)}-t {_id(title)}-d" preserveAspectRatio="none">'
        f'<title id="{_id(title)}-t">{label}</title><desc id="{_id(title)}-d">{desc}</desc>'
        f'{axis}<polyline points="{line}" fill="none" stroke="{escape(colour)}" '
        f'stroke-width="2"/>{marks}</svg>'
        f'<figcaption>{label}: {desc}</figcaption></figure>')


def _id(title: str) -> str:
    return "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower())
