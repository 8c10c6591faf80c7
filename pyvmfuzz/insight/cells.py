"""Which situations a set of programs reaches (issue 15): cells of operation × page kind ×
same or other process × before or after fork × hardware mode, for `pyvmfuzz cells`.

- operation: the op's action (load, store, umtx_sleep, umtx_wakeup, procfs_read, procfs_write,
  madvise, mprotect; fork, spawn, exit and switch have no page and are left out);
- page kind: data (private anonymous), text (private file), shm (shared anonymous);
- same/other: whether the page belongs to the process performing the op (procfs on another
  pid: other);
- before/after fork: whether the page's process has taken part in a fork (as parent or
  child) before the op — its private pages may then be copy-on-write;
- hw: pc64 or tagged.

Each program is run under a kernel its `expect` lines call clean (else `fixed`) to learn the
outcomes (fork's pid, a SEGV that ends a process); a step past the end of the run is not
counted."""

from __future__ import annotations

import itertools
import re

from pyvmfuzz import _core
from pyvmfuzz import api as _api

OPS = ("load", "store", "umtx_sleep", "umtx_wakeup", "procfs_read", "procfs_write", "madvise", "mprotect")
PAGES = ("data", "text", "shm")
WHO = ("same", "other")
FORK = ("before", "after")
MODES = ("pc64", "tagged")
_THREAD = re.compile(r"^P(\d+)\.T(\d+)$")


def cells_of(rep: dict) -> set[tuple[str, str, str, str, str]]:
    """The cells one run (a report of `pyvmfuzz.api.report`) reaches."""
    mode = "tagged" if "mode=tagged" in rep["hw"] else "pc64"
    running: dict[int, int | None] = {0: 1}
    forked: set[int] = set()
    out = set()
    for op, outcome in zip(rep["steps"], rep["trace"]):
        toks = op.split()
        cpu, action, args = int(toks[0][3:]), toks[1], toks[2:]
        actor = running.get(cpu)
        if action == "switch":
            m = _THREAD.match(args[0])
            running[cpu] = int(m[1]) if m else None
            continue
        if action == "fork" and outcome.startswith("P"):
            forked |= {actor, int(outcome.split()[0][1:])}
        if action in OPS and actor is not None:
            owner = int(args[0][1:]) if action.startswith("procfs") else actor
            page = (args[1] if action.startswith("procfs") else args[0]).split(".")[0]
            kind = "shm" if page == "shm0" else page.rstrip("0123456789")
            out.add((action, kind, "same" if owner == actor else "other",
                     "after" if owner in forked else "before", mode))
        if action == "exit" or outcome.split()[0] == "SEGV":
            for c, p in list(running.items()):
                if p == actor:
                    running[c] = None
    return out


def corpus_cells(paths: list[str]) -> tuple[dict, list[str]]:
    """({cell: [files reaching it]}, files skipped as not applicable: a line that cannot run when
    reached, under the kernel used). A program that does not check (`check_text`): InputError."""
    from pyvmfuzz.programs import InputError, load, run, walk

    files = walk(paths)
    if not files:  # an empty table with exit 0 read as "nothing reached"
        raise InputError(f"{', '.join(paths)}: no programs found")
    reached: dict = {}
    skipped = []
    for path in files:
        pf = load(path)
        if pf.is_text:
            try:  # what is wrong before it runs (a CPU beyond the header's) is an input error
                expects = _core.check_text(pf.text)["expects"]
            except ValueError as e:
                raise InputError.from_core(e, path) from None
        try:
            if pf.is_text:
                # under a kernel the program expects clean (its whole run), else fixed
                clean = [k for k, kind, _ in expects if kind is None]
                rep = _api.report(pf.text, clean[0] if clean else "fixed")
            else:  # a campaign corpus input: its sidecar's kernel and hw, else fixed (as `run`)
                rep = run(pf, None, None)
        except (ValueError, InputError):
            skipped.append(path)
            continue
        for c in cells_of(rep):
            reached.setdefault(c, []).append(path)
    return reached, skipped


def possible() -> list[tuple]:
    """Every cell a program can reach: `other` only through procfs."""
    return [c for c in itertools.product(OPS, PAGES, WHO, FORK, MODES)
            if c[2] == "same" or c[0].startswith("procfs")]


def table(reached: dict) -> str:
    """One row per operation and page kind; columns same/other × before/after fork × mode,
    each the number of programs reaching that cell ('.' for none, '' where impossible)."""
    cols = [(w, f, m) for m in MODES for w in WHO for f in FORK]
    rows = ["# cells: operation x page kind x same/other process x before/after fork x hw mode; "
            "each number counts the programs reaching it ('.': none; blank: impossible)",
            f"{'':<19} " + " ".join(f"{m:>14}" for m in MODES for _ in range(4)),
            f"{'operation':<13} {'page':<5} " + " ".join(f"{w + '/' + f:>14}" for w, f, m in cols)]
    can = set(possible())
    for op in OPS:
        for page in PAGES:
            cells = []
            for w, f, m in cols:
                c = (op, page, w, f, m)
                n = len(reached.get(c, []))
                cells.append(f"{(str(n) if n else '.') if c in can else '':>14}")
            rows.append(f"{op:<13} {page:<5} " + " ".join(cells))
    n_can = len(can)
    n_hit = len(can & set(reached))
    rows.append(f"# {n_hit} of {n_can} possible cells reached")
    return "\n".join(rows)
