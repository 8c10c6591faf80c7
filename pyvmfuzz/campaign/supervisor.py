"""`pyvmfuzz fuzz`: a supervisor around the atheris/libFuzzer harness.

It builds the coverage-instrumented core, seeds the corpus, starts the harness in its own
session, turns libFuzzer's log into a live progress bar, tails the findings log, and on
Ctrl-C stops the campaign cleanly: libFuzzer writes corpus inputs as it goes and findings are
written atomically, so nothing found is lost."""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from pyvmfuzz import _core
from pyvmfuzz.programs import InputError

_STATUS = re.compile(r"^#(\d+)\s+(INITED|NEW|REDUCE|pulse|DONE|RELOAD)\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_FORK = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s:? (\d+)")
_OURS = re.compile(r"^#pyvmfuzz execs (\d+)")
_LOADED = re.compile(r"^INFO: Loaded \d+ modules\s+\((\d+) inline 8-bit counters\)")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")


@dataclass
class Progress:
    execs: int = 0
    cov: int = 0
    ft: int = 0
    corp: int = 0
    counters: int | None = None
    loaded_line: str | None = None
    stats: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    def feed(self, line: str, fork: bool) -> None:
        m = _OURS.match(line)
        if m:
            if not fork:
                self.execs = max(self.execs, int(m[1]))
            return
        m = _STATUS.match(line)
        if m:
            self.execs = max(self.execs, int(m[1]))
            self.cov, self.ft, self.corp = int(m[3]), int(m[4]), int(m[5])
            return
        m = _FORK.match(line)
        if m:
            self.execs = max(self.execs, int(m[1]))
            self.cov, self.ft, self.corp = int(m[2]), int(m[3]), int(m[4])
            return
        m = _LOADED.match(line)
        if m and self.loaded_line is None:
            self.counters = int(m[1])
            self.loaded_line = line.strip()
            return
        m = _STAT.match(line)
        if m:
            self.stats[m[1]] = int(m[2])
            return
        if "Traceback" in line or line.startswith("==") and "ERROR" in line:
            self.errors.append(line.rstrip())


def _writable_dir(path: str, what: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{what} {path}: not writable ({e.strerror})") from None
    return os.path.abspath(path)


def _seed_dir(kernel: str, hw: str | None) -> str:
    """corpus/seeds/*.txt encoded for this kernel: clean programs that exercise every
    mechanism, so the campaign does not start from nothing."""
    here = os.path.dirname(os.path.abspath(__file__))
    roots = [os.path.join(os.getcwd(), "corpus", "seeds"), os.path.join(os.path.dirname(os.path.dirname(here)), "corpus", "seeds")]
    d = tempfile.mkdtemp(prefix="pyvmfuzz-seeds-")
    for root in roots:
        if not os.path.isdir(root):
            continue
        for f in sorted(glob.glob(os.path.join(root, "*.txt"))):
            try:
                data = _core.encode(open(f).read(), kernel, hw)
            except (ValueError, OSError):
                continue  # not applicable under this kernel/hardware: skip the seed
            with open(os.path.join(d, os.path.basename(f)[:-4]), "wb") as out:
                out.write(data)
        break
    return d


def _wrapper(out: str) -> str:
    """An executable harness bound to this interpreter (libFuzzer's fork mode re-runs argv[0]
    through sh, so it needs a shebang that finds atheris)."""
    path = os.path.join(out, ".vm_fuzzer")
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\nfrom pyvmfuzz.campaign.harness import main\nmain()\n")
    os.chmod(path, 0o755)
    return path


def _read_findings(path: str, start: float) -> list[list[str]]:
    rows = []
    try:
        with open(path) as f:
            for ln in f:
                parts = ln.split()
                if len(parts) >= 4 and float(parts[0]) >= start:
                    rows.append(parts)
    except (OSError, ValueError):
        pass
    return rows


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to the harness's session (libFuzzer exits cleanly on it), then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _die_with_parent() -> None:
    """In the harness child: if the supervisor dies (even by SIGKILL), so does the harness."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _linux_campaign(args) -> int:
    from tqdm import tqdm

    from pyvmfuzz.targets import linux

    out = _writable_dir(args.out, "output directory")
    crashes = _writable_dir(args.crashes or os.path.join(out, "crashes"), "crashes directory")
    if args.time <= 0:
        raise InputError("--target linux needs a --time budget")
    bar = tqdm(total=args.time, unit="s", file=sys.stderr, disable=args.quiet,
               bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s {postfix}")
    bar.set_description("fuzz linux")

    def progress(st, elapsed):
        bar.n = min(elapsed, args.time)
        bar.set_postfix_str(f"programs {st['programs']:,} ({st['programs'] / max(elapsed, 1e-9):.0f}/s) "
                            f"findings {len(st['found'])}")

    try:
        st = linux.campaign(args.time, crashes, args.seed, args.max_steps, None, progress)
    except KeyboardInterrupt:
        bar.close()
        print("# campaign interrupted")
        return 130
    bar.close()
    print(f"# linux campaign done: {st['programs']:,} programs, {st['steps']:,} steps; findings in {crashes}")
    for f in st["found"]:
        print(f"# violation: {f}")
    if not st["found"]:
        print("# no violation found")
    return 1 if st["found"] else 0


def run_campaign(args) -> int:
    if getattr(args, "target", "model") == "linux":
        return _linux_campaign(args)
    try:
        import atheris  # noqa: F401
    except ImportError:
        raise InputError("fuzz needs atheris: pip install 'pyvmfuzz[fuzz]'") from None
    from tqdm import tqdm

    out = _writable_dir(args.out, "output directory")
    corpus = _writable_dir(args.corpus or os.path.join(out, "corpus"), "corpus directory")
    crashes = _writable_dir(args.crashes or os.path.join(out, "crashes"), "crashes directory")
    if args.time < 0 or args.jobs < 1 or args.max_steps < 1:
        raise InputError("--time must be >= 0, --jobs >= 1, --max-steps >= 1")
    so = ""
    if args.coverage in ("branch", "both"):
        import shutil

        from pyvmfuzz.campaign.covbuild import build

        # A private copy: a rebuild during the campaign must not change what its workers load.
        so = os.path.join(out, ".core-cov.so")
        shutil.copyfile(build(), so)
    seeds = _seed_dir(args.kernel, args.hw)
    findings_log = os.path.join(out, "findings.log")
    log_path = os.path.join(out, "fuzz.log")
    fork = args.jobs > 1
    cmd = [
        _wrapper(out), corpus, seeds,
        f"-seed={args.seed}",
        f"-max_len={2 + 5 * args.max_steps + 16}",  # 5-byte records (codec.rs)
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/",
        "-timeout=30",
    ]
    if args.time:
        cmd.append(f"-max_total_time={args.time}")
    if fork:
        cmd.append(f"-fork={args.jobs}")
    cmd += args.libfuzzer
    env = dict(os.environ)
    env.update(
        PYVMFUZZ_KERNEL=args.kernel,
        PYVMFUZZ_HW=args.hw or "",
        PYVMFUZZ_CRASHES=crashes,
        PYVMFUZZ_FINDINGS=findings_log,
        PYVMFUZZ_CORE_SO=so,
        PYVMFUZZ_SEMANTIC="1" if args.coverage in ("semantic", "both") else "0",
        PYVMFUZZ_XCHECK=str(getattr(args, "cross_check", 0) or 0),
    )
    start = time.time()
    prog = Progress()
    log = open(log_path, "w", buffering=1)  # line-buffered: `tail -f` works during a campaign
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True, env=env, cwd=out, preexec_fn=_die_with_parent)

    def pump():
        for line in proc.stderr:
            log.write(line)
            prog.feed(line, fork)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    interrupted = False
    stopped_on_find = False
    first_find: float | None = None
    bar = tqdm(total=args.time or None, unit="s", dynamic_ncols=True, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s {postfix}" if args.time else "{elapsed} {postfix}",
               disable=args.quiet, leave=True)
    bar.set_description(f"fuzz {args.kernel}")
    shown_loaded = False
    try:
        while proc.poll() is None:
            time.sleep(0.25)
            elapsed = time.time() - start
            if prog.loaded_line and not shown_loaded:
                bar.write(f"pyvmfuzz: Rust core coverage: {prog.loaded_line}")
                shown_loaded = True
            rows = _read_findings(findings_log, start)
            found = {r[3] for r in rows if r[2] in ("new", "known")}
            finds = [r for r in rows if r[2] in ("new", "known")]
            if finds and first_find is None:
                first_find = float(finds[0][0]) - start
            if args.stop_on_find and any(r[-1] == "confirmed" for r in rows) and not stopped_on_find:
                stopped_on_find = True
                _stop(proc)
            bar.n = min(elapsed, args.time) if args.time else elapsed
            bar.set_postfix_str(
                f"execs {prog.execs:,} ({prog.execs / max(elapsed, 1e-9):,.0f}/s) cov {prog.cov} ft {prog.ft} "
                f"corp {prog.corp} findings {len(found)}", refresh=False)
            bar.refresh()
            if args.time and elapsed > args.time + 60:
                os.killpg(proc.pid, signal.SIGKILL)  # libFuzzer ignored its own budget
    except KeyboardInterrupt:
        interrupted = True
        _stop(proc)
    finally:
        bar.close()
        reader.join(timeout=5)
        log.close()
        try:
            import shutil

            shutil.rmtree(seeds, ignore_errors=True)
        except OSError:
            pass
    elapsed = time.time() - start
    rows = _read_findings(findings_log, start)
    finds = [r for r in rows if r[2] in ("new", "known")]
    if finds:
        first_find = min(float(r[0]) for r in finds) - start
    confirmed = sorted({r[3] for r in rows if r[2] in ("new", "known") and r[-1] == "confirmed"})
    disagreements = sorted({r[3] for r in rows if r[-1] == "disagreement"})
    xchecked = sum(int(r[3]) for r in rows if r[2] == "crosschecked")
    execs = prog.stats.get("number_of_executed_units", prog.execs)
    state = "interrupted" if interrupted else ("stopped at the first finding" if stopped_on_find else "done")
    print(f"# campaign {state}: kernel {args.kernel}, {elapsed:.1f}s, "
          f"{execs:,} execs ({execs / max(elapsed, 1e-9):,.0f}/s), corpus {len(os.listdir(corpus))} inputs in {corpus}")
    if prog.loaded_line:
        print(f"# coverage: {prog.loaded_line}")
    if first_find is not None:
        print(f"# time to first violation: {first_find:.2f}s")
    if xchecked:
        print(f"# oracle cross-checked {xchecked:,} clean runs")
    for sig in confirmed:
        print(f"# violation: {os.path.join(crashes, sig)}.txt")
    for sig in disagreements:
        print(f"# MODEL DISAGREEMENT (core vs oracle): {os.path.join(crashes, sig)}.txt")
    if not confirmed and not disagreements:
        print("# no violation found")
    if proc.returncode not in (0, None) and not interrupted and not stopped_on_find and not confirmed:
        tail = prog.errors[-1] if prog.errors else f"harness exited with status {proc.returncode}"
        sys.stderr.write(f"pyvmfuzz fuzz: {tail} (log: {log_path})\n")
        return 2
    if interrupted:
        return 130 if not confirmed else 1
    return 1 if confirmed or disagreements else 0
