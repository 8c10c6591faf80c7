"""`pyvmfuzz explore` and `pyvmfuzz necessity` (docs/contract.md §5): bounded exhaustive exploration in the
Rust core (rust/src/explore.rs: iterative deepening, canonical state hashing, TLB-hit
commutation), and the safety actions of a kernel switched off one at a time
(rust/src/necessity.rs)."""

from __future__ import annotations

import os
import re
import sys

from pyvmfuzz import _core
from pyvmfuzz import api as _api
from pyvmfuzz.campaign.findings import atomic_write, finding_text, signature
from pyvmfuzz.programs import InputError

DOMAIN_NOTE = "pages {pages}, word 0; stored values {values}; umtx_sleep values 0, those and the file word"


MAX_DEPTH = 64  # the core's bound (explore.rs); checked here so a bad --depth is one line


def _check_numbers(args) -> None:
    """Bad numbers are input errors (exit 2), not the core's OverflowError traceback: --depth
    1..MAX_DEPTH, --time/--random finite seconds >= 0, --seed 0..2**64-1 (u64)."""
    if not 1 <= args.depth <= MAX_DEPTH:
        raise InputError(f"--depth must be 1..{MAX_DEPTH}")
    for flag in ("time", "random"):
        v = getattr(args, flag, 0)
        if not 0 <= v < float("inf"):  # nan compared false (ran as 0); --random inf never ends
            raise InputError(f"--{flag} must be a number of seconds >= 0, not {v:g}")
    if not 0 <= getattr(args, "seed", 0) < 2**64:  # the core's u64: OverflowError traceback
        raise InputError("--seed must be 0..2**64-1")
    stops = getattr(args, "stops", None)
    if stops is not None and not 0 <= stops <= MAX_DEPTH:
        raise InputError(f"--stops must be 0..{MAX_DEPTH}")
    if not 1 <= getattr(args, "max_states", MAX_STATES) <= 2**40:
        raise InputError("--max-states must be 1..2**40")


# The state table's default capacity (the core's): ~1-2 GB of memory at 30 M entries.
MAX_STATES = 30_000_000


def _domain(args) -> tuple[list[str] | None, list[int] | None]:
    pages = None
    if getattr(args, "pages", None) is not None:
        pages = [p.strip() for p in args.pages.split(",") if p.strip()]
        if not pages:  # an empty list is not "the defaults" (it was, silently)
            raise ValueError(f"--pages: no page in '{args.pages}' (e.g. data0,text0,shm0)")
    values = None
    if getattr(args, "values", None) is not None:
        if not args.values.strip(","):
            raise ValueError(f"--values: no value in '{args.values}' (e.g. 1,2)")
        try:
            values = [int(v, 0) for v in args.values.split(",")]
        except ValueError:
            raise ValueError(f"--values: bad value list '{args.values}'") from None
        if not all(0 <= v <= 0xFFFFFFFF for v in values):  # words are u32 (docs/contract.md §2.1)
            raise ValueError(f"--values: '{args.values}': each value must be 0..0xffffffff")
    return pages, values


def _bar(desc: str, time_s: float):
    """A tqdm bar of lines executed, and the callback the core calls every 16k lines."""
    from tqdm import tqdm

    from pyvmfuzz.campaign.supervisor import PlainProgress

    tty = sys.stderr.isatty()
    bar = tqdm(desc=desc, unit=" lines", unit_scale=True, file=sys.stderr, dynamic_ncols=True, disable=not tty)
    # Where stderr is not a terminal (CI logs, pipes): a plain line every 30 s, so a long
    # exploration is not silent until its end.
    plain = PlainProgress(every=30.0, enabled=not tty)

    def progress(st: dict) -> bool:
        post = f"bound {st['bound']} proved {st['completed']} states {st['distinct']:,}"
        bar.n = st["generated"]
        bar.set_postfix_str(post, refresh=False)
        bar.refresh()
        plain.maybe(f"{desc}: {st['generated']:,} lines, {post}")
        return True

    return bar, progress


def run_explore(kernel: str, depth: int, hw: str | None, time_s: float, *, hashing=True, por=True,
                pages=None, values=None, off=(), on=(), distinguish=False, bar_desc: str | None = None,
                stops: int | None = None, vm: bool = False, max_states: int = MAX_STATES,
                symmetry: bool = True, first_bound: int = 1) -> dict:
    """One exploration; the core's dict (see `_core.explore`)."""
    bar, progress = _bar(bar_desc or f"explore {kernel}", time_s)
    try:
        return _core.explore(kernel, depth, hw=hw, time_s=time_s, hashing=hashing, por=por,
                             off=list(off), on=list(on), progress=progress, pages=pages, values=values,
                             distinguish=distinguish, stops=stops, vm=vm, max_table=max_states,
                             symmetry=symmetry, first_bound=first_bound)
    finally:
        bar.close()


def _witness_lines(w: dict) -> list[str]:
    """The witness as program lines: `step -> outcome`; a line whose step did not complete (a
    panic or model assertion: no outcome in the trace) is the bare step, not dropped."""
    return [f"{s} -> {w['trace'][i]}" if i < len(w["trace"]) else s for i, s in enumerate(w["steps"])]


def _witness_text(w: dict) -> str:
    return "\n".join(f"  {ln}" for ln in _witness_lines(w))


def save_finding(r: dict, out: str, shortest: bool = True) -> str:
    """Save explore's violation like a campaign finding (replayable trace + expect)."""
    w = r["witness"]
    program = "\n".join([r["hw"], *w["steps"]]) + "\n"
    rep = _api.report(program, r["kernel"])
    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, "explore-" + signature(w["kind"], rep["steps"]))
    what = "a shortest violation" if shortest else f"a violation of at most {r['bound']} lines (--one-pass)"
    note = f"found by pyvmfuzz explore: {what} ({len(w['steps'])} lines)"
    # the shortest violation as found: no witness search, and the file says so (it said
    # "internal-only: no continuation within the search budget", with no search made)
    atomic_write(base + ".txt", finding_text(rep, note, searched=False))
    return base + ".txt"


def cmd_explore(args) -> int:
    _check_numbers(args)
    if not args.no_save:
        # said before the search, not after it (--out names the directory findings go in; the
        # nearest part of it that exists must be a directory)
        there = args.out
        while there and not os.path.exists(there):
            there = os.path.dirname(there.rstrip("/"))
        if there and not os.path.isdir(there):
            raise InputError(f"--out {args.out}: not a directory (the violation is saved in a directory)")
    pages, values = _domain(args)
    hw = args.hw
    if args.cpus is not None:
        given = re.search(r"cpus=(\d+)", hw or "")
        if given and int(given.group(1)) != args.cpus:  # else the later key silently wins
            raise InputError(f"--cpus {args.cpus} conflicts with --hw cpus={given.group(1)}")
        if not given:  # the same count in both: once (a key given twice is an error)
            hw = (hw + "," if hw else "") + f"cpus={args.cpus}"
    r = run_explore(args.kernel, args.depth, hw, args.time, hashing=not args.no_hash, por=not args.no_por,
                    symmetry=not args.no_symmetry, first_bound=args.depth if args.one_pass else 1,
                    pages=pages, values=values, stops=args.stops, vm=args.vm, max_states=args.max_states)
    rate = r["generated"] / r["elapsed_s"] if r["elapsed_s"] > 0 else 0.0
    dom = DOMAIN_NOTE.format(pages=args.pages or "data0,text0,shm0", values=args.values or "1")
    stops = "" if args.stops is None else f"; at most {args.stops} stop(s) (lines with `until`) per program"
    if args.vm:
        stops += "; with munmap, mmap, mremap, msync and pageout (docs/contract.md §3.4)"
    print(f"# explore {r['kernel']} on {r['hw']}; domain: {dom}{stops}")
    print(f"# states generated {r['generated']:,} (last bound {r['generated_last']:,}), distinct expanded "
          f"{r['distinct']:,}, {rate:,.0f} states/s, {r['elapsed_s']:.1f} s")
    if r["distinct"] >= args.max_states:
        print(f"# the state table is full ({args.max_states:,} states): states past it were explored "
              "again (sound, slower); --max-states raises it")
    w = r["witness"]
    if w is not None:
        if args.one_pass:  # no shallower bound was searched first: not always a shortest
            print(f"violation: {w['kind']} at line {w['step']} ({len(w['steps'])} lines; one pass at "
                  f"{args.depth} lines, so not always a shortest)")
        else:
            print(f"shortest violation: {w['kind']} at line {w['step']} ({len(w['steps'])} lines; "
                  f"every program of up to {r['completed']} lines is clean)")
        print(_witness_text(w))
        print(f"# expected {w['expected']}, observed {w['observed']}")
        if not args.no_save:
            print(f"# saved {save_finding(r, args.out, shortest=not args.one_pass)}")
        return 1
    if r["completed"] >= args.depth:
        print(f"no violation up to {r['completed']} lines")
        return 0
    why = "interrupted" if r["interrupted"] else "time limit"
    print(f"no violation up to {r['completed']} lines ({why} while searching {r['bound']} lines)")
    return 130 if r["interrupted"] else 0


# ---- necessity -----------------------------------------------------------------------------

def _cell(res: dict) -> str:
    if res.get("na"):
        return "n/a (not in the base kernel)"
    w = res["witness"]
    if w is None:
        return f"no witness up to {res['depth']} lines"
    src = "explore: shortest" if res["by"] == "explore" else "random search, shrunk"
    return f"**necessary**: {w['kind']} in {len(w['steps'])} lines ({src}) [{res['ref']}]"


def cmd_necessity(args) -> int:
    out: list[str] = []
    witnesses: list[tuple[str, dict]] = []
    _check_numbers(args)
    try:
        return _necessity(args, out, witnesses)
    except KeyboardInterrupt:
        # The core turns Ctrl-C into an interrupted (returned) exploration; without this the
        # next action's exploration would start and swallow the interrupt. Keep what is done.
        if out:
            out.append("# interrupted: the rows above are complete, the rest were not run")
            out.append("")
            _emit_witnesses(out.append, witnesses)
            print("\n".join(out))
        raise


def _emit_witnesses(emit, witnesses: list[tuple[str, dict]]) -> None:
    for i, (title, w) in enumerate(witnesses, 1):
        emit(f"W{i} ({title}): {w['kind']} at line {w['step']}")
        emit("```")
        emit("\n".join(_witness_lines(w)))
        emit("```")


def _necessity(args, out: list[str], witnesses: list[tuple[str, dict]]) -> int:
    vm = getattr(args, "vm", False)
    pages = ["data0", "text0", "shm0", "file0"] if vm else None

    def explore(*a, **kw) -> dict:
        r = run_explore(*a, vm=vm, pages=pages, **kw)
        if r["interrupted"]:
            raise KeyboardInterrupt
        return r

    actions = _core.safety_actions()
    if getattr(args, "actions", None) is not None:  # `--actions ''` names none: an error, not all
        wanted = [x.strip() for x in args.actions.split(",") if x.strip()]
        known = [a[0] for a in actions]
        unknown = [x for x in wanted if x not in known]
        if unknown or not wanted:
            raise InputError(f"--actions: unknown safety action(s) {', '.join(unknown) or '(none given)'} "
                             f"(valid: {', '.join(known)})")
        actions = [a for a in actions if a[0] in wanted]
    hws = [("pc64", "mode=pc64"), ("tagged", "mode=tagged")]
    emit = out.append
    base_status = 0
    bases = {}
    for col, hw in hws:
        on = []
        # fixed is a pc64 kernel: on tagged its base is fixed plus the tagged-TLB action
        # (fixed-tagged), so that the column asks what the tagged-correct kernel needs.
        if col == "tagged" and not _core.action_present(args.kernel, "pm_active_until_flush"):
            on = ["pm_active_until_flush"]
        # The base is explored as deep as the time allows: a knob's witness counts only at a
        # length where the base itself is proved clean.
        deeper = args.depth + 6 if args.time > 0 else args.depth
        r = explore(args.kernel, deeper, hw, args.time, on=on, bar_desc=f"base {col}")
        if r["completed"] < args.depth and r["witness"] is None:  # time ran out first
            r = explore(args.kernel, args.depth, hw, 0.0, on=on, bar_desc=f"base {col}")
        bases[col] = (on, r)
        if r["completed"] < args.depth and col == "pc64":
            base_status = 1
    dom = DOMAIN_NOTE.format(pages=",".join(pages) if pages else "data0,text0,shm0", values="1")
    if vm:
        dom += "; with munmap, mmap, mremap, msync and pageout"
    emit(f"# necessity of {args.kernel}'s safety actions: explore to {args.depth} lines (domain "
         f"{dom}; 2 CPUs); where that finds nothing, explore goes "
         f"deeper for {args.time:g} s, then {args.random:g} s of random search")
    emit("")
    for col, (on, r) in bases.items():
        name = args.kernel + "".join("+" + a for a in on)
        w = r["witness"]
        tail = "" if w is None else (f"; its shortest violation ({w['kind']}, {len(w['steps'])} lines): "
                                     + "; ".join(f"`{ln}`" for ln in _witness_lines(w)))
        emit(f"- base on {col}: `{name}` — proved clean up to {r['completed']} lines{tail}")
    emit("")
    emit("| action | DragonFly function | necessary on pc64 | necessary on tagged |")
    emit("|---|---|---|---|")
    # Where stderr is not a terminal (no bar): a plain line per action, so the run is not silent.
    plain = not sys.stderr.isatty()
    for i, (name, func, _what) in enumerate(actions, 1):
        if plain:
            sys.stderr.write(f"necessity {args.kernel}: action {i}/{len(actions)}: {name}\n")
            sys.stderr.flush()
        cells = []
        for col, hw in hws:
            on, base = bases[col]
            clean = base["completed"]
            if clean < args.depth:
                cells.append("base not clean")
                continue
            if not _core.action_present(args.kernel, name, on):
                cells.append(_cell({"na": True}))
                continue
            r = explore(args.kernel, args.depth, hw, 0.0, on=on, off=[name], bar_desc=f"{name} {col}")
            res = {"depth": r["completed"], "witness": r["witness"], "by": "explore"}
            if r["witness"] is None and args.time > 0:
                # Deeper bounds for the time given. Beyond the depth the base is proved clean,
                # only programs the base gets right count (the base's own bugs are no witness).
                d = explore(args.kernel, args.depth + 6, hw, args.time, on=on, off=[name],
                            distinguish=clean < args.depth + 6, bar_desc=f"{name} {col} deeper")
                res["depth"] = max(res["depth"], min(d["completed"], clean))
                res["witness"] = d["witness"]
            if res["witness"] is None and args.random > 0:
                w, _n = _core.random_search(args.kernel, args.random, hw=hw, off=[name], on=on, seed=args.seed)
                if w is not None:
                    steps, trace, kind, step = w
                    text = "\n".join(steps) + "\n"
                    # Only a program the base kernel gets right shows the action is needed.
                    if _core.run_variant(args.kernel, text, hw, on=on) is None:
                        res["witness"] = {"steps": steps, "trace": trace, "kind": kind, "step": step}
                        res["by"] = "random"
            if res["witness"] is not None:
                res["ref"] = f"W{len(witnesses) + 1}"
                witnesses.append((f"{name} off, {col}", res["witness"]))
            cells.append(_cell(res))
        emit(f"| `{name}` | {func} | {cells[0]} | {cells[1]} |")
    emit("")
    _emit_witnesses(emit, witnesses)
    print("\n".join(out))
    return base_status
