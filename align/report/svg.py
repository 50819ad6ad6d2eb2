"""Tiny SVG chart builders (grouped bars with whiskers, lines, heatmap) as pure functions returning strings.

The strings have no xmlns so they can sit inline in HTML without any URL; `standalone` adds it for .svg files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#e45756", "#72b7b2", "#888888")
# Fixed colours per variant (internal and display names) so SFT is the same blue in every chart.
SERIES_COLOURS = {"base": "#9d9d9d", "sft": "#4c78a8", "sft_dpo": "#f58518", "SFT": "#4c78a8", "SFT+DPO": "#f58518"}
WIDTH, HEIGHT = 520, 320
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 34, 64  # plot margins in px


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _frame(title: str, body: list[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    head = (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'font-family="sans-serif"><title>{escape(title)}</title>'
    )
    return head + _text(width / 2, 18, title, size=13, extra=' font-weight="bold"') + "".join(body) + "</svg>"


def _ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) inside [lo, hi]; whole steps if integer."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / (count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    step = max(1, math.ceil(step)) if integer else step
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _axes(y_lo: float, y_hi: float, y_label: str, x_label: str = "") -> list[str]:
    """Y axis with ticks and grid lines spanning [y_lo, y_hi]; returns SVG parts."""
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>']
    parts.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>')
    for tick in _ticks(y_lo, y_hi):
        y = _scale(tick, y_lo, y_hi, bottom, TOP)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(_text(LEFT - 6, y + 4, _fmt(tick), anchor="end", size=10))
    parts.append(_text(14, (TOP + bottom) / 2, y_label, extra=f' transform="rotate(-90 14 {(TOP + bottom) / 2:.1f})"'))
    if x_label:
        parts.append(_text((LEFT + right) / 2, HEIGHT - 8, x_label))
    return parts


def _scale(value: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    span = hi - lo if hi != lo else 1.0
    return out_lo + (value - lo) / span * (out_hi - out_lo)


def _legend(names: Sequence[str], colours: Sequence[str], y: float) -> list[str]:
    parts, x = [], LEFT
    for name, colour in zip(names, colours, strict=True):
        parts.append(f'<rect class="legend" x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, y, name, anchor="start", size=10))
        x += 24 + 7 * len(name)
    return parts


def _colour(name: str, index: int) -> str:
    return SERIES_COLOURS.get(name, PALETTE[index % len(PALETTE)])


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: dict[str, Sequence[float | None]],
    whiskers: dict[str, Sequence[tuple[float, float] | None]] | None = None,
    y_label: str = "value",
) -> str:
    """Grouped bars: one group per entry of `groups`, one bar per series; None values draw no bar.

    whiskers[name][i] = (lo, hi) draws an error bar on that bar. The y axis starts at 0 (or the lowest value).
    """
    whiskers = whiskers or {}
    values = [v for vs in series.values() for v in vs if v is not None and math.isfinite(v)]
    values += [x for ws in whiskers.values() for w in ws if w is not None for x in w if math.isfinite(x)]
    y_lo, y_hi = min([0.0, *values]), max([1e-9, *values])
    y_hi = 1.0 if 0 <= y_lo and y_hi <= 1 else y_hi * 1.05
    parts = _axes(y_lo, y_hi, y_label)
    bottom, plot_w = HEIGHT - BOTTOM, WIDTH - LEFT - RIGHT
    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))
    zero_y = _scale(0.0, y_lo, y_hi, bottom, TOP)
    for g, group in enumerate(groups):
        parts.append(_text(LEFT + group_w * (g + 0.5), bottom + 14, group, size=10))
        for s, (name, vals) in enumerate(series.items()):
            value = vals[g]
            if value is None or not math.isfinite(value):
                continue
            x = LEFT + group_w * g + group_w * 0.1 + bar_w * s
            y = _scale(value, y_lo, y_hi, bottom, TOP)
            top, height = min(y, zero_y), abs(zero_y - y)
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" width="{bar_w - 2:.1f}" height="{height:.1f}" '
                f'fill="{_colour(name, s)}"><title>{escape(f"{name} {group}: {value:.4g}")}</title></rect>'
            )
            whisker = (whiskers.get(name) or [None] * len(groups))[g]
            label_y = top
            if whisker is not None:
                parts.append(_whisker(x + (bar_w - 2) / 2, whisker, y_lo, y_hi))
                label_y = min(top, _scale(max(whisker), y_lo, y_hi, bottom, TOP))  # keep the label above the cap
            parts.append(_text(x + (bar_w - 2) / 2, label_y - 3, _fmt(value), size=9))
    parts += _legend(list(series), [_colour(n, i) for i, n in enumerate(series)], HEIGHT - 22)
    return _frame(title, parts)


def _whisker(cx: float, interval: tuple[float, float], y_lo: float, y_hi: float) -> str:
    bottom = HEIGHT - BOTTOM
    y1, y2 = (_scale(v, y_lo, y_hi, bottom, TOP) for v in interval)
    return (
        f'<g class="whisker" stroke="#222"><line x1="{cx:.1f}" y1="{y1:.1f}" x2="{cx:.1f}" y2="{y2:.1f}"/>'
        f'<line x1="{cx - 4:.1f}" y1="{y1:.1f}" x2="{cx + 4:.1f}" y2="{y1:.1f}"/>'
        f'<line x1="{cx - 4:.1f}" y1="{y2:.1f}" x2="{cx + 4:.1f}" y2="{y2:.1f}"/></g>'
    )


def line_chart(
    title: str, series: dict[str, Sequence[tuple[float, float]]], x_label: str = "step", y_label: str = "value"
) -> str:
    """One polyline per series of (x, y) points; non-finite points are dropped."""
    clean = {
        n: [(float(x), float(y)) for x, y in pts if math.isfinite(x) and math.isfinite(y)] for n, pts in series.items()
    }
    xs = [x for pts in clean.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for pts in clean.values() for _, y in pts] or [0.0, 1.0]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    parts = _axes(y_lo, y_hi, y_label, x_label)
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    for tick in _ticks(x_lo, x_hi, integer=all(x.is_integer() for x in xs)):
        parts.append(_text(_scale(tick, x_lo, x_hi, LEFT, right), bottom + 14, _fmt(tick), size=10))
    for i, (name, pts) in enumerate(clean.items()):
        coords = " ".join(
            f"{_scale(x, x_lo, x_hi, LEFT, right):.1f},{_scale(y, y_lo, y_hi, bottom, TOP):.1f}" for x, y in pts
        )
        parts.append(
            f'<polyline class="line" fill="none" stroke="{_colour(name, i)}" stroke-width="2" points="{coords}"/>'
        )
    parts += _legend(list(clean), [_colour(n, i) for i, n in enumerate(clean)], HEIGHT - 30)
    return _frame(title, parts)


def heatmap(
    title: str,
    matrix: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    row_title: str = "gold",
    col_title: str = "predicted",
) -> str:
    """Cells shaded by value (darker = larger, scaled to the max) with the count written in each cell."""
    cell, left, top = 44, 70, 56
    peak = max([v for row in matrix for v in row] + [1e-9])
    width, height = left + cell * len(col_labels) + 16, top + cell * len(row_labels) + 16
    parts = [_text(left + cell * len(col_labels) / 2, 36, col_title, size=11)]
    parts.append(
        _text(
            14,
            top + cell * len(row_labels) / 2,
            row_title,
            extra=f' transform="rotate(-90 14 {top + cell * len(row_labels) / 2:.1f})"',
        )
    )
    for j, label in enumerate(col_labels):
        parts.append(_text(left + cell * (j + 0.5), top - 6, label, size=10))
    for i, (label, row) in enumerate(zip(row_labels, matrix, strict=True)):
        parts.append(_text(left - 6, top + cell * (i + 0.5) + 4, label, anchor="end", size=10))
        for j, value in enumerate(row):
            share = value / peak
            fill = f"rgb({int(255 - 179 * share)},{int(255 - 135 * share)},{int(255 - 87 * share)})"
            ink = "#fff" if share > 0.6 else "#222"
            x, y = left + cell * j, top + cell * i
            parts.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#fff"/>'
            )
            parts.append(_text(x + cell / 2, y + cell / 2 + 4, _fmt(value), size=11, extra=f' fill="{ink}"'))
    return _frame(title, parts, width, height)


def standalone(svg: str) -> str:
    """The same chart as a standalone .svg file (adds the XML declaration and the SVG namespace)."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + svg.replace(
        "<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1
    )
