"""The server-drawn trend: scaled to the larger of peak and limit, labelled, escaped."""

from __future__ import annotations

import re

from services.portal.sparklines import sparkline


def test_points_are_scaled_to_the_limit_and_the_label_is_escaped() -> None:
    svg = sparkline([0, 50, 100], label="<b>usage</b>", limit=200, width=104, height=54)
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    assert points.group(1) == "2.0,52.0 52.0,39.5 102.0,27.0"
    assert 'y1="2.0"' in svg  # the limit is the top
    assert "&lt;b&gt;usage&lt;/b&gt;" in svg and "<b>" not in svg
    assert 'role="img"' in svg


def test_one_point_is_a_dot_and_none_is_an_empty_chart() -> None:
    assert "<circle" in sparkline([5], label="x")
    empty = sparkline([], label="no data")
    assert "<polyline" not in empty and "<circle" not in empty
