"""Small, dependency-free charts as inline SVG (published reports and the operators' dashboard).

Why SVG strings: a bias audit summary must be a self-contained page that a company can post
on its website, and the dashboard embeds the same chart; neither should pull in a plotting
stack. Every label is escaped, so category names from self-identification are safe to render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

_ROW = 22
_LABEL_WIDTH = 230
_VALUE_WIDTH = 90
_TOP = 34
_BOTTOM = 26


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: ``value`` ``None`` draws no bar and shows ``note`` (e.g. "too small")."""

    label: str
    value: float | None
    note: str | None = None
    highlight: bool = False


def horizontal_bar_chart_svg(
    bars: Sequence[Bar],
    *,
    title: str,
    max_value: float = 1.0,
    reference: float | None = None,
    reference_label: str | None = None,
    width: int = 640,
    value_format: str = "{:.2f}",
) -> str:
    """An accessible SVG of horizontal bars (``role="img"`` with a title and a description).

    Values above ``max_value`` are drawn to the edge. ``reference`` draws a dashed vertical
    line (the four-fifths threshold for impact ratios); highlighted bars are drawn in the
    warning colour, the others in the neutral one.
    """
    plot_width = width - _LABEL_WIDTH - _VALUE_WIDTH
    height = _TOP + _ROW * max(len(bars), 1) + _BOTTOM
    scale = plot_width / max_value if max_value > 0 else 0.0
    summary = "; ".join(f"{bar.label}: {_shown(bar, value_format)}" for bar in bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="t d" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="t">{escape(title)}</title><desc id="d">{escape(summary)}</desc>',
        f'<text x="0" y="16" font-weight="600" font-size="13">{escape(title)}</text>',
    ]
    for i, bar in enumerate(bars):
        y = _TOP + i * _ROW
        label = escape(bar.label)
        parts.append(f'<text x="{_LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">{label}</text>')
        if bar.value is None:
            note = escape(bar.note or "n/a")
            parts.append(
                f'<text x="{_LABEL_WIDTH + 4}" y="{y + 15}" fill="#666" font-style="italic">'
                f"{note}</text>"
            )
            continue
        length = max(0.0, min(bar.value, max_value)) * scale
        colour = "#c0392b" if bar.highlight else "#2c7fb8"
        parts.append(
            f'<rect x="{_LABEL_WIDTH}" y="{y + 4}" width="{length:.1f}" height="{_ROW - 8}" '
            f'fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{_LABEL_WIDTH + length + 6:.1f}" y="{y + 15}">'
            f"{escape(value_format.format(bar.value))}</text>"
        )
    axis_y = _TOP + _ROW * max(len(bars), 1)
    parts.append(
        f'<line x1="{_LABEL_WIDTH}" y1="{_TOP}" x2="{_LABEL_WIDTH}" y2="{axis_y}" stroke="#333"/>'
    )
    for tick in (0.0, max_value / 2, max_value):
        x = _LABEL_WIDTH + tick * scale
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#333">'
            f"{escape(value_format.format(tick))}</text>"
        )
    if reference is not None:
        x = _LABEL_WIDTH + min(reference, max_value) * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#c0392b" '
            'stroke-dasharray="4 3"/>'
        )
        if reference_label:
            parts.append(
                f'<text x="{x:.1f}" y="{_TOP - 8}" text-anchor="middle" fill="#c0392b">'
                f"{escape(reference_label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _shown(bar: Bar, value_format: str) -> str:
    return value_format.format(bar.value) if bar.value is not None else bar.note or "n/a"
