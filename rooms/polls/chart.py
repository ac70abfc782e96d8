"""The results of a poll as a server-rendered SVG bar chart (no script needed), with the numbers in
text beside each bar; the page puts an accessible table of the same numbers next to it
(templates/polls/_results.html). Escaped here: option texts are user input."""
from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

BAR_H = 22
GAP = 30
LABEL_H = 16
WIDTH = 320
VALUE_W = 70


def rows(kind: str, options: list[str], results: dict[str, Any]) -> list[dict[str, Any]]:
    """(option, value, text) per option, as the chart and the table show them."""
    totals = results["totals"]
    unit = {"score": "points", "dot": "dots", "ranked": "first preferences"}.get(kind, "votes")
    out = []
    for i, (o, t) in enumerate(zip(options, totals)):
        text = f"{t} {unit}"
        if kind == "score" and results.get("means") and results["means"][i] is not None:
            text += f" (average {results['means'][i]})"
        out.append({"option": o, "value": t, "text": text})
    return out


def bar_chart(kind: str, options: list[str], results: dict[str, Any], title_id: str) -> Markup:
    data = rows(kind, options, results)
    top = max([r["value"] for r in data] + [1])
    height = len(data) * (BAR_H + GAP) + 4
    parts = [f'<svg class="poll-chart" role="img" aria-labelledby="{escape(title_id)}" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">']
    y = 0
    usable = WIDTH - VALUE_W
    for r in data:
        w = round(usable * r["value"] / top) if r["value"] else 0
        parts.append(f'<text x="0" y="{y + LABEL_H - 3}" class="poll-chart-label">{escape(r["option"])}</text>')
        parts.append(f'<rect x="0" y="{y + LABEL_H}" width="{max(w, 2)}" height="{BAR_H - 6}" rx="2" '
                     f'class="poll-chart-bar"></rect>')
        parts.append(f'<text x="{max(w, 2) + 6}" y="{y + LABEL_H + BAR_H - 10}" class="poll-chart-value">'
                     f'{escape(str(r["value"]))}</text>')
        y += BAR_H + GAP
    parts.append("</svg>")
    return Markup("".join(parts))
