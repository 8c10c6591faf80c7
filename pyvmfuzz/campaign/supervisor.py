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
_WRITE_ERROR = re.compile(r"^#pyvmfuzz write-error (\S+) (.*)")  # harness.FindingHandler.write_error
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
    write_errors: list = field(default_factory=list)  # (input hex or None, "PATH: reason") the harness could not write

    def feed(self, line: str, fork: bool) -> None:
        if self.help_lines is not None:
            self.help_lines.append(line.rstrip("\n"))
            return
        m = _OURS.match(line)
        if m:
            if not fork:
                self.execs = max(self.execs, int(m[1]))
            return
        m = _WRITE_ERROR.match(line)
        if m:
            self.write_errors.append((None if m[1] == "-" else m[1], m[2].strip()))
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
    by twice `max_bytes`. Line-buffered: `tail -f` works during a campaign. A write that
    fails (a full disk) ends the log: `error` holds it, and later lines are dropped."""

    def __init__(self, path: str, max_bytes: int = LOG_MAX_BYTES):
        self.path, self.max_bytes = path, max_bytes
        self.f = open(path, "a", buffering=1)
        self.size = self.f.tell()
        self.error: OSError | None = None
        self.lock = threading.Lock()  # the reader thread and the main loop both write

    def write(self, line: str) -> None:
        with self.lock:
            if self.f is None:
                return
            n = len(line.encode("utf-8", "replace"))
            try:
                if self.size and self.size + n > self.max_bytes:
                    self.f.close()
                    os.replace(self.path, self.path + ".1")
                    self.f = open(self.path, "w", buffering=1)
                    self.size = 0
                self.f.write(line)
                self.size += n
            except OSError as e:
                if e.filename is None:
                    e.filename = self.path
                self.error = e
                f, self.f = self.f, None
                try:
                    f.close()
                except OSError:
                    pass

    def close(self) -> None:
        with self.lock:
            if self.f is not None:
                try:
                    self.f.close()
                except OSError as e:
                    self.error = self.error or e
                self.f = None


PLOT_DATA = "plot_data.csv"  # campaign start, seconds, execs, cov, ft, corpus, findings (pyvmfuzz plot)


class PlotData:
    """The campaign's numbers over time, a row every `every` seconds appended to OUT/plot_data.csv
    (afl's plot_data): `pyvmfuzz plot OUT` draws them. Best effort: a write that fails stops
    the rows, never the campaign (the findings and the corpus have their own error path)."""

    def __init__(self, path: str, start: float, every: float = 2.0):
        self.path, self.start, self.every, self.last, self.ok = path, start, every, -1e9, True
        if not os.path.exists(path):
            self._write("start,seconds,execs,cov,ft,corpus,findings\n")

    def _write(self, row: str) -> None:
        if not self.ok:
            return
        try:
            with open(self.path, "a") as f:
                f.write(row)
        except OSError:
            self.ok = False

    def maybe(self, elapsed: float, prog, findings: int, final: bool = False) -> None:
        """A row every `every` seconds; `final`: the campaign's last (its end), whenever."""
        if final or elapsed - self.last >= self.every:
            self.last = elapsed
            self._write(f"{self.start:.0f},{elapsed:.1f},{prog.execs},{prog.cov},{prog.ft},{prog.corp},{findings}\n")


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


def _seed_dir(kernel: str, hw: str | None, d: str | None = None) -> str:
    """The package's seeds (pyvmfuzz/seeds/*.txt, shipped in the wheel; corpus/seeds in a
    clone links there) encoded for this kernel: clean programs that exercise every mechanism,
    so the campaign does not start from nothing. Written into `d`, else a new temporary
    directory; returns it."""
    from pyvmfuzz.programs import load

    d = d or tempfile.mkdtemp(prefix="pyvmfuzz-seeds-")
    names = sorted(f for f in os.listdir(SEEDS) if f.endswith(".txt")) if os.path.isdir(SEEDS) else []
    # `bench --zoo`'s seed configurations leave named seeds out, to measure one side by side
    left_out = set(filter(None, os.environ.get("PYVMFUZZ_SEEDS_EXCLUDE", "").split(",")))
    names = [n for n in names if n[:-4] not in left_out]
    for name in names:
        text = load(os.path.join(SEEDS, name)).text
        # Each seed is given on every CPU count from the one it names (default 2) up to 4, the
        # campaign's --hw over that: the races of docs/contract.md §3.3 need up to three CPUs, and a
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

# The random burst beside libFuzzer: at most this many seconds, and this share of --time.
BURST_S, BURST_SHARE = 2.0, 0.05
# ... of which the first BURST_HEAD_S run alone, on both cores, before libFuzzer starts (the
# text-program loop only then)
BURST_HEAD_S = 0.2


class RandomBurst:
    """A short burst of the Rust random loops at the search's start (issue 25: a campaign never
    slower than blind search; they meet the shallow zoo bugs in milliseconds, where libFuzzer
    took 3-5 s). One is the random baseline's own loop (`_core.random_find`: random byte-form
    programs from the campaign's seed, under its --hw), run in slices that go on with one
    sequence, so it meets what `bench`'s random configuration meets with that seed after as many
    programs; the other runs random text programs of up to 32 lines (`_core.random_search`) on
    2, 3 and 4 CPUs in turn, in a thread. For the first BURST_HEAD_S the two have both cores (the
    baseline's loop in the calling thread); then libFuzzer starts and the baseline's loop goes on
    alone in a thread beside it, on the other core (the core releases the GIL). What they meet
    first is saved by a `FindingHandler` like the harness's, in a thread of the burst (no signal
    handler runs outside the main thread, so an interrupt never cuts the save short), dated when
    it was met: time to first violation counts from the search's start, as the baseline's counts
    from its own."""

    SLICE_S = 0.05

    def __init__(self, args, seed: int, crashes: str, findings_log: str, tell=None):
        self.kernel, self.hw, self.seed = args.kernel, args.hw, seed
        self.crashes, self.findings_log, self.tell = crashes, findings_log, tell
        self.budget = 0.0
        if os.environ.get("PYVMFUZZ_RANDOM_BURST") != "0":
            self.budget = BURST_S if not args.time else min(BURST_S, BURST_SHARE * args.time)
        # on 2, 3 and 4 CPUs in turn, in slices of SLICE_S, unless --hw names the count: the
        # races need up to three (procfs-hold-only, cow-make-before-break), and random programs,
        # whose headers mix the counts, met a three-CPU bug twice as soon as a burst that gave
        # 2 CPUs the first third of its budget (procfs-hold-only: 0.39 s against 0.72 s)
        self.hws = [args.hw] if args.hw and "cpus=" in args.hw else [overlay_hw(f"cpus={n}", args.hw) for n in SEED_CPUS]
        self.state = seed  # the baseline loop's generator, handed from the head to its thread
        self.met_in_head: tuple[bytes, float] | None = None
        self.deadline = self.head_end = 0.0
        self.found: tuple[bytes, float] | None = None  # (the input, when it was met): saved
        self.met: list[tuple[bytes, float]] = []  # what each loop met
        self.finished = 0  # loops stopped
        self.lock = threading.Lock()
        self.done = threading.Event()  # met, or told to stop: the other loop stops too
        self.go = threading.Event()  # the clock's zero is taken: the text loop may start
        self.threads = [threading.Thread(target=self._run, args=(loop,), name=f"random-burst-{loop.__name__}",
                                         daemon=True) for loop in (self._bytes, self._programs)]

    def start(self) -> float:
        """Start the search: the text loop in its thread, the baseline's loop here for the head
        start (or until either meets a bug), then in its thread. Returns the search's start
        (the clock's zero: the baseline's loop starts at once after it)."""
        if self.budget < 0.05:
            return time.time()
        # Set-up, not counted: warm this thread's machine and caches (2 ms of random programs
        # on `fixed`). bench times the baseline in a warm process; cold, the first programs
        # here took 40-60 µs longer, as long as the shallowest bugs take to meet.
        _core.random_until("fixed", self.seed, 0.002, self.hw)
        self.deadline = time.time() + self.budget
        self.head_end = min(time.time() + BURST_HEAD_S, self.deadline)
        self.threads[1].start()  # it waits for `go`: no program runs before the clock's zero
        began = time.time()
        try:
            self.go.set()
            self.met_in_head = self._bytes(self.head_end)
        finally:  # an interrupt between slices: the thread saves what was met, or stops at once
            self.go.set()
            self.threads[0].start()
        return began

    def _bytes(self, deadline: float):
        """The baseline's loop, from where it stopped: (the input, when met) or None."""
        if self.met_in_head is not None:
            return self.met_in_head
        while not self.done.is_set() and time.time() < deadline:
            began = time.time()
            data, t, _, self.state = _core.random_find(self.kernel, self.state, self.SLICE_S, self.hw)
            if data is not None:
                return data, began + t  # when the core met it, as the baseline times it
        return None

    def _programs(self, deadline: float):
        """Random text programs on each CPU count in turn, in the head start only (then the
        baseline's loop has a core to itself beside libFuzzer): (the input, when met) or None."""
        self.go.wait()
        i = 0
        while not self.done.is_set() and time.time() < min(deadline, self.head_end):
            hw = self.hws[i % len(self.hws)]
            found, _ = _core.random_search(self.kernel, self.SLICE_S, hw, [], [], self.seed + i, 32)
            i += 1
            if found is not None:
                met = time.time()  # an upper bound: the core shrank it (< 1 ms) before returning
                return _core.encode("\n".join(found[0]) + "\n", self.kernel, hw), met
        return None

    def _run(self, loop) -> None:
        found = None
        try:
            found = loop(self.deadline)
        except Exception as e:  # noqa: BLE001 -- a failed loop leaves the campaign as it is
            sys.stderr.write(f"pyvmfuzz fuzz: the random burst failed: {type(e).__name__}: {e}\n")
        with self.lock:
            if found is not None:
                self.met.append(found)
                self.done.set()  # the other loop stops at the end of its slice
            self.finished += 1
            if self.finished < len(self.threads) or not self.met:
                return
            # the last loop to stop saves what was met first (not what was returned first:
            # the text loop shrinks its find before returning)
            self.found = min(self.met, key=lambda f: f[1])
        try:
            from pyvmfuzz.campaign.harness import FindingHandler

            h = FindingHandler(self.kernel, self.hw, self.crashes, self.findings_log)
            h.tell = self.tell  # a full disk: the supervisor's summary says what was not saved
            h(self.found[0], detected=self.found[1])
        except Exception as e:  # noqa: BLE001
            sys.stderr.write(f"pyvmfuzz fuzz: the random burst failed: {type(e).__name__}: {e}\n")

    def stop(self) -> None:
        """Stop both loops at the end of their slices (what one met is still saved)."""
        self.done.set()

    def join(self) -> None:
        """Wait until what the burst met is saved (its budget or a stop, then one finding's
        handling)."""
        for t in self.threads:
            if t.ident is not None:
                t.join()


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
    round. A supervisor killed outright loses at most `every` seconds of additions (and the
    next campaign's start copies those too: lifecycle.reclaim). A write that fails (a full
    disk) is kept in `error`; `complete` says whether the last round copied everything it
    could read whole."""

    def __init__(self, work: str, corpus: str, every: float = 5.0):
        self.work, self.corpus, self.every = work, corpus, every
        self.synced: set[str] = set()
        self.error: OSError | None = None
        self.complete = False
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop_ev.wait(self.every):
            self.sync()

    def sync(self) -> int:
        """One round; returns how many inputs it copied."""
        with self.lock:
            return self._sync()

    def _sync(self) -> int:
        import hashlib

        try:
            names = set(os.listdir(self.work))
        except OSError:
            return 0
        copied = 0
        self.complete = True
        for name in names - self.synced:
            try:
                with open(os.path.join(self.work, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue  # removed meanwhile
            if hashlib.sha1(data).hexdigest() != name:
                continue  # still being written (or not libFuzzer's): next round
            tmp = os.path.join(self.corpus, f".{name}.tmp")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, os.path.join(self.corpus, name))
            except OSError as e:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                if e.filename is None:
                    e.filename = os.path.join(self.corpus, name)
                self.error = self.error or e
                self.complete = False
                break  # the rest waits for the next round
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
        """Last sync, then the tmpfs directory goes — unless some input could not be copied
        (`complete` false): then it stays, for the next campaign's start to copy."""
        import shutil

        self.stop_ev.set()
        self.thread.join(timeout=30)
        self.sync()
        if self.complete:
            shutil.rmtree(self.work, ignore_errors=True)


def pending_replay_flags(args) -> str:
    """The flags that replay a `pending-*.bytes` as the campaign ran it (its `.replay` sidecar
    says the same, so `run`/`minimize` on it need none): the byte form carries its own mode
    bit, which the campaign's --hw overrode (codec.rs)."""
    return f"--kernel {args.kernel}" + (f" --hw {args.hw}" if args.hw else "")


def split_pending(crashes: str, errors: list | None = None) -> list[str]:
    """The harness's pending-inputs file (violating inputs it saved without minimizing,
    harness.PENDING) as one `pending-<sha1>.bytes` per input; the file goes once all are
    written. Returns the names written. A write that fails (a full disk) is raised after the
    rest were tried (appended to `errors` instead, when given), and the file stays (the next
    campaign's start splits it again)."""
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
    error = None
    for ln in lines[:-1]:  # the last has no newline: cut short by a killed harness, or empty
        try:
            data = bytes.fromhex(ln.split()[1])
        except (IndexError, ValueError):
            continue
        name = f"pending-{hashlib.sha1(data).hexdigest()[:12]}.bytes"
        fields = ln.split()
        try:
            if len(fields) >= 3:  # the kernel (and --hw) it ran under: `run`/`minimize` need no flags
                hw = f" --hw {fields[3]}" if len(fields) >= 4 and fields[3] != "-" else ""
                atomic_write(os.path.join(crashes, name[: -len(".bytes")] + ".replay"),
                             f"# replay-bytes: --kernel {fields[2]}{hw} --os dragonfly\n")
            atomic_write(os.path.join(crashes, name), data)
        except OSError as e:
            error = error or e
            continue
        names.append(name)
    if error is not None:
        if errors is None:
            raise error
        errors.append(error)
        return names
    os.unlink(path)
    return names


def _handler_share() -> float:
    from pyvmfuzz.campaign.harness import FindingHandler

    return FindingHandler.SHARE


def _secs(t: float) -> str:
    """A time to a find: the shallow bugs fall in well under a millisecond (random programs
    meet protect-wrong-va's in 60-300 µs), so below 10 ms in µs."""
    return f"{max(t, 0.0):.6f}" if t < 0.01 else f"{t:.3f}"


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
    from pyvmfuzz.campaign.lifecycle import DirLock

    out = _writable_dir(args.out, "output directory")
    lock = DirLock(out, "output directory", "--out")
    try:
        return _linux_in(args, out)
    finally:
        lock.close()


def _linux_in(args, out: str) -> int:
    from tqdm import tqdm

    from pyvmfuzz.targets import linux

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


def _inside(path: str, d: str) -> bool:
    path, d = os.path.realpath(path), os.path.realpath(d)
    return path == d or path.startswith(d.rstrip(os.sep) + os.sep)


def _findings_on_disk(crashes: str) -> set[str]:
    """The findings saved in `crashes` (a finding is there when its .txt is: the .txt is written
    first, exclusively, and holds the program; its .bytes follows, findings.save)."""
    try:
        return {n[:-4] for n in os.listdir(crashes) if n.endswith(".txt") and not n.startswith(".")}
    except OSError:
        return set()


def _bug_title(crashes: str, sig: str) -> str | None:
    """A saved finding's bug title (its `# bug:` header line, campaign.triage), if it has one."""
    try:
        with open(os.path.join(crashes, sig + ".txt")) as f:
            for ln in f:
                if ln.startswith("# bug: "):
                    return ln[len("# bug: "):].strip()
                if not ln.startswith("#"):
                    return None
    except OSError:
        pass
    return None


def _file_tag(crashes: str, sig: str) -> str:
    """A saved finding's tag when the findings log has no line for it (its write failed)."""
    if sig.startswith("panic-"):
        return "model-panic"
    try:
        with open(os.path.join(crashes, sig + ".txt")) as f:
            head = f.read(8192)
    except OSError:
        return "visible"
    return "internal-only" if "\n# internal-only" in head else "visible"


def _write_failure(prog: Progress, log, sync, intr) -> str | None:
    """The first write that failed (a full disk), as `PATH: reason`, or None."""
    from pyvmfuzz.campaign.lifecycle import describe

    if prog.write_errors:
        return prog.write_errors[0][1]
    for e in (log.error if log is not None else None, sync.error if sync is not None else None):
        if e is not None:
            return describe(e)
    if intr.usr1:
        return "a fork-mode job could not write a finding or the findings log (disk full?)"
    return None


def run_campaign(args) -> int:
    """A campaign, owning its output directory (lifecycle.DirLock) and stopped by SIGINT,
    SIGTERM or SIGHUP alike (lifecycle.Interrupts)."""
    from pyvmfuzz.campaign.lifecycle import DirLock, Interrupts

    _check_numbers(args)
    with Interrupts() as intr:
        if getattr(args, "target", "model") == "linux":
            return _linux_campaign(args)
        try:
            import atheris  # noqa: F401
        except ImportError:
            raise InputError("fuzz needs atheris: pip install 'pyvmfuzz[fuzz]'") from None
        out = _writable_dir(args.out, "output directory")
        locks = [DirLock(out, "output directory", "--out")]
        try:
            corpus = _writable_dir(args.corpus or os.path.join(out, "corpus"), "corpus directory")
            crashes = _writable_dir(args.crashes or os.path.join(out, "crashes"), "crashes directory")
            if not _inside(crashes, out):  # findings and pending inputs are a campaign's own too
                locks.append(DirLock(crashes, "crashes directory", "--crashes"))
            return _model_campaign(args, intr, out, corpus, crashes)
        finally:
            for lk in locks:
                lk.close()


def _model_campaign(args, intr, out: str, corpus: str, crashes: str) -> int:
    import shutil

    from tqdm import tqdm

    from pyvmfuzz.campaign.findings import sweep_temp_files
    from pyvmfuzz.campaign.lifecycle import TempRoot, reclaim, report_reclaimed

    report_reclaimed(reclaim())  # temporary directories of campaigns that died
    split_pending(crashes)  # a dead campaign's pending inputs: known before this one
    known = _findings_on_disk(crashes)  # a resumed campaign's findings are not new
    before = set(os.listdir(crashes))
    findings_log = os.path.join(out, "findings.log")
    log_path = os.path.join(out, "fuzz.log")
    fork = args.jobs > 1
    # one job: libFuzzer adds to a tmpfs directory and reads the corpus as seeds (fork mode
    # merges into the corpus itself); the seeds are encoded into the same temporary root
    temp = TempRoot(corpus, work=not fork, tmpfs=os.environ.get("PYVMFUZZ_CORPUS_TMPFS") != "0")
    proc = sync = log = reader = bar = burst = plot = None
    prog = Progress()
    interrupted = stopped_on_find = False
    write_failed: str | None = None  # the first write that failed, when it stopped the campaign
    first_find: float | None = None
    found: set = set()
    start = time.time()
    seed = args.seed if args.seed is not None else fresh_seed()
    budget = f"/{args.time}s" if args.time else "s"
    plain = PlainProgress(enabled=not args.quiet and not sys.stderr.isatty())

    def status(elapsed: float) -> str:
        return (f"execs {prog.execs:,} ({prog.execs / max(elapsed, 1e-9):,.0f}/s) cov {prog.cov} ft {prog.ft} "
                f"corp {prog.corp} findings {len(found - known)}" + (f" (+{len(found & known)} known)" if found & known else ""))

    try:
        so = ""
        if args.coverage in ("branch", "both"):
            from pyvmfuzz.campaign.covbuild import build

            # A private copy: a rebuild during the campaign must not change what its workers load.
            so = os.path.join(out, ".core-cov.so")
            shutil.copyfile(build(), so)
        seeds = _seed_dir(args.kernel, args.hw, temp.seeds)
        from pyvmfuzz.programs import encode_text_corpus

        for note in encode_text_corpus(corpus, seeds, args.kernel, args.hw):  # libFuzzer reads bytes
            sys.stderr.write(note + "\n")
        work = temp.work
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
            PYVMFUZZ_SUPERVISOR=str(os.getpid()),  # SIGUSR1 here when a write fails
        )
        # the search starts here: the random burst, alone for its head start, then libFuzzer
        start = time.time()  # kept if an interrupt ends the head start
        burst = RandomBurst(args, seed, crashes, findings_log, tell=lambda line: prog.feed(line, fork))
        start = burst.start()
        print(f"# seed {seed} (again: --seed {seed})", flush=True)
        log = RotatingLog(log_path)
        log.write(f"# pyvmfuzz campaign start {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: kernel {args.kernel}, "
                  f"hw {args.hw or '-'}, seed {seed}, coverage {args.coverage}, mutator {env['PYVMFUZZ_MUTATOR']}, "
                  f"jobs {args.jobs}, time {args.time}s, pid {os.getpid()}\n")
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
        bar = tqdm(total=args.time or None, unit="s", dynamic_ncols=True, file=sys.stderr,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s {postfix}" if args.time else "{elapsed} {postfix}",
                   disable=args.quiet or not sys.stderr.isatty(), leave=True)
        bar.set_description(f"fuzz {args.kernel}")
        last_status = time.monotonic()
        plot = PlotData(os.path.join(out, PLOT_DATA), start)
        while proc.poll() is None:
            time.sleep(0.25)
            elapsed = time.time() - start
            if prog.fatal:  # libFuzzer refused a flag: stop now, not at the end of the budget
                _stop(proc)
                break
            # a full disk: nothing more could be saved; stop (the summary says what was not)
            write_failed = _write_failure(prog, log, sync, intr)
            if write_failed:
                _stop(proc)
                break
            rows = _read_findings(findings_log, start)
            found = {r[3] for r in rows if r[2] in ("new", "known")}
            finds = [r for r in rows if r[2] in ("new", "known") and r[-1] == "confirmed"]
            if finds and first_find is None:
                first_find = float(finds[0][0]) - start
            # --stop-on-find: at the first new confirmed finding a user can see (an internal-only
            # one goes on being looked for a witness by later inputs)
            if args.stop_on_find and not stopped_on_find and any(
                    r[-1] == "confirmed" and r[-2] != "internal-only" and r[3] not in known for r in finds):
                stopped_on_find = True
                _stop(proc)
            bar.n = min(elapsed, args.time) if args.time else elapsed
            bar.set_postfix_str(status(elapsed), refresh=False)
            bar.refresh()
            plain.maybe(f"fuzz {args.kernel}: {elapsed:.0f}s{budget} {status(elapsed)}")
            plot.maybe(elapsed, prog, len(found - known))
            if time.monotonic() - last_status >= 30:  # the log's own pulse: libFuzzer's thin out at 2^n
                last_status = time.monotonic()
                log.write(f"#pyvmfuzz status {elapsed:.0f}s {status(elapsed)}\n")
            if args.time and elapsed > args.time + 60:
                os.killpg(proc.pid, signal.SIGKILL)  # libFuzzer ignored its own budget
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP (lifecycle.Interrupts)
        interrupted = True
    finally:
        intr.disarm()  # what follows is bounded; a second signal does not cut it short
        if proc is not None and proc.poll() is None:
            _stop(proc)
        if burst is not None:  # what the burst met is a finding, however the campaign ended
            burst.stop()
            burst.join()
        if reader is not None:
            reader.join(timeout=5)
        if proc is not None:  # the last rows (finds of the last moments) in the bar and the plot
            found = {r[3] for r in _read_findings(findings_log, start) if r[2] in ("new", "known")}
        if bar is not None:
            bar.set_postfix_str(status(time.time() - start), refresh=False)
            bar.close()
        if sync is not None:
            sync.close()
        temp.cleanup(keep_work=sync is not None and not sync.complete)
        elapsed = time.time() - start
        if proc is not None:
            plain.maybe(f"fuzz {args.kernel}: {elapsed:.0f}s{budget} {status(elapsed)}", final=True)
            if plot is not None:  # the end, finds of the last seconds included
                plot.maybe(elapsed, prog, len(found - known), final=True)
            if proc.poll() is not None and _group_gone(proc.pid):
                # no writer left: drop what a killed one left half-written
                sweep_temp_files(crashes)
        if log is not None:
            log.write(f"# pyvmfuzz campaign end after {elapsed:.1f}s: {status(elapsed)}, libFuzzer's exit status "
                      f"{proc.returncode if proc is not None else '-'}\n")
            log.close()
    if proc is None:  # interrupted before the harness started: only the burst searched
        saved = sorted(_findings_on_disk(crashes) - known)
        if not saved:
            raise KeyboardInterrupt
        print(f"# campaign interrupted after {time.time() - start:.2f}s, before libFuzzer started "
              f"(seed {seed}); the random burst's finding(s), saved:")
        for sig in saved:
            print(f"#   {os.path.join(crashes, sig + '.txt')}")
        return 1
    interrupted = interrupted or intr.got is not None
    elapsed = time.time() - start
    pending_errors: list = []
    pending = split_pending(crashes, pending_errors)
    stopped_by_write = write_failed is not None
    write_failed = _write_failure(prog, log, sync, intr) or write_failed  # the harness's own line, now read
    if write_failed is None and pending_errors:
        from pyvmfuzz.campaign.lifecycle import describe

        write_failed = describe(pending_errors[0])
    rows = _read_findings(findings_log, start)
    # Time to first counts confirmed findings only (a disagreement is a model bug, not a find).
    finds = [r for r in rows if r[2] in ("new", "known") and r[-1] == "confirmed"]
    visible_finds = [r for r in finds if r[-2] == "visible"]
    tags = {r[3]: r[-2] for r in finds}
    for sig, tag in tags.items():  # two writers of one bug (the burst, the harness): the file says
        if tag == "internal-only" and os.path.exists(os.path.join(crashes, sig + ".txt")):
            tags[sig] = _file_tag(crashes, sig)
    # New: saved by this campaign (on disk now and not before it, also where the findings log
    # could not be written); known: saved in this crashes directory before it started.
    saved_now = _findings_on_disk(crashes) - known
    confirmed = sorted({sig for sig in tags if sig not in known} | {sig for sig in saved_now if not sig.startswith("disagreement-")})
    for sig in confirmed:
        tags.setdefault(sig, _file_tag(crashes, sig))
    known_seen = sorted(sig for sig in tags if sig in known)
    internal_only = {sig for sig in confirmed if tags[sig] == "internal-only"}
    panics = {sig for sig in confirmed if tags[sig] == "model-panic"}
    all_disagreements = {r[3] for r in rows if r[-1] == "disagreement"} | {sig for sig in saved_now if sig.startswith("disagreement-")}
    disagreements = sorted(all_disagreements - known)
    known_seen += sorted(all_disagreements & known)
    # libFuzzer's own errors (a flag it does not know, its help, a missing -dict file): its
    # line, exit 2, and no campaign summary — there was no campaign.
    failed = (proc.returncode not in (0, None) and not interrupted and not stopped_on_find and not stopped_by_write
              and not confirmed and not known_seen)
    if prog.fatal or prog.help_lines is not None or (failed and not prog.execs):
        if prog.help_lines is not None:
            print("\n".join(prog.help_lines))
        sys.stderr.write(f"pyvmfuzz fuzz: {prog.failure(proc.returncode)} (log: {log_path})\n")
        return 2
    if write_failed:
        # one line; the summary follows on stdout (what was saved, and what could not be)
        sys.stderr.write(f"pyvmfuzz fuzz: write failed: {write_failed}"
                         + (f"; campaign stopped after {elapsed:.0f}s" if stopped_by_write else "") + "\n")
        sys.stderr.flush()
        for name in set(os.listdir(crashes)) - before:  # an empty file the full disk left
            path = os.path.join(crashes, name)
            try:
                if not name.startswith(".") and os.path.isfile(path) and os.path.getsize(path) == 0:
                    os.unlink(path)
            except OSError:
                pass
    if finds:
        first_find = min(float(r[0]) for r in finds) - start
    xchecked = sum(int(r[3]) for r in rows if r[2] == "crosschecked")
    execs = prog.stats.get("number_of_executed_units", prog.execs)
    state = ("stopped (a write failed)" if stopped_by_write else
             f"interrupted{f' ({intr.name})' if intr.got not in (None, signal.SIGINT) else ''}" if interrupted else
             "stopped at the first finding" if stopped_on_find else "done")
    print(f"# campaign {state}: kernel {args.kernel}, {elapsed:.1f}s, "
          f"{execs:,} execs ({execs / max(elapsed, 1e-9):,.0f}/s), corpus {len(os.listdir(corpus))} inputs in {corpus}")
    if sync is not None and not sync.complete:
        print(f"# corpus inputs not copied to {corpus} (write failed) are kept in {sync.work}: "
              f"the next campaign's start copies them")
    if prog.counters is not None:
        print(f"# coverage: {prog.cov} cov, {prog.ft} features, {prog.counters} inline 8-bit counters "
              f"in {prog.modules} module(s) (libFuzzer's cov and ft over the core's counters; coverage {args.coverage})")
    else:
        print(f"# coverage: {prog.cov} cov, {prog.ft} features (coverage {args.coverage}: no counters from the core)")
    if first_find is not None:
        print(f"# time to first violation: {_secs(first_find)}s")
    if visible_finds:
        print(f"# time to first user-visible violation: {_secs(min(float(r[0]) for r in visible_finds) - start)}s")
    xc = "off" if getattr(args, "cross_check", None) == 0 else "every %d clean runs" % args.cross_check \
        if getattr(args, "cross_check", None) else "adaptive, ~1-2% of the time"
    print(f"# oracle cross-checked {xchecked:,} clean runs ({xc})")
    repeats = sum(int(r[3]) for r in rows if r[2] == "repeats")
    if confirmed:
        print(f"# findings: {len(confirmed)} new: {len(confirmed) - len(internal_only) - len(panics)} user-visible, "
              f"{len(internal_only)} internal-only (no witness found), {len(panics)} model panics; {repeats:,} "
              f"violating inputs repeated a bug already handled (campaign.triage: one finding per bug)")
    if known_seen:
        print(f"# {len(known_seen)} finding(s) met again that an earlier campaign saved in {crashes} "
              f"(already known: not listed, not counted in the exit status)")
    # Listed user-visible first; past 20 a count (every one is saved in the crashes directory).
    shown = sorted(confirmed, key=lambda sig: (sig in internal_only, sig))
    hits: dict[str, int] = {}
    for r in rows:
        if r[2] == "hits" and len(r) >= 5 and r[4].isdigit():
            hits[r[3]] = hits.get(r[3], 0) + int(r[4])
    for sig in shown[:20]:
        tag = "internal-only" if sig in internal_only else "model panic" if sig in panics else "user-visible"
        title = _bug_title(crashes, sig)
        more = f" ({hits[sig] + 1:,} violating inputs)" if hits.get(sig) else ""
        print(f"# violation ({tag}): {os.path.join(crashes, sig)}.txt" + (f" — {title}" if title else "") + more)
    if len(shown) > 20:
        print(f"# ... and {len(shown) - 20} more in {crashes}")
    new_pending = [n for n in pending if n not in before]
    if new_pending:
        # the harness caps finding handling at a share of the time (harness.FindingHandler.SHARE)
        again = f" ({len(pending) - len(new_pending):,} more were already there)" if len(new_pending) < len(pending) else ""
        print(f"# {len(new_pending):,} violating inputs of new shapes saved unminimized{again} (finding handling is capped "
              f"at {100 * _handler_share():.0f}% of the time): {os.path.join(crashes, 'pending-*.bytes')} "
              f"(pyvmfuzz minimize FILE {pending_replay_flags(args)})")
    if pending_errors:
        from pyvmfuzz.campaign.harness import PENDING

        print(f"# violating inputs not split into pending-*.bytes (a write failed) are kept in "
              f"{os.path.join(crashes, PENDING)}: the next campaign's start splits them")
    for r in rows:
        if r[2] == "error":
            print(f"# FINDING NOT SAVED AS TEXT (handler error, input kept): {os.path.join(crashes, r[3])} {' '.join(r[4:])}")
    for hx, why in prog.write_errors:
        if hx:
            print(f"# VIOLATING INPUT NOT SAVED ({why}): hex {hx} (to replay: write the bytes to FILE, "
                  f"pyvmfuzz run FILE {pending_replay_flags(args)})")
    for sig in disagreements:
        print(f"# MODEL DISAGREEMENT (core vs oracle): {os.path.join(crashes, sig)}.txt")
    if failed:
        sys.stderr.write(f"pyvmfuzz fuzz: {prog.failure(proc.returncode)} (log: {log_path})\n")
        return 2
    new = bool(confirmed or disagreements)
    if not new and not known_seen:
        print("# no violation found")
    elif not new:
        print(f"# no new violation found ({len(known_seen)} already known)")
    # Exit status (fuzz --help): 1 when this campaign saved something new, whatever stopped it
    if new:
        return 1
    return 2 if write_failed else 130 if interrupted else 0
