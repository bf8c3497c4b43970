"""Line plots as inline SVG: a report page draws its curves without scripts or plotting libraries.
Each series is one <polyline>; the smallest x and y of all series map to the plot area's left and
bottom edges, the largest to its right and top edges."""

from __future__ import annotations

import math
from html import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 340, 210
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 26, 38  # margins around the plot area


def line_plot(title: str, series: dict[str, list[tuple[float, float]]], x_label: str = "step") -> str:
    """An <svg> with one line per `name: [(x, y), ...]` (finite values only), axes labelled at their
    ends and middle, and a legend when there is more than one line."""
    series = {name: [(x, y) for x, y in points if math.isfinite(y)] for name, points in series.items()}
    series = {name: points for name, points in series.items() if points}
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    if not xs:
        return ""
    x0, x1 = _span(min(xs), max(xs))
    y0, y1 = _span(min(ys), max(ys))
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def at(x: float, y: float) -> str:
        return f"{LEFT + (x - x0) / (x1 - x0) * (right - LEFT):.1f},{bottom - (y - y0) / (y1 - y0) * (bottom - TOP):.1f}"

    legend = math.ceil(len(series) / 3) if len(series) > 1 else 0  # rows of three names under the plot
    height = HEIGHT + 12 * legend
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="10">',
             f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" fill="none" stroke="#c8ced8"/>']
    for frac in (0, 0.5, 1):
        y, value = bottom - frac * (bottom - TOP), y0 + frac * (y1 - y0)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eef0f4"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{value:.4g}</text>')
        x, value = LEFT + frac * (right - LEFT), x0 + frac * (x1 - x0)
        parts.append(f'<text x="{x:.1f}" y="{bottom + 12}" text-anchor="middle">{value:.4g}</text>')
    parts.append(f'<text x="{(LEFT + right) / 2:.1f}" y="{bottom + 25}" text-anchor="middle" fill="#5b6472">'
                 f'{escape(x_label)}</text>')
    for i, (name, points) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.3" '
                     f'points="{" ".join(at(x, y) for x, y in points)}"><title>{escape(name)}</title></polyline>')
        if legend:
            lx, ly = 8 + (i % 3) * 110, HEIGHT + 2 + (i // 3) * 12
            parts.append(f'<line x1="{lx}" y1="{ly - 3}" x2="{lx + 11}" y2="{ly - 3}" stroke="{color}" stroke-width="2"/>'
                         f'<text x="{lx + 14}" y="{ly}" fill="{color}">{escape(name)}</text>')
    return "\n".join(parts) + "</svg>"


def _span(low: float, high: float) -> tuple[float, float]:
    """The axis range of values from `low` to `high`: a flat series gets a unit-wide range around it."""
    return (low, high) if high > low else (low - 0.5, high + 0.5)
