"""Differential judgement: the Rust core's verdict against the Python oracle's, on the same
observations. Used by `pyvmfuzz check` (CI) and by campaigns to confirm findings."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

from pyvmfuzz import _core
from pyvmfuzz import api as _api

from pyvmfuzz import oracle
from pyvmfuzz.programs import InputError, load, run as run_program, walk_programs



def pf_kernel(pf) -> str | None:
    """The program's own `kernel` header line, if any (text programs only)."""
    if not pf.is_text:
        return None
    for line in pf.text.splitlines():
        toks = line.split("#", 1)[0].split()
        if len(toks) == 2 and toks[0] == "kernel":
            return _canonical(toks[1])
        if toks and toks[0].startswith("cpu"):
            return None
    return None


def _canonical(name: str) -> str:
    """A kernel's canonical name (a `KERNEL+ACTION` variant in one order); as written when it
    names none (the run reports that)."""
    try:
        return _core.kernel_name(name)
    except ValueError:
        return name

CORE_ONLY = frozenset({"tlb-incoherent", "use-after-free", "file-corruption", "lost-data", "panic"})
KERNELS = [name for name, _ in _core.kernels()]


def observations(rep: dict) -> str:
    """The run's observations as a trace for the oracle (a step that panicked has none)."""
    lines = [rep["hw"]]
    for op, out in zip(rep["steps"], rep["trace"]):
        if out == "panic":
            break
        lines.append(f"{op} -> {out}")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    return "clean" if v is None else f"{v[0]}@{v[1]}"


@dataclass
class Judgement:
    core: tuple[str, int] | None
    oracle: tuple[str, int] | None
    agree: bool
    oracle_violation: oracle.Violation | None

    def describe(self) -> str:
        return f"core={_fmt(self.core)} oracle={_fmt(self.oracle)}"


def program_os(text: str | None) -> str | None:
    """The personality a text program's `os` header names (docs/contract.md §4.2), or None."""
    for raw in (text or "").splitlines():
        toks = raw.split("#", 1)[0].split()
        if not toks:
            continue
        if toks[0] == "os" and len(toks) == 2:
            return toks[1]
        if toks[0].startswith("cpu"):
            break
    return None


def judge_report(rep: dict, os: str | None = None) -> Judgement:
    """Do the core and the oracle agree on this run? For a core-only kind (an internal
    invariant) the oracle must find nothing wrong up to and including that step.
    `os` is the oracle's personality (docs/contract.md §4.2; None: dragonfly); the core has none."""
    v = rep["violation"]
    core = None if v is None else (v["kind"], v["step"])
    try:
        ov = oracle.judge(observations(rep), os=os)
    except oracle.TraceError as e:  # the oracle could not follow the run: a disagreement
        return Judgement(core, ("trace-error", 0), False, oracle.Violation("trace-error", 0, "", str(e)))
    orc = None if ov is None else (ov.kind, ov.step)
    if core is not None and core[0] in CORE_ONLY:
        agree = orc is None
    else:
        agree = core == orc
    return Judgement(core, orc, agree, ov)


def confirm(rep: dict) -> Judgement:
    """Confirm a violation the core reported (campaigns): a violation the oracle does not
    confirm is a model disagreement, to be reported apart from kernel bugs."""
    return judge_report(rep)


class CleanSampler:
    """Cross-check a fraction of clean runs with the oracle (deterministic per seed)."""

    def __init__(self, rate: float, seed: int = 0):
        self.rate = rate
        self.rng = random.Random(seed)
        self.checked = 0
        self.disagreements: list[tuple[dict, Judgement]] = []

    def maybe_check(self, rep: dict) -> Judgement | None:
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return None
        self.checked += 1
        j = judge_report(rep)
        if not j.agree:
            self.disagreements.append((rep, j))
        return j


def _witness_problem(pf, kernel: str, hw: str | None, want: tuple[str, int]) -> str | None:
    """A second, later `expect KERNEL KIND STEP` after a core-only first violation (a saved
    witness, issue 15): run on past the internal invariant (the core's run_past_internal);
    its first user-visible violation must be `want`, and the oracle must report exactly that
    on the observations. None when it holds, else what went wrong."""
    if not pf.is_text:
        return f"expected {_fmt(want)} past the internal violation: only text programs carry it"
    try:
        rep = _api.report(pf.text, kernel, hw, past_internal=True)
    except ValueError as e:
        return f"expected {_fmt(want)} past the internal violation: {e}"
    v = rep["violation"]
    got = None if v is None else (v["kind"], v["step"])
    if got != want:
        return f"expected {_fmt(want)} past the internal violation, core gave {_fmt(got)}"
    if want[0] in CORE_ONLY:
        return None
    try:
        ov = oracle.judge(observations(rep))
    except oracle.TraceError as e:
        return f"oracle cannot follow the witness: {e}"
    if ov is None or (ov.kind, ov.step) != want:
        return f"expected {_fmt(want)} past the internal violation; the oracle gave {_fmt(None if ov is None else (ov.kind, ov.step))}"
    return None


@dataclass
class Finding:
    path: str
    kernel: str
    problem: str  # "disagree", "expect", "assert"; "error": a bad input (kernel "-" when unreadable)
    detail: str


def _expected_kernels(pf) -> set[str]:
    """The kernels a text program has `expect` lines for."""
    if not pf.is_text:
        return set()
    return {_canonical(ln.split()[1]) for ln in pf.text.splitlines() if ln.startswith("expect ") and len(ln.split()) > 1}


def _runs_under_reference(pf, hw) -> bool:
    """The program runs under its reference kernel (its `kernel` line, else fixed): then an
    input error under another kernel is that kernel's schedule (a line not applicable in the
    state it reached: docs/contract.md §3.2), not a malformed program."""
    try:
        run_program(pf, pf_kernel(pf) or "fixed", hw)
    except InputError:
        return False
    return True


def check_paths(paths: list[str], kernels: list[str], hw: str | None = None,
                skipped: list[str] | None = None, os: str | None = None,
                inapplicable: list[str] | None = None, jobs: int = 1,
                progress: bool = False) -> tuple[int, list[Finding]]:
    """(number of program/kernel pairs checked, findings). A bad file (empty, oversized, not
    parsing, not applicable) is an "error" finding and the check goes on; files under a
    directory that are not programs (`programs.is_program_name`) are appended to `skipped`.
    A program with docs/contract.md §3.2 schedule lines may be not applicable under a kernel whose
    schedule differs (an op that paused under one kernel completes under another, and the
    `resume` after it has nothing to resume; a thread another kernel left blocked cannot be
    switched to): when it runs under its reference kernel (its `kernel` line, else fixed), a
    pair under a kernel that is neither that one nor named by one of its `expect` lines (fixed
    included: a finding's race may need a schedule `fixed`'s locks forbid) is appended to
    `inapplicable` ("PATH [KERNEL]: why") and not counted, rather than an error.
    Raises InputError when nothing names a program. `os` overrides each program's `os`
    header for the oracle (docs/contract.md §4.2). `jobs` > 1: the files in that many worker
    processes (results in file order, as with one); `progress`: a bar on stderr."""
    files, skip = walk_programs(paths)
    if skipped is not None:
        skipped.extend(skip)
    if not files:
        raise InputError(f"{', '.join(paths)}: no programs found")
    findings: list[Finding] = []
    pairs = [0]  # checked so far: what a Ctrl-C reports
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="file", desc="check", file=sys.stderr, leave=False)
    try:
        if jobs <= 1:
            for path in files:
                _check_files([path], kernels, hw, os, inapplicable, findings, pairs)
                if bar is not None:
                    bar.update(1)
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=jobs) as ex:
                try:
                    work = [(p, kernels, hw, os) for p in files]
                    for f, n, inap in ex.map(_check_one, work, chunksize=max(1, min(16, len(files) // (4 * jobs)))):
                        findings += f
                        pairs[0] += n
                        if inapplicable is not None:
                            inapplicable += inap
                        if bar is not None:
                            bar.update(1)
                except KeyboardInterrupt:
                    ex.shutdown(wait=False, cancel_futures=True)
                    raise
    except KeyboardInterrupt:
        raise CheckInterrupted(pairs[0], findings) from None
    finally:
        if bar is not None:
            bar.close()
    return pairs[0], findings


def _check_one(work) -> tuple[list[Finding], int, list[str]]:
    """One file's check in a worker process (check_paths with jobs > 1)."""
    path, kernels, hw, os = work
    findings: list[Finding] = []
    inapplicable: list[str] = []
    pairs = [0]
    _check_files([path], kernels, hw, os, inapplicable, findings, pairs)
    return findings, pairs[0], inapplicable


class CheckInterrupted(KeyboardInterrupt):
    """Ctrl-C during `check_paths`: what was checked before it (`.pairs`, `.findings`)."""

    def __init__(self, pairs: int, findings: list[Finding]):
        super().__init__()
        self.pairs, self.findings = pairs, findings


def _check_files(files, kernels, hw, os, inapplicable, findings: list[Finding], pairs: list[int]) -> None:
    for path in files:
        try:
            pf = load(path)
        except InputError as e:
            findings.append(Finding(path, "-", "error", str(e).removeprefix(f"{path}: ")))
            continue
        ks = kernels
        if set(KERNELS) <= set(kernels):
            # --kernel all: also the `KERNEL+ACTION` variants the file names (its expect lines
            # hold under them too)
            own = ({pf_kernel(pf)} | _expected_kernels(pf)) - set(kernels) - {None}
            ks = kernels + sorted(own)
        for k in ks:
            try:
                rep = run_program(pf, k, hw)
            except InputError as e:
                why = str(e).removeprefix(f"{path}: ")
                if (k != (pf_kernel(pf) or "fixed") and k not in _expected_kernels(pf)
                        and _runs_under_reference(pf, hw)):
                    if inapplicable is not None:
                        inapplicable.append(f"{path} [{k}]: {why}")
                    continue
                findings.append(Finding(path, k, "error", why))
                continue
            pairs[0] += 1
            j = judge_report(rep, os or program_os(pf.text if pf.is_text else None))
            if not j.agree:
                detail = j.describe()
                if j.oracle_violation is not None:
                    ov = j.oracle_violation
                    detail += f" (oracle: expected {ov.expected}, observed {ov.observed})"
                findings.append(Finding(path, k, "disagree", detail))
            mine = [(kind, step) for ek, kind, step in rep["expects"] if ek == k]
            first = min(mine, key=lambda e: e[1] or 0) if mine else None
            for kind, step in mine:
                want = None if kind is None else (kind, step)
                if want is not None and first != want and j.core is not None and j.core[0] in CORE_ONLY and j.core[1] < step:
                    problem = _witness_problem(pf, k, hw, want)
                    if problem:
                        findings.append(Finding(path, k, "expect", problem))
                elif j.core != want:
                    findings.append(Finding(path, k, "expect", f"expected {_fmt(want)}, core gave {_fmt(j.core)}"))
            # `->` lines are the outcomes of the program's reference kernel (fixed, or its own
            # `kernel` line); under another kernel a run may take another schedule or another
            # linearizable outcome, and its contract is the expect line and the oracle.
            reference = {"fixed", pf_kernel(pf)}
            for a in rep["assert_failures"]:
                if k not in reference:
                    continue
                findings.append(
                    Finding(path, k, "assert", f"step {a['step']}: written {a['expected']}, observed {a['observed']}")
                )
