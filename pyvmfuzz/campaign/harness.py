"""The libFuzzer (atheris) harness: one Rust call per execution decodes, runs and judges the
input; only a violation comes back to Python, where it is minimized, confirmed by the oracle
and saved once per signature.

Configured by environment (libFuzzer's fork mode re-executes the harness with its own argv):
PYVMFUZZ_KERNEL, PYVMFUZZ_HW, PYVMFUZZ_CRASHES, PYVMFUZZ_FINDINGS (append-only log),
PYVMFUZZ_CORE_SO (the coverage-instrumented core, or empty for the installed one),
PYVMFUZZ_SEMANTIC=1 (the core's semantic counters, see rust/src/features.rs),
PYVMFUZZ_MUTATOR=bytes (libFuzzer's byte mutations only; default: the core's record-aware
custom mutator, rust/src/mutate.rs),
PYVMFUZZ_CRASH=1 (a violation is a crash: ClusterFuzzLite/OSS-Fuzz), PYVMFUZZ_PRELOADED=1
(libFuzzer comes from an LD_PRELOADed sanitizer_with_fuzzer.so)."""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import re
import sys
import threading
import time

from pyvmfuzz import api as _api


# "<kind> <hex> <kernel> <campaign --hw or ->" per line: violating inputs not yet minimized (not a
# program: check skips it); the supervisor splits it into pending-<sha1>.bytes + .replay
PENDING = "pending-inputs.log"
_BEFORE_FUZZ = None  # bench.campaign_bench's clock hook: called once, just before fuzzing starts


def load_core(so_path: str, semantic: bool, mutator: bool = False) -> None:
    """Make libFuzzer's symbols global, then load the instrumented core as pyvmfuzz._core:
    its SanitizerCoverage counters register with the libFuzzer that atheris runs. Semantic
    counters find libFuzzer's registration functions the same way, and libFuzzer finds the
    core's custom mutator (`mutator`: the campaign harness's, when `records_mutator()`)."""
    import atheris

    if not so_path and not semantic and not mutator:
        return
    if os.environ.get("PYVMFUZZ_PRELOADED") != "1":
        _load_libfuzzer_global(atheris, mutator)
    if not so_path:
        return
    import pyvmfuzz

    spec = importlib.util.spec_from_file_location("pyvmfuzz._core", so_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["pyvmfuzz._core"] = mod
    pyvmfuzz._core = mod


def _load_libfuzzer_global(atheris, mutator: bool) -> None:
    libfuzzer = glob.glob(os.path.join(os.path.dirname(atheris.__file__), "core_with_libfuzzer*.so"))
    if not libfuzzer:
        sys.exit("pyvmfuzz harness: atheris has no core_with_libfuzzer module")
    if mutator:
        # The core defines LLVMFuzzerCustomMutator/CrossOver natively (rust/src/mutate.rs);
        # libFuzzer binds those weak symbols when it is loaded, so the core goes global first
        # (loaded after, it is silently never called). The installed core's, also when a
        # coverage build is the one imported: the mutator is the same code.
        spec = importlib.util.find_spec("pyvmfuzz._core")
        if spec is None or not spec.origin:
            sys.exit("pyvmfuzz harness: the core module is not installed")
        ctypes.CDLL(spec.origin, mode=os.RTLD_GLOBAL)
    ctypes.CDLL(libfuzzer[0], mode=os.RTLD_GLOBAL)


def records_mutator() -> bool:
    """The record-aware mutator is on unless PYVMFUZZ_MUTATOR=bytes (libFuzzer's byte
    mutations only: the behaviour before), or libFuzzer comes from a preloaded sanitizer
    runtime (OSS-Fuzz), which binds no custom mutator of ours."""
    return os.environ.get("PYVMFUZZ_MUTATOR", "records") != "bytes" and os.environ.get("PYVMFUZZ_PRELOADED") != "1"


def _internal_only_file(base: str) -> bool:
    """Whether the finding saved at `base` (.txt) is internal-only (no user-visible witness)."""
    try:
        with open(base + ".txt") as f:
            return "\n# internal-only" in f.read(8192)
    except OSError:
        return False

class FindingHandler:
    """What happens when an input violates: minimization, the witness search for a core-only
    kind (campaign.witness), the oracle's confirmation, one file pair per minimized shape.

    Nothing distinct is dropped: an input whose violating prefix has the shape of one already
    handled is counted (`repeats`) and skipped — it would minimize to the same finding — and
    every other input is minimized; findings are deduplicated by their minimized shape.

    Handling (minimization, oracle, witness search: ~30 ms a finding) is capped at SHARE of
    the wall time since the handler started: past it, an input of a new shape is saved as it
    is (a line of PENDING in the crashes directory; the supervisor makes each a
    `pending-<sha1>.bytes` that `pyvmfuzz minimize` takes). Measured (issue 18): a campaign
    on `fixed` reaches tagged-hardware stale reads with hundreds of distinct shapes, and handling them all took 95% of the
    fuzzing process. The first finding is always handled at once (nothing spent yet), so
    time to first finding does not change."""

    SHARE = 0.05

    def __init__(self, kernel: str, hw: str | None, crashes: str, log: str | None):
        from pyvmfuzz import _core

        self.core = _core
        self.kernel, self.hw, self.crashes, self.log = kernel, hw, crashes, log
        # a violating input's shape -> its bug's bucket name (an input of a shape met before
        # counts for that bug too: the summary's per-bug count and its total agree)
        self.raw_seen: dict[str, str] = {}
        self.small_seen: set[str] = set()
        self.repeats = 0
        # one finding per bug (campaign.triage): violating inputs met per bucket name, and how
        # many of them the findings log has been told of
        self.buckets: dict[str, int] = {}
        self.buckets_logged: dict[str, int] = {}
        # bugs saved internal-only (no continuation made them visible): later inputs of the same
        # bug are tried again, up to this many each, and the first user-visible witness replaces
        # the internal-only file (a stale clean TLB entry is often met before a dirty one)
        self.upgrades: dict[str, int] = {}
        self.hits_at = 0.0
        # PYVMFUZZ_HANDLE_SHARE: another cap (1 handles every shape: the behaviour before issue 18)
        self.share = float(os.environ.get("PYVMFUZZ_HANDLE_SHARE") or self.SHARE)
        self.start = time.perf_counter()
        self.spent = 0.0  # seconds handling new shapes
        self.pending = 0
        self.pending_f = None
        self.write_failed = False  # a write failed (said once to the supervisor)
        self.signalled = False
        # where the write-error line goes when the handler runs in the supervisor (else stderr)
        self.tell = None

    def __call__(self, data: bytes, detected: float | None = None) -> None:
        """A violating input; `detected`: when it was met, if before now (the supervisor's
        random burst)."""
        from pyvmfuzz.campaign.findings import signals_deferred

        try:
            with signals_deferred():  # an interrupt waits until the finding is on disk
                self._handle(data, detected)
        except Exception as e:  # noqa: BLE001 -- never lose a finding to a bug in this path
            import hashlib

            from pyvmfuzz.campaign.findings import atomic_write

            name = f"unsaved-{hashlib.sha1(data).hexdigest()[:12]}.bytes"
            try:
                atomic_write(os.path.join(self.crashes, name), data)
            except OSError as e2:  # a full disk: the input goes to the supervisor, which stops
                self.write_error(e2, data)
                return
            if isinstance(e, OSError):
                self.write_error(e)
            self._log(f"error {name} {type(e).__name__}: {e}".replace("\n", " "))

    def write_error(self, e: OSError, data: bytes | None = None) -> None:
        """A finding, the pending inputs or the findings log could not be written (ENOSPC,
        EDQUOT, ...): a `#pyvmfuzz write-error HEX|- PATH: REASON` line to the supervisor
        (stderr; HEX: the input not saved, which its summary prints), which stops the campaign,
        and SIGUSR1 to it (a fork-mode job's stderr does not reach it). Raising instead would
        make libFuzzer save a crash file on the full disk (the 0-byte file of issue 25)."""
        from pyvmfuzz.campaign.lifecycle import describe

        if data is None and self.write_failed:
            return  # said once; each input not saved is said
        self.write_failed = True
        line = f"#pyvmfuzz write-error {data.hex() if data is not None else '-'} {describe(e)}".replace("\n", " ")
        if self.tell is not None:  # in the supervisor itself (its random burst)
            self.tell(line)
            return
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        sup = os.environ.get("PYVMFUZZ_SUPERVISOR", "")
        if sup.isdigit() and not self.signalled:
            self.signalled = True
            try:
                import signal

                os.kill(int(sup), signal.SIGUSR1)
            except OSError:
                pass

    def _handle(self, data: bytes, detected: float | None = None) -> None:
        from pyvmfuzz.campaign.findings import shape

        detected = detected or time.time()
        rep = _api.report(data, self.kernel, self.hw)
        v = rep["violation"]
        if v is None:  # cannot happen: the fast path said otherwise
            self._log(f"error nondeterministic-verdict {data.hex()}")
            return
        raw = shape(v["kind"], rep["steps"][: v["step"]])
        if raw in self.raw_seen:
            self.repeats += 1
            self.buckets[self.raw_seen[raw]] += 1
            return
        from pyvmfuzz.campaign.triage import bucket

        b = bucket(self.kernel, rep["hw"], rep["steps"], v["kind"], v["step"], v.get("observed") or "")
        self.raw_seen[raw] = b.name
        if b.name in self.buckets:  # another input of a bug already handled
            self.buckets[b.name] += 1
            self.repeats += 1
            if self.upgrades.get(b.name, 0) > 0:
                t0 = time.perf_counter()
                # within the handling share, but never less than UPGRADE_FLOOR_S in all: a
                # failed witness search costs ~2 s, and a short campaign's share is a few s
                if not (self.share < 1 and self.spent > max(self.share * (t0 - self.start), self.UPGRADE_FLOOR_S)):
                    self.upgrades[b.name] -= 1
                    try:
                        self._minimize_and_save(data, rep, detected, b, upgrade=True)
                    finally:
                        self.spent += time.perf_counter() - t0
            if time.time() - self.hits_at > 1.0:
                self.log_hits()
            return
        self.buckets[b.name] = 1
        t0 = time.perf_counter()
        if self.share < 1 and self.spent > self.share * (t0 - self.start):
            # one appended line, no file per input (a file each, fsynced, cost ~1 ms on ext4);
            # the supervisor splits them into pending-<sha1>.bytes at the end (split_pending)
            try:
                if self.pending_f is None:
                    self.pending_f = open(os.path.join(self.crashes, PENDING), "a", buffering=1)
                self.pending_f.write(f"{v['kind']} {data.hex()} {self.kernel} {self.hw or '-'}\n")
            except OSError as e:
                if e.filename is None:
                    e.filename = os.path.join(self.crashes, PENDING)
                f, self.pending_f = self.pending_f, None
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass
                self.write_error(e, data)
                return
            self.pending += 1
            return
        try:
            self._minimize_and_save(data, rep, detected, b)
        finally:
            self.spent += time.perf_counter() - t0

    UPGRADE_TRIES = 12
    UPGRADE_FLOOR_S = 8.0

    def _minimize_and_save(self, data: bytes, rep: dict, detected: float, b=None, upgrade: bool = False) -> None:
        """Minimize, confirm, extend and save a new bug's input. `upgrade`: a later input of a bug
        saved internal-only; saved (over the internal-only file) only if it is user-visible."""
        from pyvmfuzz.campaign.findings import save, shape
        from pyvmfuzz.campaign.witness import CORE_ONLY_EXTENDABLE, extend
        from pyvmfuzz.insight.minimize import minimize_report
        from pyvmfuzz.oracle.check import KERNELS, confirm

        small = minimize_report(rep, budget_s=5.0, portable=KERNELS)
        sv = small["violation"]
        key = shape(sv["kind"], small["steps"])
        if key in self.small_seen:
            if not upgrade:
                self.repeats += 1
            return
        self.small_seen.add(key)
        j = confirm(small)
        if upgrade and not j.agree:
            return
        witness = None
        if j.agree and sv["kind"] in CORE_ONLY_EXTENDABLE:
            witness = extend(small, portable=KERNELS) or (
                extend(rep, portable=KERNELS) if len(rep["steps"]) > len(small["steps"]) else None)
        if witness is not None and witness["internal"] is None:
            # A replaced last line shows the user the bug at once: an ordinary finding.
            small, witness = _api.report("\n".join([witness["hw"]] + witness["steps"]) + "\n", self.kernel), None
            j = confirm(small)
        kind = (witness or small)["violation"]["kind"]
        # internal-only: a core-only kind no continuation made visible; a model panic is the
        # model's own bug (tagged apart: not a kernel finding, not hidden either)
        visible = ("internal-only" if witness is None and kind in CORE_ONLY_EXTENDABLE
                   else "model-panic" if kind == "panic" else "visible")
        if upgrade and (visible != "visible" or not _internal_only_file(os.path.join(self.crashes, b.name))):
            return  # not visible either, or another job upgraded it meanwhile
        if not upgrade and visible == "visible" and b is not None and j.agree \
                and _internal_only_file(os.path.join(self.crashes, b.name)):
            upgrade = True  # another writer (a fork-mode job, the supervisor's burst) saved it internal-only
        prefix = "" if j.agree else "disagreement-"
        note = f"minimized from {len(rep['steps'])} to {len(small['steps'])} steps"
        if witness is not None:  # the saved program is the witness: the minimized one, continued
            mine = [x.split(" ->")[0] for x in small["steps"]]
            theirs = [x.split(" ->")[0] for x in witness["steps"][: len(mine)]]
            changed = [i + 1 for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
            if changed:  # witness.dirty_first: the load that filled a stale entry made a store
                note += f", line {changed[0]} made a store first (a clean stale entry shows a user nothing)"
            note += f", continued to {len(witness['steps'])} for a user to see it"
        note += f"; oracle: {j.describe()}"
        base, new = save(self.crashes, small, note, prefix, data, witness=witness, data_hw=rep["hw"],
                         name=b.name if b is not None and j.agree else None,
                         title=b.title if b is not None else None, replace=upgrade)
        if b is not None:
            if visible == "internal-only" and (new or _internal_only_file(base)):
                self.upgrades.setdefault(b.name, self.UPGRADE_TRIES)
            elif visible == "visible":
                self.upgrades.pop(b.name, None)
        self._log(f"{'new' if new else 'known'} {os.path.basename(base)} {kind} "
                  f"{len(rep['steps'])}->{len((witness or small)['steps'])} {visible} "
                  f"{'confirmed' if j.agree else 'disagreement'}", detected)

    def disagreement(self, rep: dict, j) -> None:
        """A clean run the oracle judges otherwise: a model bug, saved apart."""
        from pyvmfuzz.campaign.findings import save

        fake = dict(rep, violation={"kind": j.oracle[0] if j.oracle else "clean", "step": max(1, j.oracle[1]) if j.oracle else 1,
                                    "expected": "", "observed": j.describe()})
        try:
            base, new = save(self.crashes, fake, f"cross-check: {j.describe()}", "disagreement-")
        except OSError as e:
            try:
                blob = self.core.encode("\n".join([rep["hw"]] + rep["steps"]) + "\n", rep["kernel"])
            except Exception:  # noqa: BLE001 -- the error line goes out without it
                blob = None
            self.write_error(e, blob)
            return
        self._log(f"{'new' if new else 'known'} {os.path.basename(base)} disagreement 0->0 visible disagreement")

    def log_hits(self) -> None:
        """Violating inputs met per bug since the last call, to the findings log (`hits NAME N`:
        the supervisor sums them per finding)."""
        self.hits_at = time.time()
        for name, n in self.buckets.items():
            done = self.buckets_logged.get(name, 0)
            if n > done:
                self._log(f"hits {name} {n - done}")
                self.buckets_logged[name] = n

    def _log(self, msg: str, when: float | None = None) -> None:
        if self.log:
            try:
                with open(self.log, "a") as f:
                    f.write(f"{when or time.time():.6f} {os.getpid()} {msg}\n")  # µs: shallow bugs fall in < 1 ms
            except OSError as e:
                if e.filename is None:  # a failed flush names no file
                    e.filename = self.log
                self.write_error(e)


def job_seed(argv: list[str]) -> list[str]:
    """libFuzzer's fork mode starts every job with the parent's argv, -seed included, so all
    jobs would mutate alike. A job (its corpus argument is the fork's TEMP/C<job id>) runs
    with the seed plus its job id instead. Returns argv, rewritten when it is a job's."""
    if os.environ.get("PYVMFUZZ_FORK") != "1":
        return argv
    job = next((int(a.rsplit("C", 1)[1]) for a in argv[1:]
                if not a.startswith("-") and re.fullmatch(r"C\d+", os.path.basename(a.rstrip("/")))), None)
    seed = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("-seed=")), None)
    if job is None or seed is None:
        return argv
    new = (seed + job) % (1 << 31) or 1
    return [a if not a.startswith("-seed=") else f"-seed={new}" for a in argv]


def parse_xcheck(v: str | None) -> int | None:
    """PYVMFUZZ_XCHECK: "auto" (or unset) -> None (the adaptive default), N -> every Nth
    clean run, 0 -> off."""
    if v in (None, "", "auto"):
        return None
    return max(0, int(v))


class CrossCheck:
    """Oracle cross-checking of clean runs (on by default, issue 15): a clean run the oracle
    judges otherwise is a model disagreement, saved apart.

    `every=None` (default): adaptive — a clean run is judged whenever the time spent judging
    so far is under SHARE of the campaign's wall time, so the cost is bounded by construction
    (`pyvmfuzz bench --xcheck` measures it: exec/s with and without, side by side).
    `every=N`: every Nth clean run; `every=0`: off."""

    SHARE = 0.01

    def __init__(self, core, kernel: str, hw: str | None, found: "FindingHandler", every: int | None = None):
        from pyvmfuzz.oracle.check import judge_report

        self.core, self.kernel, self.hw, self.found, self.every = core, kernel, hw, found, every
        self.judge = judge_report
        self.start = time.perf_counter()
        self.spent = 0.0
        self.last_cost = 0.005  # seconds; a first guess, replaced by each judgement's own time
        # The policy's bound: spent <= SHARE * wall time + one judgement (the estimate is the
        # last one's cost; an interleaved program's linearizability search may cost far more).
        self.max_cost = 0.0
        self.countdown = every or 0
        self.checked = 0
        self.flushed = 0  # judged and already reported by flush()
        self.last_log = time.time()
        self.logged_repeats = 0

    PROBE = 64  # adaptive: look at the clock every PROBE clean runs, not every run

    def first(self) -> int:
        """Clean runs before the first call of `clean`."""
        return 1 << 62 if self.every == 0 else self.every or 1

    def clean(self, data: bytes) -> int:
        """Called for a clean run when the countdown ran out; returns the next countdown
        (the callback's fast path is a decrement, so the clock is read rarely)."""
        if self.every == 0:
            return 1 << 62
        now = time.perf_counter()
        # adaptive: judge only if, this judgement included (estimated by the last one), the
        # oracle's time stays within SHARE of the wall time so far
        if self.every is None and self.spent + self.last_cost > self.SHARE * (now - self.start):
            return self.PROBE
        rep = _api.report(data, self.kernel, self.hw)
        j = self.judge(rep)
        self.checked += 1
        if not j.agree:
            self.found.disagreement(rep, j)
        self.last_cost = time.perf_counter() - now
        self.max_cost = max(self.max_cost, self.last_cost)
        self.spent += self.last_cost
        if time.time() - self.last_log > 1.0:
            self.flush()
        elif self.flushed == 0:
            # the first judgement at once (libFuzzer's exit runs no Python: a short campaign's
            # next flush may never come), the once-a-second clock left as it is
            self._log_checked()
        return self.every or self.PROBE

    def _log_checked(self) -> None:
        self.found._log(f"crosschecked {self.checked}")
        self.flushed += self.checked
        self.checked = 0

    def flush(self) -> None:
        """Counts since the last flush to the findings log (the supervisor sums them)."""
        self._log_checked()
        self.found._log(f"repeats {self.found.repeats - self.logged_repeats}")
        self.logged_repeats = self.found.repeats
        self.found.log_hits()
        self.last_log = time.time()


def make_test_one_input(run, found: FindingHandler, xc: CrossCheck):
    """libFuzzer's callback: the core's verdict; a violation goes to `found`, a clean run to
    the cross-check when its countdown runs out."""
    clean = xc.clean
    countdown = xc.first()

    def test_one_input(data: bytes) -> None:
        nonlocal countdown
        if run(data)[0]:
            found(data)
            return
        countdown -= 1
        if countdown <= 0:
            countdown = clean(data)

    return test_one_input


def main() -> None:
    kernel = os.environ.get("PYVMFUZZ_KERNEL", "fixed")
    hw = os.environ.get("PYVMFUZZ_HW") or None
    crashes = os.environ.get("PYVMFUZZ_CRASHES", "crashes")
    semantic = os.environ.get("PYVMFUZZ_SEMANTIC") == "1"
    load_core(os.environ.get("PYVMFUZZ_CORE_SO", ""), semantic, records_mutator())
    import atheris

    from pyvmfuzz import _core

    os.makedirs(crashes, exist_ok=True)
    target = _core.FuzzTarget(kernel, hw, semantic)
    run = target.run
    found = FindingHandler(kernel, hw, crashes, os.environ.get("PYVMFUZZ_FINDINGS"))

    xc = CrossCheck(_core, kernel, hw, found, parse_xcheck(os.environ.get("PYVMFUZZ_XCHECK", "auto")))
    test_one_input = make_test_one_input(run, found, xc)

    if os.environ.get("PYVMFUZZ_CRASH") == "1":
        # ClusterFuzz(Lite) mode: a violation is a crash, and libFuzzer saves the input.
        kinds = _core.kinds()

        def test_one_input(data: bytes) -> None:  # noqa: F811
            code, step = run(data)
            if code:
                hw_flag = f" --hw {hw}" if hw else ""
                raise AssertionError(f"pyvmfuzz: {kinds[code - 1]} at step {step} under {kernel}; "
                                     f"replay: pyvmfuzz run ARTIFACT --kernel {kernel}{hw_flag}")

    def progress() -> None:  # execs for the supervisor's bar (libFuzzer only pulses at 2^n)
        while True:
            time.sleep(0.5)
            sys.stderr.write(f"#pyvmfuzz execs {target.execs()} bytes {target.bytes_run()}\n")
            sys.stderr.flush()

    threading.Thread(target=progress, daemon=True).start()
    # Preloaded sanitizer_with_fuzzer.so (the OSS-Fuzz wrapper) brings its own libFuzzer.
    internal = None if os.environ.get("PYVMFUZZ_PRELOADED") == "1" else True
    argv = job_seed(sys.argv)
    seed = next((a.split("=", 1)[1] for a in argv if a.startswith("-seed=")), None)
    # Which seed each fuzzing process ran with (not the fork-mode parent, not merge runs).
    if seed is not None and not any(a.startswith(("-fork=", "-merge_inner=", "-merge_control_file=")) for a in argv):
        found._log(f"seed {seed}")
    atheris.Setup(argv, test_one_input, internal_libfuzzer=internal)
    if _BEFORE_FUZZ is not None:
        _BEFORE_FUZZ()
    atheris.Fuzz()


if __name__ == "__main__":
    main()
