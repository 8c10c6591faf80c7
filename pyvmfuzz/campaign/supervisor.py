"""`pyvmfuzz fuzz`: a supervisor around the atheris/libFuzzer harness.

It builds the coverage-instrumented core, seeds the corpus, starts the harness in its own
session, turns libFuzzer's log into a live progress bar, tails the findings log, and on
Ctrl-C stops the campaign cleanly: libFuzzer writes corpus inputs as it goes and findings are
written atomically, so nothing found is lost."""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from pyvmfuzz import _core
from pyvmfuzz.programs import InputError, overlay_hw

_STATUS = re.compile(r"^#(\d+)\s+(INITED|NEW|REDUCE|pulse|DONE|RELOAD)\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_FORK = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s:? (\d+)")
_OURS = re.compile(r"^#pyvmfuzz execs (\d+)")
_LOADED = re.compile(r"^INFO: Loaded (\d+) modules\s+\((\d+) inline 8-bit counters\)")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")
# One line per input libFuzzer adds or shrinks: thousands a second early in a campaign, so
# fuzz.log keeps only the rest (INITED, pulse, DONE, fork-mode job lines, errors, stats).
_PER_INPUT = re.compile(r"^#\d+\s+(NEW|REDUCE)\s")
PROGRESS_EVERY_S = 5.0  # plain progress lines where stderr is not a terminal (libFuzzer pulses too)
LOG_MAX_BYTES = 8 << 20  # fuzz.log rotates to fuzz.log.1 beyond this


@dataclass
class Progress:
    execs: int = 0
    cov: int = 0
    ft: int = 0
    corp: int = 0
    counters: int | None = None
    modules: int = 0
    loaded_line: str | None = None
    stats: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    fatal: str | None = None  # a libFuzzer line that means the campaign cannot be what was asked
    help_lines: list | None = None  # libFuzzer printed its usage (-help=1)
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20))

    def feed(self, line: str, fork: bool) -> None:
        if self.help_lines is not None:
            self.help_lines.append(line.rstrip("\n"))
            return
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
            self.modules, self.counters = int(m[1]), int(m[2])
            self.loaded_line = line.strip()
            return
        m = _STAT.match(line)
        if m:
            self.stats[m[1]] = int(m[2])
            return
        if line.startswith("WARNING: unrecognized flag") and self.fatal is None:
            # libFuzzer ignores a flag it does not know; a campaign without it is not the one asked for.
            self.fatal = line.strip()
        elif line.startswith("Usage:"):
            self.help_lines = [line.rstrip("\n")]
        if "Traceback" in line or line.startswith("==") and "ERROR" in line:
            self.errors.append(line.rstrip())
        if line.strip() and not line.startswith(("INFO:", "#", "WARNING: Failed to find function")):
            self.tail.append(line.strip())

    def failure(self, returncode: int) -> str:
        """libFuzzer's own line for why the harness stopped (a traceback: its last line)."""
        if self.fatal:
            return self.fatal
        if self.help_lines is not None:
            return "libFuzzer printed its help (-help=1) and ran no campaign"
        if self.errors and not self.errors[-1].startswith("Traceback"):
            return self.errors[-1]
        if self.tail:
            return self.tail[-1]
        return f"harness exited with status {returncode}"


class RotatingLog:
    """fuzz.log: appended across resumed campaigns; beyond `max_bytes` it moves to
    `PATH.1` (replacing an older one) and starts again, so a long campaign's log is bounded
    by twice `max_bytes`. Line-buffered: `tail -f` works during a campaign."""

    def __init__(self, path: str, max_bytes: int = LOG_MAX_BYTES):
        self.path, self.max_bytes = path, max_bytes
        self.f = open(path, "a", buffering=1)
        self.size = self.f.tell()

    def write(self, line: str) -> None:
        n = len(line.encode("utf-8", "replace"))
        if self.size and self.size + n > self.max_bytes:
            self.f.close()
            os.replace(self.path, self.path + ".1")
            self.f = open(self.path, "w", buffering=1)
            self.size = 0
        self.f.write(line)
        self.size += n

    def close(self) -> None:
        self.f.close()


class PlainProgress:
    """Progress where stderr is not a terminal (CI logs, pipes): one plain line every
    `every` seconds and one at the end, instead of a carriage-return bar."""

    def __init__(self, every: float = PROGRESS_EVERY_S, enabled: bool = True):
        self.every, self.enabled = every, enabled
        self.last = time.monotonic()

    def maybe(self, line: str, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if final or now - self.last >= self.every:
            self.last = now
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def fresh_seed() -> int:
    """A campaign seed when none is given: random, nonzero (libFuzzer reads -seed=0 as
    'pick one' and would not tell), below 2**31 (libFuzzer parses it as an int)."""
    return random.SystemRandom().randrange(1, 1 << 31)


def _writable_dir(path: str, what: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{what} {path}: not writable ({e.strerror})") from None
    return os.path.abspath(path)


SEEDS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "seeds")


def _seed_dir(kernel: str, hw: str | None) -> str:
    """The package's seeds (pyvmfuzz/seeds/*.txt, shipped in the wheel; corpus/seeds in a
    clone links there) encoded for this kernel: clean programs that exercise every mechanism,
    so the campaign does not start from nothing. Returns a temporary directory."""
    from pyvmfuzz.programs import load

    d = tempfile.mkdtemp(prefix="pyvmfuzz-seeds-")
    names = sorted(f for f in os.listdir(SEEDS) if f.endswith(".txt")) if os.path.isdir(SEEDS) else []
    for name in names:
        text = load(os.path.join(SEEDS, name)).text
        # Each seed is given on every CPU count from the one it names (default 2) up to 4, the
        # campaign's --hw over that: the races of SPEC §3.3 need up to three CPUs, and a
        # corpus grown from 2-CPU seeds stayed on 2 CPUs (measured: 5,289 of 6,657 inputs
        # after 120 s on cow-make-before-break, whose witness needs three; not found then).
        m = re.search(r"^hw\b.*\bcpus=(\d+)", text, re.M)
        seen = set()
        for n in (c for c in SEED_CPUS if c >= (int(m[1]) if m else 2)):
            try:
                data = _core.encode(text, kernel, overlay_hw(f"cpus={n}", hw))
            except (ValueError, InputError):
                continue  # not applicable under this kernel/hardware: skip the seed
            if data not in seen:  # a --hw naming cpus makes the variants one
                seen.add(data)
                with open(os.path.join(d, f"{name[:-4]}-cpus{n}"), "wb") as out:
                    out.write(data)
    return d


SEED_CPUS = (2, 3, 4)


def _wrapper(out: str) -> str:
    """An executable harness bound to this interpreter (libFuzzer's fork mode re-runs argv[0]
    through sh, so it needs a shebang that finds atheris)."""
    path = os.path.join(out, ".vm_fuzzer")
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\nfrom pyvmfuzz.campaign.harness import main\nmain()\n")
    os.chmod(path, 0o755)
    return path


def work_corpus_dir() -> str | None:
    """Where libFuzzer writes what it adds, when not straight into the corpus: a directory
    on tmpfs (/dev/shm), or None (PYVMFUZZ_CORPUS_TMPFS=0, or no writable tmpfs). Measured
    (issue 18, perf on a semantic campaign of fixed): a third of the fuzzing process's CPU
    went to creating and deleting corpus files on ext4 (open(2) in inode allocation), one
    per NEW and per REDUCE line; on tmpfs that cost is gone, and CorpusSync copies the
    survivors to the corpus directory in bulk."""
    if os.environ.get("PYVMFUZZ_CORPUS_TMPFS") == "0" or not os.path.isdir("/dev/shm"):
        return None
    try:
        return tempfile.mkdtemp(prefix="pyvmfuzz-corpus-", dir="/dev/shm")
    except OSError:
        return None


class CorpusSync:
    """Mirrors libFuzzer's working corpus (`work`, on tmpfs) into `corpus` every `every`
    seconds and at `close()`: new inputs are copied (atomically: a temporary name, then
    rename), inputs libFuzzer removed after copying them (a REDUCE replaced them) are
    removed. libFuzzer names an input by the SHA-1 of its bytes, so a file it is still
    writing is recognised (its content does not hash to its name) and left for the next
    round. A supervisor killed outright loses at most `every` seconds of additions."""

    def __init__(self, work: str, corpus: str, every: float = 5.0):
        self.work, self.corpus, self.every = work, corpus, every
        self.synced: set[str] = set()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop_ev.wait(self.every):
            self.sync()

    def sync(self) -> int:
        """One round; returns how many inputs it copied."""
        import hashlib

        try:
            names = set(os.listdir(self.work))
        except OSError:
            return 0
        copied = 0
        for name in names - self.synced:
            try:
                with open(os.path.join(self.work, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue  # removed meanwhile
            if hashlib.sha1(data).hexdigest() != name:
                continue  # still being written (or not libFuzzer's): next round
            tmp = os.path.join(self.corpus, f".{name}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(self.corpus, name))
            self.synced.add(name)
            copied += 1
        for name in self.synced - names:
            try:
                os.unlink(os.path.join(self.corpus, name))
            except OSError:
                pass
            self.synced.discard(name)
        return copied

    def close(self) -> None:
        """Last sync, then the tmpfs directory goes."""
        import shutil

        self.stop_ev.set()
        self.thread.join(timeout=30)
        self.sync()
        shutil.rmtree(self.work, ignore_errors=True)


def pending_replay_flags(args) -> str:
    """The flags that replay a `pending-*.bytes` as the campaign ran it: it has no sidecar
    `.txt`, and the byte form carries its own mode bit, which the campaign's --hw overrode
    (codec.rs), so without --hw it may decode on other hardware."""
    return f"--kernel {args.kernel}" + (f" --hw {args.hw}" if args.hw else "")


def split_pending(crashes: str) -> list[str]:
    """The harness's pending-inputs file (violating inputs it saved without minimizing,
    harness.PENDING) as one `pending-<sha1>.bytes` per input; the file goes once all are
    written. Returns the names written."""
    from pyvmfuzz.campaign.findings import atomic_write
    from pyvmfuzz.campaign.harness import PENDING
    import hashlib

    path = os.path.join(crashes, PENDING)
    names = []
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except OSError:
        return names
    for ln in lines[:-1]:  # the last has no newline: cut short by a killed harness, or empty
        try:
            data = bytes.fromhex(ln.split()[1])
        except (IndexError, ValueError):
            continue
        name = f"pending-{hashlib.sha1(data).hexdigest()[:12]}.bytes"
        atomic_write(os.path.join(crashes, name), data)
        names.append(name)
    os.unlink(path)
    return names


def _handler_share() -> float:
    from pyvmfuzz.campaign.harness import FindingHandler

    return FindingHandler.SHARE


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


def _group_gone(pgid: int, timeout: float = 20.0) -> bool:
    """Wait until no process of the harness's session is left (fork-mode jobs finish the
    finding they were saving when interrupted); SIGKILL what is still there at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        if time.monotonic() > deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.2)
            return True
        time.sleep(0.1)


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

    if args.time <= 0:
        raise InputError("--target linux needs a --time budget")
    # the model campaign's options, refused rather than ignored without a word (as run does)
    unused = [flag for flag, given in (
        (f"--kernel {args.kernel}", args.kernel != "fixed"), ("--hw", args.hw not in (None, "", "mode=pc64")),
        ("--jobs", args.jobs != 1), ("--corpus", args.corpus is not None),
        ("--coverage", args.coverage != "semantic"), ("--mutator", getattr(args, "mutator", None) is not None),
        ("--cross-check", getattr(args, "cross_check", None) is not None),
        ("--stop-on-find", getattr(args, "stop_on_find", False)), ("libFuzzer flags", bool(args.libfuzzer)))
        if given]
    if unused:
        raise InputError(f"{', '.join(unused)}: not used by --target linux (random programs on this host's "
                         "kernel, judged by the oracle)")
    out = _writable_dir(args.out, "output directory")
    crashes = _writable_dir(args.crashes or os.path.join(out, "crashes"), "crashes directory")
    tty = sys.stderr.isatty()
    bar = tqdm(total=args.time, unit="s", file=sys.stderr, disable=args.quiet or not tty,
               bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s {postfix}")
    bar.set_description("fuzz linux")
    plain = PlainProgress(enabled=not args.quiet and not tty)
    seed = args.seed if args.seed is not None else fresh_seed()
    print(f"# seed {seed} (again: --seed {seed})", flush=True)

    def progress(st, elapsed):
        bar.n = min(elapsed, args.time)
        post = f"programs {st['programs']:,} ({st['programs'] / max(elapsed, 1e-9):.0f}/s) findings {len(st['found'])}"
        bar.set_postfix_str(post)
        plain.maybe(f"fuzz linux: {elapsed:.0f}s/{args.time}s {post}")

    try:
        st = linux.campaign(args.time, crashes, seed, args.max_steps, None, progress)
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


def _check_numbers(args) -> None:
    """Bad numbers are refused before any directory is made (they were made, then refused)."""
    if args.time < 0:
        raise InputError(f"--time must be >= 0 (seconds; 0: until Ctrl-C), not {args.time}")
    for flag in ("jobs", "max_steps"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag.replace('_', '-')} must be at least 1, not {getattr(args, flag)}")
    seed = getattr(args, "seed", None)
    if seed is not None and not 1 <= seed < 1 << 32:
        # libFuzzer reads -seed=0 as "pick one" and keeps its seed mod 2**32: the printed
        # "again: --seed N" did not repeat the campaign
        raise InputError(f"--seed must be 1..{(1 << 32) - 1} (libFuzzer's seed; 0 would pick one at random), not {seed}")
    xc = getattr(args, "cross_check", None)
    if xc is not None and xc < 0:  # the harness read a negative N as 0 (off) without a word
        raise InputError(f"--cross-check must be >= 0 (0: off), not {xc}")


def run_campaign(args) -> int:
    _check_numbers(args)
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
    seed = args.seed if args.seed is not None else fresh_seed()
    # one job: libFuzzer adds to a tmpfs directory and reads the corpus as seeds (fork mode
    # merges into the corpus itself)
    work = None if fork else work_corpus_dir()
    cmd = [
        _wrapper(out), *([work] if work else []), corpus, seeds,
        f"-seed={seed}",
        f"-max_len={2 + 5 * args.max_steps + 16}",  # 5-byte records (codec.rs)
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/",
        "-timeout=30",
    ]
    if args.time:
        cmd.append(f"-max_total_time={args.time}")
    if fork:
        cmd.append(f"-fork={args.jobs}")
    mutator = getattr(args, "mutator", None) or os.environ.get("PYVMFUZZ_MUTATOR") or "records"
    if mutator == "records" and not any(a.startswith("-len_control=") for a in args.libfuzzer):
        # libFuzzer turns its length control off when it finds a custom mutator; ours keeps
        # to the length limit it is given, so keep it on: short programs first (measured on
        # cow-make-before-break: 75k exec/s with it, 39k without, found as soon)
        cmd.append("-len_control=100")
    cmd += args.libfuzzer
    env = dict(os.environ)
    env.update(
        PYVMFUZZ_KERNEL=args.kernel,
        PYVMFUZZ_HW=args.hw or "",
        PYVMFUZZ_CRASHES=crashes,
        PYVMFUZZ_FINDINGS=findings_log,
        PYVMFUZZ_CORE_SO=so,
        PYVMFUZZ_SEMANTIC="1" if args.coverage in ("semantic", "both") else "0",
        PYVMFUZZ_XCHECK="auto" if getattr(args, "cross_check", None) is None else str(args.cross_check),
        PYVMFUZZ_FORK="1" if fork else "0",  # the harness gives each fork-mode job its own seed
        PYVMFUZZ_MUTATOR=mutator,
    )
    start = time.time()
    prog = Progress()
    print(f"# seed {seed} (again: --seed {seed})", flush=True)
    log = RotatingLog(log_path)
    log.write(f"# pyvmfuzz campaign start {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: kernel {args.kernel}, "
              f"hw {args.hw or '-'}, seed {seed}, coverage {args.coverage}, mutator {env['PYVMFUZZ_MUTATOR']}, "
              f"jobs {args.jobs}, time {args.time}s\n")
    sync = CorpusSync(work, corpus) if work else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True, env=env, cwd=out, preexec_fn=_die_with_parent)

    def pump():
        for line in proc.stdout:
            prog.feed(line, fork)
            if not line.startswith("#pyvmfuzz execs") and not _PER_INPUT.match(line):
                log.write(line if line.endswith("\n") else line + "\n")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    interrupted = False
    stopped_on_find = False
    first_find: float | None = None
    tty = sys.stderr.isatty()
    bar = tqdm(total=args.time or None, unit="s", dynamic_ncols=True, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s {postfix}" if args.time else "{elapsed} {postfix}",
               disable=args.quiet or not tty, leave=True)
    bar.set_description(f"fuzz {args.kernel}")
    plain = PlainProgress(enabled=not args.quiet and not tty)
    last_status = time.monotonic()
    found: set = set()

    def status(elapsed: float) -> str:
        return (f"execs {prog.execs:,} ({prog.execs / max(elapsed, 1e-9):,.0f}/s) cov {prog.cov} ft {prog.ft} "
                f"corp {prog.corp} findings {len(found)}")

    budget = f"/{args.time}s" if args.time else "s"
    try:
        while proc.poll() is None:
            time.sleep(0.25)
            elapsed = time.time() - start
            if prog.fatal:  # libFuzzer refused a flag: stop now, not at the end of the budget
                _stop(proc)
                break
            rows = _read_findings(findings_log, start)
            found = {r[3] for r in rows if r[2] in ("new", "known")}
            finds = [r for r in rows if r[2] in ("new", "known") and r[-1] == "confirmed"]
            if finds and first_find is None:
                first_find = float(finds[0][0]) - start
            # --stop-on-find: at the first confirmed finding a user can see (an internal-only
            # one goes on being looked for a witness by later inputs)
            if args.stop_on_find and any(r[-1] == "confirmed" and r[-2] != "internal-only" for r in rows) and not stopped_on_find:
                stopped_on_find = True
                _stop(proc)
            bar.n = min(elapsed, args.time) if args.time else elapsed
            bar.set_postfix_str(status(elapsed), refresh=False)
            bar.refresh()
            plain.maybe(f"fuzz {args.kernel}: {elapsed:.0f}s{budget} {status(elapsed)}")
            if time.monotonic() - last_status >= 30:  # the log's own pulse: libFuzzer's thin out at 2^n
                last_status = time.monotonic()
                log.write(f"#pyvmfuzz status {elapsed:.0f}s {status(elapsed)}\n")
            if args.time and elapsed > args.time + 60:
                os.killpg(proc.pid, signal.SIGKILL)  # libFuzzer ignored its own budget
    except KeyboardInterrupt:
        interrupted = True
        _stop(proc)
    finally:
        bar.close()
        reader.join(timeout=5)
        if sync is not None:
            sync.close()
        elapsed = time.time() - start
        plain.maybe(f"fuzz {args.kernel}: {elapsed:.0f}s{budget} {status(elapsed)}", final=True)
        log.write(f"# pyvmfuzz campaign end after {elapsed:.1f}s: {status(elapsed)}, exit status {proc.returncode}\n")
        log.close()
        if proc.poll() is not None and _group_gone(proc.pid):
            # no writer left: drop what a killed one left half-written
            from pyvmfuzz.campaign.findings import sweep_temp_files

            sweep_temp_files(crashes)
        try:
            import shutil

            shutil.rmtree(seeds, ignore_errors=True)
        except OSError:
            pass
    elapsed = time.time() - start
    rows = _read_findings(findings_log, start)
    # Time to first counts confirmed findings only (a disagreement is a model bug, not a find).
    finds = [r for r in rows if r[2] in ("new", "known") and r[-1] == "confirmed"]
    visible_finds = [r for r in finds if r[-2] == "visible"]
    confirmed = sorted({r[3] for r in finds})
    internal_only = {r[3] for r in finds if r[-2] == "internal-only"}
    panics = {r[3] for r in finds if r[-2] == "model-panic"}
    # libFuzzer's own errors (a flag it does not know, its help, a missing -dict file): its
    # line, exit 2, and no campaign summary — there was no campaign.
    failed = proc.returncode not in (0, None) and not interrupted and not stopped_on_find and not confirmed
    if prog.fatal or prog.help_lines is not None or (failed and not prog.execs):
        if prog.help_lines is not None:
            print("\n".join(prog.help_lines))
        sys.stderr.write(f"pyvmfuzz fuzz: {prog.failure(proc.returncode)} (log: {log_path})\n")
        return 2
    if finds:
        first_find = min(float(r[0]) for r in finds) - start
    disagreements = sorted({r[3] for r in rows if r[-1] == "disagreement"})
    xchecked = sum(int(r[3]) for r in rows if r[2] == "crosschecked")
    execs = prog.stats.get("number_of_executed_units", prog.execs)
    state = "interrupted" if interrupted else ("stopped at the first finding" if stopped_on_find else "done")
    print(f"# campaign {state}: kernel {args.kernel}, {elapsed:.1f}s, "
          f"{execs:,} execs ({execs / max(elapsed, 1e-9):,.0f}/s), corpus {len(os.listdir(corpus))} inputs in {corpus}")
    if prog.counters is not None:
        print(f"# coverage: {prog.cov} cov, {prog.ft} features, {prog.counters} inline 8-bit counters "
              f"in {prog.modules} module(s) (libFuzzer's cov and ft over the core's counters; coverage {args.coverage})")
    else:
        print(f"# coverage: {prog.cov} cov, {prog.ft} features (coverage {args.coverage}: no counters from the core)")
    if first_find is not None:
        print(f"# time to first violation: {first_find:.2f}s")
    if visible_finds:
        print(f"# time to first user-visible violation: {min(float(r[0]) for r in visible_finds) - start:.2f}s")
    xc = "off" if getattr(args, "cross_check", None) == 0 else "every %d clean runs" % args.cross_check \
        if getattr(args, "cross_check", None) else "adaptive, ~1% of the time"
    print(f"# oracle cross-checked {xchecked:,} clean runs ({xc})")
    repeats = sum(int(r[3]) for r in rows if r[2] == "repeats")
    if confirmed:
        print(f"# findings: {len(confirmed) - len(internal_only) - len(panics)} user-visible, {len(internal_only)} "
              f"internal-only (no witness found), {len(panics)} model panics; {repeats:,} violating inputs "
              f"repeated a shape already handled")
    # Listed user-visible first; past 20 a count (every one is saved in the crashes directory).
    shown = sorted(confirmed, key=lambda sig: (sig in internal_only, sig))
    for sig in shown[:20]:
        tag = "internal-only" if sig in internal_only else "model panic" if sig in panics else "user-visible"
        print(f"# violation ({tag}): {os.path.join(crashes, sig)}.txt")
    if len(shown) > 20:
        print(f"# ... and {len(shown) - 20} more in {crashes}")
    pending = split_pending(crashes)
    if pending:
        # the harness caps finding handling at a share of the time (harness.FindingHandler.SHARE)
        print(f"# {len(pending):,} violating inputs of new shapes saved unminimized (finding handling is capped "
              f"at {100 * _handler_share():.0f}% of the time): {os.path.join(crashes, 'pending-*.bytes')} "
              f"(pyvmfuzz minimize FILE {pending_replay_flags(args)})")
    for r in rows:
        if r[2] == "error":
            print(f"# FINDING NOT SAVED AS TEXT (handler error, input kept): {os.path.join(crashes, r[3])} {' '.join(r[4:])}")
    for sig in disagreements:
        print(f"# MODEL DISAGREEMENT (core vs oracle): {os.path.join(crashes, sig)}.txt")
    if failed:
        sys.stderr.write(f"pyvmfuzz fuzz: {prog.failure(proc.returncode)} (log: {log_path})\n")
        return 2
    if not confirmed and not disagreements:
        print("# no violation found")
    if interrupted:
        return 130 if not confirmed else 1
    return 1 if confirmed or disagreements else 0
