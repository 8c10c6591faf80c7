"""Findings: signatures, atomic files, and the readable saved form of a violation."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import signal
import stat
import tempfile

from pyvmfuzz import _core
from pyvmfuzz import api as _api

_VALUE = re.compile(r"\b0x[0-9a-f]+\b|\b\d+\b")


def _umask() -> int:
    """The process's umask, read without changing it (Linux >= 4.7), else by setting it back."""
    try:
        with open("/proc/self/status") as f:
            for ln in f:
                if ln.startswith("Umask:"):
                    return int(ln.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def signals_deferred():
    """SIGINT and SIGTERM held back while the block runs and delivered when it ends. The
    campaign's harness saves a finding inside one: libFuzzer's handler for them `_Exit()`s at
    once, past every Python `finally`, so an interrupt mid-save would lose the finding and
    leave a `.tmp-` file behind. Main thread only (elsewhere a no-op)."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def sweep_temp_files(d: str) -> int:
    """Remove the `.tmp-` files a writer killed outright (SIGKILL) left in `d`; their data
    never became a file. The caller must know no writer is alive. Returns how many."""
    n = 0
    try:
        names = os.listdir(d)
    except OSError:
        return 0
    for name in names:
        if name.startswith(".tmp-"):
            try:
                os.unlink(os.path.join(d, name))
                n += 1
            except OSError:
                pass
    return n


def atomic_write(path: str, data: bytes | str, exclusive: bool = False) -> bool:
    """Write via a hidden temp file in the same directory and rename: a reader (or an
    interrupted campaign) never sees a partial file. The file gets the mode a plain open()
    would give it (0666 less the umask), not mkstemp's 0600. An OSError names `path`, never
    the temp file. A path that is not a regular file (a device, /dev/stdout, a link to one) is
    written through, never renamed over: as root that replaced /dev/full with a file.
    `exclusive`: only if `path` does not exist, decided atomically (a hard link, which fails on
    an existing name; a rename would replace it). Returns whether it was written."""
    d = os.path.dirname(path) or "."
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # absent (or a dangling link): the ordinary case
        special = False
    if special:
        try:
            with open(path, mode) as f:
                f.write(data)
        except OSError as e:  # ENOSPC from /dev/full comes at close, naming no file
            raise OSError(e.errno, e.strerror, path) from None
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # a file system without hard links: a check and a rename (a narrow race left)
            if os.path.lexists(path):
                return False
            os.replace(tmp, path)
            return True
        finally:
            if os.path.lexists(tmp):  # linked (or refused): the temp name goes either way
                os.unlink(tmp)
        return True
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and e.filename != path:
            raise OSError(e.errno, e.strerror, path) from None
        raise


def op_lines(text: str) -> list[str]:
    return [ln.split("->")[0].split("#")[0].strip() for ln in text.splitlines() if ln.strip().startswith("cpu")]


def shape(kind: str, ops: list[str]) -> str:
    """A violation's shape: its kind and the minimized steps with values, words and pids
    abstracted (two findings that differ only in those are the same finding)."""
    norm = []
    for op in ops:
        toks = op.split()
        out = [toks[1]]
        for t in toks[2:]:
            if re.fullmatch(r"(data|text|shm)\d\.\d", t):
                out.append(t.split(".")[0])
            elif re.fullmatch(r"P\d+(\.T\d+)?|idle", t):
                out.append("T" if "." in t else ("idle" if t == "idle" else "P"))
            elif t in ("r", "rw", "dontneed"):
                out.append(t)
        norm.append(" ".join(out))
    return kind + "|" + ";".join(norm)


def signature(kind: str, ops: list[str]) -> str:
    return f"{kind}-{hashlib.sha1(shape(kind, ops).encode()).hexdigest()[:12]}"


USER_VISIBLE = ("stale-read", "protection", "outcome", "lost-wakeup", "file-corruption")


def _os_line() -> str:
    """The personality header (docs/contract.md §4.2): a real line once the core parses `os`, else a
    comment that says the same (campaigns on the model are DragonFly's personality)."""
    try:
        _core.check_text("os dragonfly\ncpu0 load data0.0\n")
        return "os dragonfly"
    except ValueError:
        return "# os dragonfly"


def _interleaved(steps: list[str], trace: list[str]) -> bool:
    return any(" until " in st or st.split()[1] in ("resume", "ipi") for st in steps) or any(
        t.split()[:1] == ["paused"] for t in trace)


def _interleaved_outcomes(hw: str, steps: list[str], trace: list[str]) -> list[str | None]:
    """docs/contract.md §4.1: before its first violation the oracle accepts every observed outcome (some
    valid order explains it); at the violation it gives the most specific expected outcome.
    Schedule lines -- `paused`, `resume`, `ipi` -- get none: another kernel may take another
    schedule, and they are not outcomes of the contract."""
    from pyvmfuzz.oracle import TraceError, judge

    text = "\n".join([hw] + [f"{st} -> {t}" for st, t in zip(steps, trace) if t != "panic"]) + "\n"
    try:
        v = judge(text)
    except (TraceError, ValueError):
        return [None] * len(steps)
    n = v.step if v is not None else len(trace)
    out: list[str | None] = []
    for i, st in enumerate(steps):
        # a model panic is no outcome of the contract (an `-> panic` line would not parse)
        if i >= len(trace) or i + 1 > n or trace[i] == "panic":
            out.append(None)
            continue
        o = v.expected if v is not None and i + 1 == n else trace[i]
        o = o.partition(" woke ")[0]
        schedule = o == "paused" or trace[i].split()[:1] == ["paused"] or st.split()[1] in ("resume", "ipi")
        out.append(None if schedule else o)
    return out


def oracle_outcomes(hw: str, steps: list[str], trace: list[str]) -> list[str | None]:
    """The outcome the oracle (docs/contract.md §4) requires at each step, given the observations before
    it (spurious wakeups observed are adopted, as the oracle does). None where the oracle
    cannot follow the run (a disagreement, reported elsewhere)."""
    from pyvmfuzz.oracle import Oracle, TraceError

    if _interleaved(steps, trace):
        return _interleaved_outcomes(hw, steps, trace)
    cpus = int(re.search(r"cpus=(\d+)", hw)[1]) if re.search(r"cpus=(\d+)", hw) else 2
    o = Oracle(cpus)
    out: list[str | None] = []
    for i, op in enumerate(steps):
        try:
            out.append(o.expected_outcome(op))
        except (TraceError, ValueError):
            return out + [None] * (len(steps) - i)
        if i + 1 == len(steps) or i >= len(trace) or trace[i] == "panic":
            continue
        outcome, _, woke = trace[i].partition(" woke ")
        try:
            if o.step(op, outcome, [w for w in woke.split(",") if w]) is not None:
                return out + [None] * (len(steps) - i - 1)
        except (TraceError, ValueError, RuntimeError):
            return out + [None] * (len(steps) - i - 1)
    return out


def _verdict(rep: dict) -> tuple[str, int] | None:
    v = rep["violation"]
    return None if v is None else (v["kind"], v["step"])


def expect_lines(program: str, kernel: str, first: tuple[str, int], witness: tuple[str, int] | None) -> tuple[list[str], list[str]]:
    """(expect lines, comment lines) for a saved finding. Its own kernel gets the first
    violation (and, for a witness, the user-visible one after it); every other kernel gets an
    expect line only where the oracle vouches for the core's verdict on it: clean (the oracle
    finds nothing in the whole run) or a user-visible kind the oracle reports at the same
    step. A core-only verdict elsewhere, or a kernel under which the program cannot run, is
    left as a comment (the oracle cannot derive it)."""
    from pyvmfuzz import oracle
    from pyvmfuzz.oracle.check import KERNELS, observations

    # A saved disagreement has no kind of the core's to expect.
    lines = [f"expect {kernel} {first[0]} {first[1]}"] if first[0] in _core.kinds() else []
    if witness:
        lines.append(f"expect {kernel} {witness[0]} {witness[1]}")
    notes = []
    for k in KERNELS:
        if k == kernel:
            continue
        try:
            r = _api.report(program, k)
        except ValueError as e:
            notes.append(f"# {k}: not applicable ({e})")
            continue
        core = _verdict(r)
        try:
            ov = oracle.judge(observations(r))
        except Exception:  # noqa: BLE001 -- an oracle that cannot follow vouches for nothing
            ov = None
            core = ("?", 0)
        orc = None if ov is None else (ov.kind, ov.step)
        if core is None and orc is None:
            lines.append(f"expect {k} clean")
        elif core is not None and core == orc and core[0] not in ("tlb-incoherent", "use-after-free", "file-corruption", "lost-data", "panic"):
            lines.append(f"expect {k} {core[0]} {core[1]}")
        elif core is not None:
            notes.append(f"# {k}: core verdict {core[0]} at step {core[1]} (core-only: not asserted)")
    return lines, notes


def _held_everywhere(want: list[str | None], program: str, kernel: str, expects: list[str]) -> list[str | None]:
    """The assertions, less those another kernel's run does not reach: under a kernel with an
    `expect` line, a line may take another schedule (docs/contract.md §3.2: a fault that meets a busy page
    waits, outcome `paused`, where the finding's kernel went on) and the lines after it may
    see another, equally linearizable, state. An assertion is kept only where every such
    kernel observes it (before its own violation, for a kernel expected to violate), so
    `check --kernel all` holds the file to what every kernel's run shows. Measured: a
    pre-385c96e4 finding whose last line completed there and waited under `fixed`."""
    keep = list(want)
    for line in expects:
        k, verdict, *at = line.split()[1:]
        if k == kernel:
            continue
        try:
            r = _api.report(program, k)
        except ValueError:
            continue
        upto = int(at[0]) - 1 if verdict != "clean" and at else len(keep)
        for i, w in enumerate(keep):
            if w is not None and i < upto and (i >= len(r["trace"]) or r["trace"][i].partition(" woke ")[0] != w.partition(" woke ")[0]):
                keep[i] = None
    return keep


def finding_text(rep: dict, note: str, witness: dict | None = None, bytes_hw: str | None = None,
                 searched: bool = True, title: str | None = None) -> str:
    """The saved program, a regression program (issue 15/17): each op line asserts the
    *correct* outcome (the oracle's) with `->`, so it passes under a correct kernel; `expect`
    lines give the violation under its kernel and the verdict of every kernel the oracle can
    vouch for (`fixed`: clean). The header names kernel, hw and personality (`os`), so
    `run FILE` (and `run FILE.bytes`, which reads this file as its sidecar) needs no flags.

    `witness`: the report (core past its internal invariants, exec::run_past_internal) of an
    extension of a core-only finding to a user-visible violation: that program is saved.
    `searched`: False where no witness search was made (explore), so a core-only finding is
    not called internal-only."""
    base = witness or rep
    v = rep["violation"] if witness is None else witness["internal"]
    first = (v["kind"], v["step"])
    uv = None if witness is None else (witness["violation"]["kind"], witness["violation"]["step"])
    steps, trace, kernel, hw = base["steps"], base["trace"], base["kernel"], base["hw"]
    want = oracle_outcomes(hw, steps, trace)
    program = "\n".join([hw, f"kernel {kernel}"] + steps) + "\n"
    expects, notes = expect_lines(program, kernel, first, uv)
    want = _held_everywhere(want, program, kernel, expects)
    ops = [op if w is None else f"{op} -> {w}" for op, w in zip(steps, want)]
    head = [f"# pyvmfuzz finding: {(uv or first)[0]} under {kernel}"]
    if title:
        head.append(f"# bug: {title}")
    if uv:
        wv = witness["violation"]
        head += [f"# user-visible: {uv[0]} at step {uv[1]}: expected {wv['expected']}, observed {wv['observed']} (oracle-confirmed)",
                 f"# the invariant first broke at step {first[1]}: {first[0]}: {v['observed']}"]
    else:
        head.append(f"# step {first[1]}: {first[0]}: expected {v['expected']}, observed {v['observed']}")
        if first[0] in ("tlb-incoherent", "use-after-free", "lost-data"):
            head.append("# internal-only: no continuation within the search budget makes a user see it" if searched
                        else "# core-only: not searched for where a user sees it (`pyvmfuzz minimize FILE` searches)")
    hw_keys = ",".join((bytes_hw or hw).split()[1:])
    head += [f"# {note}",
             "# replay: pyvmfuzz run FILE (kernel, hw and os from this header)",
             f"# replay-bytes: --kernel {kernel} --hw {hw_keys} --os dragonfly",
             "# -> assertions are the correct (oracle's) outcomes: under a fixed kernel they all hold"]
    return "\n".join(head + [hw, f"kernel {kernel}", _os_line()] + expects + notes + ops) + "\n"


def save(crashes: str, rep: dict, note: str, prefix: str = "", data: bytes | None = None,
         witness: dict | None = None, data_hw: str | None = None, name: str | None = None,
         title: str | None = None, replace: bool = False) -> tuple[str, bool]:
    """Save a (minimized) violating run as text and bytes, once per signature.
    `data`: the input as the campaign found it, written as the .bytes when the program cannot
    be encoded (a program that panics the model also panics the encoder): no finding is lost.
    `data_hw`: the hardware `data` ran on (the campaign's --hw over its header). The .txt
    names how to replay the .bytes (`# replay-bytes: --kernel K --hw KEYS --os OS`): the byte
    form carries the hardware in its header but neither kernel nor personality, and decoding
    depends on the kernel, so `pyvmfuzz run FILE.bytes` reads that line (programs.sidecar).
    `name`/`title`: the finding's bug (campaign.triage.Bucket): one file pair per bucket, its
    title in the header; else one per minimized shape. `replace`: write over the bucket's file
    (a user-visible witness of a bug first saved internal-only).
    Returns (base path, whether it was new, or replaced)."""
    v = rep["violation"] if witness is None else witness["violation"]
    sig = prefix + (name or signature(v["kind"], (witness or rep)["steps"]))
    base = os.path.join(crashes, sig)
    if os.path.exists(base + ".txt") and not replace:
        return base, False
    program = "\n".join([rep["hw"]] + (witness or rep)["steps"]) + "\n"
    bytes_hw = None
    try:
        blob = _core.encode(program, rep["kernel"])
    except ValueError as e:
        if data is None:
            raise
        blob, bytes_hw = data, data_hw
        note += f"; FILE.bytes is the input as found (the program cannot be encoded: {e})"
    text = finding_text(rep, note, witness, bytes_hw, title=title)
    if replace:
        atomic_write(base + ".bytes", blob)
        atomic_write(base + ".txt", text)
        return base, True
    # The .txt first and exclusively: of two writers of one bug at once (fork-mode jobs, the
    # harness and the supervisor's random burst) the first keeps the bug and the other's pair
    # is never mixed with it. The .bytes follows; a writer killed between leaves the .txt,
    # which holds the program.
    if not atomic_write(base + ".txt", text, exclusive=True):
        return base, False
    atomic_write(base + ".bytes", blob)
    return base, True
