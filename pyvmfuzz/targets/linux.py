"""`--target linux`: run a program on the host kernel — real processes and threads pinned to
real CPUs, real page tables, copy-on-write, futexes and /proc/PID/mem — step-locked so the
interleaving is exactly the program's, and judged by the Python oracle with the `os linux`
personality (docs/contract.md §4.2).

Every outcome is what a real system call returned: fork (P-numbers are the real children
numbered in order of creation), thread creation, futex (FUTEX_WAIT also on a read-only page),
madvise, mprotect, /proc/PID/mem, SIGSEGV for a store the page tables refuse or a load or store
of an unmapped page, and docs/contract.md §3.4's munmap(2), mmap(2) with MAP_FIXED,
mremap(2) with MREMAP_MAYMOVE|MREMAP_FIXED, msync(2) with MS_SYNC and `pageout` as
madvise(MADV_PAGEOUT) / process_madvise(2) (`ESRCH` for a P-number with no live process is the
driver's for procfs, where Linux reuses pids; a pageout goes through a pidfd held since the
process was made, so its `ESRCH` is the kernel's — only a P-number that was never made is
answered by the driver). The contract's
limits (docs/contract.md §2.1: 8 live processes, 4 threads per process) are applied by the kernel's pids
controller where a cgroup v1 `pids` hierarchy is writable (`_PidsCgroup`); elsewhere the driver
applies them itself and the report says so (`limits`).

Each process is an *anchor* thread (the process's main thread: it forks, and watches the
lifeline) plus one thread per model thread; each serves one AF_UNIX SEQPACKET socket and the
driver sends one command at a time. The layout (docs/contract.md §2.1, §3.4) is made by P1
before any fork, at a fixed low address (`_BASES`: far below every address the kernel picks for
the interpreter's own mmaps, so an unmapped page of the layout stays unmapped — a hole inside
the kernel's mmap area would be handed to the next small allocation): four private anonymous
pages (one mapping), a private mapping of a memfd holding the text (one mapping of two
pages), one MAP_SHARED|MAP_ANONYMOUS page, `file0` a MAP_SHARED mapping of the data file (a
real, unlinked temporary file in the temp directory, made by the driver, which keeps a
descriptor to it: `LinuxMachine.data_fd`), and `hole0` left unmapped; unmapped guard pages
separate the groups. futex: private ops for a private mapping, shared ops for a shared one
(what /proc/self/maps says of the address now; an unmapped address gets the flag of its page's
initial kind: shared for shm0 and file0). `pageout` on a CPU that runs a thread is that
thread's call (madvise for its own process, process_madvise through the target's pidfd for
another); on an idle CPU the driver itself makes the process_madvise call, pinned to that CPU
(the page daemon belongs to no process of the program). A host without MADV_PAGEOUT (Linux <
5.4), pidfd_open or process_madvise (< 5.10), or whose policy refuses process_madvise (EPERM:
CAP_SYS_NICE), reports the line as unsupported (an input error, exit 2), never an answer.
Hygiene: one process group per run,
PR_SET_PDEATHSIG on P1 and a lifeline pipe in every process, no core files, per-step timeouts,
everything killed and reaped at the end, and the workers' fatal-signal tracebacks (faulthandler,
inherited from pytest or -X faulthandler) go to a memfd: the driver reads it to confirm that a
store's process died of SIGSEGV, and shows it when a worker dies during any other op (a load
dies of SIGSEGV as an outcome only after the worker has said that mincore(2) found no mapping
at the page's address)."""

from __future__ import annotations

import ctypes
import errno
import faulthandler
import os
import resource
import select
import signal
import socket
import struct
import threading
import time

from pyvmfuzz import oracle
from pyvmfuzz.programs import InputError

# the layout facts, defined once (docs/contract.md §2.1, §3.4)
from pyvmfuzz.layout import FILE_CONTENT, PAGES, SHARED_PAGES, TEXT_CONTENT, TEXT_PAGES, UNMAPPED_PAGES

PAGE = 4096
# (futex, mremap) by machine; pidfd_open and process_madvise have one number on every arch
SYS_FUTEX, SYS_MREMAP = {"x86_64": (202, 25), "aarch64": (98, 216)}.get(os.uname().machine, (202, 25))
SYS_PIDFD_OPEN, SYS_PROCESS_MADVISE = 434, 440
FUTEX_WAIT, FUTEX_WAKE, FUTEX_PRIVATE = 0, 1, 128
PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 1, 2, 0x10, 0x20
MAP_NORESERVE, MAP_FIXED_NOREPLACE = 0x4000, 0x100000
MAP_FAILED = (1 << 64) - 1 if ctypes.sizeof(ctypes.c_void_p) == 8 else (1 << 32) - 1
MADV_DONTNEED, MADV_PAGEOUT = 4, 21
MS_SYNC = 4
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
STEP_TIMEOUT = 5.0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_libc.syscall.restype = ctypes.c_long

# The layout (docs/contract.md §2.1, §3.4): each page's slot, in pages from the base. data0..3
# are one mapping (one object of four pages), text0..1 another; the slots between the groups
# (and hole0's) are left unmapped, so that no two groups merge into one VMA.
_SLOTS = {"data0": 0, "data1": 1, "data2": 2, "data3": 3, "text0": 5, "text1": 6,
          "shm0": 8, "file0": 10, "hole0": 12}
_SPAN = 14
# Where the layout goes: low addresses (64 GiB and up), below the interpreter's executable,
# heap and mmap area. The kernel hands out addresses top-down from mmap_base (or bottom-up from
# TASK_SIZE/3): a free page there is never the gap it picks, so an unmapped page of the layout
# stays unmapped while Python allocates. MAP_FIXED_NOREPLACE tries the next one if taken.
_BASES = tuple(0x10_0000_0000 + i * 0x4000_0000 for i in range(32))


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def _futex(addr: int, op: int, val: int) -> int:
    r = _libc.syscall(SYS_FUTEX, ctypes.c_void_p(addr), op, val, None, None, 0)
    return -ctypes.get_errno() if r == -1 else r


def _errname(e: int) -> str:
    return errno.errorcode.get(e, f"E{e}")


def _mmap_outcome(r: int | None, addr: int) -> str:
    """mmap(MAP_FIXED) / mremap(MREMAP_FIXED): `ok` when the kernel placed it at addr."""
    if r == addr:
        return "ok"
    return _errname(ctypes.get_errno()) if r in (None, MAP_FAILED, -1) else f"MOVED{r:#x}"


def _map_page(page: str, addr: int, text_fd: int, data_fd: int, npages: int = 1) -> str:
    """mmap(MAP_FIXED) of `npages` pages at addr of the kind `page` has in the initial layout
    (docs/contract.md §3.4 `mmap`): data*/hole0 private anonymous zero-fill rw; text* a new
    private read-only view of the executable (the memfd, at the page's offset); shm0 a new
    MAP_SHARED|MAP_ANONYMOUS object; file0 the data file, MAP_SHARED rw."""
    rw = PROT_READ | PROT_WRITE
    if page in TEXT_PAGES:
        prot, flags, fd, off = PROT_READ, MAP_PRIVATE, text_fd, PAGE * TEXT_PAGES.index(page)
    elif page in FILE_CONTENT:
        prot, flags, fd, off = rw, MAP_SHARED, data_fd, 0
    elif page in SHARED_PAGES:
        prot, flags, fd, off = rw, MAP_SHARED | MAP_ANONYMOUS, -1, 0
    else:  # data*, and hole0 (docs/contract.md §3.4: zero-fill private anonymous)
        prot, flags, fd, off = rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0
    return _mmap_outcome(_libc.mmap(addr, npages * PAGE, prot, flags | MAP_FIXED, fd, off), addr)


def _mremap(old: int, new: int) -> str:
    """mremap(old, PAGE, PAGE, MREMAP_MAYMOVE|MREMAP_FIXED, new): the raw system call (glibc's
    wrapper is variadic)."""
    L = ctypes.c_long
    r = _libc.syscall(L(SYS_MREMAP), L(old), L(PAGE), L(PAGE), L(MREMAP_MAYMOVE | MREMAP_FIXED), L(new))
    return _mmap_outcome(r, new)


def _pidfd_open(ospid: int) -> int | None:
    """A pidfd of the process (Linux 5.3+), None where the host has none."""
    r = _libc.syscall(ctypes.c_long(SYS_PIDFD_OPEN), ctypes.c_long(ospid), ctypes.c_long(0))
    return None if r < 0 else int(r)


def _process_madvise(pidfd: int, addr: int, advice: int) -> str:
    """process_madvise(pidfd, [addr, PAGE], 1, advice, 0): `ok` when the page was advised."""
    iov = _Iovec(addr, PAGE)
    L = ctypes.c_long
    r = _libc.syscall(L(SYS_PROCESS_MADVISE), L(pidfd), ctypes.byref(iov), L(1), L(advice), L(0))
    if r == -1:
        return _errname(ctypes.get_errno())
    return "ok" if r == PAGE else f"PARTIAL{r}"


def _mapping_kind(addr: int) -> str | None:
    """What /proc/self/maps says of addr now: "s" (a shared mapping), "p" (private), None
    (nothing mapped)."""
    with open("/proc/self/maps", "rb") as f:
        for ln in f:
            rng, perms = ln.split(None, 2)[:2]
            lo, hi = rng.split(b"-")
            if int(lo, 16) <= addr < int(hi, 16):
                return perms[3:4].decode()
    return None


def _unmapped(addr: int) -> bool:
    """mincore(2) of addr's page fails with ENOMEM: nothing is mapped there."""
    vec = ctypes.create_string_buffer(1)
    return _libc.mincore(addr & ~(PAGE - 1), PAGE, vec) == -1 and ctypes.get_errno() == errno.ENOMEM


_pageout_support: dict | None = None


def _host_pageout() -> dict:
    """What this host can do of docs/contract.md §3.4's `pageout`, probed once on a scratch page
    of the driver: {"madvise": reason or None, "process_madvise": reason or None} (None: it can).
    MADV_PAGEOUT came in Linux 5.4, pidfd_open in 5.3, process_madvise in 5.10."""
    global _pageout_support
    if _pageout_support is None:
        rel = os.uname().release
        sup = {"madvise": None, "process_madvise": None}
        addr = _libc.mmap(None, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        try:
            ctypes.c_uint32.from_address(addr).value = 1
            if _libc.madvise(addr, PAGE, MADV_PAGEOUT) != 0:
                sup["madvise"] = f"madvise(MADV_PAGEOUT) fails here with {_errname(ctypes.get_errno())} " \
                                 f"(Linux {rel}; MADV_PAGEOUT came in 5.4)"
            pidfd = _pidfd_open(os.getpid())
            if pidfd is None:
                sup["process_madvise"] = f"pidfd_open fails here with {_errname(ctypes.get_errno())} (Linux {rel}; 5.3+)"
            else:
                try:
                    out = _process_madvise(pidfd, addr, MADV_PAGEOUT)
                finally:
                    os.close(pidfd)
                if out != "ok":
                    sup["process_madvise"] = f"process_madvise(MADV_PAGEOUT) fails here with {out} " \
                                             f"(Linux {rel}; process_madvise came in 5.10)"
        finally:
            _libc.munmap(addr, PAGE)
        _pageout_support = sup
    return _pageout_support


def _syscall_outcome(r: int) -> str:
    """`ok` for 0, else the errno's name (an outcome the oracle will call out)."""
    return "ok" if r == 0 else _errname(ctypes.get_errno())


# ---------------------------------------------------------------- limits

class _PidsCgroup:
    """The contract's limits (docs/contract.md §2.1) applied by the kernel: cgroup v1 `pids` controller.

    Layout, made once per driver process and reused by its runs (docs/contract.md §2.1: at most 8 live
    processes, 4 live threads per process):
      <driver's pids cgroup>/pyvmfuzz-<driver pid>/procs   pids.max 8: each process's anchor
      <driver's pids cgroup>/pyvmfuzz-<driver pid>/p<N>    pids.max 4: the threads of P<N>
    A new task is charged to the cgroup of the task that creates it: fork is made by the
    anchor (so a ninth live process is the kernel's EAGAIN), a thread by a thread of P<N>
    (a fifth is EAGAIN from clone). cgroup v1 places threads one by one (`tasks`), which is
    what makes the two limits separable; cgroup v2 would need a threaded subtree and is not
    used (the driver applies the limits there). Charges are released when a task is reaped,
    so the driver reaps before the next step (docs/contract.md §3: exit completes before the next line)."""

    _probed: "_PidsCgroup | None | bool" = False  # False: not probed yet in this process

    _prober = 0  # pid of the process that probed: a forked driver makes its own cgroup

    def __init__(self, root: str):
        self.root = root
        self.owner = os.getpid()
        self.made: set[int] = set()

    @classmethod
    def get(cls) -> "_PidsCgroup | None":
        if cls._probed is False or cls._prober != os.getpid():
            cls._probed, cls._prober = cls._make(), os.getpid()
        return cls._probed

    @staticmethod
    def _mount() -> str | None:
        """Mount point of the v1 `pids` hierarchy plus this process's cgroup in it."""
        try:
            with open("/proc/self/cgroup") as f:
                mine = [ln.rstrip("\n").split(":", 2) for ln in f]
            with open("/proc/self/mountinfo") as f:
                mounts = [ln.split() for ln in f]
        except OSError:
            return None
        rel = next((c[2] for c in mine if "pids" in c[1].split(",")), None)
        for m in mounts:
            sep = m.index("-")
            if m[sep + 1] == "cgroup" and "pids" in m[sep + 3].split(",") and rel is not None:
                root = m[3].rstrip("/")  # the mount's root within the hierarchy ("/" unless nested)
                if root and rel.startswith(root + "/"):
                    rel = rel[len(root):]
                return m[4] + rel.rstrip("/")
        return None

    @classmethod
    def _make(cls) -> "_PidsCgroup | None":
        base = cls._mount()
        if base is None or os.environ.get("PYVMFUZZ_LINUX_LIMITS") == "driver":
            return None
        cls._sweep(base)
        root = os.path.join(base, f"pyvmfuzz-{os.getpid()}")
        try:
            os.makedirs(os.path.join(root, "procs"), exist_ok=True)
            cls._write(os.path.join(root, "procs", "pids.max"), str(oracle.MAX_PROCS))
            # workers move their threads; check that moving one works here (and move it back)
            tid = str(threading.get_native_id())
            cls._write(os.path.join(root, "procs", "tasks"), tid)
            cls._write(os.path.join(base, "tasks"), tid)
        except OSError:
            _PidsCgroup(root).remove()
            return None  # not root, read-only, or no pids controller: the driver applies them
        import atexit

        cg = cls(root)
        atexit.register(cg.remove)
        return cg

    @staticmethod
    def _sweep(base: str) -> None:
        """Remove what a killed driver left (its directories are empty once its workers died)."""
        try:
            names = os.listdir(base)
        except OSError:
            return
        for n in names:
            if n.startswith("pyvmfuzz-") and n[9:].isdigit() and not os.path.exists(f"/proc/{n[9:]}"):
                _PidsCgroup(os.path.join(base, n)).remove()

    @staticmethod
    def _write(path: str, text: str) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def proc_dir(self, n: int) -> str:
        """The cgroup of P<n>'s threads (made on first use, reused by later runs)."""
        d = os.path.join(self.root, f"p{n}")
        if n not in self.made:
            os.makedirs(d, exist_ok=True)
            self._write(os.path.join(d, "pids.max"), str(oracle.MAX_THREADS))
            self.made.add(n)
        return d

    def current(self, sub: str = "procs") -> int:
        with open(os.path.join(self.root, sub, "pids.current")) as f:
            return int(f.read())

    def remove(self) -> None:
        if os.path.basename(self.root) == f"pyvmfuzz-{self.owner}" and self.owner != os.getpid():
            return  # atexit in a forked copy of the driver: the cgroup is still its parent's
        try:
            subs = os.listdir(self.root)
        except OSError:
            return
        for d in subs:
            if os.path.isdir(os.path.join(self.root, d)):
                try:
                    os.rmdir(os.path.join(self.root, d))
                except OSError:
                    pass
        try:
            os.rmdir(self.root)
        except OSError:
            pass


def _join(cgdir: str | None) -> None:
    """Move the calling thread (only it: cgroup v1 `tasks`) into cgdir."""
    if cgdir is not None:
        _PidsCgroup._write(os.path.join(cgdir, "tasks"), str(threading.get_native_id()))


# ---------------------------------------------------------------- worker side

class _Worker:
    """State of one worker process (copied by fork, as the memory is)."""

    def __init__(self, base: dict, lifeline: int, cg_root: str | None, text_fd: int, data_fd: int):
        self.base = base  # page -> address
        self.lifeline = lifeline
        self.cg_root = cg_root
        self.text_fd = text_fd  # the executable (a memfd): `mmap text*` maps it again
        self.data_fd = data_fd  # the data file: `mmap file0` maps it again
        self.socks: list[socket.socket] = []

    def addr(self, page: str, w: int) -> int:
        return self.base[page] + 4 * w

    def futex_flags(self, page: str) -> int:
        """A private futex for a private mapping, a shared one for a shared mapping (what
        /proc/self/maps says of the page now: mmap and mremap change it); where nothing is
        mapped, the flag of the page's kind in the initial layout (shared: shm0, file0)."""
        kind = _mapping_kind(self.base[page])
        if kind is None:
            kind = "s" if page in SHARED_PAGES else "p"
        return 0 if kind == "s" else FUTEX_PRIVATE

    def start_thread(self, fd: int) -> bool:
        """A new model thread serving fd, charged to the caller's cgroup; False: clone failed
        (pthread_create's EAGAIN — the pids limit, or no memory for a stack)."""
        sock = socket.socket(fileno=fd)
        try:
            threading.Thread(target=self.serve, args=(sock,), daemon=True).start()
        except RuntimeError:
            sock.close()
            return False
        return True

    def anchor(self, sock: socket.socket) -> None:
        """The process's main thread: forks on the driver's command, and exits when the
        driver's lifeline closes (even with every model thread asleep in a futex). Never
        returns."""
        while True:
            r, _, _ = select.select([self.lifeline, sock], [], [])
            if self.lifeline in r:
                os._exit(0)
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 256, 2)
            except OSError:
                os._exit(0)
            if not msg:
                os._exit(0)  # the driver is gone
            a = msg.decode().split()
            assert a[0] == "fork", a
            try:
                pid = os.fork()
            except OSError as e:  # EAGAIN: the pids limit (or the kernel's own)
                for fd in fds:
                    os.close(fd)
                sock.send(_errname(e.errno).encode())
                continue
            if pid == 0:
                for s in self.socks:  # the forking thread is all that was copied
                    s.close()
                sock.close()
                self.socks = []
                sock = socket.socket(fileno=fds[0])
                _join(a[1] if len(a) > 1 else None)  # T1 is charged to the child's thread cgroup ...
                ok = self.start_thread(fds[1])
                _join(self.cg_root and os.path.join(self.cg_root, "procs"))  # ... and we count as a process
                sock.send(b"ready" if ok else b"EAGAIN")
                continue
            for fd in fds:
                os.close(fd)
            sock.send(f"forked {pid}".encode())

    def serve(self, sock: socket.socket) -> None:
        self.socks.append(sock)
        sock.send(f"hello {os.getpid()} {threading.get_native_id()}".encode())
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 256, 1)
            except OSError:
                os._exit(0)
            if not msg:
                os._exit(0)  # the driver is gone
            a = msg.decode().split()
            op = a[0]
            if op == "load":
                # SIGSEGV kills the process if nothing is mapped there (docs/contract.md §3.4);
                # the worker says first that the kernel has no mapping at the page (mincore), so
                # that the driver can tell that SEGV from a crash of its own
                if _unmapped(self.base[a[1]]):
                    sock.send(b"nomap")
                v = ctypes.c_uint32.from_address(self.addr(a[1], int(a[2]))).value
                sock.send(f"{v:#x}".encode())
            elif op == "store":  # SIGSEGV kills the process if the page tables refuse it
                ctypes.c_uint32.from_address(self.addr(a[1], int(a[2]))).value = int(a[3])
                sock.send(b"ok")
            elif op == "pin":
                os.sched_setaffinity(0, {int(a[1])})
                sock.send(b"ok")
            elif op == "spawn":
                sock.send(b"ok" if self.start_thread(fds[0]) else b"EAGAIN")
            elif op == "exit":
                os._exit(0)
            elif op == "sleep":
                # FUTEX_WAIT whatever the page's prot: Linux reads the word (docs/contract.md §4.2)
                page, w, v = a[1], int(a[2]), int(a[3])
                priv = self.futex_flags(page)
                while True:
                    r = _futex(self.addr(page, w), FUTEX_WAIT | priv, v)
                    if r != -errno.EINTR:
                        break
                sock.send(b"woke" if r == 0 else b"EBUSY" if r == -errno.EAGAIN else _errname(-r).encode())
            elif op == "wake":
                page, w = a[1], int(a[2])
                priv = self.futex_flags(page)
                n = _futex(self.addr(page, w), FUTEX_WAKE | priv, 0x7FFFFFFF)
                sock.send(f"ok {n}".encode() if n >= 0 else _errname(-n).encode())
            elif op == "madvise":
                r = _libc.madvise(self.base[a[1]], PAGE, MADV_DONTNEED)
                sock.send(_syscall_outcome(r).encode())
            elif op == "mprotect":
                r = _libc.mprotect(self.base[a[1]], PAGE, PROT_READ | (PROT_WRITE if a[2] == "rw" else 0))
                sock.send(_syscall_outcome(r).encode())
            # docs/contract.md §3.4
            elif op == "munmap":
                sock.send(_syscall_outcome(_libc.munmap(self.base[a[1]], PAGE)).encode())
            elif op == "mmap":
                sock.send(_map_page(a[1], self.base[a[1]], self.text_fd, self.data_fd).encode())
            elif op == "mremap":
                sock.send(_mremap(self.base[a[1]], self.base[a[2]]).encode())
            elif op == "msync":
                sock.send(_syscall_outcome(_libc.msync(self.base[a[1]], PAGE, MS_SYNC)).encode())
            elif op == "pageout":  # the caller's own process: madvise; another's: through its pidfd
                if fds:
                    try:
                        out = _process_madvise(fds[0], self.base[a[1]], MADV_PAGEOUT)
                    finally:
                        for fd in fds:
                            os.close(fd)
                else:
                    out = _syscall_outcome(_libc.madvise(self.base[a[1]], PAGE, MADV_PAGEOUT))
                sock.send(out.encode())


def _make_layout(text_fd: int, data_fd: int) -> dict[str, int]:
    """P1's pages (docs/contract.md §2.1, §3.4) at the first free base of `_BASES`: the span is
    reserved (MAP_FIXED_NOREPLACE), each group mapped over it with MAP_FIXED, and every other
    slot of the span (the guards, hole0) unmapped again. Returns page -> address."""
    for b in _BASES:
        r = _libc.mmap(b, _SPAN * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
                       -1, 0)
        if r == b:
            break
        if r not in (None, MAP_FAILED):  # a kernel before 4.17 took the flag for a hint
            _libc.munmap(r, _SPAN * PAGE)
    else:
        raise OSError("no free span for the layout")
    base = {p: b + _SLOTS[p] * PAGE for p in PAGES}
    groups = [("data0", 4), ("text0", 2)] + [(p, 1) for p in PAGES if p in SHARED_PAGES]
    for page, n in groups:  # data0..3 one anonymous mapping, text0..1 one view of the file
        out = _map_page(page, base[page], text_fd, data_fd, n)
        if out != "ok":
            raise OSError(f"mmap of {page}: {out}")
    mapped = {_SLOTS[page] + i for page, n in groups for i in range(n)}
    if {p for p in PAGES if _SLOTS[p] not in mapped} != set(UNMAPPED_PAGES):
        raise OSError("the layout's groups do not map every page but the unmapped ones")
    for i in range(_SPAN):  # guards and unmapped pages (hole0)
        if i not in mapped and _libc.munmap(b + i * PAGE, PAGE) != 0:
            raise OSError(f"munmap of slot {i}: {_errname(ctypes.get_errno())}")
    return base


def _first_worker(anchor: socket.socket, t1: socket.socket, lifeline: int, faults: int,
                  cg_root: str | None, data_fd: int) -> None:
    """P1: make the layout, start T1, then serve as P1's anchor. Never returns."""
    try:
        # A fatal signal's traceback goes to the driver's memfd, not to the terminal: a store
        # the contract says must SEGV is an ordinary outcome here (issue 17, rough edge 9).
        faulthandler.enable(file=faults, all_threads=True)
        os.setpgid(0, 0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked processes reap themselves
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        fd = os.memfd_create("pyvmfuzz-text")
        words = b"".join(struct.pack("<I", v) for p in TEXT_PAGES for v in TEXT_CONTENT[p])
        os.write(fd, words[:16] + bytes(PAGE - 16) + words[16:] + bytes(PAGE - 16))
        base = _make_layout(fd, data_fd)
        anchor.send(("layout " + " ".join(f"{p}={base[p]}" for p in PAGES)).encode())
        w = _Worker(base, lifeline, cg_root, fd, data_fd)
        _join(cg_root and os.path.join(cg_root, "p1"))
        ok = w.start_thread(t1.detach())
        _join(cg_root and os.path.join(cg_root, "procs"))
        anchor.send(b"ready" if ok else b"EAGAIN")
        w.anchor(anchor)
    finally:
        os._exit(0)


# ---------------------------------------------------------------- driver side

def _data_file() -> int:
    """The data file (docs/contract.md §3.4): a real file in the temp directory, unlinked from the
    start (O_TMPFILE where the file system has it) so that nothing is left behind, holding
    file0's initial words in its first page. Returns a read-write descriptor."""
    import tempfile

    d = tempfile.gettempdir()
    try:
        fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (OSError, AttributeError):
        fd, path = tempfile.mkstemp(prefix="pyvmfuzz-data-", dir=d)
        os.unlink(path)
    words = b"".join(struct.pack("<I", v) for v in FILE_CONTENT["file0"])
    os.pwrite(fd, words + bytes(PAGE - len(words)), 0)
    os.fsync(fd)  # the backing store holds the initial words
    return fd


class LinuxError(InputError):
    pass


class LinuxMachine:
    """One program's worth of real processes.

    `limits` says who applies docs/contract.md §2.1's limits: "cgroup-v1 pids" (the kernel) or "driver"."""

    def __init__(self, cpus: int):
        self.host_cpus = sorted(os.sched_getaffinity(0))  # cpuN runs on host_cpus[N % len]
        self.ncpus_host = len(self.host_cpus)
        self.threads: dict[tuple[int, int], tuple[socket.socket, int, int]] = {}
        self.anchors: dict[int, socket.socket] = {}   # model pid -> anchor socket
        self.procs: dict[int, int] = {}               # model pid -> OS pid (live)
        self.ospids: list[int] = []                   # every OS pid made, in order of creation
        self.next_tid: dict[int, int] = {}
        self.blocked: set[tuple[int, int]] = set()
        self.notes: dict[int, str] = {}               # step -> what the real call returned
        self.cg = _PidsCgroup.get()
        self.limits = "cgroup-v1 pids" if self.cg else "driver"
        try:
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            pass
        unknown = sorted(set(PAGES) ^ set(_SLOTS))
        if unknown:
            raise LinuxError(f"page(s) {', '.join(unknown)}: the linux target's layout does not know them")
        self.host = os.uname().release                # the host kernel the run is on
        self.pidfds: dict[int, int | None] = {}       # model pid -> pidfd (kept after it dies)
        self.data_fd = _data_file()                   # the data file (docs/contract.md §3.4)
        self.faults = os.memfd_create("pyvmfuzz-faults")
        self.faults_seen = 0
        cg_root = None
        if self.cg:
            self.cg.proc_dir(1)
            cg_root = self.cg.root
        anc, anc_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        life_r, self.lifeline_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            anc.close()
            ours.close()
            os.close(self.lifeline_w)
            _first_worker(anc_w, theirs, life_r, self.faults, cg_root, self.data_fd)
        anc_w.close()
        theirs.close()
        os.close(life_r)
        self.pgid = pid
        anc.settimeout(STEP_TIMEOUT)
        ours.settimeout(STEP_TIMEOUT)
        layout = self._recv(anc, "layout").split()[1:]
        self.base = {k: int(v) for k, v in (kv.split("=") for kv in layout)}
        _, ospid, tid = self._recv(ours, "hello").split()
        if self._recv(anc, "ready") != "ready":
            raise LinuxError("P1 could not start its first thread")
        self.threads[(1, 1)] = (ours, int(ospid), int(tid))
        self.anchors[1] = anc
        self.procs[1] = int(ospid)
        self.ospids.append(int(ospid))
        self.pidfds[1] = _pidfd_open(int(ospid))
        self.next_tid[1] = 2
        self._cmd((1, 1), f"pin {self._host_cpu(0)}")  # docs/contract.md §2.1: P1.T1 runs on cpu0

    def _host_cpu(self, cpu: int) -> int:
        """The host CPU that model CPU `cpu` runs on: the available ones, round robin."""
        return self.host_cpus[cpu % self.ncpus_host]

    def _recv(self, sock: socket.socket, what: str) -> str:
        try:
            msg = sock.recv(256)
        except socket.timeout:
            raise LinuxError(f"linux worker did not answer ({what}) within {STEP_TIMEOUT:.0f}s") from None
        return msg.decode()

    def _new_faults(self) -> str:
        """faulthandler output written by workers since the last call."""
        size = os.fstat(self.faults).st_size
        out = os.pread(self.faults, size - self.faults_seen, self.faults_seen).decode(errors="replace")
        self.faults_seen = size
        return out

    def _died(self, pid: int, what: str) -> LinuxError:
        """A worker died where the program did not say it would: a real failure, reported
        with its traceback."""
        dump = self._new_faults().strip()
        return LinuxError(f"linux worker P{pid} died during {what}" + (f":\n{dump[:2000]}" if dump else ""))

    def close(self) -> None:
        for fd in self.pidfds.values():
            if fd is not None:
                os.close(fd)
        self.pidfds = {}
        os.close(self.lifeline_w)  # every anchor exits
        for s, _, _ in self.threads.values():
            s.close()
        for s in self.anchors.values():
            s.close()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._settle(0, all_gone=True)
        os.close(self.faults)
        os.close(self.data_fd)

    def _settle(self, live: int, all_gone: bool = False) -> None:
        """Wait until the dead processes are reaped (their pids charges released): P1 and
        orphans are the driver's children (it is a subreaper), the others reap themselves.
        Only the pids this run made are waited for, never another child of the driver."""
        deadline = time.time() + 5
        while True:
            for p in self.ospids:
                if p not in self.procs.values() or all_gone:
                    try:
                        os.waitpid(p, os.WNOHANG)
                    except ChildProcessError:
                        pass
            if self.cg is not None:
                if self.cg.current() == live:
                    return
            elif not all_gone or not any(os.path.exists(f"/proc/{p}") and self._alive(p) for p in self.ospids):
                return
            if time.time() > deadline:
                if all_gone:
                    return  # close() must not raise; what is left has SIGKILL pending
                raise LinuxError("a dead worker was not released within 5s")
            time.sleep(0.0005)

    @staticmethod
    def _alive(ospid: int) -> bool:
        try:
            with open(f"/proc/{ospid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def _cmd(self, t: tuple[int, int], cmd: str, fds: list[int] | None = None) -> str:
        sock = self.threads[t][0]
        if fds:
            socket.send_fds(sock, [cmd.encode()], fds)
        else:
            sock.send(cmd.encode())
        out = self._recv(sock, cmd.split()[0])
        if out == "" and cmd.split()[0] not in ("store", "exit"):
            raise self._died(t[0], cmd.split()[0])
        return out

    def _new_peer(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        a.settimeout(STEP_TIMEOUT)
        return a, b

    def _kill_proc(self, pid: int) -> None:
        for t in [t for t in self.threads if t[0] == pid]:
            self.threads.pop(t)[0].close()
            self.blocked.discard(t)
        self.anchors.pop(pid).close()
        self.procs.pop(pid, None)
        self._settle(len(self.procs))

    def _collect_wakes(self, expect: int, wait: float) -> list[tuple[int, int]]:
        """Threads that answered `woke` (their futex wait returned)."""
        woke = []
        deadline = time.time() + wait
        while self.blocked:
            left = deadline - time.time()
            if len(woke) >= expect and left <= 0:
                break
            socks = {self.threads[t][0]: t for t in self.blocked}
            r, _, _ = select.select(list(socks), [], [], max(0.0, left) if len(woke) < expect else 0.0)
            if not r:
                break
            for s in r:
                t = socks[s]
                if s.recv(256) == b"woke":
                    self.blocked.discard(t)
                    woke.append(t)
        return woke

    def _is_blocked_in_futex(self, t: tuple[int, int]) -> bool:
        _, ospid, tid = self.threads[t]
        try:
            with open(f"/proc/{ospid}/task/{tid}/syscall") as f:
                return f.read().split()[0] == str(SYS_FUTEX)
        except (OSError, IndexError):
            return False

    def _fork(self, pid: int) -> str:
        """fork(2) by P<pid>'s anchor; the child is P<k>, k its rank in order of creation."""
        if self.cg is None and len(self.procs) >= oracle.MAX_PROCS:
            return "EAGAIN"  # driver-applied: no writable pids cgroup on this host
        n = len(self.ospids) + 1
        cg_dir = self.cg.proc_dir(n) if self.cg else None
        anc = self.anchors[pid]
        a_ours, a_theirs = self._new_peer()
        t_ours, t_theirs = self._new_peer()
        socket.send_fds(anc, [f"fork {cg_dir or ''}".encode()], [a_theirs.fileno(), t_theirs.fileno()])
        a_theirs.close()
        t_theirs.close()
        out = self._recv(anc, "fork")
        if not out.startswith("forked "):
            a_ours.close()
            t_ours.close()
            if out == "":
                raise self._died(pid, "fork")
            return out  # the kernel's errno: EAGAIN at the pids limit
        ospid = int(out.split()[1])
        ready = self._recv(a_ours, "fork (child)")
        if ready != "ready":
            raise LinuxError(f"the child of fork (pid {ospid}) could not start its thread: {ready or 'died'}")
        _, _, tid = self._recv(t_ours, "hello").split()
        self.ospids.append(ospid)
        self.procs[n] = ospid
        self.pidfds[n] = _pidfd_open(ospid)  # alive: it has just answered
        self.anchors[n] = a_ours
        self.threads[(n, 1)] = (t_ours, ospid, int(tid))
        self.next_tid[n] = 2
        return f"P{n}"

    def do(self, op: oracle.Op, actor, step: int = 0) -> tuple[str, list[tuple[int, int]]]:
        """Perform one op; returns (outcome, woke). `actor` is (pid, tid) or None. Ids are the
        model's names for the real processes and threads, in order of creation (docs/contract.md §2.1);
        `notes[step]` keeps the real pid/tid behind a new one."""
        a = op.action
        woke: list[tuple[int, int]] = []
        if a == "switch":
            if op.target is not None:
                self._cmd(op.target, f"pin {self._host_cpu(op.cpu)}")
            return "ok", woke
        if a == "pageout":  # on an idle CPU too (docs/contract.md §3.4)
            return self._pageout(op, actor, step), woke
        pid = actor[0]
        if a == "load":
            sock = self.threads[actor][0]
            sock.send(f"load {op.page} {op.word}".encode())
            out = self._recv(sock, "load")
            if out == "nomap":  # the kernel has no mapping there: the load must die of SIGSEGV
                try:
                    out = self._recv(sock, "load")
                except (ConnectionError, OSError):
                    out = ""
                if out == "":
                    if "Segmentation fault" not in self._new_faults():
                        raise self._died(pid, "load of an unmapped page (not of SIGSEGV)")
                    self._kill_proc(pid)
                    return "SEGV", woke
            if out == "":
                raise self._died(pid, "load")
            return out, woke
        if a == "store":
            try:
                out = self._cmd(actor, f"store {op.page} {op.word} {op.value}")
            except (ConnectionError, OSError):
                out = ""
            if out == "":
                if "Segmentation fault" not in self._new_faults():
                    raise self._died(pid, "store (not of SIGSEGV)")
                self._kill_proc(pid)
                return "SEGV", woke
            return out, woke
        if a == "fork":
            out = self._fork(pid)
            if out.startswith("P"):
                self.notes[step] = f"pid {self.procs[int(out[1:])]}"
            return out, woke
        if a == "spawn":
            if self.cg is None and sum(t[0] == pid for t in self.threads) >= oracle.MAX_THREADS:
                return "EAGAIN", woke  # driver-applied: no writable pids cgroup on this host
            ours, theirs = self._new_peer()
            out = self._cmd(actor, "spawn", [theirs.fileno()])
            theirs.close()
            if out != "ok":
                ours.close()
                return out, woke  # pthread_create's EAGAIN: the pids limit
            _, _, tid = self._recv(ours, "hello").split()
            new_tid = self.next_tid[pid]
            self.next_tid[pid] += 1
            self.threads[(pid, new_tid)] = (ours, self.procs[pid], int(tid))
            self.notes[step] = f"tid {tid}"
            return f"P{pid}.T{new_tid}", woke
        if a == "exit":
            sock = self.threads[actor][0]
            sock.send(b"exit")
            try:
                sock.recv(16)
            except OSError:
                pass
            self._kill_proc(pid)
            return "ok", woke
        if a == "umtx_sleep":
            sock = self.threads[actor][0]
            sock.send(f"sleep {op.page} {op.word} {op.value}".encode())
            deadline = time.time() + STEP_TIMEOUT
            while time.time() < deadline:
                r, _, _ = select.select([sock], [], [], 0.002)
                if r:
                    out = sock.recv(256).decode()
                    if out == "":
                        raise self._died(pid, "umtx_sleep")
                    return out, woke
                if self._is_blocked_in_futex(actor):
                    self.blocked.add(actor)
                    return "blocked", woke
            raise LinuxError("umtx_sleep neither returned nor blocked in futex within 5s")
        if a == "umtx_wakeup":
            out = self._cmd(actor, f"wake {op.page} {op.word}")
            if not out.startswith("ok "):
                return out, woke
            n = int(out.split()[1])
            return "ok", self._collect_wakes(n, STEP_TIMEOUT if n else 0.0)
        if a in ("procfs_read", "procfs_write"):
            if op.pid not in self.procs:
                return "ESRCH", woke
            addr = self.base[op.page] + 4 * op.word
            try:
                fd = os.open(f"/proc/{self.procs[op.pid]}/mem", os.O_RDWR)
                try:
                    if a == "procfs_read":
                        return f"{struct.unpack('<I', os.pread(fd, 4, addr))[0]:#x}", woke
                    os.pwrite(fd, struct.pack("<I", op.value), addr)
                    return "ok", woke
                finally:
                    os.close(fd)
            except OSError as e:
                if not _host_forces_writes():
                    raise LinuxError("the host refuses forced /proc/PID/mem writes (e.g. proc_mem.force_override="
                                     f"never or ptrace limits): {e.strerror}") from None
                # Linux's own answer, e.g. EIO for a write to a read-only MAP_SHARED page (FOLL_FORCE
                # breaks copy-on-write only in private mappings: mm/gup.c, is_cow_mapping)
                return _errname(e.errno), woke
        if a == "madvise":
            return self._cmd(actor, f"madvise {op.page}"), woke
        if a == "mprotect":
            return self._cmd(actor, f"mprotect {op.page} {op.prot}"), woke
        if a in ("munmap", "mmap", "msync"):  # docs/contract.md §3.4
            return self._cmd(actor, f"{a} {op.page}"), woke
        if a == "mremap":
            return self._cmd(actor, f"mremap {op.page} {op.to}"), woke
        raise AssertionError(a)

    def _pageout(self, op: oracle.Op, actor, step: int) -> str:
        """docs/contract.md §3.4 `pageout P<n> PAGE`: madvise(MADV_PAGEOUT) by the thread on the
        CPU when P<n> is its own process; process_madvise(pidfd of P<n>, MADV_PAGEOUT) by that
        thread for another process; on an idle CPU the driver makes the process_madvise call
        itself, pinned to that CPU (the page daemon: kernel context, no process of the
        program). The pidfd was opened when P<n> was made, so a dead P<n> gives the kernel's
        ESRCH; a P-number never made names no process: ESRCH (the driver's)."""
        if not 1 <= op.pid <= len(self.ospids):
            return "ESRCH"
        remote = actor is None or actor[0] != op.pid
        sup = _host_pageout()
        why = sup["madvise"] or (sup["process_madvise"] if remote else None)
        if why is None and remote and self.pidfds.get(op.pid) is None:
            why = "no pidfd of the target (pidfd_open failed)"
        if why is not None:
            raise LinuxError(f"step {step}: `pageout` is unsupported on this host: {why}")
        addr = self.base[op.page]
        if actor is None:
            prev = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self._host_cpu(op.cpu)})
            try:
                out = _process_madvise(self.pidfds[op.pid], addr, MADV_PAGEOUT)
            finally:
                os.sched_setaffinity(0, prev)
        elif remote:
            out = self._cmd(actor, f"pageout {op.page}", [self.pidfds[op.pid]])
        else:
            out = self._cmd(actor, f"pageout {op.page}")
        if out in ("EPERM", "ENOSYS"):  # the host's policy (CAP_SYS_NICE, ptrace) or kernel
            raise LinuxError(f"step {step}: `pageout` is unsupported on this host: process_madvise "
                             f"gives {out} (Linux {self.host})")
        return out


_forces_writes: bool | None = None


def _host_forces_writes() -> bool:
    """Does this host let /proc/PID/mem write into a read-only private page (FOLL_FORCE)?
    Probed once on a scratch page of the driver: tells a hardened host (an environment error)
    from Linux's own refusal (an outcome)."""
    global _forces_writes
    if _forces_writes is None:
        addr = _libc.mmap(None, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        try:
            fd = os.open("/proc/self/mem", os.O_RDWR)
            try:
                os.pwrite(fd, b"\x01", addr)
            finally:
                os.close(fd)
            _forces_writes = ctypes.c_uint8.from_address(addr).value == 1
        except OSError:
            _forces_writes = False
        finally:
            _libc.munmap(ctypes.c_void_p(addr), PAGE)
    return _forces_writes


def _linux_oracle(cpus: int) -> oracle.Oracle:
    """THE one call site of the `os linux` personality (docs/contract.md §4.2): judges and generates."""
    return oracle.Oracle(cpus, os="linux")


def run_text(text: str, hw: str | None = None) -> dict:
    """A text program (header: `hw cpus=N`; tlb and mode are the host's) on Linux, judged
    with `os linux` whatever its `os` header says (docs/contract.md §4.2: the host target is Linux)."""
    import re

    from pyvmfuzz import _core

    body = []
    for n, ln in enumerate(text.splitlines(), 1):
        toks = ln.split("#")[0].split()
        if toks[:1] == ["os"]:
            if len(toks) != 2 or toks[1] not in ("linux", "dragonfly"):
                raise InputError.at(n, "bad os line (want `os linux` or `os dragonfly`)")
            ln = ""  # the core's parser may not know the header; the personality is linux here
        body.append(ln)
    text = "\n".join(body) + "\n"
    try:
        info = _core.check_text(text, hw)
    except ValueError as e:
        raise InputError.from_core(e) from None
    cpus = int(re.search(r"cpus=(\d+)", info["hw"])[1])
    ops = [ln.split("#")[0].split("->")[0].strip() for ln in text.splitlines()
           if ln.split("#")[0].strip().startswith("cpu")]
    for i, op in enumerate(ops, 1):
        # said here: the oracle's parser reported "mprotect takes 2 argument(s), got 4"
        toks = op.split()
        if "until" in toks or toks[1:2] in (["resume"], ["ipi"]):
            raise InputError(f"step {i}: '{op}' is an interleaved line (docs/contract.md §3.2): a real kernel cannot be stopped "
                             "at a yield point from user space (--target linux runs plain lines)")
    return run_ops(ops, cpus)


def run_ops(ops: list[str], cpus: int, on_step=None) -> dict:
    """Run op lines (no outcomes) on Linux, judging each step with the oracle (`os linux`).

    Returns the report dict of `run` plus `limits` (who applied docs/contract.md §2.1's limits) and
    `trace_text`, whose comments give the real pid/tid behind each new P-number/thread."""
    orc = _linux_oracle(cpus)
    m = LinuxMachine(cpus)
    trace, steps, violation = [], [], None
    try:
        for i, line in enumerate(ops, 1):
            try:
                op = oracle.parse_op(line, cpus)
            except ValueError as e:
                raise LinuxError(f"step {i}: {e}") from None
            cur = orc.cpu[op.cpu]
            if op.action not in ("switch", "pageout") and cur is None:  # pageout: §3.4
                raise LinuxError(f"step {i}: cpu{op.cpu} is idle")
            if op.action == "switch" and op.target is not None:
                t = orc.thread(op.target)
                if t is None or t.state != "runnable":
                    raise LinuxError(f"step {i}: {oracle.thread_name(op.target)} is not runnable")
            actor = None if cur is None else cur.name
            outcome, woke = m.do(op, actor, i)
            names = [oracle.thread_name(t) for t in sorted(woke)]
            steps.append(line)
            trace.append(outcome + (" woke " + ",".join(names) if names else ""))
            v = orc.step(line, outcome, names)
            if on_step:
                on_step(i)
            if v is not None:
                violation = {"kind": v.kind, "step": v.step, "expected": v.expected, "observed": v.observed}
                break
    finally:
        m.close()
    hw = f"hw cpus={cpus} tlb=8 mode=pc64"
    lines = [f"{s} -> {o}" + (f"  # {m.notes[i]}" if i in m.notes else "")
             for i, (s, o) in enumerate(zip(steps, trace), 1)]
    text = "\n".join([f"# host: Linux {m.host}", f"# limits (8 processes, 4 threads): {m.limits}", hw,
                      "kernel linux", "os linux"] + lines) + "\n"
    return {"kernel": "linux", "os": "linux", "hw": hw, "steps": steps, "trace": trace, "trace_text": text,
            "violation": violation, "assert_failures": [], "expects": [], "limits": m.limits, "host": m.host}


def random_ops(rng, cpus: int, n: int) -> list[str]:
    """A random program generated against the contract's own state (so every step is
    applicable however the host schedules): the oracle follows the expected outcomes. It has
    docs/contract.md §3.4's lines too (pageout also on an idle CPU; on unmapped pages the
    outcomes §4.2 names for `os linux`)."""
    orc = _linux_oracle(cpus)
    ops = []
    for _ in range(n):
        line = _random_line(rng, orc, cpus)
        expected = orc.expected_outcome(line)
        woke = []
        if line.split()[1] == "umtx_wakeup":
            woke = [oracle.thread_name(t) for t in sorted(orc._must_wake(oracle.parse_op(line, cpus),
                                                                           orc.cpu[int(line.split()[0][3:])]))]
        if orc.step(line, expected, woke) is not None:
            break
        ops.append(line)
    return ops


def _random_line(rng, orc: oracle.Oracle, cpus: int) -> str:
    busy = [c for c in range(cpus) if orc.cpu[c] is not None]
    runnable = [t.name for t in orc.threads() if t.state == "runnable"]
    page = rng.choice(PAGES)
    pids = list(range(1, orc.next_pid + 1))
    r = rng.random()
    if r < 0.02:  # the page daemon on any CPU, idle or not (docs/contract.md §3.4)
        return f"cpu{rng.randrange(cpus)} pageout P{rng.choice(pids)} {page}"
    if not busy or r < 0.17:
        target = rng.choice(runnable + [None])
        return f"cpu{rng.randrange(cpus)} switch {'idle' if target is None else oracle.thread_name(target)}"
    c = rng.choice(busy)
    w = rng.randrange(4)
    v = rng.randrange(3)
    kind = rng.choices(["load", "store", "fork", "spawn", "exit", "sleep", "wake", "pread", "pwrite",
                        "madvise", "mprotect", "munmap", "mmap", "mremap", "msync", "pageout"],
                       [6, 6, 2, 2, 0.5, 2, 2, 2, 2, 1, 1, 0.4, 0.7, 0.7, 0.7, 0.5])[0]
    return {
        "load": f"cpu{c} load {page}.{w}", "store": f"cpu{c} store {page}.{w} {v:#x}",
        "fork": f"cpu{c} fork", "spawn": f"cpu{c} spawn", "exit": f"cpu{c} exit",
        "sleep": f"cpu{c} umtx_sleep {page}.{w} {v:#x}", "wake": f"cpu{c} umtx_wakeup {page}.{w}",
        "pread": f"cpu{c} procfs_read P{rng.choice(pids)} {page}.{w}",
        "pwrite": f"cpu{c} procfs_write P{rng.choice(pids)} {page}.{w} {v:#x}",
        "madvise": f"cpu{c} madvise {page} dontneed",
        "mprotect": f"cpu{c} mprotect {page} {rng.choice(['r', 'rw'])}",
        "munmap": f"cpu{c} munmap {page}", "mmap": f"cpu{c} mmap {page}",
        "mremap": f"cpu{c} mremap {page} {rng.choice(PAGES)}", "msync": f"cpu{c} msync {page}",
        "pageout": f"cpu{c} pageout P{rng.choice(pids)} {page}",
    }[kind]


def campaign(seconds: int, crashes: str, seed: int, max_steps: int, cpus: int | None, progress=None) -> dict:
    """`pyvmfuzz fuzz --target linux`: random programs (generated against the contract's state)
    on the host kernel until the budget; each violating trace saved once, atomically."""
    import hashlib
    import random

    from pyvmfuzz.campaign.findings import atomic_write

    rng = random.Random(seed)
    start = time.time()
    stats = {"programs": 0, "steps": 0, "found": []}
    while time.time() - start < seconds:
        n = cpus or rng.randrange(1, min(4, len(os.sched_getaffinity(0)) * 2) + 1)
        ops = random_ops(rng, n, rng.randrange(1, max_steps + 1))
        rep = run_ops(ops, n)
        stats["programs"] += 1
        stats["steps"] += len(rep["steps"])
        if rep["violation"] is not None:
            v = rep["violation"]
            name = f"linux-{v['kind']}-{hashlib.sha1(rep['trace_text'].encode()).hexdigest()[:12]}.txt"
            path = os.path.join(crashes, name)
            if not os.path.exists(path):
                atomic_write(path, f"# pyvmfuzz finding on Linux: {v['kind']} at step {v['step']}: expected "
                                   f"{v['expected']}, observed {v['observed']}\n" + rep["trace_text"])
                stats["found"].append(path)
        if progress:
            progress(stats, time.time() - start)
    return stats
