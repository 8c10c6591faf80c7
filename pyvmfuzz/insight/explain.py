"""`pyvmfuzz explain`: a per-CPU timeline of an interleaving with the machine state that
matters at every step — for each page the program touches: each process's PTE and the frame
its map holds, each CPU's TLB entry, `pm_active`, the umtx sleepers — and the step where
expectation and observation part. Text for the terminal, or one self-contained HTML page."""

from __future__ import annotations

import html
from collections.abc import Sequence

from pyvmfuzz import layout
from pyvmfuzz.api import HwSpec, Report, Step


def pages_involved(steps: Sequence[Step]) -> list[str]:
    """The pages the steps name, in layout order (docs/contract.md §2.1)."""
    seen = {s.touched_page for s in steps}
    return [p for p in layout.PAGES if p in seen]


def _f(frame) -> str:
    return "-" if frame is None else f"f{frame}"


def _pte(pte, modified: bool = False) -> str:
    """`f2 rw`; `+M` when the PTE's modified bit is set (docs/contract.md §3.4)."""
    return "-" if pte is None else f"f{pte[0]} {'rw' if pte[1] else 'r'}{'+M' if modified else ''}"


def cells(state: dict, page: str, ncpus: int) -> dict:
    """The state of one page after a step: per process PTE and seen frame, per CPU TLB."""
    out = {"procs": {}, "tlb": []}
    for p in state["procs"]:
        pg = p["pages"][page]
        seen = "unmapped" if pg["prot"] == "unmapped" and pg["pte"] is None else _f(pg["seen"])
        out["procs"][p["pid"]] = (_pte(pg["pte"], pg.get("modified", False)), seen, p["pm_active"])
    for c in state["cpus"]:
        ent = [f"P{a}:f{f}{' rw' if w else ' r'}" for (a, pg, f, w) in c["tlb"] if pg == page]
        out["tlb"].append(" ".join(ent) or "-")
    return out


def model(rep: dict) -> dict:
    """Everything a renderer needs, computed once, from `_core.explain`'s dict (read through
    the typed Report: steps are pyvmfuzz.api.Step values)."""
    typed = Report.from_core(rep)
    steps, trace, states = typed.steps, typed.trace, rep["states"]
    ncpus = HwSpec.parse(typed.hw).resolve().cpus or layout.HW_DEFAULT[0]
    pages = pages_involved(steps)
    v = rep["violation"]
    internal = rep.get("internal")
    rows = []
    for i, (step, out) in enumerate(zip(steps, trace)):
        st = states[i] if i < len(states) else None
        rows.append({
            "n": i + 1,
            "step": step,
            "cpu": step.cpu,
            "op": step.operation(),
            "outcome": out,
            "running": [c["running"] for c in st["cpus"]] if st else [None] * ncpus,
            # docs/contract.md §3.2: each CPU's op in flight after the step (op text, point) and the
            # invalidations still pending at it (pid, page)
            "in_flight": [(c["in_flight"]["op"], c["in_flight"]["point"]) if c.get("in_flight") else None
                          for c in st["cpus"]] if st else [None] * ncpus,
            "pending": [[(a, pg) for a, pg, _ in c.get("pending_ipis", [])] for c in st["cpus"]] if st
            else [[] for _ in range(ncpus)],
            "pages": {pg: cells(st, pg, ncpus) for pg in pages} if st else {},
            "sleepers": st["sleepers"] if st else [],
            "bad": v is not None and v["step"] == i + 1,
            # the core's own invariant broke here; a witness goes on to a user-visible step
            "internal": internal is not None and internal["step"] == i + 1,
        })
    frames, info = {}, {}
    for st in states:
        for f, (words, freed) in st["frames"].items():
            frames[int(f)] = (words, freed)
        info.update({int(f): x for f, x in st.get("frame_info", {}).items()})
    # docs/contract.md §3.4: a freed frame's memory goes to the next allocation; say whose
    notes = {}
    for f, (words, freed) in frames.items():
        bits = ["freed"] if freed else []
        if f in info and info[f][0] and not freed:
            bits.append("dirty")
        if freed and f in info:
            later = [g for g in sorted(info) if g > f and info[g][1] == info[f][1]]
            if later:
                bits.append(f"its memory now f{later[0]}'s")
        notes[f] = f" ({'; '.join(bits)})" if bits else ""
    pids = sorted({p["pid"] for st in states for p in st["procs"]})
    return {"rows": rows, "pages": pages, "ncpus": ncpus, "pids": pids, "frames": frames, "frame_notes": notes,
            "violation": v, "internal": internal, "kernel": rep["kernel"], "hw": rep["hw"]}


def _pending(r: dict, c: int) -> str:
    return "".join(f" !ipi P{a} {pg}" for a, pg in r["pending"][c])


def _lane(r: dict, c: int) -> str:
    """What CPU c's lane shows at a step: its op and outcome, the op it has in flight (a span
    `|` over the lines between the op's start and its completion, docs/contract.md §3.2), or what it is
    running; then the IPIs pending at it (`!ipi P1 data0`: its TLB may still hold that entry)."""
    if c == r["cpu"]:
        return f"{r['op']} -> {r['outcome']}" + _pending(r, c)
    if r["in_flight"][c]:
        op, point = r["in_flight"][c]
        return f"| {op} @{point}" + _pending(r, c)
    return "· " + (r["running"][c] or "idle") + _pending(r, c)


def render_text(m: dict, title: str) -> str:
    out = [f"# explain {title} — kernel {m['kernel']}, {m['hw']}"]
    # Each lane as wide as its longest entry: an op and its outcome are never cut.
    ws = [max([len(f"cpu{c}")] + [len(_lane(r, c)) for r in m["rows"]]) + 2 for c in range(m["ncpus"])]
    head = "step " + "".join(f"{'cpu' + str(c):<{ws[c]}}" for c in range(m["ncpus"]))
    out.append(head)
    for r in m["rows"]:
        lane = [_lane(r, c).ljust(ws[c]) for c in range(m["ncpus"])]
        mark = "!!" if r["bad"] else "! " if r["internal"] else "  "
        out.append(f"{r['n']:>3}{mark}" + "".join(lane))
        for pg in m["pages"]:
            cell = r["pages"].get(pg)
            if not cell:
                continue
            procs = "  ".join(
                f"P{pid} pte {pte} sees {seen}"
                + (" (PTE stale!)" if pte != "-" and seen != "-" and pte.split()[0] != seen else "")
                + f" active {{{','.join(map(str, act))}}}"
                for pid, (pte, seen, act) in cell["procs"].items())
            tlb = "  ".join(f"cpu{c}: {t}" for c, t in enumerate(cell["tlb"]))
            out.append(f"       {pg:<6} {procs} | TLB {tlb}")
        if r["sleepers"]:
            out.append("       sleepers " + ", ".join(f"{t} on f{f} word {w_}" for t, f, w_ in r["sleepers"]))
    v, iv = m["violation"], m.get("internal")
    if iv:
        out.append(f"# step {iv['step']} (!): {iv['kind']}, the core's own invariant — {iv['observed']}"
                   + ("; the run went on to what a user sees" if v else "; nothing user-visible follows"))
    if v:
        out.append(f"# step {v['step']}{' (!!)' if iv else ''}: {v['kind']} — expected {v['expected']}, observed {v['observed']}")
    elif not iv:
        out.append("# no violation: expectation and observation agree at every step")
    out.append("# frames: " + "  ".join(
        f"f{f}=[{','.join(hex(x) for x in words)}]{m['frame_notes'].get(f, '')}"
        for f, (words, freed) in sorted(m["frames"].items())))
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px} .sub{color:#5b6478;margin-bottom:16px}
.verdict{padding:10px 14px;border-radius:6px;margin:12px 0;font-weight:600}
.bad{background:#fde8e8;border:1px solid #e0a0a0;color:#8a1c1c} .ok{background:#e6f4ea;border:1px solid #9cc9a8;color:#1d5a2e}
table{border-collapse:collapse;font-size:12.5px;font-family:ui-monospace,Menlo,Consolas,monospace}
th,td{border:1px solid #d8dce4;padding:4px 6px;vertical-align:top;white-space:nowrap;text-align:left}
th{background:#eef1f6;position:sticky;top:0} tr.badrow td{background:#fff1f1}
td.op{background:#e8f0fe;font-weight:600;white-space:normal;min-width:16em;max-width:24em}
.idle{color:#9aa3b5} .rw{color:#b3261e;font-weight:600}
.stale{background:#ffe2b8;font-weight:600} .timeline{overflow-x:auto;max-width:100%}
.legend{font-size:12px;color:#5b6478;margin-top:14px}
"""


def render_html(m: dict, title: str) -> str:
    e = html.escape
    n = len(m["rows"])
    labels = [f"{r['op']} → {r['outcome']}" for r in m["rows"]]
    labels += [f"{op} @{pt}" for r in m["rows"] for x in r["in_flight"] if x for op, pt in [x]]
    # A lane as wide as its longest label (monospace 11 px: about 6.7 px a character).
    lane_h, top, left = 26, 30, 60
    colw = max(150, int(6.7 * max((len(x) for x in labels), default=0)) + 20)
    width = left + colw * m["ncpus"] + 20
    height = top + lane_h * n + 10
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="ui-monospace,monospace" font-size="11">']
    for c in range(m["ncpus"]):
        x = left + c * colw
        svg.append(f'<text x="{x + colw / 2}" y="18" text-anchor="middle" font-weight="bold">cpu{c}</text>')
        svg.append(f'<line x1="{x + colw / 2}" y1="{top - 4}" x2="{x + colw / 2}" y2="{height - 6}" stroke="#c9cfdb"/>')
    for i, r in enumerate(m["rows"]):
        y = top + i * lane_h
        svg.append(f'<text x="8" y="{y + 16}" fill="#5b6478">{r["n"]}</text>')
        for c in range(m["ncpus"]):
            x = left + c * colw
            if c == r["cpu"]:
                fill = "#f7c8c8" if r["bad"] else "#fde9c8" if r["internal"] else "#cfe0fc"
                stroke = "#b3261e" if r["bad"] else "#c77700" if r["internal"] else "#5b8def"
                svg.append(f'<rect x="{x + 4}" y="{y + 2}" width="{colw - 8}" height="{lane_h - 5}" rx="4" '
                           f'fill="{fill}" stroke="{stroke}"/>')
                svg.append(f'<text x="{x + 9}" y="{y + 16}">{e(labels[i])}</text>')
            elif r["in_flight"][c]:
                # an op in flight: a span down the lane, its point named
                op, point = r["in_flight"][c]
                svg.append(f'<rect x="{x + 4}" y="{y}" width="6" height="{lane_h}" fill="#f2b84b"/>')
                svg.append(f'<text x="{x + 16}" y="{y + 16}" fill="#8a5a00">{e(op)} @{e(point)}</text>')
            elif r["running"][c]:
                svg.append(f'<text x="{x + colw / 2}" y="{y + 16}" text-anchor="middle" fill="#9aa3b5">'
                           f'{e(r["running"][c])}</text>')
            if r["pending"][c]:
                ipis = ", ".join(f"P{a} {pg}" for a, pg in r["pending"][c])
                svg.append(f'<text x="{x + colw - 6}" y="{y + 10}" text-anchor="end" font-size="9" fill="#b3261e">'
                           f'ipi pending: {e(ipis)}</text>')
    svg.append("</svg>")

    # One column per page, each cell stacking its per-process PTE / map frame lines and the
    # CPUs' TLB entries: the width grows with the pages touched, not pages x (processes + CPUs).
    head = ["step", "op → outcome", "running"] + list(m["pages"]) + ["pm_active", "sleepers"]
    body = []
    for r in m["rows"]:
        tds = [f"<td>{r['n']}</td>", f'<td class="op">cpu{r["cpu"]} {e(r["op"])} → {e(r["outcome"])}</td>']
        tds.append("<td>" + "<br>".join(
            f'cpu{c} <span class="idle">{e(t)}</span>' if t == "idle" else f"cpu{c} {e(t)}"
            for c, t in enumerate(x or "idle" for x in r["running"])) + "</td>")
        for pg in m["pages"]:
            cell = r["pages"].get(pg, {"procs": {}, "tlb": ["-"] * m["ncpus"]})
            lines = []
            for pid in m["pids"]:
                pte, seen, _ = cell["procs"].get(pid, ("", "", []))
                if not pte:
                    continue
                # The insight of most findings: the PTE maps another frame than the map holds.
                stale = pte not in ("", "-") and seen not in ("", "-") and pte.split()[0] != seen
                cls = ' class="stale" title="the PTE maps a different frame than the process\'s map holds"' if stale \
                    else (' class="rw"' if pte.endswith("rw") else "")
                lines.append(f"<span{cls}>P{pid} {e(pte)} / {e(seen)}</span>")
            for c, t in enumerate(cell["tlb"]):
                if t != "-":
                    cls = ' class="rw"' if " rw" in t else ""
                    lines.append(f'<span{cls}>tlb{c} {e(t)}</span>')
            tds.append("<td>" + "<br>".join(lines) + "</td>")
        act = []
        if r["pages"]:
            any_pg = next(iter(r["pages"].values()))
            act = [f"P{pid}:{{{','.join(map(str, a))}}}" for pid, (_, _, a) in any_pg["procs"].items()]
        tds.append(f"<td>{'<br>'.join(e(a) for a in act)}</td>")
        tds.append(f"<td>{'<br>'.join(e(f'{t}@f{f}.{w}') for t, f, w in r['sleepers'])}</td>")
        body.append(f'<tr class="{"badrow" if r["bad"] or r["internal"] else ""}">' + "".join(tds) + "</tr>")
    v, iv = m["violation"], m.get("internal")
    verdict = (f'<div class="verdict bad">step {v["step"]}: {e(v["kind"])} — expected {e(v["expected"])}, '
               f'observed {e(v["observed"])}</div>' if v else
               '' if iv else '<div class="verdict ok">clean: expectation and observation agree at every step</div>')
    if iv:
        verdict = (f'<div class="verdict bad">step {iv["step"]}: {e(iv["kind"])}, the core\'s own invariant — '
                   f'{e(iv["observed"])}' + ('; the run goes on to what a user sees' if v else
                                             '; nothing user-visible follows') + '</div>' + verdict)
    frames = " ".join(f"f{f}=[{', '.join(hex(x) for x in words)}]{m['frame_notes'].get(f, '')}"
                      for f, (words, freed) in sorted(m["frames"].items()))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>pyvmfuzz explain: {e(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{e(title)}</h1><div class="sub">kernel {e(m['kernel'])} · {e(m['hw'])}</div>
{verdict}
<h2 style="font-size:15px">Timeline</h2>
<div class="timeline">{''.join(svg)}</div>
<h2 style="font-size:15px">State after each step</h2>
<table><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>{''.join(body)}</table>
<div class="legend">Per page: <i>Pn PTE / sees</i> — the process's PTE (frame and protection, rw in red) and the frame its
map (shadow chain) holds for the page (orange: the PTE maps another frame); <i>tlbN</i> — CPU N's cached entry (P:frame prot);
pm_active: CPUs running each pmap. Timeline: an orange bar is an op in flight on that CPU (docs/contract.md §3.2), at the yield
point named; <i>ipi pending</i>: an invalidation the CPU has not taken yet (its TLB may still hold the entry).<br>
Frames: {e(frames)}</div>
</body></html>
"""
