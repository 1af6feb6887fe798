"""A small line chart drawn on the server as inline SVG: a trend needs no JavaScript and no
image request. Accessible: ``role="img"`` with a text label saying what it shows."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def sparkline(values: Sequence[float], *, label: str, limit: float | None = None,
              width: int = 320, height: int = 64) -> Markup:
    """``values`` left to right as a line; ``limit`` (e.g. the quota) as a dashed line across.
    The vertical scale starts at 0 and reaches the larger of the peak and the limit."""
    pad = 2.0
    top = max([*values, limit or 0.0, 1.0])
    inner_w, inner_h = width - 2 * pad, height - 2 * pad

    def y(value: float) -> float:
        return round(pad + inner_h * (1 - value / top), 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-label="{escape(label)}"><title>{escape(label)}</title>']
    if limit is not None and limit > 0:
        parts.append(f'<line class="limit" x1="{pad}" x2="{width - pad}" y1="{y(limit)}" '
                     f'y2="{y(limit)}" stroke="currentColor" stroke-dasharray="4 3" '
                     'stroke-opacity="0.6"/>')
    if len(values) == 1:
        parts.append(f'<circle cx="{width / 2}" cy="{y(values[0])}" r="2.5" '
                     'fill="currentColor"/>')
    elif values:
        step = inner_w / (len(values) - 1)
        points = " ".join(f"{round(pad + i * step, 1)},{y(v)}" for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" '
                     f'points="{points}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
