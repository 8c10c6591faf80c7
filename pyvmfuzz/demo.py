"""`pyvmfuzz demo`: the main job for a new user, in about a minute. Fuzz the kernel before
385c96e4 until the bug appears, show the minimized interleaving and its explanation; the same
for the half fix; then fuzz the fixed kernel for a fixed budget and find nothing."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

from pyvmfuzz import _core
from pyvmfuzz.campaign import run_campaign
from pyvmfuzz.insight.explain import model, render_html, render_text
from pyvmfuzz.campaign.findings import atomic_write

STORIES = {
    "pre-385c96e4": (
        "Before 385c96e4, vm_fault_page() called pmap_enter() with the protection its lookup "
        "produced: under VM_PROT_OVERRIDE_WRITE (a debugger write through /proc/P/mem) that is the "
        "map entry's *max* protection, so a read-only page was left writable and a user store that "
        "must SIGSEGV succeeded."
    ),
    "partial-385c96e4": (
        "With only the first half of 385c96e4 (no pmap_enter), a copy-on-write copy made by "
        "vm_fault_page() for procfs or umtx left the process's PTE on the old frame, so the process "
        "kept reading data the kernel had already replaced. The second hunk (unmap the old page on "
        "copy) fixes it."
    ),
}


def _campaign(kernel: str, out: str, budget: int, coverage: str, stop: bool) -> tuple[int, list[str]]:
    args = argparse.Namespace(
        kernel=kernel, hw="mode=pc64", time=budget, out=out, corpus=None, crashes=None, jobs=1, seed=1,
        max_steps=32, coverage=coverage, quiet=False, stop_on_find=stop, libfuzzer=[],
    )
    rc = run_campaign(args)
    return rc, sorted(glob.glob(os.path.join(out, "crashes", "*.txt")))


def run_demo(args) -> int:
    t0 = time.time()
    out = os.path.abspath(args.out)
    story = []
    print("pyvmfuzz demo: a multi-CPU MMU model (TLBs, pmaps, pm_active, shootdown, copy-on-write) in the loop.\n")
    for kernel in ("pre-385c96e4", "partial-385c96e4"):
        print(f"== 1. Fuzzing kernel {kernel} until a violation appears")
        d = os.path.join(out, kernel)
        rc, found = _campaign(kernel, d, 60, args.coverage, stop=True)
        if not found:
            print(f"   no violation found in 60s (exit {rc}) — unexpected; see {d}/fuzz.log\n")
            story.append(f"- {kernel}: nothing found in 60 s (unexpected)")
            continue
        f = found[0]
        print(f"\n== 2. The minimized interleaving ({f})")
        sys.stdout.write("".join("   " + ln + "\n" for ln in open(f).read().splitlines()))
        rep = _core.explain(open(f).read(), kernel)
        html_path = f[:-4] + ".html"
        atomic_write(html_path, render_html(model(rep), os.path.basename(f)))
        print("\n== 3. What the machine did")
        sys.stdout.write(render_text(model(rep), os.path.basename(f)))
        print(f"   (as a page: {html_path})\n")
        v = rep["violation"]
        story.append(f"- {kernel}: {v['kind']} at step {v['step']} of a {len(rep['steps'])}-step interleaving "
                     f"({f}). {STORIES[kernel]}")
    print(f"== 4. Fuzzing the fixed kernel for {args.fixed_time}s")
    d = os.path.join(out, "fixed")
    rc, found = _campaign("fixed", d, args.fixed_time, args.coverage, stop=False)
    story.append(f"- fixed: {'no violation' if not found else 'VIOLATIONS: ' + ', '.join(found)} in a "
                 f"{args.fixed_time} s campaign ({d}).")
    print("\n== The story")
    print("DragonFly BSD commit 385c96e4 (2011) stopped vm_fault_page() from calling pmap_enter(), because it "
          "runs in foreign pmap contexts, and unmapped the old page when it copies on write. pyvmfuzz found:")
    print("\n".join(story))
    print(f"\nEverything is under {out}: per kernel a corpus/, crashes/ (minimized .txt traces, .bytes, "
          f".html explanations) and fuzz.log. Replay a finding with `pyvmfuzz run FILE`, explain it with "
          f"`pyvmfuzz explain FILE --html OUT.html`. ({time.time() - t0:.0f}s)")
    return 1 if found else 0
