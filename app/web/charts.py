"""Server-rendered SVG charts (no script, no CDN): the geometry is computed here, templates/charts.html draws it.

A chart's viewBox is scaled to the width of its box (app.css caps how far), so text drawn at 11 units reads at
about 9-15 px from a phone to a 1280 px screen: a chart is sized for a column of the page, never the full width.
Every label is placed to stay inside the viewBox (the first date of a line chart starts at the plot's left edge
rather than being centred on it).
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 360  # viewBox units; a column of the dashboard is 300-590 px wide
HEIGHT = 160
PLOT_LEFT = 30  # room for the value axis of a line chart
PLOT_RIGHT = 10
ROW = 24  # a horizontal bar's row
LABEL_WIDTH = 150  # the labels left of horizontal bars
VALUE_ROOM = 40  # the value printed right of the longest horizontal bar


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    href: str | None = None
    shown: str = ""


def bars(
    items: list[tuple[str, float, str | None]], width: float = WIDTH, height: float = HEIGHT, fmt: str = "{:,.0f}"
) -> dict:
    """Vertical bars for (label, value, link) items, scaled to the largest value."""
    top = max((v for _, v, _ in items), default=0) or 1
    slot = width / max(len(items), 1)
    plot = height - 36  # 16 above the tallest bar for its value, 20 below the bars for the labels
    out = []
    for i, (label, value, href) in enumerate(items):
        h = plot * (value / top)
        out.append(Bar(label, value, i * slot + slot * 0.1, 16 + plot - h, slot * 0.8, h, href, fmt.format(value)))
    return {"width": width, "height": height, "bars": out}


def hbars(
    items: list[tuple[str, float, str | None]],
    width: float = WIDTH,
    fmt: str = "{:,.0f}",
    label_width: float = LABEL_WIDTH,
) -> dict:
    """Horizontal bars for (label, value, link) items, one row each with its label on the left: for long labels
    (funnel stages, program names) that vertical bars would have to shrink or overlap."""
    top = max((v for _, v, _ in items), default=0) or 1
    room = width - label_width - VALUE_ROOM
    out = [
        Bar(label, value, label_width, 4 + i * ROW, room * (value / top), ROW - 8, href, fmt.format(value))
        for i, (label, value, href) in enumerate(items)
    ]
    return {"width": width, "height": 8 + len(items) * ROW, "bars": out, "label_x": label_width - 6}


def line(
    points: list[tuple[str, float | None]],
    width: float = WIDTH,
    height: float = HEIGHT,
    low: float = 0,
    high: float = 100,
) -> dict:
    """A polyline over (label, value) points; missing values break nothing, they are left out."""
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    step = (width - PLOT_LEFT - PLOT_RIGHT) / max(len(points) - 1, 1)
    span = (high - low) or 1
    plot = height - 30

    def y(value: float) -> float:
        return 10 + plot * (1 - (value - low) / span)

    coords = [(PLOT_LEFT + i * step, y(v)) for i, v in known]
    return {
        "width": width,
        "height": height,
        "left": PLOT_LEFT,
        "right": width - PLOT_RIGHT,
        "path": " ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords),
        "dots": [
            {"x": x, "y": yy, "label": points[i][0], "value": v} for (x, yy), (i, v) in zip(coords, known, strict=True)
        ],
        "first": points[0][0] if points else "",
        "last": points[-1][0] if len(points) > 1 else "",
        "low": low,
        "high": high,
    }
