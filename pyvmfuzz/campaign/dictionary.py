"""libFuzzer dictionaries for the harnesses (`-dict=`; ClusterFuzzLite ships them beside the
fuzzers, .clusterfuzzlite/build.sh), built from the layout facts (pyvmfuzz.layout) so a new
page or operation needs no edit here.

- vm_fuzzer: whole byte-form records (rust/src/codec.rs: `[op | sel<<4, page<<2 | word,
  value, pid, until]`), one per operation on the page where it matters most, so an insert or a
  replace brings a whole step; and each operation stopped at its first yield point (docs/contract.md §3.2).
- parser_fuzzer: the text form's keywords and argument shapes (docs/contract.md §2.3)."""

from __future__ import annotations

from pyvmfuzz import layout

# The page each operation is most interesting on: text (a private file mapping, read-only:
# the 385c96e4 class), else data0.
_TEXT = layout.PAGES.index(layout.TEXT_PAGES[0])


def _page_of(op: str) -> int:
    return _TEXT if op in ("store", "procfs_write", "mprotect_r", "mprotect_rw", "madvise") else 0


def vm_entries() -> dict[str, bytes]:
    """name -> one record; switches name cpu1 and the first runnable thread; `NAME_until` stops
    the operation at the first yield point it reaches."""
    out = {}
    for op, code in layout.OPCODES.items():
        if op == "switch":
            out["switch_cpu1"] = bytes([code | 1 << 4, 1, 0, 0, 0])
            out["switch_cpu1_until"] = bytes([code | 1 << 4, 1, 0, 0, layout.UNTIL_BASE])
            continue
        pw = _page_of(op) << 2
        # umtx_sleep: 0x80, the word's current value (codec.rs), so the sleep is reached
        value = 0x80 if op == "umtx_sleep" else 1 if op in ("store", "procfs_write") else 0
        value = layout.EXT_SELECT.get(op, value)  # §3.4's ops: the value byte names the op
        name = op if pw == 0 else f"{op}_{layout.PAGES[pw >> 2]}"
        out[name] = bytes([code, pw, value, 0, 0])
        if op != "ipi":
            out[f"{name}_until"] = bytes([code, pw, value, 0, layout.UNTIL_BASE])
    return out


def parser_entries() -> list[str]:
    """Tokens of the text form: header keywords, operations, pages, an address per page,
    a thread, the assertion arrow, values."""
    toks = [f"cpu{c} " for c in range(2)] + [f"{h} " for h in layout.HEADERS] + ["hw cpus="]
    toks += [op if not layout.OPS[op] else f"{op} " for op in layout.OPS]
    toks += list(layout.PAGES) + [f"{p}.{i % layout.WORDS}" for i, p in enumerate(layout.PAGES)]
    toks += ["P2.T1", " -> ", " until ", "dontneed", "0x"] + list(layout.KERNELS)
    return toks


def _escape(b: bytes, text: bool = False) -> str:
    return "".join(chr(x) if text and 0x20 <= x < 0x7F and x not in b'"\\' else f"\\x{x:02x}" for x in b)


def write_vm(path: str) -> None:
    with open(path, "w") as f:
        for name, rec in vm_entries().items():
            f.write(f'{name}="{_escape(rec)}"\n')


def write_parser(path: str) -> None:
    with open(path, "w") as f:
        for t in parser_entries():
            f.write(f'"{_escape(t.encode(), text=True)}"\n')
