"""The layout facts of a program, defined once on the Python side: page names, words per page,
the file content of the text pages, operations and their arguments, byte-form opcodes,
outcomes, yield points, kernels and violation kinds.

Where the Rust core exports a fact (`_core.layout()`, `_core.kernels()`, `_core.kinds()`) it is
read from there, so Python and Rust cannot drift apart; the text grammar of the operations
(docs/contract.md §2.2, §3.2) is written here. The oracle (pyvmfuzz/oracle/) keeps its own reading of the contract
on purpose and does not import this module."""

from __future__ import annotations

from pyvmfuzz import _core

_L = _core.layout()

#: Page names in layout order (docs/contract.md §2.1): data0..data3 private anonymous, text0/text1 a private
#: mapping of the read-only file, shm0 shared anonymous.
PAGES: tuple[str, ...] = tuple(_L["pages"])
#: Words (u32) per page; addresses are `PAGE.W` with W in range(WORDS).
WORDS: int = int(_L["words"])
#: Initial (file) content of each text page's words; never changes (docs/contract.md §2.1).
TEXT_CONTENT: dict[str, tuple[int, ...]] = {p: tuple(ws) for p, ws in _L["text_content"]}
TEXT_PAGES: tuple[str, ...] = tuple(p for p in PAGES if p in TEXT_CONTENT)
SHARED_PAGES: tuple[str, ...] = tuple(_L["shared_pages"])
#: Pages with no mapping at first (docs/contract.md §3.4): a load there is SEGV.
UNMAPPED_PAGES: tuple[str, ...] = tuple(_L["unmapped_pages"])
#: The data file's words (docs/contract.md §3.4: what file0 maps), initially.
FILE_CONTENT: dict[str, tuple[int, ...]] = {p: tuple(ws) for p, ws in _L["file_content"]}
DATA_PAGES: tuple[str, ...] = tuple(p for p in PAGES if p not in TEXT_CONTENT and p not in SHARED_PAGES
                                   and p not in UNMAPPED_PAGES)
#: Every `PAGE.W` address, in layout order.
ADDRS: tuple[str, ...] = tuple(f"{p}.{w}" for p in PAGES for w in range(WORDS))

#: Byte form (rust/src/codec.rs): 2 header bytes, then 5-byte records `[op | sel<<4, page<<2 | word,
#: value, pid, until]`; 0xff in the value or pid byte means a u32 LE follows (value first);
#: an `until` byte u >= UNTIL_BASE stops the op at the ((u - UNTIL_BASE) mod r)-th of the r yield
#: points the line reaches from the current state when u - UNTIL_BASE < 64, else (or when it
#: reaches none) at one of the points it declares; umtx_sleep's value byte 0x80..0xfe is the word's
#: current value.
OPCODES: dict[str, int] = {name: code for code, name in _L["opcodes"]}
#: docs/contract.md §3.4's operations share one opcode; the record's value byte (mod 8) picks
#: which (5..7: a load). mremap's TO is the pid byte (mod the pages), pageout's pid as procfs's.
EXT_SELECT: dict[str, int] = {name: v for name, v in _L["ext_select"]}
HEADER_BYTES, ESCAPE = 2, 0xFF
RECORD_BYTES, UNTIL_BASE = (int(x) for x in _L["record"])

#: Header line keywords the core parses (docs/contract.md §2.1, §2.3; `os` is docs/contract.md §4.2).
CORE_HEADERS: tuple[str, ...] = tuple(_L["headers"])
HEADERS: tuple[str, ...] = ("hw", "kernel", "os", "expect")
OS_NAMES: tuple[str, ...] = ("dragonfly", "linux")  # docs/contract.md §4.2; dragonfly is the default

HW_DEFAULT: tuple[int, int, str] = (int(_L["hw_default"][0]), int(_L["hw_default"][1]), str(_L["hw_default"][2]))
MAX_CPUS, MAX_TLB = (int(x) for x in _L["hw_max"])
MODES: tuple[str, ...] = tuple(_L["modes"])

KERNELS: tuple[str, ...] = tuple(name for name, _ in _core.kernels())
KINDS: tuple[str, ...] = tuple(_core.kinds())

#: Text grammar of the operations: name -> argument kinds, in order (docs/contract.md §2.2, §3.2).
#: addr = PAGE.W, value = u32, pid = Pn, page = PAGE, target = Pp.Tt | idle,
#: advice = dontneed, prot = r | rw. `resume` and `ipi` are docs/contract.md §3.2's lines.
OPS: dict[str, tuple[str, ...]] = {
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
    "madvise": ("page", "advice"),
    "mprotect": ("page", "prot"),
    "munmap": ("page",),
    "mmap": ("page",),
    "mremap": ("page", "to"),
    "msync": ("page",),
    "pageout": ("pid", "page"),
    "resume": (),
    "ipi": (),
}
#: Operations the core runs today (the others are parsed and printed, docs/contract.md §3.2).
CORE_OPS: tuple[str, ...] = tuple(dict.fromkeys(n.removesuffix("_rw").removesuffix("_r") for n in OPCODES))
#: Operations of the user's threads (without docs/contract.md §3.2's `resume` and `ipi` lines).
USER_OPS: tuple[str, ...] = tuple(n for n in CORE_OPS if n not in ("resume", "ipi"))

#: Yield points and the operations whose lines may name them (docs/contract.md §3.2 table), from
#: the core (what its parser accepts). `wait` is every operation's that takes a lock.
POINTS: dict[str, tuple[str, ...]] = {p: tuple(ops) for p, ops in _L["points"].items()}

#: Outcome words (docs/contract.md §2.2, §3.2); VALUE (hex), `P<pid>` and `P<pid>.T<tid>` are the others.
OUTCOME_WORDS: tuple[str, ...] = ("ok", "SEGV", "EAGAIN", "blocked", "EBUSY", "EFAULT", "ESRCH", "EINVAL", "paused")


def text_word(page: str, word: int) -> int:
    """Initial content of `page.word`: the executable's word for a text page, the data file's
    for file0, else 0 (docs/contract.md §2.1, §3.4)."""
    for content in (TEXT_CONTENT, FILE_CONTENT):
        if page in content:
            return content[page][word]
    return 0


def points_of(op: str) -> tuple[str, ...]:
    """The yield points `op` may stop at with `until` (docs/contract.md §3.2), in table order."""
    return tuple(p for p, ops in POINTS.items() if op in ops)
