"""`pyvmfuzz plot OUT`: a campaign's numbers over time — exec/s, coverage, corpus and findings,
like afl-plot — from the rows the campaign appends to OUT/plot_data.csv, as one self-contained
HTML page of SVG charts (no plotting library)."""

from __future__ import annotations

import csv
import html
import os

SERIES = (("exec/s", "exec_s"), ("coverage (cov, ft)", "cov"), ("corpus inputs", "corpus"), ("findings (new)", "findings"))


def read(out: str) -> list[list[dict]]:
    """The campaigns of OUT (a resumed one appends its own), each a list of rows (floats)."""
    path = os.path.join(out, "plot_data.csv")
    runs: dict[str, list[dict]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                r = {k: float(v) for k, v in row.items()}
            except (TypeError, ValueError):
                continue  # a row cut short by a killed campaign
            runs.setdefault(row["start"], []).append(r)
    out_runs = []
    for rows in runs.values():
        prev = None
        for r in rows:  # exec/s between rows, not since the start
            dt = r["seconds"] - prev["seconds"] if prev else r["seconds"]
            r["exec_s"] = (r["execs"] - (prev["execs"] if prev else 0)) / dt if dt > 0 else 0.0
            prev = r
        out_runs.append(rows)
    return out_runs


def _chart(title: str, runs: list[list[dict]], key: str, second: str | None = None) -> str:
    w, h, pad = 520, 160, 40
    xs = [r["seconds"] for rows in runs for r in rows] or [1.0]
    ys = [r[k] for rows in runs for r in rows for k in ([key] + ([second] if second else []))] or [1.0]
    xmax, ymax = max(max(xs), 1e-9), max(max(ys), 1e-9)

    def pt(r, k):
        return f"{pad + (w - 2 * pad) * r['seconds'] / xmax:.1f},{h - pad + -(h - 2 * pad) * r[k] / ymax:.1f}"

    lines = []
    colors = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1"]
    for i, rows in enumerate(runs):
        for j, k in enumerate([key] + ([second] if second else [])):
            lines.append(f'<polyline fill="none" stroke="{colors[(i + 2 * j) % 4]}" stroke-width="1.5" '
                         f'points="{" ".join(pt(r, k) for r in rows)}"/>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg width="{w}" height="{h}" '
            f'font-family="ui-monospace,monospace" font-size="10">'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#999"/>'
            f'<text x="{pad}" y="{h - pad + 14}">0</text><text x="{w - pad}" y="{h - pad + 14}" '
            f'text-anchor="end">{xmax:.0f} s</text><text x="{pad - 4}" y="{pad + 4}" text-anchor="end">'
            f'{ymax:,.0f}</text>{"".join(lines)}</svg></figure>')


def render(out: str, runs: list[list[dict]]) -> str:
    charts = "".join(_chart(t, runs, k, "ft" if k == "cov" else None) for t, k in SERIES)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>pyvmfuzz plot: {html.escape(out)}</title>'
            f'<style>body{{font-family:system-ui,sans-serif;margin:24px}} figure{{display:inline-block;margin:8px}}'
            f'figcaption{{font-weight:600}}</style></head><body><h1>{html.escape(out)}</h1>'
            f'<p>{len(runs)} campaign(s); a row every 2 s (plot_data.csv)</p>{charts}</body></html>\n')


def summary(runs: list[list[dict]]) -> str:
    last = runs[-1][-1]
    return (f"{len(runs)} campaign(s), the last: {last['seconds']:.0f}s, {last['execs']:,.0f} execs, "
            f"cov {last['cov']:.0f}, ft {last['ft']:.0f}, corpus {last['corpus']:.0f}, {last['findings']:.0f} new finding(s)")
