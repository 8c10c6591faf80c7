"""The `pyvmfuzz` command line. Exit status: 0 clean, 1 violation found, 2 bad usage/input."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from pyvmfuzz import _core
from pyvmfuzz import api as _api
from pyvmfuzz.programs import InputError, load, overlay_hw, run as run_program, visible, walk

KERNELS = [name for name, _ in _core.kernels()]


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage in one line and exits 2."""

    def error(self, message: str):  # noqa: D401
        sys.stderr.write(f"{self.prog}: error: {visible(message)}\n")
        sys.exit(2)


def _kernel(name: str) -> str:
    try:
        return _core.kernel_name(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _hw(spec: str) -> str:
    try:
        _core.check_text("", spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--hw: ")) from None
    return spec


def _hw_over(default: str):
    """--hw where the command has default keys (fuzz, cmin: mode=pc64): the user's keys
    overlay the default's key by key, as a program header is overlaid (docs/contract.md §2.1)."""
    def parse(spec: str) -> str:
        _hw(spec)
        keys = dict(item.split("=", 1) for item in default.replace(",", " ").split())
        keys.update(item.split("=", 1) for item in spec.replace(",", " ").split())
        return ",".join(f"{k}={v}" for k, v in keys.items())
    return parse


class _HwKeys(argparse.Action):
    """`--hw` given again overlays the earlier keys key by key (the last one replaced the
    others, silently): `--hw cpus=3 --hw mode=tagged` is `cpus=3,mode=tagged`."""

    def __call__(self, parser, namespace, values, option_string=None):
        prev = getattr(namespace, "_hw_given", None)
        if prev is not None:
            values = overlay_hw(prev, values) or ""
        namespace._hw_given = values
        setattr(namespace, self.dest, values)


def verdict_line(report: dict) -> str:
    v = report["violation"]
    if v is None:
        return "# verdict: clean"
    return f"# verdict: {v['kind']} at step {v['step']}: expected {v['expected']}, observed {v['observed']}"


def _run_linux(pf, hw):
    from pyvmfuzz.targets import linux

    if not pf.is_text:
        raise InputError(f"{pf.path}: --target linux takes text programs")
    try:
        return linux.run_text(pf.text, hw)
    except InputError as e:
        raise e.in_file(pf.path) from None


def cmd_run(args) -> int:
    if args.target == "linux" and args.kernel is not None:  # else ignored without a word
        raise InputError(f"--kernel {args.kernel}: a model kernel; --target linux runs on this host's kernel")
    _linux_os(args)
    status = 0
    # every file read (and parsed) before any trace is printed: a bad one gives no partial output
    loaded = [load(path) for path in args.files]
    for path, pf in zip(args.files, loaded):
        if args.target == "linux":
            rep = _run_linux(pf, args.hw)
            osname, pv = "linux", _Verdict(rep["violation"], "oracle", None, None)
        else:
            osname = _personality(pf, args.os)
            rep, cut = _run_model(pf, args, osname)
            pv = _personality_verdict(pf, rep, osname, args.os is not None)
            if cut is not None:
                pv.notes.append(cut)
        if pv.violation is not None or rep["assert_failures"]:
            status = 1
        uv = _user_visible(pf, rep, args) if args.target == "model" and pv.judge == "core" else None
        if args.json:
            out = {
                "file": path,
                "kernel": rep["kernel"],
                "hw": rep["hw"],
                "os": osname,
                "verdict": "violation" if pv.violation else "clean",
                "violation": pv.violation,
                "judge": pv.judge,
                "steps": rep["steps"],
                "trace": rep["trace"],
                "assert_failures": rep["assert_failures"],
            }
            if pv.oracle is not None:
                out["oracle"] = pv.oracle
            if args.target == "model" and osname != "dragonfly":
                # the core's own verdict: it has no personality and judges as os dragonfly
                out["core"] = {"verdict": "violation" if rep["violation"] else "clean",
                               "violation": rep["violation"]}
            out["user_visible"] = uv
            print(json.dumps(out), flush=True)
        else:
            print(f"# file: {path}")
            text = rep["trace_text"]
            if args.target == "model" and osname != "dragonfly":
                text = _with_os_line(text, osname)  # the trace replays under the same personality
            sys.stdout.write(text)
            for a in rep["assert_failures"]:
                print(f"# assertion failed at step {a['step']}: written {a['expected']}, observed {a['observed']}")
            if pv.oracle is not None and osname == "dragonfly":
                print(f"# oracle (os {osname}): {pv.oracle}")
            if args.target == "model" and osname != "dragonfly":
                print(_personality_line(osname, pv), flush=True)
                for note in pv.notes:
                    print(f"# {note}")
            else:
                print(verdict_line(rep), flush=True)
            if uv is not None:
                print(f"# user-visible after it: {uv['kind']} at step {uv['step']}: expected {uv['expected']}, "
                      f"observed {uv['observed']} ({'confirmed' if uv['confirmed'] else 'NOT confirmed'} by the oracle)")
    return status


class _Verdict:
    """The one verdict of a run under its personality (docs/contract.md §4.2): `violation` (the report's
    shape, or None), `judge` ("core" or "oracle"), `oracle` (the oracle's verdict as a line, where
    it was asked), `notes` (comment lines: where the core's own judgement differs)."""

    def __init__(self, violation, judge, oracle, notes):
        self.violation, self.judge, self.oracle, self.notes = violation, judge, oracle, notes or []


def _personality(pf, given: str | None) -> str:
    """--os, else the program's `os` header, else (byte form) its sidecar's --os, else dragonfly."""
    from pyvmfuzz.oracle import PERSONALITIES
    from pyvmfuzz.oracle.check import program_os
    from pyvmfuzz.programs import sidecar

    name = given or (program_os(pf.text) if pf.is_text else sidecar(pf.path).get("os")) or "dragonfly"
    if name not in PERSONALITIES:
        raise InputError(f"{pf.path}: unknown os '{visible(name)}' (want {' or '.join(PERSONALITIES)})")
    return name


def _run_model(pf, args, osname: str) -> tuple[dict, str | None]:
    """Run on the model. docs/contract.md §2.3: a line not applicable when reached is an input error unless
    the run has already ended in a violation. The core judges as os dragonfly, so under another
    personality a run may have ended (in the oracle's verdict) before a line the model cannot
    apply -- a program written for Linux, whose sleep blocked there. Then the run is the text
    before that line, and the note says so; else the input error stands."""
    try:
        return run_program(pf, args.kernel, args.hw), None
    except InputError as e:
        if osname == "dragonfly" or not pf.is_text or e.line is None:
            raise
        from pyvmfuzz import oracle
        from pyvmfuzz.oracle.check import observations
        from pyvmfuzz.programs import ProgramFile

        try:
            rep = run_program(ProgramFile(pf.path, "".join(pf.text.splitlines(keepends=True)[:e.line - 1]), None),
                              args.kernel, args.hw)
            ended = rep["steps"] and oracle.judge(observations(rep), os=osname) is not None
        except (InputError, oracle.TraceError):
            ended = False
        if not ended:
            raise
        return rep, (f"line {e.line} did not run: the model cannot apply it ({e.reason}); "
                     f"the run had already ended in the os {osname} violation")


def _personality_verdict(pf, rep: dict, osname: str, asked: bool) -> _Verdict:
    """The verdict of a model run under `osname` (docs/contract.md §4.2). The core has no personality: its
    verdict is os dragonfly's. Under another personality the verdict is the oracle's on the
    core's observations -- except an internal invariant of the model (a core-only kind: no
    personality changes it), which stands where the oracle finds nothing before it. `asked`:
    --os was given (the oracle's verdict is shown even under dragonfly)."""
    from pyvmfuzz import oracle
    from pyvmfuzz.oracle.check import CORE_ONLY, observations

    core = rep["violation"]
    if osname == "dragonfly" and not asked:
        return _Verdict(core, "core", None, None)
    try:
        ov = oracle.judge(observations(rep), os=osname)
    except oracle.TraceError as e:
        if osname == "dragonfly":
            return _Verdict(core, "core", f"cannot follow the trace: {e}", None)
        raise InputError(f"{pf.path}: os {osname}: the oracle cannot follow the core's trace: {e}") from None
    line = "clean" if ov is None else f"{ov.kind} at step {ov.step}: expected {ov.expected}, observed {ov.observed}"
    if osname == "dragonfly":
        return _Verdict(core, "core", line, None)
    if ov is not None:
        verdict, judge = {"kind": ov.kind, "step": ov.step, "expected": ov.expected, "observed": ov.observed}, "oracle"
    elif core is not None and core["kind"] in CORE_ONLY:
        verdict, judge = core, "core"
    else:
        verdict, judge = None, "oracle"
    notes = []
    if verdict != core:
        notes.append(f"the core's own verdict (it has no personality; it judges as os dragonfly): "
                     f"{_describe(core)} -- not the verdict under os {osname}")
        if core is not None and verdict is None:
            notes.append(f"the model stops a run at its own first violation: steps after {core['step']}, "
                         f"if any, did not run; os {osname} judged steps 1..{core['step']}")
    return _Verdict(verdict, judge, line, notes)


def _describe(v: dict | None) -> str:
    return "clean" if v is None else f"{v['kind']} at step {v['step']}: expected {v['expected']}, observed {v['observed']}"


def _personality_line(osname: str, pv: _Verdict) -> str:
    """`# verdict: clean (os linux, oracle)` / `# verdict: violation (os linux, oracle): KIND at step N: ...`"""
    who = "oracle" if pv.judge == "oracle" else "core invariant"
    if pv.violation is None:
        return f"# verdict: clean (os {osname}, {who})"
    return f"# verdict: violation (os {osname}, {who}): {_describe(pv.violation)}"


def _with_os_line(trace_text: str, osname: str) -> str:
    """The trace with an `os` header after its `kernel` line (docs/contract.md §4.2)."""
    lines = trace_text.splitlines(keepends=True)
    for i, ln in enumerate(lines):
        if ln.startswith("kernel "):
            return "".join(lines[:i + 1] + [f"os {osname}\n"] + lines[i + 1:])
    return trace_text


def _user_visible(pf, rep: dict, args) -> dict | None:
    """Past a core-only first violation (tlb-incoherent, use-after-free), where a user sees
    the bug in this program, if anywhere (a saved witness, issue 15)."""
    from pyvmfuzz.campaign.witness import CORE_ONLY_EXTENDABLE, user_visible_after

    v = rep["violation"]
    if v is None or v["kind"] not in CORE_ONLY_EXTENDABLE:
        return None
    text = pf.text if pf.is_text else _core.decode(pf.data, rep["kernel"], rep["hw"].removeprefix("hw "))
    return user_visible_after(text, rep["kernel"], args.hw if pf.is_text else None)


def _linux_os(args) -> None:
    """--os dragonfly with --target linux was ignored without a word: the host is Linux."""
    if args.target == "linux" and args.os == "dragonfly":
        raise InputError("--os dragonfly: a --target linux run is judged with the os linux personality (docs/contract.md §4.2)")


def _nonempty_paths(*flags: tuple[str, str | None]) -> None:
    """An output flag given an empty path (`--html ""`, an unset shell variable) was skipped
    without a word, as if not given: an input error instead."""
    for flag, path in flags:
        if path is not None and not path.strip():
            raise InputError(f"{flag}: empty path")


def cmd_check(args) -> int:
    from pyvmfuzz.campaign.lifecycle import restore_sigint
    from pyvmfuzz.oracle.check import CheckInterrupted, check_paths

    restore_sigint()  # inherited as ignored (`check ... &` in a script, nohup): Ctrl-C works
    _nonempty_paths(("--junit", args.junit))
    _linux_os(args)
    if args.target == "linux":
        if args.kernel != "fixed":  # the host is checked against programs clean under fixed
            raise InputError(f"--kernel {args.kernel}: --target linux checks this host's kernel "
                             "on the programs clean under fixed")
        return _check_linux(args)

    kernels = KERNELS if args.kernel == "all" else [args.kernel]
    skipped: list[str] = []
    inapplicable: list[str] = []
    started = time.monotonic()
    try:
        if args.jobs < 1:
            raise InputError(f"--jobs {args.jobs}: must be at least 1")
        pairs, findings = check_paths(args.paths, kernels, args.hw, skipped, os=args.os, inapplicable=inapplicable,
                                      jobs=args.jobs, progress=sys.stderr.isatty() and not args.quiet)
    except CheckInterrupted as e:
        # Ctrl-C: what was found so far is printed (no JUnit file: it would call the rest passed)
        for f in e.findings:
            print(f"{f.problem.upper():8} {f.path} [{f.kernel}]: {f.detail}")
        print(f"# interrupted after {e.pairs} program/kernel pairs: {len(e.findings)} problem(s) so far"
              + (" (no JUnit report written)" if args.junit else ""), flush=True)
        raise
    if args.junit:
        from pyvmfuzz import junit
        from pyvmfuzz.programs import walk_programs

        junit.write(args.junit, junit.junit_xml(walk_programs(args.paths)[0], kernels, findings,
                                                time.monotonic() - started, inapplicable))
    if skipped:
        names = ", ".join(os.path.relpath(f) for f in skipped[:5]) + (", …" if len(skipped) > 5 else "")
        print(f"# skipped {len(skipped)} files that are not programs (.txt, .vm, .bytes or no suffix): {names}")
    for p in inapplicable:
        print(f"# not applicable (another kernel's schedule; no expect line for it): {p}")
    for f in findings:
        print(f"{f.problem.upper():8} {f.path} [{f.kernel}]: {f.detail}")
    errors = [f for f in findings if f.problem == "error"]
    print(f"# checked {pairs} program/kernel pairs: {len(findings)} problem(s)"
          + (f", {len(errors)} bad input(s)" if errors else "")
          + (f", {len(inapplicable)} pair(s) not applicable" if inapplicable else ""))
    if errors:  # the check is incomplete: a bad input outranks a problem found
        more = f" (and {len(errors) - 1} more bad input(s): see the ERROR lines)" if len(errors) > 1 else ""
        sys.stderr.write(visible(f"pyvmfuzz check: {errors[0].path}: {errors[0].detail}{more}") + "\n")
        return 2
    return 1 if findings else 0


def cmd_fuzz(args) -> int:
    from pyvmfuzz.campaign import run_campaign

    if args.libfuzzer and args.libfuzzer[0] == "--":
        args.libfuzzer = args.libfuzzer[1:]
    return run_campaign(args)


def _load_program(path: str, kernel: str | None, hw: str | None) -> tuple[dict, str]:
    """(report, text program) for a text or byte-form file (bytes: the steps that ran)."""
    pf = load(path)
    rep = run_program(pf, kernel, hw)
    text = pf.text if pf.is_text else "\n".join([rep["hw"], f"kernel {rep['kernel']}"] + rep["steps"]) + "\n"
    return rep, text


def cmd_minimize(args) -> int:
    from tqdm import tqdm

    from pyvmfuzz.campaign.findings import atomic_write
    from pyvmfuzz.insight.minimize import minimize_report

    _nonempty_paths(("-o", args.output))
    if args.output == "-":  # stdout
        args.output = None
    if args.output:
        d = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(d) or not os.access(d, os.W_OK):
            raise InputError(f"{args.output}: cannot write (no such directory or not writable)")
    if not args.time > 0:
        raise InputError(f"--time must be > 0 (seconds), not {args.time:g}")
    rep, text = _load_program(args.file, args.kernel, args.hw)
    v = rep["violation"]
    if v is None:
        raise InputError(f"{args.file}: no violation under {rep['kernel']}: nothing to minimize")
    before = sum(1 for ln in text.splitlines() if ln.strip().startswith("cpu"))
    # No bar where stderr is not a terminal (CI logs): a carriage-return bar is noise there.
    bar = tqdm(total=len(rep["steps"]), desc="minimize", unit="step", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty(), leave=False)

    def progress(n):
        bar.n = len(rep["steps"]) - n
        bar.refresh()

    t0 = time.monotonic()
    small = minimize_report(rep, args.time, progress)
    # the budget spent: the result is smaller, not minimal (said, not hidden)
    spent = "" if time.monotonic() - t0 < args.time else f" (the {args.time:g} s budget ran out: --time gives more)"
    bar.close()
    witness = None
    from pyvmfuzz.campaign.witness import CORE_ONLY_EXTENDABLE, extend

    if small["violation"]["kind"] in CORE_ONLY_EXTENDABLE:
        # As a campaign does (campaign/harness.py): where does a user see it? Without this the
        # output said "internal-only: no continuation ... makes a user see it" with no search
        # made, and a saved finding's user-visible steps were cut away.
        from pyvmfuzz.oracle.check import KERNELS as ALL

        witness = extend(small, portable=ALL) or (
            extend(rep, portable=ALL) if len(rep["steps"]) > len(small["steps"]) else None)
        if witness is not None and witness["internal"] is None:  # a replaced last line shows it
            small, witness = _api.report("\n".join([witness["hw"]] + witness["steps"]) + "\n", rep["kernel"]), None
    sv = (witness or small)["violation"]
    after = len((witness or small)["steps"])
    # The form of a campaign's finding: `->` asserts the correct (oracle's) outcomes and
    # `expect` lines give every kernel's vouched verdict, so the output is a regression
    # program `check --kernel all` accepts (it wrote the violating kernel's outcomes before).
    from pyvmfuzz.campaign.findings import finding_text

    note = f"minimized by pyvmfuzz from {args.file}: {before} -> {after} steps"
    out = "".join(ln + "\n" for ln in finding_text(small, note, witness).splitlines()
                  if not ln.startswith("# replay-bytes:"))  # no .bytes beside it
    if args.output:
        atomic_write(args.output, out)
        print(f"# {args.file}: {before} -> {after} steps ({sv['kind']}){spent}, written to {args.output}")
    else:
        sys.stdout.write(out)
    sys.stderr.write(f"pyvmfuzz minimize: {before} -> {after} steps{spent}\n")
    return 0


# The core's own invariants: a run that ends in one may go on to a user-visible step (a witness).
CORE_ONLY_KINDS = ("tlb-incoherent", "use-after-free", "lost-data")

def cmd_explain(args) -> int:
    from pyvmfuzz.insight.explain import model, render_html, render_text
    from pyvmfuzz.campaign.findings import atomic_write

    _nonempty_paths(("--html", args.html))
    if args.html:  # said before the timeline, not after it (a device such as /dev/null is written through)
        d = os.path.dirname(os.path.abspath(args.html))
        special = os.path.exists(args.html) and not os.path.isfile(args.html) and not os.path.isdir(args.html)
        if not special and (os.path.isdir(args.html) or not os.path.isdir(d) or not os.access(d, os.W_OK)):
            raise InputError(f"{args.html}: cannot write (a directory, or no such directory or not writable)")
    ran, text = _load_program(args.file, args.kernel, args.hw)
    try:
        rep = _core.explain(text, args.kernel, args.hw)
    except ValueError as e:
        raise InputError.from_core(e, args.file) from None
    if rep["violation"] and rep["violation"]["kind"] in CORE_ONLY_KINDS:
        # a witness: shown on to the step where a user sees it (its internal step marked)
        try:
            rep = _core.explain(text, args.kernel, args.hw, past_internal=True)
        except ValueError:
            pass  # a later line only this schedule cannot run: the internal step ends it
    m = model(rep)
    title = os.path.basename(args.file)
    sys.stdout.write(render_text(m, title))
    # a written `-> OUTCOME` that fails is a failure here as in `run` (it said "agree", exit 0)
    for a in ran["assert_failures"]:
        print(f"# assertion failed at step {a['step']}: written {a['expected']}, observed {a['observed']}")
    if args.html:
        try:
            atomic_write(args.html, render_html(m, title))
        except OSError as e:
            raise InputError(f"{args.html}: cannot write: {e.strerror}") from None
        print(f"# html: {args.html}")
    return 1 if rep["violation"] or rep.get("internal") or ran["assert_failures"] else 0


def cmd_encode(args) -> int:
    """Text program -> byte form (what a campaign's corpus holds and libFuzzer mutates)."""
    from pyvmfuzz.campaign.findings import atomic_write
    from pyvmfuzz.programs import with_context

    _nonempty_paths(("-o", args.output))
    out = None if args.output in (None, "-") else args.output
    if out is None and sys.stdout.isatty():
        raise InputError("the byte form is binary: give -o FILE, or redirect standard output")
    pf = load(args.file)
    if not pf.is_text:
        raise InputError(f"{pf.path}: already the byte form (encode takes a text program)")
    try:
        data = _core.encode(pf.text, args.kernel, args.hw)
        facts = _core.check_text(pf.text, args.hw)
    except ValueError as e:
        raise with_context(InputError.from_core(e, pf.path), pf.text, args.kernel, args.hw) from None
    kernel = args.kernel or facts["kernel"] or "fixed"
    hw = facts["hw"].removeprefix("hw ").replace(" ", ",")
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        atomic_write(out, data)
    # decoding depends on the kernel and hardware: say which the bytes are for
    sys.stderr.write(f"pyvmfuzz encode: {pf.path}: {facts['steps']} steps, {len(data)} bytes"
                     + (f" in {out}" if out else "") + f"; replay: --kernel {kernel} --hw {hw}\n")
    return 0


def cmd_cmin(args) -> int:
    from pyvmfuzz.insight.cmin import cmin

    before, after, feats = cmin(args.dir, args.output, args.kernel, args.hw)
    print(f"# cmin: {before} -> {after} inputs, {feats} features kept (kernel {args.kernel}, {args.hw}), "
          f"in {args.output}")
    return 0


def _bench_linux(seed: int, programs: int = 100) -> None:
    """Linux beside the model, on the same random programs, in the same run."""
    import random

    from pyvmfuzz.targets import linux

    rng = random.Random(seed)
    progs = [(c, linux.random_ops(rng, c, 20)) for c in (rng.randrange(1, 5) for _ in range(programs))]
    steps = sum(len(o) for _, o in progs)
    t0 = time.perf_counter()
    bad = sum(linux.run_ops(o, c)["violation"] is not None for c, o in progs)
    lx = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c, o in progs:
        _api.report("\n".join([f"hw cpus={c}"] + o) + "\n", "fixed")
    md = time.perf_counter() - t0
    print(f"\n## Linux (this host's kernel, oracle-judged) vs the model, same {programs} programs ({steps} steps)")
    print(f"linux: {programs / lx:,.1f} programs/s, {steps / lx:,.0f} steps/s, {bad} oracle violations")
    print(f"model: {programs / md:,.0f} programs/s, {steps / md:,.0f} steps/s (run_text per program)")


def _bench_long(n: int, seed: int) -> int:
    """A long run in one process: RSS, open descriptors and threads before and after."""
    import random
    import threading

    def rss_kb() -> int:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))

    rng = random.Random(seed)
    inputs = [rng.randbytes(2 + 5 * rng.randrange(1, 33)) for _ in range(4096)]
    target = _core.FuzzTarget("fixed", "mode=pc64")
    run = target.run
    warm = min(n, 1_000_000)
    for i in range(warm):
        run(inputs[i & 4095])
    r0, fd0, th0 = rss_kb(), len(os.listdir("/proc/self/fd")), threading.active_count()
    t0 = time.perf_counter()
    for i in range(n):
        run(inputs[i & 4095])
    dt = time.perf_counter() - t0
    r1, fd1, th1 = rss_kb(), len(os.listdir("/proc/self/fd")), threading.active_count()
    print(f"# {n:,} executions after {warm:,} warm-up, {n / dt:,.0f} exec/s")
    print(f"RSS {r0:,} kB -> {r1:,} kB ({100 * (r1 - r0) / r0:+.1f}%), fds {fd0} -> {fd1}, threads {th0} -> {th1}")
    return 0


def _check_linux(args) -> int:
    """Every program clean under `fixed` must be clean on the host kernel too (oracle-judged)."""
    from pyvmfuzz.oracle.check import Finding
    from pyvmfuzz.programs import walk

    files = walk(args.paths)
    if not files:
        raise InputError(f"{', '.join(args.paths)}: no programs found")
    problems = checked = 0
    bad: list[str] = []
    skipped: list[str] = []
    started = time.monotonic()
    ran: list[str] = []  # for --junit: one testcase per program run on the host, kernel "linux"
    findings: list = []
    for path in files:
        try:  # a bad file is reported and the check goes on (exit 2 at the end), as on the model
            pf = load(path)
            if not pf.is_text:
                continue
            if re.search(r"^\s*cpu\d+\s+(\S.*\suntil\s|resume\b|ipi\b)", pf.text, re.M):
                # docs/contract.md §3.2 lines stop a kernel operation at a yield point: a real kernel
                # cannot be stopped there from user space (nor need fixed take that schedule)
                skipped.append(f"{path} (interleaved lines, docs/contract.md §3.2)")
                continue
            model = run_program(pf, "fixed", args.hw)
            if model["violation"] is not None or "mode=tagged" in model["hw"]:
                continue
        except InputError as e:
            bad.append(str(e))
            findings.append(Finding(path, "linux", "error", str(e)))
            print(f"ERROR    {e}")
            continue
        try:
            rep = _run_linux(pf, args.hw)
        except InputError as e:
            # the model ran it: a line is not applicable on Linux because an earlier outcome
            # differs by personality (docs/contract.md §4.2, e.g. a futex that blocks where DragonFly EFAULTs)
            skipped.append(f"{path} (not applicable under os linux: {e})")
            continue
        checked += 1
        ran.append(path)
        if rep["violation"] is not None:
            problems += 1
            v = rep["violation"]
            detail = f"{v['kind']}@{v['step']} (expected {v['expected']}, observed {v['observed']})"
            findings.append(Finding(path, "linux", "linux", detail))
            print(f"LINUX    {path}: {detail}")
    if args.junit:
        from pyvmfuzz import junit

        junit.write(args.junit, junit.junit_xml(ran, ["linux"], findings, time.monotonic() - started))
    for sk in skipped:
        print(f"SKIP     {sk}")
    print(f"# checked {checked} programs clean under fixed on Linux: {problems} problem(s)")
    if bad:
        more = f" (and {len(bad) - 1} more bad input(s): see the ERROR lines)" if len(bad) > 1 else ""
        sys.stderr.write(visible(f"pyvmfuzz check: {bad[0]}{more}") + "\n")
        return 2
    return 1 if problems else 0


def _bench_prev_core(args) -> None:
    """Issue 13: core steps/s on plain programs (no until/resume/ipi) against the previous
    build, side by side in one process; this build on interleaved programs; oracle ÷ core."""
    from pyvmfuzz.bench import prevcore

    path = args.prev_core or prevcore.default_path()
    if not os.path.isfile(path):
        path = None
    try:
        r = prevcore.compare(path, programs=args.prev_programs, seed=args.seed, rounds=5,
                             oracle_programs=min(args.oracle_programs, args.prev_programs))
    except ImportError as e:
        raise InputError(f"--prev-core: cannot load {path}: {e}")
    print(f"\n## Plain programs against the previous build (fixed, {args.prev_programs} programs, "
          f"{r['steps']} steps, best of 5, CPU time)")
    if r["prev"] is None:
        print("previous build not available (no .prev_core/_core.abi3.so; --prev-core PATH)")
    else:
        print(f"previous build, plain programs : {r['prev']:>12,.0f} steps/s  ({path})")
    ratio = "" if r["prev"] is None else f"  ({r['new'] / r['prev']:.2f}x previous)"
    print(f"this build, same plain programs: {r['new']:>12,.0f} steps/s{ratio}")
    if r["interleaved_prev"]:
        print(f"previous build, random programs: {r['interleaved_prev']:>12,.0f} steps/s  (interleaved, 1-4 CPUs, <= 32 lines)")
        print(f"this build, random programs    : {r['interleaved']:>12,.0f} steps/s  "
              f"({r['interleaved'] / r['interleaved_prev']:.2f}x previous)")
    else:
        print(f"this build, interleaved        : {r['interleaved']:>12,.0f} steps/s")
    print(f"this build, plain with §3.4 lines: {r['vm_lines']:>10,.0f} steps/s, without: {r['no_vm_lines']:,.0f} "
          f"({r['vm_lines'] / r['no_vm_lines']:.2f}x; the §3.4 lines are {100 * r['vm_share']:.0f}% of the first set's)")
    print("per line, a store refaulting the page then map operations (60 lines, best of 5): "
          + ", ".join(f"{k} {v:.0f} ns" for k, v in r["op_costs"].items()))
    if path is not None:
        ex = prevcore.explore_times(path)
        (gp, dp, tp), (gn, dn, tn) = ex["prev"], ex["new"]
        same = "same search" if (gp, dp) == (gn, dn) else f"DIFFERENT SEARCH: {gp:,}/{dp:,} vs {gn:,}/{dn:,}"
        print(f"explore fixed, 5 lines, 2 CPUs : previous {tp:.1f} CPU-s, this build {tn:.1f} CPU-s "
              f"({tp / tn:.2f}x faster; {gn:,} lines, {dn:,} distinct: {same})")
    print(f"oracle / core, plain           : {r['oracle_plain']:>12.0f}x")
    if isinstance(r["oracle_interleaved"], str):
        print(f"oracle / core, interleaved     : not measured: {r['oracle_interleaved']}")
    else:
        print(f"oracle / core, interleaved     : {r['oracle_interleaved']:>12.0f}x")


def _bench_diff_prev(args) -> int:
    """Issue 24: this build's reports against a previous build's on the same random programs."""
    from pyvmfuzz.bench import prevcore, prevdiff

    if not os.path.isfile(args.diff_prev):
        raise InputError(f"--diff-prev: no such file: {args.diff_prev}")
    try:
        prev = prevcore.load_prev(args.diff_prev)
    except ImportError as e:
        raise InputError(f"--diff-prev: {e}")
    names = [k for k, _ in _core.kernels()]
    # A kernel the previous build does not have has nothing to be compared with.
    prev_names = {k for k, _ in prev.kernels()}
    new_only = [k for k in names if k not in prev_names]
    kernels = args.kernels.split(",") if args.kernels else [k for k in names if k in prev_names]
    for k in kernels:
        if k not in names:
            raise InputError(f"--kernels: unknown kernel '{k}' (pyvmfuzz zoo lists them)")
        if k not in prev_names:
            raise InputError(f"--kernels: the previous build has no kernel '{k}'")
    if new_only and not args.kernels:
        print(f"# new in this build, not compared: {', '.join(new_only)}")
    programs = args.programs
    from tqdm import tqdm

    bar = tqdm(total=programs * len(kernels), unit="prog", file=sys.stderr, disable=None)
    t0 = time.monotonic()
    skip = tuple(x for x in (args.diff_skip or "").split(",") if x)
    for x in skip:
        if x not in ("features", "explain", "mutate"):
            raise InputError(f"--diff-skip: unknown comparison '{x}' (features, explain, mutate)")
    if args.diff_text and skip:
        raise InputError("--diff-skip does not apply with --diff-text (only reports are compared)")
    res = prevdiff.run(args.diff_prev, programs, args.seed, args.jobs or 1, kernels, progress=bar.update, skip=skip,
                       text=args.diff_text)
    bar.close()
    how = "as text programs decoded by the previous build" if args.diff_text else "random programs"
    print(f"## Reports against the previous build ({args.diff_prev}), {programs:,} {how} per kernel, "
          f"seed {args.seed}, {time.monotonic() - t0:.0f} s" + (f", not compared: {', '.join(skip)}" if skip else ""))
    if args.diff_text:
        print("| kernel | programs | steps | stores that now fault, reused frames read at a use-after-free | other differences |\n|---|---:|---:|---:|---:|")
        for r in res:
            print(f"| {r['kernel']} | {r['programs']:,} | {r['steps']:,} | {r['store_faults']:,} | {r['count']} |")
    else:
        print("| kernel | programs | steps | differences |\n|---|---:|---:|---:|")
        for r in res:
            print(f"| {r['kernel']} | {r['programs']:,} | {r['steps']:,} | {r['count']} |")
    bad = [r for r in res if r["count"]]
    for r in bad:
        for h, what in r["differences"]:
            print(f"DIFF {r['kernel']} {what}: {h!r}" if args.diff_text else f"DIFF {r['kernel']} {what}: {h}")
    # explore enumerates every line this build has: its counts differ once lines are added.
    ex = [] if args.diff_text else prevdiff.explore_diff(args.diff_prev, kernels)
    for line in ex:
        print(f"DIFF {line}")
    print(f"# {sum(r['count'] for r in res)} difference(s) in {sum(r['programs'] for r in res):,} programs"
          + ("" if args.diff_text else f"; explore to 4 lines on {len(kernels)} kernel(s) x 2 machines: {len(ex)} difference(s)"))
    return 1 if bad or ex else 0


def cmd_bench(args) -> int:
    """Throughput, measured side by side in one run (the machine is shared and noisy)."""
    import random

    t_start = time.time() - 1  # a plot is claimed only if written by this run
    for name in ("programs", "steps", "oracle_programs", "trials", "budget", "long", "prev_programs", "jobs"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")

    if not args.zoo:  # options that only --zoo reads: refuse them rather than ignore them
        given = [f for f, v in (("--quick", args.quick), ("--kernels", args.kernels), ("--out", args.out),
                                ("--jobs", args.jobs)) if v]
        if args.diff_prev:  # --kernels and --jobs apply to --diff-prev too
            given = [f for f in given if f not in ("--kernels", "--jobs")]
        if given:
            raise InputError(f"{', '.join(given)} only appl{'y' if len(given) > 1 else 'ies'} with --zoo")
    if args.diff_skip and not args.diff_prev:
        raise InputError("--diff-skip only applies with --diff-prev")
    if args.diff_text and not args.diff_prev:
        raise InputError("--diff-text only applies with --diff-prev")
    if args.prev_core and not os.path.isfile(args.prev_core):
        raise InputError(f"--prev-core: no such file: {args.prev_core}")
    if args.prev_core and not (args.long or args.campaign or args.finish or args.xcheck or args.zoo or args.ttf):
        from pyvmfuzz.bench import prevcore

        try:  # loaded before anything runs: a bad file refused after 39 lines of benchmark was a partial output
            prevcore.load_prev(args.prev_core)
        except ImportError as e:
            raise InputError(f"--prev-core: {e}")
    if args.long:
        return _bench_long(args.long, args.seed)
    if args.diff_prev:
        return _bench_diff_prev(args)
    if args.campaign:
        from pyvmfuzz.bench import campaign_bench

        print(campaign_bench.run(args.campaign, args.budget or 60, args.trials or 3, args.seed,
                                 progress=lambda m: sys.stderr.write(m + "\n")))
        return 0
    if args.finish:
        from pyvmfuzz.bench import finish

        litmus = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus", "litmus")
        if not os.path.isdir(litmus):
            raise InputError("--finish reads the repository's corpus/litmus: run it from a clone")
        print(finish.run(litmus))
        return 0
    if args.xcheck:
        from pyvmfuzz.bench.xcheck import measure, report

        print("## Oracle cross-check on the campaign path (harness callback, fixed, random inputs)")
        print(report(measure(seed=args.seed)))
        return 0
    if args.zoo:
        from pyvmfuzz.bench import zoobench

        trials = args.trials if args.trials else (3 if args.quick else 10)
        budget = args.budget if args.budget else (20 if args.quick else 120)
        kernels = args.kernels.split(",") if args.kernels else None
        names = [z["name"] for z in _core.zoo()]
        for k in kernels or []:
            if k not in names:
                raise InputError(f"--kernels: unknown kernel '{k}' (pyvmfuzz zoo lists them)")
        configs = args.configs.split(",") if args.configs else zoobench.CONFIGS
        for c in configs:
            if c not in zoobench.ALL_CONFIGS:
                raise InputError(f"--configs: unknown configuration '{c}' ({', '.join(zoobench.ALL_CONFIGS)})")
        out = args.out or "bench-out"
        text = zoobench.run(trials, budget, kernels, out, lambda m: sys.stderr.write(m + "\n"), configs,
                            jobs=args.jobs or 1)
        print(text)
        png = os.path.join(out, "zoo.png")
        plotted = os.path.exists(png) and os.path.getmtime(png) >= t_start
        print(f"# table: {os.path.join(out, 'zoo.md')}" + (f", plot: {png}" if plotted else ", no plot"))
        return 0
    if args.trials is None:
        args.trials = 5
    if args.budget is None:
        args.budget = 60
    if args.ttf:
        from pyvmfuzz.bench.trials import comparison, run_trials, table

        if not (1 <= args.seed and args.seed + args.trials <= 1 << 32):  # trial i: fuzz --seed SEED+i
            raise InputError(f"--seed must be 1..{(1 << 32) - args.trials} with --ttf (trial i runs fuzz --seed SEED+i)")

        configs = (args.configs or "both,branch,semantic,none").split(",")
        for c in configs:
            if c.removesuffix("@before").removesuffix("@bytes") not in ("both", "branch", "semantic", "none"):
                raise InputError(f"--configs: unknown coverage '{c}' (both, branch, semantic, none; "
                                 f"COVERAGE@before: without issue 18's throughput changes; "
                                 f"COVERAGE@bytes: libFuzzer's byte mutations only)")

        def progress(c, i, t):
            sys.stderr.write(f"trial {i + 1} {c}: {'-' if t is None else f'{t:.2f}s'}\n")

        res = run_trials(args.ttf, configs, args.trials, args.budget, args.seed, progress)
        print(table(args.ttf, res, args.budget))
        print(comparison(res, args.budget, configs[0]))
        return 0

    from pyvmfuzz import oracle
    from pyvmfuzz.oracle.check import observations

    print(f"# pyvmfuzz bench — random programs (up to {args.steps} steps, 1-4 CPUs, TLB 1-16, pc64), seed {args.seed}")
    print("\n## Rust core: decode + execute + judge, all in Rust")
    print(f"{'kernel':<18} {'programs':>9} {'steps':>10} {'violating':>9} {'programs/s':>11} {'steps/s':>11}")
    for k in KERNELS:
        t0 = time.perf_counter()
        r = _core.soak(args.programs, seed=args.seed, kernel=k, max_steps=args.steps, max_cpus=4, max_tlb=16)
        dt = time.perf_counter() - t0
        print(f"{k:<18} {r['programs']:>9} {r['steps']:>10} {r['violations']:>9} "
              f"{r['programs'] / dt:>11.0f} {r['steps'] / dt:>11.0f}", flush=True)

    print(f"\n## Core vs Python oracle on the same {args.oracle_programs} plain programs")
    print(f"{'kernel':<18} {'steps':>8} {'core steps/s':>13} {'oracle steps/s':>15} {'ratio':>8}")
    from pyvmfuzz.bench.prevcore import plain_bytes

    rng = random.Random(args.seed)
    # Plain programs (no until), comparable with the interleaved line of the previous section.
    inputs = [plain_bytes(rng, args.steps) for _ in range(args.oracle_programs)]
    for k in KERNELS:
        target = _core.FuzzTarget(k)
        reps = 0
        t0 = time.perf_counter()
        while True:  # repeat: one batch takes milliseconds, too short to time alone
            target.run_batch(inputs)
            reps += 1
            if time.perf_counter() - t0 > 0.5:
                break
        core_dt = (time.perf_counter() - t0) / reps
        traces = []
        steps = 0
        for d in inputs:
            rep = _api.report(d, k)
            steps += len(rep["steps"])
            traces.append(observations(rep))
        t0 = time.perf_counter()
        for t in traces:
            oracle.judge(t)
        oracle_dt = time.perf_counter() - t0
        print(f"{k:<18} {steps:>8} {steps / core_dt:>13.0f} {steps / oracle_dt:>15.0f} "
              f"{oracle_dt / core_dt:>7.0f}x", flush=True)

    _bench_prev_core(args)

    _bench_linux(args.seed)

    from pyvmfuzz.bench.xcheck import measure, report

    print("\n## Oracle cross-check on the campaign path (harness callback, fixed, random inputs)")
    print(report(measure(seed=args.seed)))

    try:
        from pyvmfuzz.bench.semcost import measure

        off, on = measure()
        print("\n## Semantic counters on the fuzzing path (32-step programs, FuzzTarget.run, same inputs)")
        print(f"without {off:,.0f} exec/s, with {on:,.0f} exec/s: cost {100 * (1 - on / off):.1f}%")
    except ImportError:
        print("\n(semantic counters cost: needs atheris)")
    return 0


def cmd_plot(args) -> int:
    """A campaign directory's numbers over time as one HTML page (insight.plot)."""
    from pyvmfuzz.campaign.findings import atomic_write
    from pyvmfuzz.insight import plot

    _nonempty_paths(("-o", args.output))
    try:
        runs = plot.read(args.out)
    except OSError as e:
        raise InputError(f"{args.out}: no plot data ({e.strerror}: a campaign writes plot_data.csv there)") from None
    if not runs:
        raise InputError(f"{args.out}: plot_data.csv has no rows yet")
    path = args.output or os.path.join(args.out, "plot.html")
    try:
        atomic_write(path, plot.render(args.out, runs))
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from None
    print(f"# {plot.summary(runs)}")
    print(f"# plot: {path}")
    return 0


def cmd_triage(args) -> int:
    """Group saved findings by bug (campaign.triage): one line per bug, largest first."""
    from pyvmfuzz.campaign.triage import triage

    for p in args.paths:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or directory")
    clean: list[str] = []
    groups = triage(args.paths, clean)
    for f in clean:
        sys.stderr.write(visible(f"# {f}: runs clean under its kernel: not a finding, left out") + "\n")
    if not groups:
        raise InputError(f"no saved finding in {', '.join(args.paths)} (a finding is a .txt with a kernel "
                         f"line and an expect line for that kernel)")
    if args.json:
        print(json.dumps([{"bug": g.bucket.title, "kind": g.bucket.kind, "operation": g.bucket.action,
                           "cause": list(g.bucket.cause), "findings": len(g.files),
                           "representative": g.shortest, "files": g.files} for g in groups], indent=1))
        return 0
    total = sum(len(g.files) for g in groups)
    print(f"# {total} finding(s), {len(groups)} bug(s); each bug: its shortest program, then its title")
    for g in groups:
        print(f"{len(g.files):>5}  {g.shortest}  ({g.shortest_len} step{'' if g.shortest_len == 1 else 's'})\n       {g.bucket.title}")
    return 0


def cmd_cells(args) -> int:
    from pyvmfuzz.insight.cells import corpus_cells, possible, table

    paths = args.paths
    if not paths:  # a checkout's corpus, else (an installed package) the seeds it ships
        from pyvmfuzz.campaign.supervisor import SEEDS

        paths = ["corpus"] if os.path.isdir("corpus") else [SEEDS]
    reached, skipped = corpus_cells(paths)
    print(table(reached))
    for p in skipped:
        print(f"# skipped (not applicable): {p}")
    if args.missing:
        for c in possible():
            if c not in reached:
                print("# missing: " + " ".join(c))
    return 0


def contract_path() -> str:
    """The contract as installed with the package (pyvmfuzz/docs/contract.md, a copy of the
    repository's docs/contract.md that tests keep equal)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "docs", "contract.md")


def cmd_contract(args) -> int:
    path = contract_path()
    if args.path:
        print(path)
        return 0
    try:
        with open(path, encoding="utf-8") as f:
            sys.stdout.write(f.read())
    except OSError as e:
        raise InputError(f"the installed contract is missing ({path}: {e.strerror}); reinstall pyvmfuzz")
    return 0


def cmd_zoo(args) -> int:
    import textwrap

    print(f"{'kernel':<22} {'hardware':<12} {'interleaved':<12} {'expected':<9} commit(s) / story")
    for z in _core.zoo():
        expected = "search" if z["by_search"] else "found" if z["expect_found"] else "clean"
        inter = "yes" if z["interleaved"] else "no"
        print(f"{z['name']:<22} {z['hw']:<12} {inter:<12} {expected:<9} {z['commits']}")
        for ln in textwrap.wrap(z["story"], 70):
            print(" " * 57 + ln)
    return 0


def cmd_explore(args) -> int:
    from pyvmfuzz.insight.explore import cmd_explore as run

    try:
        return run(args)
    except ValueError as e:
        raise InputError.from_core(e) from None


def cmd_necessity(args) -> int:
    from pyvmfuzz.insight.explore import cmd_necessity as run

    return run(args)


def cmd_demo(args) -> int:
    from pyvmfuzz.demo import run_demo

    if args.fixed_time < 1:  # checked here: fuzz's own check came after both 385c96e4 campaigns
        raise InputError("--fixed-time must be at least 1 (seconds)")

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pyvmfuzz", description="Fuzz kernel VM interleavings against a multi-CPU MMU model.",
                epilog="Exit status: 0 clean (or done), 1 violation found, 2 bad usage or input, 130 interrupted "
                       "(Ctrl-C) with nothing found. Program format and exit codes: docs/program-format.md. "
                       "The contract every verdict is judged by: docs/contract.md, also `pyvmfuzz contract`.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("run", help="execute programs, print the trace and verdict",
                       description="Execute programs, print the trace and the verdict. The verdict is the one of the "
                                   "program's personality (docs/contract.md §4.2): under os dragonfly (the default) the Rust "
                                   "core's; under os linux the Python oracle's on the core's observations (the core "
                                   "has no personality and judges as DragonFly; its own verdict is shown on a comment "
                                   "line where it differs), except that a core-only invariant (tlb-incoherent, "
                                   "use-after-free, file-corruption, panic) the oracle finds nothing before stays "
                                   "the verdict. The exit status and --json's verdict/violation follow that one "
                                   "verdict.",
                       epilog="Exit status: 0 clean; 1 a violation (under the personality's verdict) or an "
                              "assertion not met; 2 bad usage or input.")
    r.add_argument("files", nargs="+", metavar="FILE", help="text (.txt) or byte-form program ('-': standard input)")
    r.add_argument("--kernel", type=_kernel, default=None, help="kernel variant (default: the program's, else fixed)")
    r.add_argument("--hw", action=_HwKeys, type=_hw, default=None, help="hardware keys, e.g. cpus=3,tlb=4,mode=tagged")
    r.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    r.add_argument("--target", choices=["model", "linux"], default="model",
                   help="model (default) or linux: real processes on this host, judged by the oracle")
    r.add_argument("--os", choices=["dragonfly", "linux"], default=None,
                   help="personality that gives the verdict (docs/contract.md §4.2; default: the program's `os` line, a "
                        ".bytes file's sidecar, else dragonfly); linux: the oracle's verdict counts")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check", help="differential check: core vs oracle verdicts, and expect lines",
                       description="Runs every program on the core and judges its trace with the independent "
                                   "oracle (docs/contract.md §4): both verdicts must agree, and each `expect` "
                                   "line for the kernel must hold. With --target linux: this host's kernel, "
                                   "judged by the oracle.",
                       epilog="Exit status: 0 every pair agrees; 1 a problem (a disagreement, an expect line "
                              "that does not hold); 2 bad usage or input; 130 interrupted (what was found so far "
                              "is printed). The contract: docs/contract.md (`pyvmfuzz contract`).")
    c.add_argument("paths", nargs="+", metavar="PATH",
                   help="program files or directories (walked; FIFOs and devices in them skipped); '-': standard input")
    c.add_argument("--kernel", type=lambda s: s if s == "all" else _kernel(s), default="fixed",
                   help="kernel variant or 'all' (default: fixed)")
    c.add_argument("--hw", action=_HwKeys, type=_hw, default=None, help="hardware keys overriding the programs' headers")
    c.add_argument("--junit", default=None, metavar="FILE",
                   help="also write JUnit XML for CI: one testcase per program/kernel pair")
    c.add_argument("--target", choices=["model", "linux"], default="model",
                   help="linux: programs clean under fixed must be clean on this host's kernel")
    c.add_argument("--os", choices=["dragonfly", "linux"], default=None,
                   help="oracle personality (docs/contract.md §4.2; default: each program's `os` line, else dragonfly)")
    c.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="check the files in N worker processes (default 1; the report is the same, in file order)")
    c.add_argument("--quiet", action="store_true", help="no progress bar (it shows only on a terminal)")
    c.set_defaults(func=cmd_check)

    f = sub.add_parser("fuzz", help="coverage-guided campaign (atheris/libFuzzer, Rust coverage)",
                       description="Coverage-guided campaign. One finding per bug (docs/findings.md): each is "
                                   "minimized, confirmed by the oracle and saved as text + bytes in --crashes, titled "
                                   "by its kind, operation and the kernel's deviation; later inputs of a known bug are "
                                   "counted. The campaign starts with a burst of the Rust random loops (at most 2 s and 5% of "
                                   "--time: the random baseline's loop from --seed and random text programs, alone for "
                                   "0.2 s, then beside libFuzzer; PYVMFUZZ_RANDOM_BURST=0: none), whose find is saved as "
                                   "any other. Time to first violation counts from the search's start. "
                                   "Flags after -- go to libFuzzer.",
                       epilog="Exit status: 0 budget spent, no new violation; 1 a new violation found (also when "
                              "stopped after one); 2 bad usage, the output directory in use by another campaign "
                              "(its pid is named), libFuzzer refused its flags or failed, or a write failed (disk "
                              "full: one line, then the summary) before any new violation; 130 interrupted (Ctrl-C, "
                              "SIGTERM, SIGHUP) before any new violation — the corpus and any findings are kept. "
                              "New: saved by this campaign; findings already in the crashes directory (a resumed "
                              "campaign) are counted as known, not listed, and never make the status 1.")
    f.add_argument("--kernel", type=_kernel, default="fixed", help="kernel variant (default fixed; `pyvmfuzz zoo` lists them; KERNEL+ACTION / KERNEL-no-ACTION switches a `necessity` safety action on / off: docs/contract.md §3.5)")
    f.add_argument("--hw", action=_HwKeys, type=_hw_over("mode=pc64"), default="mode=pc64",
                   help="hardware keys fixed for the campaign; the rest come from the input (default mode=pc64)")
    f.add_argument("--time", type=int, default=60, help="budget in seconds (0: until Ctrl-C; default 60)")
    f.add_argument("--out", default="fuzz-out", help="campaign directory: log, findings log (default fuzz-out)")
    f.add_argument("--corpus", default=None, help="corpus directory, resumed if it exists (default OUT/corpus)")
    f.add_argument("--crashes", default=None, help="findings directory (default OUT/crashes)")
    f.add_argument("--jobs", type=int, default=1, help="parallel workers (libFuzzer -fork=N)")
    f.add_argument("--seed", type=int, default=None,
                   help="libFuzzer -seed, 1..4294967295 (default: a fresh random seed, printed; fork-mode jobs derive "
                        "their own from it)")
    f.add_argument("--max-steps", type=int, default=32, help="longest program, in steps (default 32)")
    f.add_argument("--coverage", choices=["both", "branch", "semantic", "none"], default="semantic",
                   help="semantic (default; measured best): the core's VM-situation counters "
                        "(rust/src/features.rs); branch: a SanitizerCoverage build of the Rust core (built "
                        "with cargo on first use); both; none: no feedback from the core")
    f.add_argument("--mutator", choices=["records", "bytes"], default=None,
                   help="records (default): whole-line mutations of the byte form (append, insert, erase, "
                        "copy, swap, one field; rust/src/mutate.rs), a third left to libFuzzer's own; "
                        "bytes: libFuzzer's byte mutations only")
    f.add_argument("--target", choices=["model", "linux"], default="model",
                   help="linux: random programs on this host's kernel, judged by the oracle (slower)")
    f.add_argument("--cross-check", type=int, default=None, metavar="N",
                   help="judge every Nth clean run with the Python oracle too (0: off; default: adaptive, "
                        "the oracle is given 1%% of the wall time and takes 1-2%%: bench --xcheck)")
    f.add_argument("--stop-on-find", action="store_true", help="end the campaign at the first confirmed user-visible violation")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.add_argument("libfuzzer", nargs=argparse.REMAINDER, help="-- then libFuzzer flags")
    f.set_defaults(func=cmd_fuzz)

    mn = sub.add_parser("minimize", help="minimize a violating program (1-minimal, simpler arguments)",
                        epilog="Exit status: 0 minimized (a budget that ran out is said); 2 bad input, or the "
                               "program does not violate. The contract: docs/contract.md (`pyvmfuzz contract`).")
    mn.add_argument("file", metavar="FILE", help="text or byte-form program that violates ('-': standard input)")
    mn.add_argument("-o", "--output", default=None, help="write the minimized program here (else, or '-': stdout)")
    mn.add_argument("--kernel", type=_kernel, default=None, help="kernel (default: the program's, else fixed)")
    mn.add_argument("--hw", action=_HwKeys, type=_hw, default=None, help="hardware keys overriding the program's header")
    mn.add_argument("--time", type=float, default=30.0, help="time budget in seconds (default 30)")
    mn.add_argument("--quiet", action="store_true", help="no progress bar")
    mn.set_defaults(func=cmd_minimize)

    ex = sub.add_parser("explain", help="per-CPU timeline with PTE/TLB/pm_active state at each step",
                        epilog="Exit status: 0 the program runs clean; 1 it violates (or an assertion fails); "
                               "2 bad usage or input. The contract: docs/contract.md (`pyvmfuzz contract`).")
    ex.add_argument("file", metavar="FILE", help="text or byte-form program ('-': standard input)")
    ex.add_argument("--kernel", type=_kernel, default=None, help="kernel (default: the program's, else fixed)")
    ex.add_argument("--hw", action=_HwKeys, type=_hw, default=None, help="hardware keys overriding the program's header")
    ex.add_argument("--html", default=None, metavar="OUT", help="also write a self-contained HTML page")
    ex.set_defaults(func=cmd_explain)

    b = sub.add_parser("bench", help="throughput (core, oracle, Linux), time-to-find trials, the zoo benchmark")
    b.add_argument("--programs", type=int, default=200_000, help="programs per kernel (default 200000)")
    b.add_argument("--steps", type=int, default=32, help="max steps per program (default 32)")
    b.add_argument("--ttf", type=_kernel, default=None, metavar="KERNEL",
                   help="instead: time-to-first-violation campaigns against KERNEL per coverage configuration")
    b.add_argument("--configs", default=None,
                   help="--ttf: coverage configurations (default both,branch,semantic,none; "
                        "COVERAGE@bytes: libFuzzer's byte mutations only, COVERAGE@before: without issue "
                        "18's throughput changes); "
                        "--zoo: atheris,atheris-nocov,random,hypothesis (default these four), atheris-bytes "
                        "(libFuzzer's byte mutations only), pct (the PCT random loop: docs/explore.md), "
                        "atheris-no-vm-seed (without the §3.4 seed, to measure it)")
    b.add_argument("--trials", type=int, default=None,
                   help="trials per configuration (--ttf: 5; --zoo: 10, --quick 3)")
    b.add_argument("--budget", type=int, default=None, help="seconds per trial (--ttf: 60; --zoo: 120, --quick 20)")
    b.add_argument("--long", type=int, default=None, metavar="N",
                   help="instead: N executions in one process; RSS, fd and thread growth")
    b.add_argument("--zoo", action="store_true",
                   help="instead: the zoo benchmark (atheris, atheris without coverage, random, Hypothesis)")
    b.add_argument("--finish", action="store_true",
                   help="instead: how often the record-aware mutator finishes each litmus witness from its "
                        "prefix (20,000 mutants each), biased and uniform new lines side by side")
    b.add_argument("--xcheck", action="store_true",
                   help="instead: exec/s of the campaign callback with the default oracle cross-check off and on")
    b.add_argument("--campaign", type=_kernel, nargs="?", const="fixed", default=None, metavar="KERNEL",
                   help="instead: a --budget (60) s campaign on KERNEL (fixed), then its corpus through the empty "
                        "harness, FuzzTarget.run without and with semantic counters, the harness without and with them "
                        "(--trials rounds, 3)")
    b.add_argument("--quick", action="store_true", help="with --zoo: 3 trials of 20 s")
    b.add_argument("--kernels", default=None, help="with --zoo: only these kernels (comma-separated)")
    b.add_argument("--jobs", type=int, default=None,
                   help="with --zoo: trials run at once, one process each (default 1; seeds do not depend on it)")
    b.add_argument("--out", default=None, help="with --zoo: where zoo.md and zoo.png go (default bench-out)")
    b.add_argument("--oracle-programs", type=int, default=2000, help="programs for the oracle comparison")
    b.add_argument("--diff-prev", default=None, metavar="PATH",
                   help="instead: run --programs random programs per kernel (half interleaved, 1-8 CPUs, both "
                        "TLB modes) on this build and on the build at PATH, loaded side by side; every report, "
                        "semantic feature set and (1 in 50) explain must be equal, and explore's counts and "
                        "witness to 4 lines (exit 1 on a difference; --kernels, --jobs apply)")
    b.add_argument("--diff-text", action="store_true",
                   help="with --diff-prev: against a build whose byte form differs, run the programs the "
                        "previous build decodes as text on both and compare traces and verdicts; a store that "
                        "now faults through a stale load-filled entry (docs/contract.md §3.4) is counted apart")
    b.add_argument("--diff-skip", default=None, metavar="LIST",
                   help="with --diff-prev: comparisons to leave out where a change meant them to differ "
                        "(features, explain, mutate; comma-separated)")
    b.add_argument("--prev-core", default=None, metavar="PATH",
                   help="previous build's _core.abi3.so for the plain-program comparison "
                        "(default .prev_core/_core.abi3.so when present)")
    b.add_argument("--prev-programs", type=int, default=5000,
                   help="plain programs for the previous-build comparison (default 5000)")
    b.add_argument("--seed", type=int, default=1)
    b.set_defaults(func=cmd_bench)

    ce = sub.add_parser("cells", help="which (operation x page x process x fork x hw) cells programs reach",
                        epilog="Exit status: 0; 2 bad usage or input (a program that does not parse or names a "
                               "CPU beyond its header's; a line that cannot run when reached is skipped, said). "
                               "The contract: docs/contract.md (`pyvmfuzz contract`).")
    ce.add_argument("paths", nargs="*", default=[], metavar="PATH",
                    help="programs (text or byte form) or directories (default: ./corpus, else the "
                         "package's seed programs)")
    ce.add_argument("--missing", action="store_true", help="also list the possible cells no program reaches")
    ce.set_defaults(func=cmd_cells)

    pl = sub.add_parser("plot", help="a campaign's exec/s, coverage, corpus and findings over time (HTML)",
                        description="Draws OUT/plot_data.csv, the row a campaign appends every 2 s (as afl-plot "
                                    "does afl's plot_data), as one self-contained HTML page; a resumed campaign's "
                                    "rows are another line. Exit 0; 2 without plot data. The contract: docs/contract.md (`pyvmfuzz contract`).")
    pl.add_argument("out", metavar="OUT", help="the campaign directory (fuzz --out)")
    pl.add_argument("-o", "--output", default=None, metavar="FILE", help="the page (default OUT/plot.html)")
    pl.set_defaults(func=cmd_plot)

    tr = sub.add_parser("triage", help="group saved findings by bug (the kernel's deviation from fixed)",
                        description="Groups saved findings (a crashes directory, or .txt files) by root cause: the "
                                    "safety actions the kernel lacks that alone make `fixed` fail the same program "
                                    "(what `necessity` would name), whatever symptom shows it; without a deviation "
                                    "(a model bug) the kind and operation, a model panic by its assertion. One line "
                                    "per bug, largest first, with its shortest program (docs/findings.md). Campaigns "
                                    "save one finding per bug already; this groups older or merged directories. "
                                    "Each finding is replayed under its kernel first (one that runs clean is left "
                                    "out, with a note). Exit 0; 2 when no finding is found or a file does not load. "
                                    "The contract: docs/contract.md (`pyvmfuzz contract`).")
    tr.add_argument("paths", nargs="+", metavar="PATH", help="finding .txt files or directories of them")
    tr.add_argument("--json", action="store_true", help="one JSON list of bugs")
    tr.set_defaults(func=cmd_triage)

    z = sub.add_parser("zoo", help="the kernel variants: story, hardware, expected verdict",
                       epilog="Exit status: 0. The variants: docs/contract.md §3.3-§3.5 (`pyvmfuzz contract`).")
    z.set_defaults(func=cmd_zoo)

    ct = sub.add_parser("contract", help="print the contract verdicts are judged by (docs/contract.md, installed with the package)",
                        epilog="Exit status: 0; 2 when the installed copy cannot be read.")
    ct.add_argument("--path", action="store_true", help="print where the installed copy is instead")
    ct.set_defaults(func=cmd_contract)

    d = sub.add_parser("demo", help="fuzz the 385c96e4 kernels until the bugs appear, minimize, explain",
                       epilog="Exit status: 0 the fixed campaign ran clean; 1 it found a violation; 2 bad usage "
                              "(a 385c96e4 kernel not found in its 60 s is said in the story). The contract: docs/contract.md (`pyvmfuzz contract`).")
    d.add_argument("--out", default="demo-out", help="where campaigns and findings go (default demo-out)")
    d.add_argument("--fixed-time", type=int, default=20, help="budget for the clean fixed campaign (default 20s)")
    d.add_argument("--coverage", choices=["both", "branch", "semantic", "none"], default="semantic",
                   help="coverage for the demo campaigns (default semantic: no extra build)")
    d.set_defaults(func=cmd_demo)

    xp = sub.add_parser("explore", help="every program up to N lines, exhaustively: the shortest violation or a certificate",
                        epilog="Exit status: 0 no violation up to N lines (or up to where --time stopped it, "
                               "said); 1 a violation (printed, saved in --out); 2 bad usage or input; 130 "
                               "interrupted. Method and certificates: docs/explore.md. The contract: docs/contract.md (`pyvmfuzz contract`).")
    xp.add_argument("--kernel", type=_kernel, default="fixed", help="kernel variant (default fixed; `pyvmfuzz zoo` lists them; KERNEL+ACTION / KERNEL-no-ACTION switches a `necessity` safety action on / off: docs/contract.md §3.5)")
    xp.add_argument("--hw", action=_HwKeys, type=_hw, default=None, help="hardware keys, e.g. cpus=2,mode=tagged")
    xp.add_argument("--cpus", type=int, default=None, help="number of CPUs (same as --hw cpus=N)")
    xp.add_argument("--depth", type=int, required=True, metavar="N", help="program length bound (lines)")
    xp.add_argument("--time", type=float, default=0.0, metavar="S", help="stop after S seconds, keeping the deepest bound proved")
    xp.add_argument("--stops", type=int, default=None, metavar="K",
                    help="at most K stops per program (lines with `until` that leave their op in flight, "
                         "`resume until` included): long programs with few preemptions; a certificate then "
                         "covers those programs only (docs/explore.md)")
    xp.add_argument("--pages", default=None, help="pages programs use (default data0,text0,shm0)")
    xp.add_argument("--values", default=None, help="values stores write (default 1)")
    xp.add_argument("--vm", action="store_true",
                    help="also the lines of docs/contract.md §3.4 over the pages: munmap, mmap, msync, mremap "
                         "between them, pageout of each live process's page from any CPU (the state space grows)")
    xp.add_argument("--out", default="explore-findings",
                    help="directory the shortest violation is saved in, as a finding (default explore-findings)")
    xp.add_argument("--no-save", action="store_true", help="do not save the violation")
    xp.add_argument("--max-states", type=int, default=30_000_000, metavar="N",
                    help="states the hash table keeps (default 30000000, about 1-2 GB); past it states are "
                         "explored again, which is sound but slower: raise it where memory allows")
    xp.add_argument("--one-pass", action="store_true",
                    help="search N lines in one depth-first pass, not 1, 2, ..., N: it proves the same "
                         "certificate, skips the shallower passes' work and may meet a violation sooner, "
                         "but that violation is no longer than N, not always a shortest (docs/explore.md)")
    xp.add_argument("--no-hash", action="store_true", help="no state hashing (soundness checks)")
    xp.add_argument("--no-por", action="store_true", help="no partial-order reduction (soundness checks)")
    xp.add_argument("--no-symmetry", action="store_true",
                    help="do not merge states that differ only in the CPUs' numbers (soundness checks; docs/explore.md)")
    xp.set_defaults(func=cmd_explore)

    ne = sub.add_parser("necessity", help="switch off each safety action in turn: which are necessary, on pc64 and tagged",
                        description="Switch off each safety action of the base kernel in turn and report which are "
                                    "necessary (with the shortest witness) and which no program up to N lines needs "
                                    "(docs/contract.md §5). Exit 0: the table; 1: the base kernel itself is not clean up to N "
                                    "lines on pc64 (the table is still printed); 2: bad input; 130: interrupted.")
    ne.add_argument("--kernel", type=_kernel, default="fixed", help="base kernel (default fixed)")
    ne.add_argument("--depth", type=int, default=4, metavar="N", help="explore bound per action (default 4)")
    ne.add_argument("--time", type=float, default=10.0, metavar="S", help="deeper exploration per action and hardware (default 10 s)")
    ne.add_argument("--random", type=float, default=2.0, metavar="S", help="then random search per action and hardware (default 2 s)")
    ne.add_argument("--seed", type=int, default=1, help="random search seed")
    ne.add_argument("--vm", action="store_true",
                    help="explore docs/contract.md §3.4's lines too (munmap, mmap, mremap, msync, pageout) over "
                         "pages data0,text0,shm0,file0: what the actions of §3.4 need (the state space grows)")
    ne.add_argument("--actions", default=None, metavar="LIST",
                    help="only these safety actions (comma-separated; default all)")
    ne.set_defaults(func=cmd_necessity)

    en = sub.add_parser("encode", help="encode a text program to the byte form (a campaign corpus input)",
                        description="Encode a text program to the byte form, which decodes back to it under the "
                                    "same kernel and hardware (they are named on stderr). FILE '-' is standard "
                                    "input; the bytes go to -o OUT, or to standard output ('-o -', or no -o, when "
                                    "it is not a terminal).",
                        epilog="Exit status: 0 encoded; 2 bad usage or input (a line not applicable when reached "
                               "is named with the state that refuses it). The contract: docs/contract.md (`pyvmfuzz contract`).")
    en.add_argument("file", metavar="FILE", help="text program ('-': standard input)")
    en.add_argument("-o", "--output", default=None, metavar="OUT", help="write the bytes here ('-': stdout)")
    en.add_argument("--kernel", type=_kernel, default=None, help="kernel (default: the program's, else fixed)")
    en.add_argument("--hw", action=_HwKeys, type=_hw, default=None, help="hardware keys overriding the program's header")
    en.set_defaults(func=cmd_encode)

    cm = sub.add_parser("cmin", help="keep a small subset of a corpus with the same coverage (greedy set cover)",
                        description="Keep a small subset of a corpus with the same coverage (greedy set cover). "
                                    "Inputs may be text or byte form; the output is the byte form (text programs "
                                    "encoded under --kernel and --hw), each named by the SHA-1 of its bytes, "
                                    "written to a temporary directory and renamed to -o once complete.",
                        epilog="Exit status: 0; 2 bad usage or input (an -o that exists and is not empty). The contract: docs/contract.md (`pyvmfuzz contract`).")
    cm.add_argument("dir", metavar="DIR", help="corpus directory (text or byte-form inputs)")
    cm.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory (new or empty)")
    cm.add_argument("--kernel", type=_kernel, default="fixed",
                    help="kernel the inputs are decoded under, as the campaign's (default: fixed)")
    cm.add_argument("--hw", action=_HwKeys, type=_hw_over("mode=pc64"), default="mode=pc64",
                    help="hardware keys over the default mode=pc64 (as the campaign's)")
    cm.set_defaults(func=cmd_cmin)
    return p


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pyvmfuzz")
    except Exception:  # running from a bare source tree
        return "unknown"


def _stdout_gone() -> int:
    """The reader of stdout went away (`| head`): that is the reader's choice, not an error.
    Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


def _not_applicable_context(e: InputError) -> None:
    """After the one-line error about a line not applicable when reached: the trace up to it
    and the state that refuses it, on further stderr lines (the first line stays the error)."""
    from pyvmfuzz.programs import not_applicable_context

    try:
        lines = not_applicable_context(e)
    except Exception:  # noqa: BLE001 -- the error line is out; the context is a courtesy
        return
    for ln in lines:
        sys.stderr.write(visible(ln) + "\n")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except BrokenPipeError:  # --help | head
        return _stdout_gone()
    except SystemExit as e:  # --help, --version: flush here too
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_gone()
        raise
    try:
        rc = args.func(args)
        sys.stdout.flush()  # here, where a broken pipe is caught, not at interpreter exit
        return rc
    except BrokenPipeError:
        return _stdout_gone()
    except InputError as e:
        # escaped: a newline in a file name made the one error line two
        sys.stderr.write(f"pyvmfuzz {args.cmd}: {visible(str(e))}\n")
        _not_applicable_context(e)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"pyvmfuzz {args.cmd}: interrupted\n")
        return 130
    except OSError as e:  # an unwritable output, a vanished file: still one line, exit 2
        where = f"{e.filename}: " if e.filename else ""
        sys.stderr.write(visible(f"pyvmfuzz {args.cmd}: {where}{e.strerror or e}") + "\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
