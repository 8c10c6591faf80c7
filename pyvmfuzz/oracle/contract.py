"""The oracle: a slow, independent model of the user-visible contract.

Written from the contract (docs/contract.md §2, §3.4, §4) and docs/readings.md only -- never from
the Rust core -- so that a disagreement between the two means something.  It knows
nothing about TLBs, pmaps, shadow chains or frames: each process simply *has* a
mapping or none at each of its nine pages -- private words of its own, or a
shared object (the original shm0, one made by `mmap shm0`, the data file) that
every process mapping it reads and writes alike -- and the question for every
step is "what must a user have seen?".

A trace (the text a run prints) is itself a program with observed outcomes:

    hw cpus=2 tlb=8 mode=pc64
    kernel pre-385c96e4
    cpu0 fork -> P2
    cpu0 umtx_wakeup shm0.1 -> ok woke P1.T2

`judge(text)` returns the first `Violation` or None; `Oracle` does the same one
step at a time.  A malformed or inapplicable line raises `TraceError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DATA_PAGES = ("data0", "data1", "data2", "data3")
TEXT_PAGES = ("text0", "text1")
PRIVATE_PAGES = DATA_PAGES + TEXT_PAGES     # privately mapped in the initial layout
SHARED_PAGES = ("shm0", "file0")            # shared mappings in the initial layout
HOLE_PAGES = ("hole0",)                     # unmapped in the initial layout (docs/contract.md §3.4)
PAGES = PRIVATE_PAGES + SHARED_PAGES + HOLE_PAGES   # the nine pages, in the contract's order
SHM, FILE = "shm0", "file0"   # names of the original shared anonymous object and of the data file
PRIVATE_KINDS = ("anon",) + TEXT_PAGES      # what a private mapping's original content is
WORDS = 4
MAX_PROCS = 8      # live processes
MAX_THREADS = 4    # live threads per process
MAX_CPUS = 8
PERSONALITIES = ("dragonfly", "linux")   # docs/contract.md §4.2; dragonfly is the default


def original(page: str, word: int) -> int:
    """Content of a page of this kind before anyone wrote it: what a private page's madvise
    restores, what `mmap` gives (the data file's initial words for `file0`; a later `mmap
    file0` sees the file as it is then, see Oracle._mmap). `page` may also be a private
    mapping's kind ("anon", "text0", "text1")."""
    if page in TEXT_PAGES:
        return 0xF000 + 16 * int(page[4:]) + word   # the executable; it never changes
    if page == FILE:
        return 0xD000 + word                        # the data file, initially
    return 0                                        # anonymous zero-fill (data*, hole0, shm0)


# the prot a fresh mapping of each page's kind has (hole0: when `mmap` makes it, §3.4)
INITIAL_PROT = {p: "r" if p in TEXT_PAGES else "rw" for p in PAGES}


@dataclass(frozen=True)
class Violation:
    kind: str        # stale-read | protection | outcome | lost-wakeup (the oracle's kinds)
    step: int        # 1-based, over op lines only
    expected: str    # outcome strings in trace syntax
    observed: str


class TraceError(ValueError):
    """Malformed trace, or a step that cannot happen in the oracle's state."""


# ---------------------------------------------------------------- parsing

_VALUE = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")
_ADDR = re.compile(r"(data[0-3]|text[01]|shm0|file0|hole0)\.([0-3])")
_THREAD = re.compile(r"P([0-9]+)\.T([0-9]+)")
_PID = re.compile(r"P([0-9]+)")
_CPU = re.compile(r"cpu([0-9]+)")

# action -> the kinds of its arguments, in order
_ARGS = {
    "switch": ("target",),
    "load": ("addr",),
    "store": ("addr", "value"),
    "fork": (),
    "spawn": (),
    "exit": (),
    "umtx_sleep": ("addr", "value"),
    "umtx_wakeup": ("addr",),
    "procfs_read": ("pid", "addr"),
    "procfs_write": ("pid", "addr", "value"),
    "madvise": ("page", "dontneed"),
    "mprotect": ("page", "prot"),
    # docs/contract.md §3.4
    "munmap": ("page",),
    "mmap": ("page",),
    "mremap": ("page", "to"),
    "msync": ("page",),
    "pageout": ("pid", "page"),
}


@dataclass(frozen=True)
class Op:
    cpu: int
    action: str
    page: str | None = None
    word: int | None = None
    value: int | None = None
    pid: int | None = None                    # procfs target
    target: tuple[int, int] | None = None     # switch target; None means idle
    prot: str | None = None                   # mprotect
    to: str | None = None                     # mremap's destination page


def parse_value(tok: str) -> int:
    if not _VALUE.fullmatch(tok):
        raise ValueError(f"bad value {tok!r}")
    v = int(tok, 16) if tok[:2].lower() == "0x" else int(tok, 10)
    if v >= 1 << 32:
        raise ValueError(f"value {tok} does not fit a 32-bit word")
    return v


def parse_thread(tok: str) -> tuple[int, int]:
    m = _THREAD.fullmatch(tok)
    if not m:
        raise ValueError(f"bad thread {tok!r} (want Pn.Tm)")
    return int(m[1]), int(m[2])


def thread_name(t: tuple[int, int]) -> str:
    return f"P{t[0]}.T{t[1]}"


def parse_op(text: str, cpus: int) -> Op:
    """Parse `cpuN ACTION ARGS` (no outcome); raises ValueError with the reason."""
    toks = text.split()
    if not toks:
        raise ValueError("empty op")
    m = _CPU.fullmatch(toks[0])
    if not m:
        raise ValueError(f"bad cpu {toks[0]!r}")
    cpu = int(m[1])
    if cpu >= cpus:
        raise ValueError(f"cpu{cpu} beyond the {cpus} CPUs of the header")
    if len(toks) < 2 or toks[1] not in _ARGS:
        raise ValueError(f"unknown op {toks[1] if len(toks) > 1 else ''!r}")
    action, args, kinds = toks[1], toks[2:], _ARGS[toks[1]]
    if len(args) != len(kinds):
        raise ValueError(f"{action} takes {len(kinds)} argument(s), got {len(args)}")
    f: dict = {}
    for kind, tok in zip(kinds, args):
        if kind == "target":
            f["target"] = None if tok == "idle" else parse_thread(tok)
        elif kind == "addr":
            a = _ADDR.fullmatch(tok)
            if not a:
                raise ValueError(f"bad address {tok!r} (want PAGE.W)")
            f["page"], f["word"] = a[1], int(a[2])
        elif kind in ("page", "to"):
            if tok not in PAGES:
                raise ValueError(f"bad page {tok!r}")
            f[kind] = tok
        elif kind == "value":
            f["value"] = parse_value(tok)
        elif kind == "pid":
            p = _PID.fullmatch(tok)
            if not p:
                raise ValueError(f"bad pid {tok!r} (want Pn)")
            f["pid"] = int(p[1])
        elif kind == "dontneed" and tok != "dontneed":
            raise ValueError(f"madvise advice must be dontneed, got {tok!r}")
        elif kind == "prot":
            if tok not in ("r", "rw"):
                raise ValueError(f"mprotect takes r or rw, got {tok!r}")
            f["prot"] = tok
    return Op(cpu, action, **f)


def format_outcome(outcome: str, woke) -> str:
    """`ok` / `ok woke P1.T2,P3.T1` -- the trace syntax, wake list sorted."""
    woke = sorted(woke)
    return outcome + (" woke " + ",".join(map(thread_name, woke)) if woke else "")


def is_value(outcome: str) -> bool:
    return bool(_VALUE.fullmatch(outcome))


# ---------------------------------------------------------------- state

# The key of a sleeper whose private page went away under it (munmap, mmap or mremap over it,
# or -- under os linux -- mremap of its page, docs/contract.md §4.2): no wakeup computes it, so
# nothing owes such a sleeper a wake any more; a wake it gets is a permitted spurious one.
GONE = ("gone",)


@dataclass
class Thread:
    pid: int
    tid: int
    state: str = "runnable"          # runnable | running | blocked
    cpu: int | None = None           # set while running
    # set while blocked: (pid, page, w) on a private page, (object, w) on a shared one
    # ("shm0", "file0", or a shm0 made by mmap: "shm0#N"), or GONE
    key: tuple | None = None

    @property
    def name(self) -> tuple[int, int]:
        return (self.pid, self.tid)


@dataclass
class Process:
    pid: int
    # page -> (what, prot) for every mapped page; a page not in it is unmapped (docs/contract.md
    # §3.4). `what` is a private mapping's kind (PRIVATE_KINDS: what madvise restores) or the
    # name of the shared object it maps (its words live in Oracle.objs).
    maps: dict[str, tuple[str, str]]
    mem: dict[str, list[int]]        # the words of each privately mapped page
    threads: dict[int, Thread] = field(default_factory=dict)
    next_tid: int = 1                # tids count up and are never reused

    def new_thread(self) -> Thread:
        t = Thread(self.pid, self.next_tid)
        self.threads[t.tid] = t
        self.next_tid += 1
        return t

    def prot(self, page: str) -> str | None:
        """The page's current prot, None where nothing is mapped."""
        m = self.maps.get(page)
        return None if m is None else m[1]

    def shared(self, page: str) -> bool:
        """The page maps a shared object (shm0, one made by mmap, the data file)."""
        m = self.maps.get(page)
        return m is not None and m[0] not in PRIVATE_KINDS


def initial_mapping(page: str) -> tuple[str, str]:
    """The (what, prot) of page in the initial layout, and of a fresh `mmap` of it but for shm0,
    which mmap makes a new object of (Oracle._mmap)."""
    if page in TEXT_PAGES:
        return (page, INITIAL_PROT[page])
    if page in SHARED_PAGES:
        return (page, INITIAL_PROT[page])   # "shm0" / "file0": the objects' names
    return ("anon", INITIAL_PROT[page])     # data*, hole0


class Oracle:
    """The contract, one step at a time."""

    def __init__(self, cpus: int = 2, os: str = "dragonfly"):
        if not 1 <= cpus <= MAX_CPUS:
            raise ValueError(f"cpus must be 1..{MAX_CPUS}")
        if os not in PERSONALITIES:
            raise ValueError(f"os must be one of {', '.join(PERSONALITIES)}")
        self.os = os                                    # docs/contract.md §4.2 personality
        self.ncpus = cpus
        self.cpu: list[Thread | None] = [None] * cpus   # who runs on each CPU
        self.procs: dict[int, Process] = {}             # live processes only
        # shared objects' words, by name: the original shm0 (while someone maps it), the data
        # file (always: its content is never lost, docs/contract.md §3.4), shm0s made by mmap
        self.objs: dict[str, list[int]] = {SHM: [original(SHM, w) for w in range(WORDS)],
                                           FILE: [original(FILE, w) for w in range(WORDS)]}
        self.next_obj = 1                               # names "shm0#1", "shm0#2", ...
        self.next_pid = 1                               # pids are never reused
        self.steps = 0
        self.ended: Violation | None = None
        maps = {p: initial_mapping(p) for p in PRIVATE_PAGES + SHARED_PAGES}
        p1 = self._new_process(
            maps, {p: [original(p, w) for w in range(WORDS)] for p in PRIVATE_PAGES})
        self._run(p1.new_thread(), 0)

    @property
    def shm(self) -> list[int]:
        """The original shm0's words (empty once nobody maps it)."""
        return self.objs.get(SHM, [])

    # -- small helpers

    def _new_process(self, maps, mem) -> Process:
        p = Process(self.next_pid, maps, mem)
        self.procs[p.pid] = p
        self.next_pid += 1
        return p

    def _run(self, t: Thread, cpu: int) -> None:
        t.state, t.cpu, t.key = "running", cpu, None
        self.cpu[cpu] = t

    def thread(self, name: tuple[int, int]) -> Thread | None:
        p = self.procs.get(name[0])
        return p.threads.get(name[1]) if p else None

    def threads(self):
        for p in self.procs.values():
            yield from p.threads.values()

    def read(self, proc: Process, page: str, w: int) -> int:
        what = proc.maps[page][0]
        return proc.mem[page][w] if what in PRIVATE_KINDS else self.objs[what][w]

    def write(self, proc: Process, page: str, w: int, v: int) -> None:
        what = proc.maps[page][0]
        if what in PRIVATE_KINDS:
            proc.mem[page][w] = v
        else:
            self.objs[what][w] = v

    def key(self, proc: Process, page: str, w: int) -> tuple:
        """What a sleeper on proc's PAGE.W waits on: a word of a shared object is one word for
        every process that maps the object, wherever; a private word is per process and page."""
        what = proc.maps[page][0]
        return (proc.pid, page, w) if what in PRIVATE_KINDS else (what, w)

    def _kill(self, proc: Process) -> None:
        """exit or SEGV: all threads go (sleepers too); their CPUs become idle."""
        for t in proc.threads.values():
            if t.cpu is not None:
                self.cpu[t.cpu] = None
        del self.procs[proc.pid]
        self._gc()

    def _gc(self) -> None:
        """Forget shared anonymous objects nobody maps any more (no mapping can reach them
        again: mmap makes a new one). The data file stays."""
        used = {m[0] for p in self.procs.values() for m in p.maps.values()}
        for name in [n for n in self.objs if n != FILE and n not in used]:
            del self.objs[name]

    def _strand(self, proc: Process, page: str) -> None:
        """proc's private mapping at page is gone: its sleepers there are owed nothing more."""
        for t in proc.threads.values():
            if t.state == "blocked" and t.key is not None and t.key[:2] == (proc.pid, page):
                t.key = GONE

    def _unmap(self, proc: Process, page: str) -> None:
        """munmap (and what mmap and mremap do first at their target): the page behaves as hole0
        from now on. Sleepers on a shared object keep their key (the object lives on)."""
        if page in proc.maps:
            self._strand(proc, page)
            del proc.maps[page]
            proc.mem.pop(page, None)

    def _mmap(self, proc: Process, page: str) -> None:
        """A fresh mapping of the kind page has in the initial layout, replacing any there."""
        self._unmap(proc, page)
        what, prot = initial_mapping(page)
        if what == SHM:                        # a new shared anonymous object, shared with no one
            what = f"{SHM}#{self.next_obj}"
            self.next_obj += 1
            self.objs[what] = [original(SHM, w) for w in range(WORDS)]
        elif what in PRIVATE_KINDS:
            proc.mem[page] = [original(what, w) for w in range(WORDS)]
        proc.maps[page] = (what, prot)         # file0: the data file as it is now

    def _mremap(self, proc: Process, page: str, to: str) -> None:
        """Move the mapping at page -- its words (or shared object), prot and sleepers -- to `to`,
        replacing what was there; page becomes unmapped (docs/contract.md §3.4, §4). DragonFly
        keys a sleeper by the physical page, which does not move: its word moves with the
        mapping. Linux keys a private futex by its address: a sleeper on a private page is owed
        nothing by a wakeup at the new address (docs/contract.md §4.2)."""
        self._unmap(proc, to)
        proc.maps[to] = proc.maps.pop(page)
        if page in proc.mem:
            proc.mem[to] = proc.mem.pop(page)
        for t in proc.threads.values():
            if t.state == "blocked" and t.key is not None and t.key[:2] == (proc.pid, page):
                t.key = (proc.pid, to, t.key[2]) if self.os == "dragonfly" else GONE

    # -- the contract

    def _actor(self, op: Op, where: int) -> Thread | None:
        """The thread performing op; checks the op is applicable at all. `pageout` runs on an
        idle CPU too, in no thread (docs/contract.md §3.4)."""
        t = self.cpu[op.cpu]
        if op.action == "pageout":
            return t
        if op.action != "switch":
            if t is None:
                raise TraceError(f"line {where}: cpu{op.cpu} is idle")
            return t
        if op.target is not None:
            target = self.thread(op.target)
            if target is None:
                raise TraceError(f"line {where}: no such thread {thread_name(op.target)}")
            if target.state != "runnable":
                raise TraceError(f"line {where}: {thread_name(op.target)} is not runnable "
                                 f"({target.state})")
        return t

    def _expected(self, op: Op, t: Thread | None) -> str:
        """The one outcome the contract allows for op, performed by t."""
        a = op.action
        proc = self.procs[t.pid] if t else None
        # munmap, mprotect, madvise and msync of an unmapped page do nothing, `ok` (§3.4) --
        # under os linux mprotect(2), madvise(2) and msync(2) fail with ENOMEM on a range that
        # is not mapped (their man pages; docs/contract.md §4.2), munmap(2) does not
        if (a in ("madvise", "mprotect", "msync") and self.os == "linux"
                and proc is not None and op.page not in proc.maps):
            return "ENOMEM"
        if a in ("switch", "exit", "madvise", "mprotect", "munmap", "mmap", "msync"):
            return "ok"
        if a == "pageout":                    # invisible; a dead or unknown target: ESRCH
            if op.pid not in self.procs:
                return "ESRCH"
            # MADV_PAGEOUT (process_madvise) on an unmapped range: ENOMEM, as madvise(2)
            return "ENOMEM" if self.os == "linux" and op.page not in self.procs[op.pid].maps else "ok"
        if a == "mremap":                     # TO = PAGE is checked before PAGE unmapped
            if op.to == op.page:
                return "EINVAL"
            return "ok" if op.page in proc.maps else "EFAULT"
        mapped = proc is not None and op.page in proc.maps
        if a == "umtx_wakeup":
            # Linux's private FUTEX_WAKE keys on (mm, address) and never looks the page up:
            # 0 woken, `ok`, on an unmapped private page (docs/contract.md §4.2); a shared one
            # (the page's original kind shm0/file0) looks it up: EFAULT, as DragonFly's
            if not mapped and self.os == "linux" and op.page not in SHARED_PAGES:
                return "ok"
            return "ok" if mapped else "EFAULT"
        if a == "load":                       # every mapped page is readable
            return hex(self.read(proc, op.page, op.word)) if mapped else "SEGV"
        if a == "store":
            return "ok" if mapped and proc.prot(op.page) == "rw" else "SEGV"
        if a == "fork":
            return "EAGAIN" if len(self.procs) >= MAX_PROCS else f"P{self.next_pid}"
        if a == "spawn":
            if len(proc.threads) >= MAX_THREADS:
                return "EAGAIN"
            return f"P{proc.pid}.T{proc.next_tid}"
        if a == "umtx_sleep":
            if not mapped:                    # both personalities (§3.4)
                return "EFAULT"
            # DragonFly faults the page READ|WRITE and fails where prot lacks write. Linux's
            # FUTEX_WAIT only reads the word: a private futex keys on (mm, address) with no
            # page lookup, a shared one on shm0 (shmem, not PageAnon) retries read-only since
            # 9ea71503a8ed -- so it compares and blocks like on a writable page (docs/contract.md §4.2;
            # host evidence in tests/test_oracle_lin.py::test_linux_futex_on_readonly_pages).
            if proc.prot(op.page) != "rw" and self.os == "dragonfly":
                return "EFAULT"
            return "blocked" if self.read(proc, op.page, op.word) == op.value else "EBUSY"
        if a in ("procfs_read", "procfs_write"):
            target = self.procs.get(op.pid)
            if target is None:                # dead or never existed
                return "ESRCH"
            if op.page not in target.maps:
                # docs/contract.md §3.4, §4.2: DragonFly's vm_fault_page fails (EFAULT); Linux's
                # /proc/PID/mem read or write of an unmapped address fails with EIO
                return "EIO" if self.os == "linux" else "EFAULT"
            if a == "procfs_read":
                return hex(self.read(target, op.page, op.word))
            # docs/contract.md §4.2: a debugger write into a *shared* mapping whose prot lacks write.
            # DragonFly's VM_PROT_OVERRIDE_WRITE writes up to max prot (ok); Linux's FOLL_FORCE
            # breaks copy-on-write only in private mappings (mm/gup.c check_vma_flags), so the
            # write through /proc/PID/mem fails: EIO, and nothing is written. A private page
            # (data after mprotect r, text) takes the write under both personalities. Shared is
            # the mapping, wherever it is now: shm0, file0, one of them moved by mremap.
            if (self.os == "linux" and target.shared(op.page)
                    and target.prot(op.page) != "rw"):
                return "EIO"
            return "ok"
        raise AssertionError(a)

    def _apply(self, op: Op, t: Thread | None, expected: str) -> None:
        """The op's own effect, given that its outcome was the expected one."""
        a = op.action
        proc = self.procs[t.pid] if t else None
        if a == "switch":
            if t is not None:                 # the previous thread becomes runnable
                t.state, t.cpu = "runnable", None
            self.cpu[op.cpu] = None
            if op.target is not None:
                self._run(self.thread(op.target), op.cpu)
        elif a in ("store", "load"):
            if expected == "SEGV":            # kills the process (an unmapped page's load too)
                self._kill(proc)
            elif a == "store":
                self.write(proc, op.page, op.word, op.value)
        elif a == "fork" and expected != "EAGAIN":
            # the child gets a copy of private memory and of every page's mapping and prot;
            # shared objects (shm0s, the data file) stay shared; unmapped pages stay unmapped
            child = self._new_process(dict(proc.maps),
                                      {p: list(ws) for p, ws in proc.mem.items()})
            child.new_thread()
        elif a == "spawn" and expected != "EAGAIN":
            proc.new_thread()
        elif a == "exit":
            self._kill(proc)
        elif a == "umtx_sleep" and expected == "blocked":
            self.cpu[op.cpu] = None
            t.state, t.cpu, t.key = "blocked", None, self.key(proc, op.page, op.word)
        elif a == "procfs_write" and expected == "ok":
            # a debugger write ignores current prot (under os linux, on private pages only:
            # see _expected); text changes only in the target's private copy (the file
            # itself never changes); a shared object's word changes for all who map it
            self.write(self.procs[op.pid], op.page, op.word, op.value)
        elif a == "madvise":
            m = proc.maps.get(op.page)
            if m is not None and m[0] in PRIVATE_KINDS:   # shared pages keep their data
                proc.mem[op.page] = [original(m[0], w) for w in range(WORDS)]
        elif a == "mprotect":
            m = proc.maps.get(op.page)
            if m is not None:
                proc.maps[op.page] = (m[0], op.prot)
        elif a == "munmap":
            self._unmap(proc, op.page)
            self._gc()
        elif a == "mmap":
            self._mmap(proc, op.page)
            self._gc()
        elif a == "mremap" and expected == "ok":
            self._mremap(proc, op.page, op.to)
            self._gc()
        # msync, pageout: nothing a user can see (data is never lost, docs/contract.md §3.4)

    def _must_wake(self, op: Op, t: Thread) -> set[tuple[int, int]]:
        if op.action != "umtx_wakeup":
            return set()
        proc = self.procs[t.pid]
        if op.page not in proc.maps:          # EFAULT: wakes no one
            return set()
        k = self.key(proc, op.page, op.word)
        return {s.name for s in self.threads() if s.state == "blocked" and s.key == k}

    @staticmethod
    def _mismatch(op: Op, expected: str, observed: str) -> str | None:
        """Kind of the difference between expected and observed outcome, or None."""
        if op.action in ("load", "procfs_read") and is_value(expected):
            if is_value(observed):
                same = parse_value(observed) == parse_value(expected)
                return None if same else "stale-read"
            if op.action == "load" and observed == "SEGV":
                return "protection"
            return "outcome"
        if op.action == "load" and expected == "SEGV" and is_value(observed):
            return "protection"                # a load that must SEGV gave a value
        if op.action == "store" and {expected, observed} == {"ok", "SEGV"}:
            return "protection"
        return None if observed == expected else "outcome"

    def expected_outcome(self, op_line: str) -> str:
        """What op_line must give now (no state change)."""
        op = self._parse(op_line, self.steps + 1)
        return self._expected(op, self._actor(op, self.steps + 1))

    def _parse(self, op_line: str, where: int) -> Op:
        try:
            return parse_op(op_line, self.ncpus)
        except ValueError as e:
            raise TraceError(f"line {where}: {e}") from None

    def step(self, op_line: str, outcome: str, woke: list[str] = (),
             *, line: int | None = None) -> Violation | None:
        """Judge one op and its observed outcome and wake list; update the state.

        `line` only labels TraceError messages (default: the step number).
        """
        if self.ended is not None:
            raise RuntimeError(f"judgement already ended at step {self.ended.step}")
        n = self.steps + 1
        where = n if line is None else line
        op = self._parse(op_line, where)
        observed = outcome.strip()
        if not observed or " " in observed:
            raise TraceError(f"line {where}: missing or bad outcome {outcome!r}")
        try:
            woken = [parse_thread(w.strip()) for w in woke]
        except ValueError as e:
            raise TraceError(f"line {where}: {e}") from None
        t = self._actor(op, where)
        self.steps = n
        observed_full = observed + (" woke " + ",".join(map(thread_name, woken))
                                    if woken else "")

        # 1. the outcome itself: stale-read, protection, outcome
        expected = self._expected(op, t)
        kind = self._mismatch(op, expected, observed)
        if kind:
            return self._end(Violation(kind, n, expected, observed_full))

        # 2. the op's own effect, then the wake list (only blocked threads can wake;
        #    the performer was running, so it can never be in its own wake list)
        blocked_before = {s.name for s in self.threads() if s.state == "blocked"}
        must_wake = self._must_wake(op, t)
        self._apply(op, t, expected)
        bad = [w for w in woken if w not in blocked_before or self.thread(w) is None
               or woken.count(w) > 1]
        if bad:
            good = {w for w in woken if w not in bad}
            return self._end(Violation("outcome", n, format_outcome(expected, good),
                                       observed_full))
        for w in woken:                       # adopt: spurious or due, it now runs
            s = self.thread(w)
            s.state, s.key = "runnable", None

        # 3. lost-wakeup: a sleeper umtx_wakeup was bound to wake, not in the list
        if must_wake - set(woken):
            return self._end(Violation("lost-wakeup", n,
                                       format_outcome(expected, must_wake | set(woken)),
                                       observed_full))
        return None

    def _end(self, v: Violation) -> Violation:
        self.ended = v
        return v

    # -- state copies, for the linearizability search (linearizability.py)

    def clone(self) -> "Oracle":
        """An independent copy of the whole state (the search branches on it)."""
        o = Oracle.__new__(Oracle)
        o.os, o.ncpus = self.os, self.ncpus
        o.objs = {name: list(ws) for name, ws in self.objs.items()}
        o.next_obj, o.next_pid, o.steps, o.ended = (self.next_obj, self.next_pid, self.steps,
                                                    self.ended)
        o.procs = {}
        for pid, p in self.procs.items():
            q = Process(pid, dict(p.maps), {pg: list(ws) for pg, ws in p.mem.items()},
                        {tid: Thread(t.pid, t.tid, t.state, t.cpu, t.key)
                         for tid, t in p.threads.items()}, p.next_tid)
            o.procs[pid] = q
        o.cpu = [None if t is None else o.procs[t.pid].threads[t.tid] for t in self.cpu]
        return o

    def fingerprint(self) -> tuple:
        """A hashable summary of everything the contract's future outcomes depend on."""
        return (
            tuple(None if t is None else t.name for t in self.cpu),
            tuple((name, tuple(ws)) for name, ws in sorted(self.objs.items())),
            self.next_obj, self.next_pid,
            tuple((pid, p.next_tid,
                   tuple((p.maps.get(pg), tuple(p.mem[pg]) if pg in p.mem else None)
                         for pg in PAGES),
                   tuple((t.tid, t.state, t.cpu, t.key) for t in p.threads.values()))
                  for pid, p in sorted(self.procs.items())),
        )


# ---------------------------------------------------------------- traces

def parse_trace(text: str) -> tuple[int, list[tuple[int, str, str, list[str]]]]:
    """Header CPU count and the steps as (line number, op text, outcome, wake list).

    Every line is checked for form before anything runs, as for programs. Sequential traces
    only; interleaved lines (docs/contract.md §3.2) are linearizability.py's.
    """
    return parse_trace_os(text)[:2]


def trace_lines(text: str) -> tuple[int, list[tuple[int, str, str, list[str]]], str]:
    """A trace's form: (cpus, [(line number, op text, outcome, woke names)], os). Header lines
    `hw`, `kernel`, `expect`, `os` (docs/contract.md §2.1, §4.2) before the first op; every op line carries
    `-> OUTCOME [woke T,...]`. Raises TraceError naming the line. Ops are not parsed here."""
    cpus, steps, osname = 2, [], "dragonfly"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head = line.split()[0]
        if head in ("hw", "kernel", "expect", "os"):
            if steps:
                raise TraceError(f"line {lineno}: header line after the first op")
            if head == "hw":
                cpus = _parse_hw(line, lineno, cpus)
            elif head == "os":
                toks = line.split()
                if len(toks) != 2 or toks[1] not in PERSONALITIES:
                    raise TraceError(f"line {lineno}: bad os line (want `os linux` or `os dragonfly`)")
                osname = toks[1]
            continue
        if "->" not in line:
            raise TraceError(f"line {lineno}: missing outcome (`-> OUTCOME`)")
        op_text, _, rest = line.partition("->")
        toks = rest.split()
        if not toks or (len(toks) > 1 and (toks[1] != "woke" or len(toks) < 3)):
            raise TraceError(f"line {lineno}: bad outcome {rest.strip()!r}")
        woke = "".join(toks[2:]).split(",") if len(toks) > 1 else []
        steps.append((lineno, op_text.strip(), toks[0], woke))
    return cpus, steps, osname


def parse_trace_os(text: str) -> tuple[int, list[tuple[int, str, str, list[str]]], str]:
    """parse_trace, plus the `os` header's personality (docs/contract.md §4.2; default dragonfly)."""
    cpus, steps, osname = trace_lines(text)
    for lineno, op_text, _, woke in steps:
        try:
            parse_op(op_text, cpus)
            for w in woke:
                parse_thread(w)
        except ValueError as e:
            raise TraceError(f"line {lineno}: {e}") from None
    return cpus, steps, osname


def _parse_hw(line: str, lineno: int, cpus: int) -> int:
    for kv in line.split()[1:]:
        k, _, v = kv.partition("=")
        ok = ((k == "cpus" and v.isdigit() and 1 <= int(v) <= MAX_CPUS)
              or (k == "tlb" and v.isdigit() and 1 <= int(v) <= 64)
              or (k == "mode" and v in ("pc64", "tagged")))
        if not ok:
            raise TraceError(f"line {lineno}: bad hw setting {kv!r}")
        if k == "cpus":
            cpus = int(v)
    return cpus


def judge(trace_text: str, os: str | None = None) -> Violation | None:
    """The first violation in a sequential trace, or None if every observation is allowed.

    `os` overrides the trace's `os` header (docs/contract.md §4.2). The package's `oracle.judge` is
    linearizability.judge, which is this judgement on traces without docs/contract.md §3.2 lines.
    """
    cpus, steps, osname = parse_trace_os(trace_text)
    if os is not None:
        if os not in PERSONALITIES:
            raise TraceError(f"unknown os {os!r} (want {' or '.join(PERSONALITIES)})")
        osname = os
    oracle = Oracle(cpus, os=osname)
    for lineno, op_text, outcome, woke in steps:
        v = oracle.step(op_text, outcome, woke, line=lineno)
        if v is not None:
            return v            # the run ended here; later lines are not judged
    return None
