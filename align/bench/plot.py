"""bench.svg: one bar chart per stage, side by side: each row's median rate with its min-max as a whisker, grouped by
data size (align_x2 stands alone in the larger group, beside align in the smaller one), drawn with the report's
dependency-free SVG helpers (align/report/svg.py)."""

from __future__ import annotations

from align.report.svg import HEIGHT, WIDTH, bar_chart, standalone


def stage_chart(stage: str, section: dict) -> str:
    """Bars of one stage: groups are data sizes, series are variants (None where a variant did not run at a size)."""
    rows = list(section["rows"].values())
    sizes = sorted({r["data_rows"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    at = {(r["variant"], r["data_rows"]): r for r in rows}
    series = {v: [at[v, n]["rate"]["median"] if (v, n) in at else None for n in sizes] for v in variants}
    whiskers = {
        v: [(at[v, n]["rate"]["min"], at[v, n]["rate"]["max"]) if (v, n) in at else None for n in sizes]
        for v in variants
    }
    unit = "pairs" if stage == "dpo" else "rows"
    return bar_chart(
        f"{stage.upper()}: {section['unit']}", [f"{n} {unit}" for n in sizes], series, whiskers, section["rate"]
    )


def bench_svg(table: dict) -> str:
    """The stages' charts in one standalone SVG file."""
    charts = [
        f'<g transform="translate({WIDTH * i},0)">{stage_chart(stage, section)}</g>'
        for i, (stage, section) in enumerate(table.items())
    ]
    width = WIDTH * max(1, len(charts))
    head = f'<svg width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" font-family="sans-serif">'
    return standalone(head + "".join(charts) + "</svg>")
