"""What a campaign owns while it runs, and how it lets go (issue 25).

- Its output directory: an exclusive `flock` on `OUT/.lock`, which holds the owner's pid. A
  second campaign there is refused with that pid; the kernel drops the lock when its holder
  dies, however it dies, so a stale lock file is simply taken over.
- Its signals: SIGTERM and SIGHUP (what `timeout`, CI cancellation, systemd, `docker stop` and
  a closed terminal send) stop it as Ctrl-C does; SIGINT inherited as ignored (`cmd &` in a
  script, `nohup`) is restored, so Ctrl-C works.
- Its temporary directories: one root (on tmpfs, /dev/shm, when there is one) holding libFuzzer's
  working corpus and the encoded seeds, with an `owner` file the campaign keeps locked. A root
  whose owner file is no longer locked belongs to a campaign that died (SIGKILL, a crash, power):
  the next campaign copies what its working corpus had that its corpus directory lacks, then
  removes it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

from pyvmfuzz.programs import InputError

LOCK = ".lock"
OWNER = "owner"
SHM = "/dev/shm"
ROOT_PREFIXES = ("pyvmfuzz-corpus-", "pyvmfuzz-campaign-")  # tmpfs root, and the root elsewhere
LEGACY_PREFIXES = ("pyvmfuzz-corpus-", "pyvmfuzz-seeds-")  # roots without an owner file (before issue 25)
LEGACY_AGE_S = 600.0  # an owner-less directory younger than this may be one being made: left alone


# -- the output directory ------------------------------------------------------------------


def _read_pid(path: str) -> str:
    for _ in range(20):  # the owner writes its pid just after taking the lock
        try:
            with open(path) as f:
                pid = f.read().split()
        except OSError:
            pid = []
        if pid and pid[0].isdigit():
            return pid[0]
        time.sleep(0.025)
    return "unknown"


class DirLock:
    """An exclusive lock on DIR/.lock held while the campaign runs (close() lets it go; so
    does the process's death). The file stays: removing it would race a newcomer."""

    def __init__(self, d: str, what: str = "output directory", flag: str = "--out"):
        self.path = os.path.join(d, LOCK)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise InputError(f"{what} {d}: cannot create its lock file ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"{what} {d}: cannot lock {self.path} ({e.strerror})") from None
            raise InputError(f"{what} {d} is in use by another campaign (pid {_read_pid(self.path)}); "
                             f"wait for it, stop it, or give another {flag}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd: int | None = fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the lock goes with the last descriptor
            self.fd = None


# -- signals -------------------------------------------------------------------------------


def restore_sigint() -> bool:
    """SIGINT back to Python's handler (KeyboardInterrupt) if it was inherited as ignored:
    a shell without job control starts `cmd &` so, and `nohup` too; a campaign or a check
    started that way could not be interrupted. Main thread only. Returns whether it was."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return True
    return False


STOP_SIGNALS = tuple(getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s))


class Interrupts:
    """While active, SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread —
    once, and only while `armed`: the stopping and saving after it are bounded and are not cut
    short by a second signal (it is recorded in `got`). On exit the previous handlers return
    (SIGINT's as restore_sigint left it). Outside the main thread it does nothing."""

    def __init__(self):
        self.got: int | None = None
        self.armed = False
        self.old: dict = {}
        self.usr1 = False  # SIGUSR1: a harness could not write (harness.FindingHandler.write_error)

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            restore_sigint()
            for s in STOP_SIGNALS:
                self.old[s] = signal.signal(s, self._handler)
            if hasattr(signal, "SIGUSR1"):
                self.old[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, self._usr1)
            self.armed = True
        return self

    def _usr1(self, signum, frame) -> None:
        self.usr1 = True

    def _handler(self, signum, frame) -> None:
        first = self.got is None
        if first:
            self.got = signum
        if first and self.armed:
            self.armed = False
            raise KeyboardInterrupt

    def disarm(self) -> None:
        self.armed = False

    def __exit__(self, *exc) -> None:
        self.armed = False
        for s, h in self.old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self.old = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.got).name if self.got else ""


# -- temporary directories -----------------------------------------------------------------


def _sha_named(path: str, name: str) -> bytes | None:
    """The file's bytes if they hash to its name (libFuzzer names an input by its SHA-1; one
    still being written does not), else None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data if hashlib.sha1(data).hexdigest() == name else None


def copy_into(src: str, dst: str, names) -> int:
    """Copy each `names` input of `src` whose content matches its name into `dst` (a
    temporary name, then rename). Returns how many; an OSError writing is raised."""
    n = 0
    for name in names:
        data = _sha_named(os.path.join(src, name), name)
        if data is None:
            continue
        tmp = os.path.join(dst, f".{name}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(dst, name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        n += 1
    return n


class TempRoot:
    """The campaign's temporary directories under one root it owns: `work` (libFuzzer's
    working corpus, when `work`), `seeds`, and `owner` (pid and corpus directory, locked while
    the campaign lives). On tmpfs (/dev/shm) when `tmpfs` and there is one, else in the temp
    directory, with no `work` (libFuzzer then writes straight into the corpus). `cleanup()` removes it (less `work`, when `keep_work`: inputs not synced)."""

    def __init__(self, corpus: str, work: bool, tmpfs: bool = True):
        shm = tmpfs and os.path.isdir(SHM) and os.access(SHM, os.W_OK)
        base, prefix = (SHM, ROOT_PREFIXES[0]) if shm else (tempfile.gettempdir(), ROOT_PREFIXES[1])
        self.root = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base)
        self.tmpfs = shm
        # The owner file appears under its name already locked (a reclaimer that found it
        # unlocked between creation and flock would remove a live root).
        fd, tmp = tempfile.mkstemp(prefix=".owner-", dir=self.root)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.set_inheritable(fd, False)
        os.write(fd, f"{os.getpid()}\n{os.path.abspath(corpus)}\n".encode())
        os.rename(tmp, os.path.join(self.root, OWNER))
        self.fd: int | None = fd
        self.seeds = os.path.join(self.root, "seeds")
        os.mkdir(self.seeds)
        self.work = None
        if work and shm:
            self.work = os.path.join(self.root, "work")
            os.mkdir(self.work)

    def cleanup(self, keep_work: bool = False) -> None:
        if keep_work and self.work:
            for name in os.listdir(self.root):
                if name not in ("work", OWNER):
                    shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _named_in_a_cmdline(path: str) -> bool:
    """Whether any process has `path` among its arguments (a harness does: its corpus and
    seed directories). Unknown (no /proc): yes."""
    if not os.path.isdir("/proc"):
        return True
    needle = path.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle in f.read():
                    return True
        except OSError:
            continue
    return False


def reclaim(bases: tuple[str, ...] | None = None) -> dict:
    """Remove the temporary roots of campaigns that died (their owner file is unlocked), after
    copying what their working corpus had into their corpus directory (a supervisor killed
    outright had synced all but its last few seconds). Directories from before owner files
    (`pyvmfuzz-corpus-*`, `pyvmfuzz-seeds-*` with none) go when older than LEGACY_AGE_S and
    named by no process's arguments. Returns {"dirs": n, "salvaged": n, "kept": [root, ...]}
    (kept: a dead root whose inputs could not be copied, left for a later start)."""
    if bases is None:
        bases = tuple(dict.fromkeys(b for b in (SHM, tempfile.gettempdir()) if os.path.isdir(b)))
    res = {"dirs": 0, "salvaged": 0, "kept": []}
    for base in bases:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            if not name.startswith(ROOT_PREFIXES + LEGACY_PREFIXES):
                continue
            root = os.path.join(base, name)
            if os.path.islink(root) or not os.path.isdir(root):
                continue
            owner = os.path.join(root, OWNER)
            if os.path.exists(owner):
                _reclaim_owned(root, owner, res)
            elif name.startswith(LEGACY_PREFIXES):
                try:
                    young = time.time() - os.stat(root).st_mtime < LEGACY_AGE_S
                except OSError:
                    continue
                if young or _named_in_a_cmdline(root):
                    continue
                shutil.rmtree(root, ignore_errors=True)
                res["dirs"] += not os.path.exists(root)
    return res


def _reclaim_owned(root: str, owner: str, res: dict) -> None:
    try:
        fd = os.open(owner, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # its campaign lives
        lines = os.read(fd, 65536).decode("utf-8", "replace").split("\n")
        corpus = lines[1] if len(lines) > 1 else ""
        work = os.path.join(root, "work")
        if corpus and os.path.isdir(corpus) and os.path.isdir(work):
            try:
                have = set(os.listdir(corpus))
                res["salvaged"] += copy_into(work, corpus, sorted(set(os.listdir(work)) - have))
            except OSError:
                res["kept"].append(root)  # (a full disk): a later start tries again
                return
        shutil.rmtree(root, ignore_errors=True)
        res["dirs"] += not os.path.exists(root)
    finally:
        os.close(fd)


def report_reclaimed(res: dict, out=None) -> None:
    out = out or sys.stdout
    if res["dirs"]:
        salv = f" ({res['salvaged']:,} corpus inputs they had not synced copied to their corpus)" if res["salvaged"] else ""
        out.write(f"# removed {res['dirs']} temporary directories of campaigns that died{salv}\n")
    for root in res["kept"]:
        out.write(f"# {root}: a dead campaign's corpus inputs that could not be copied to its corpus; kept\n")


_ERRNO_WORDS = re.compile(r"^\[Errno \d+\] ")


def describe(e: OSError) -> str:
    """`PATH: strerror` for one line."""
    what = e.strerror or _ERRNO_WORDS.sub("", str(e))
    return f"{e.filename}: {what}" if e.filename else what
