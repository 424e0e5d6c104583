"""Inline SVG charts for the HTML reports: our own few lines, no library, no network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # a rate in [0, 1], or a count/amount with ``scale``
    ci: Sequence[float] | None = None
    note: str = ""  # e.g. "(118/120)"


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.1f}%"
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.4g}"


def bar_chart(
    title: str, bars: Sequence[Bar], *, percent: bool = True, width: int = 560, label_w: int = 190
) -> str:
    """Horizontal bars (rates with their 95 % interval as a whisker, or amounts)."""
    row = 22
    height = 30 + row * max(len(bars), 1)
    plot = width - label_w - 110
    top = max([b.value or 0 for b in bars] + [1e-9]) if not percent else 1.0
    out = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="14" class="ct">{escape(title)}</text>',
    ]
    for i, b in enumerate(bars):
        y = 26 + i * row
        out.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" class="cl">'
            f"<title>{escape(b.label)}</title>{escape(_short(b.label, 28))}</text>"
        )
        out.append(f'<rect x="{label_w}" y="{y + 2}" width="{plot}" height="14" class="bg"/>')
        if b.value is not None:
            w = plot * b.value / top
            out.append(
                f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="14" class="bar">'
                f"<title>{escape(b.label)}: {_fmt(b.value, percent)} {escape(b.note)}"
                "</title></rect>"
            )
        if b.ci:
            x0, x1 = label_w + plot * b.ci[0] / top, label_w + plot * b.ci[1] / top
            out.append(
                f'<path d="M{x0:.1f},{y + 9}H{x1:.1f}M{x0:.1f},{y + 4}V{y + 14}'
                f'M{x1:.1f},{y + 4}V{y + 14}" class="ci"/>'
            )
        shown = "n/a" if b.value is None else _fmt(b.value, percent)
        out.append(
            f'<text x="{label_w + plot + 6}" y="{y + 13}" class="cv">'
            f"{shown} {escape(b.note)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def line_chart(title: str, points: Sequence[tuple[float, float]], *, width: int = 560) -> str:
    """A line over (x, rate) points, rates in [0, 1] (the learning curve)."""
    height, left, bottom = 200, 40, 24
    out = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="14" class="ct">{escape(title)}</text>',
    ]
    if points:
        xs = [p[0] for p in points]
        lo, hi = min(xs), max(xs)
        span = (hi - lo) or 1

        def px(x: float) -> float:
            return left + (width - left - 10) * (x - lo) / span

        def py(v: float) -> float:
            return 24 + (height - 24 - bottom) * (1 - v)

        for v in (0, 0.5, 1):
            out.append(
                f'<path d="M{left},{py(v):.1f}H{width - 10}" class="grid"/>'
                f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end" class="cl">'
                f"{v * 100:.0f}%</text>"
            )
        d = "M" + "L".join(f"{px(x):.1f},{py(v):.1f}" for x, v in points)
        out.append(f'<path d="{d}" class="line"/>')
        out.append(
            f'<text x="{left}" y="{height - 6}" class="cl">{lo:g}</text>'
            f'<text x="{width - 10}" y="{height - 6}" text-anchor="end" class="cl">{hi:g}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
