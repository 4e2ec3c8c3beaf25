"""Server-rendered SVG charts (no script, no CDN): the geometry is computed here, templates/charts.html draws it."""

from __future__ import annotations

from dataclasses import dataclass


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
    items: list[tuple[str, float, str | None]], width: float = 480, height: float = 160, fmt: str = "{:,.0f}"
) -> dict:
    """Vertical bars for (label, value, link) items, scaled to the largest value."""
    top = max((v for _, v, _ in items), default=0) or 1
    slot = width / max(len(items), 1)
    plot = height - 30
    out = []
    for i, (label, value, href) in enumerate(items):
        h = plot * (value / top)
        out.append(Bar(label, value, i * slot + slot * 0.1, 10 + plot - h, slot * 0.8, h, href, fmt.format(value)))
    return {"width": width, "height": height, "bars": out}


def line(
    points: list[tuple[str, float | None]], width: float = 480, height: float = 160, low: float = 0, high: float = 100
) -> dict:
    """A polyline over (label, value) points; missing values break nothing, they are left out."""
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    step = (width - 40) / max(len(points) - 1, 1)
    span = (high - low) or 1
    plot = height - 30

    def y(value: float) -> float:
        return 10 + plot * (1 - (value - low) / span)

    coords = [(20 + i * step, y(v)) for i, v in known]
    return {
        "width": width,
        "height": height,
        "path": " ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords),
        "dots": [
            {"x": x, "y": yy, "label": points[i][0], "value": v} for (x, yy), (i, v) in zip(coords, known, strict=True)
        ],
        "first": points[0][0] if points else "",
        "last": points[-1][0] if points else "",
        "low": low,
        "high": high,
    }
