"""Witness extension (issue 15): a run that ends in a core-only kind (`tlb-incoherent`,
`use-after-free`) shows an internal invariant breaking, which no user has seen yet and the
oracle cannot confirm. Search a bounded set of continuations — up to a few appended lines, and
the last line replaced; for a clean stale writable entry, from the program with the load that
filled it made a store (`dirty_first`) — for one where a user-visible violation follows; the core finds it
(run on past its internal invariants: `pyvmfuzz.api.report(..., past_internal=True)`), the oracle
(docs/contract.md §4) confirms it. The witness keeps both facts: where the invariant first broke
(`internal`), where the user sees it (`violation`).

Candidate lines are built from the program itself: its CPUs, the pages and words it (and the
invariant's message) names, the processes and threads it created, one fresh value — and on
each CPU `resume` and `ipi`, which finish an op left in flight or take pending IPIs. Search is
breadth-first by number of added lines, so the first witness is a shortest one in the set."""

from __future__ import annotations

import re
import time

from pyvmfuzz import _core
from pyvmfuzz import api as _api

CORE_ONLY_EXTENDABLE = ("tlb-incoherent", "use-after-free", "lost-data")
USER_VISIBLE = ("stale-read", "protection", "outcome", "lost-wakeup", "file-corruption")
FRESH = 0x77  # a value no program of the minimizer's writes (it shrinks values to 0..7)

_ADDR = re.compile(r"\b(data[0-3]|text[01]|shm0|file0|hole0)(?:\.([0-3]))?\b")
_THREAD = re.compile(r"\bP(\d+)\.T(\d+)\b")
_PID = re.compile(r"\bP(\d+)\b")


def _ops(rep: dict, upto: int) -> list[str]:
    return [s.split("->")[0].strip() for s in rep["steps"][:upto]]


def candidate_lines(hw: str, ops: list[str], trace: list[str], hint: str = "") -> list[str]:
    """The lines a continuation is built from (each may be inapplicable where it is tried;
    the core then rejects it and the search skips it)."""
    m = re.search(r"cpus=(\d+)", hw)
    cpus = int(m[1]) if m else 2
    text = " ".join(ops + list(trace)) + " " + hint
    addrs: list[str] = []
    for page, word in _ADDR.findall(text):
        a = f"{page}.{word or 0}"
        if a not in addrs:
            addrs.append(a)
    addrs = addrs[:4] or ["data0.0"]
    pages = list(dict.fromkeys(a.split(".")[0] for a in addrs))
    # a data page the program never names: a store there zero-fills a new frame, which takes
    # the memory of the frame freed last (docs/contract.md §3.4) -- how a use-after-free of a
    # freed frame becomes a value a user reads
    fresh = next((f"data{i}.0" for i in range(4) if f"data{i}" not in pages), None)
    threads = sorted({(1, 1)} | {(int(p), int(t)) for p, t in _THREAD.findall(text)})
    pids = sorted({p for p, _ in threads} | {int(p) for p in _PID.findall(text)})
    lines = []
    for c in range(cpus):
        cpu = f"cpu{c}"
        for a in addrs:
            lines += [f"{cpu} load {a}", f"{cpu} store {a} {FRESH:#x}", f"{cpu} umtx_wakeup {a}"]
            for p in pids:
                lines += [f"{cpu} procfs_read P{p} {a}", f"{cpu} procfs_write P{p} {a} {FRESH:#x}"]
        if fresh is not None:
            lines.append(f"{cpu} store {fresh} {FRESH:#x}")
        for pg in pages:
            lines += [f"{cpu} mprotect {pg} r", f"{cpu} mprotect {pg} rw", f"{cpu} madvise {pg} dontneed"]
            # docs/contract.md §3.4: the page daemon frees, msync cleans, mmap maps afresh
            lines += [f"{cpu} pageout P{p} {pg}" for p in pids] + [f"{cpu} msync {pg}", f"{cpu} mmap {pg}"]
        lines += [f"{cpu} switch P{p}.T{t}" for p, t in threads] + [f"{cpu} switch idle", f"{cpu} fork"]
        # finish what is paused (docs/contract.md §3.2): the op in flight on this CPU, the
        # IPIs pending for it — an internal breakage often becomes visible only once the
        # paused op completes (issue 28)
        lines += [f"{cpu} resume", f"{cpu} ipi"]
    return lines


def confirmed(r: dict) -> bool:
    """The core's user-visible violation, and the oracle reports exactly it (for
    `file-corruption`, a core-only kind the user sees in the file, the oracle must find
    nothing wrong before it)."""
    from pyvmfuzz import oracle
    from pyvmfuzz.oracle.check import observations

    v = r["violation"]
    if v is None or v["kind"] not in USER_VISIBLE:
        return False
    try:
        ov = oracle.judge(observations(r))
    except Exception:  # noqa: BLE001 -- an oracle that cannot follow confirms nothing
        return False
    if v["kind"] == "file-corruption":
        return ov is None
    return ov is not None and (ov.kind, ov.step) == (v["kind"], v["step"])


class Search:
    def __init__(self, rep: dict, budget_s: float, max_added: int):
        self.kernel, self.hw = rep["kernel"], rep["hw"]
        self.deadline = time.monotonic() + budget_s
        self.max_added = max_added
        self.runs = 0

    def run(self, ops: list[str]) -> dict | None:
        self.runs += 1
        try:
            return _api.report("\n".join([self.hw] + ops) + "\n", self.kernel, past_internal=True)
        except ValueError:
            return None

# The core's message for a writable TLB entry over a write-protected PTE (rust/src/invariants.rs).
_RO_STALE = re.compile(r"^cpu(\d+) TLB caches P\d+ (\w+) -> frame \d+ writable but the PTE is read-only")
FRESH2 = 0x76  # the first of two stores, so a lost second store (FRESH) is a value a user can tell


def dirty_first(ops: list[str], observed: str) -> list[str] | None:
    """The program with the load that filled a stale *writable* entry (a write-protect missed
    it: clearbit-wrong-va, protect-drops-modified) made a store, or None. A clean entry over a
    read-only PTE shows a user nothing (a store through it re-checks the PTE and faults,
    docs/contract.md §3.4); a dirty one writes the frame behind the cleaner's back, which a
    reclaim then loses. The continuation `extend` searches from there is the usual one."""
    m = _RO_STALE.match(observed or "")
    if not m:
        return None
    cpu, page = f"cpu{m[1]}", m[2]
    for i in range(len(ops) - 2, -1, -1):
        words = ops[i].split()
        if words[:1] == [cpu] and len(words) >= 3 and words[2].split(".")[0] == page:
            if words[1] != "load":
                return None  # its last access there was not a load: nothing to dirty
            return ops[:i] + [f"{cpu} store {words[2]} {FRESH2:#x}"] + ops[i + 1:]
        if words[:1] == [cpu] and words[1:2] == ["switch"]:
            return None  # the entry was filled by another thread: leave it
    return None


def extend(rep: dict, budget_s: float = 2.0, max_added: int = 3, portable=()) -> dict | None:
    """A witness for a core-only violation: the past-internal report of a continuation whose
    first user-visible violation the oracle confirms (`internal` holds where the invariant
    first broke; None there when a replaced last line shows the user the bug directly), or
    None when none is found within `budget_s` seconds and `max_added` added lines.
    `portable`: kernels under which the witness must also be applicable (a regression program
    `check --kernel all` runs), when the program is. A stale clean writable entry is tried
    again dirtied first (`dirty_first`), with a budget of its own."""
    found = _extend(rep, budget_s, max_added, portable)
    v = rep["violation"]
    if found is None and v is not None and v["kind"] == "tlb-incoherent":
        ops = dirty_first(_ops(rep, v["step"]), v.get("observed", ""))
        if ops is not None:
            try:
                rep2 = _api.report("\n".join([rep["hw"]] + ops) + "\n", rep["kernel"])
            except ValueError:
                return None
            v2 = rep2["violation"]
            if v2 is not None and v2["kind"] == "tlb-incoherent" and v2["step"] == v["step"]:
                found = _extend(rep2, budget_s, max_added, portable)
    return found


def _extend(rep: dict, budget_s: float, max_added: int, portable) -> dict | None:
    from pyvmfuzz.insight.minimize import applicable_everywhere

    v = rep["violation"]
    if v is None or v["kind"] not in CORE_ONLY_EXTENDABLE:
        return None
    s = Search(rep, budget_s, max_added)
    ops = _ops(rep, v["step"])
    if portable and not applicable_everywhere(rep["hw"], ops, portable):
        portable = ()
    cands = candidate_lines(rep["hw"], ops, rep["trace"][: v["step"]], v.get("observed", ""))
    # Bases: the program as it is, then with its last line replaced (the replacement must
    # still break the invariant or show the user something: checked by the run).
    bases = [ops] + [ops[:-1] + [c] for c in cands if c != ops[-1]]
    # Level n: n added lines in all (a replaced last line counts as one).
    frontier: list[list[str]] = []
    for n in range(1, max_added + 1):
        if n == 1:
            trials = [ops + [c] for c in cands] + bases[1:]
        else:
            trials = (p + [c] for p in frontier for c in cands)
        nxt = []
        for prog in trials:
            if time.monotonic() > s.deadline:
                return None
            r = s.run(prog)
            if r is None:
                continue  # not applicable there
            if r["violation"] is None:
                if r["internal"] is not None:
                    nxt.append(prog)  # the invariant is broken, the user has seen nothing yet
                continue
            if confirmed(r) and (not portable or applicable_everywhere(s.hw, prog, portable)):
                return r
        frontier = nxt
        if not frontier:
            return None
    return None


def search_space(rep: dict, max_added: int = 3) -> int:
    """Upper bound on the programs `extend` may try (for reports)."""
    v = rep["violation"]
    ops = _ops(rep, v["step"])
    k = len(candidate_lines(rep["hw"], ops, rep["trace"][: v["step"]], v.get("observed", "")))
    return sum((2 * k) * k ** (n - 1) for n in range(1, max_added + 1))



def user_visible_after(text: str, kernel: str | None, hw: str | None) -> dict | None:
    """For `run`: the whole program run on past a core-only first violation; its first
    user-visible violation with `"confirmed"` (the oracle reports exactly it on the
    observations), or None when there is none."""
    try:
        r = _api.report(text, kernel, hw, past_internal=True)
    except ValueError:
        return None
    v = r["violation"]
    if r["internal"] is None or v is None or v["kind"] not in USER_VISIBLE:
        return None
    return dict(v, confirmed=confirmed(r))
