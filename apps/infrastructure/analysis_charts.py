"""A small SVG chart per analysis metric (one dot per measurement, coloured by its
phase), computed here and drawn by the template, like the monitoring panels."""

from __future__ import annotations

WIDTH, HEIGHT, PAD = 260, 64, 8


def metric_chart(name: str, points: list[dict]) -> dict:
    values = [p["value"] for p in points if p["value"] is not None]
    low, high = min([0.0, *values]), max([1.0, *values])
    span = (high - low) or 1.0
    last = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return round(PAD + (WIDTH - 2 * PAD) * (i / last if len(points) > 1 else 0.5), 1)

    def y(value: float | None) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * (((value if value is not None else low) - low) / span), 1)

    dots = [{"x": x(i), "y": y(p["value"]), "phase": p["phase"], "value": p["value"]} for i, p in enumerate(points)]
    line = " ".join(f"{'M' if i == 0 else 'L'}{d['x']},{d['y']}" for i, d in enumerate(d for d in dots if d["value"] is not None))
    phases = sorted({p["phase"] for p in points})
    summary = f"{name}: {len(points)} measurement(s), {', '.join(phases) or 'none'}; from {low:g} to {high:g}"
    return {"name": name, "width": WIDTH, "height": HEIGHT, "dots": dots, "line": line, "low": low, "high": high, "summary": summary}


def analysis_charts(analysis: list[dict]) -> list[dict]:
    """Each analysis step of a deployment: its verdict and one chart per metric."""
    return [
        {"step": entry["step"] + 1, "phase": entry["phase"], "charts": [metric_chart(n, pts) for n, pts in entry["series"].items()]}
        for entry in analysis
    ]
