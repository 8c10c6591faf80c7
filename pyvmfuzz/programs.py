"""Loading programs from files: text or byte form, with clear input errors."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pyvmfuzz import _core

TEXT_SUFFIXES = (".txt", ".vm")
BYTES_SUFFIXES = (".bytes",)  # the byte form a campaign saves beside each finding's .txt
MAX_FILE_BYTES = 1 << 20  # a program is small; a bigger file is a mistake, not a program
_TEXT_STARTS = ("cpu", "hw", "kernel", "expect", "os", "#")  # "os": every saved finding has the line


class InputError(Exception):
    """Bad input: the CLI prints the message on one line and exits 2.

    `str(e)` is the one-line message (`PATH: line N: reason`, or shorter where a part is
    unknown). Attributes: `line` (1-based source line of the text program, or None), `reason`
    (the message without path and line) and `path` (or None). Built from the message when not
    given: the core's errors read `line N: reason` (rust/src/program.rs InputError)."""

    _LINE = re.compile(r"(?:^|: )line (\d+): (.*)$", re.S)

    def __init__(self, message: str, *, line: int | None = None, reason: str | None = None,
                 path: str | None = None):
        super().__init__(message)
        m = self._LINE.search(message)
        if line is None and m:
            line = int(m[1])
        if reason is None:
            reason = m[2] if m else (message[len(path) + 2:] if path and message.startswith(path + ": ") else message)
        self.line, self.reason, self.path = line, reason, path


@dataclass
class ProgramFile:
    path: str
    text: str | None  # text form
    data: bytes | None  # byte form

    @property
    def is_text(self) -> bool:
        return self.text is not None


def visible(msg: str) -> str:
    """A message with invisible characters (a BOM, a zero-width space, NBSP) written as
    escapes, so an error about them shows what is actually there."""
    return "".join(c if c.isprintable() or c in "\t" else f"\\u{ord(c):04x}" for c in msg)


def _decode(raw: bytes) -> str | None:
    """UTF-8 text, less a leading byte-order mark (Windows editors write one); None if not UTF-8."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def _looks_like_text(raw: bytes) -> str | None:
    s = _decode(raw)
    if s is None:
        return None
    lines = [ln.strip() for ln in s.splitlines() if ln.strip()]
    if lines and all(ln.startswith(_TEXT_STARTS) for ln in lines):
        return s
    return None


def _check_text(path: str, text: str) -> None:
    """Parse errors first (they name the line), then an empty program."""
    try:
        facts = _core.check_text(text, "cpus=8")  # a --hw given later may add CPUs: parse only
    except ValueError as e:
        raise InputError(f"{path}: {visible(str(e))}") from None
    if facts["steps"] == 0:
        raise InputError(f"{path}: no operations (an empty program)")


def load(path: str) -> ProgramFile:
    """Read a program file; `.txt`/`.vm` files must be text, `.bytes` files are the byte form,
    others are sniffed. An empty file, a file over MAX_FILE_BYTES, a text program that does
    not parse or has no operation: InputError naming the file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size} bytes is too large for a program (limit {MAX_FILE_BYTES})")
        with open(path, "rb") as f:
            # Bounded: a device or pipe (/dev/zero, <(...)) has no size to check up front.
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise InputError(f"{path}: more than {MAX_FILE_BYTES} bytes is too large for a program")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    if not raw:
        # Every byte string decodes to a program, but an empty file is a mistake (a failed
        # copy, a truncated write), not the empty program.
        raise InputError(f"{path}: empty file: no operations (an empty program)")
    if path.endswith(TEXT_SUFFIXES):
        text = _decode(raw)
        if text is None:
            raise InputError(f"{path}: not a text program (invalid UTF-8)")
        _check_text(path, text)
        return ProgramFile(path, text, None)
    text = None if path.endswith(BYTES_SUFFIXES) else _looks_like_text(raw)
    if text is not None:
        _check_text(path, text)
        return ProgramFile(path, text, None)
    return ProgramFile(path, None, raw)


def sidecar(path: str) -> dict:
    """How to replay a saved finding's byte form: its `.txt` beside it (same stem) names the
    kernel, hardware and personality on a `# replay-bytes: --kernel K --hw KEYS --os OS` line
    (campaign.findings.save). Returns {"kernel", "hw", "os"} (each may be absent)."""
    stem, ext = os.path.splitext(path)
    txt = stem + ".txt"
    if ext == ".txt" or not os.path.isfile(txt):
        return {}
    try:
        with open(txt, encoding="utf-8", errors="replace") as f:
            for ln in f:
                if ln.startswith("# replay-bytes:"):
                    toks = ln.split(":", 1)[1].split()
                    keys = toks[0::2]
                    # a line that cannot be read was ignored, and the bytes ran under fixed
                    if len(toks) % 2 or any(k not in ("--kernel", "--hw", "--os") for k in keys):
                        raise InputError(f"{txt}: its '# replay-bytes:' line is not "
                                         f"'--kernel K --hw KEYS --os OS': {visible(ln.strip())}")
                    found = {toks[i][2:]: toks[i + 1] for i in range(0, len(toks), 2)}
                    if found.get("kernel", "fixed") not in [k for k, _ in _core.kernels()]:
                        raise InputError(f"{txt}: its '# replay-bytes:' line names an unknown kernel "
                                         f"'{visible(found['kernel'])}'")
                    return found
                if ln.startswith("cpu"):
                    break
    except OSError:
        pass
    return {}


def overlay_hw(base: str | None, top: str | None) -> str | None:
    """Hardware keys of `top` over those of `base` (each "k=v,k=v" or space-separated), key by
    key, as "k=v,k=v"; None when neither names a key."""
    keys: dict[str, str] = {}
    for spec in (base, top):
        for item in (spec or "").replace(",", " ").split():
            k, _, v = item.partition("=")
            keys[k] = v
    return ",".join(f"{k}={v}" for k, v in keys.items()) or None


def run(pf: ProgramFile, kernel: str | None, hw: str | None) -> dict:
    """Execute a loaded program; input errors are raised as InputError naming the file.
    A byte-form finding takes its kernel and hardware from its sidecar (`sidecar`) unless
    given here."""
    try:
        if pf.is_text:
            return _core.run_text(pf.text, kernel, hw)
        sc = sidecar(pf.path)
        return _core.run_bytes(pf.data, kernel or sc.get("kernel"), overlay_hw(sc.get("hw"), hw))
    except ValueError as e:
        raise InputError(f"{pf.path}: {visible(str(e))}") from None


def is_program_name(name: str) -> bool:
    """Whether a file met while walking a directory is taken as a program: `.txt`/`.vm`
    (text), `.bytes` (byte form), or a name without suffix — libFuzzer names corpus inputs by
    their SHA-1 and artifacts `crash-<sha1>`, `timeout-…`. Anything else (README.md, a PNG,
    fuzz.log, JSON) is skipped. A file named on the command line is always a program."""
    base = os.path.basename(name)
    if base.startswith("."):
        return False
    return base.endswith(TEXT_SUFFIXES + BYTES_SUFFIXES) or "." not in base


def walk_programs(paths: list[str]) -> tuple[list[str], list[str]]:
    """(programs, skipped files): files named, and under directories named the files that
    `is_program_name` accepts (sorted; hidden files and directories are left out silently;
    symbolic links to directories are followed once)."""
    out: list[str] = []
    skipped: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            seen = set()
            for root, dirs, files in os.walk(p, followlinks=True):
                real = os.path.realpath(root)
                if real in seen:  # a link loop, or the same directory twice
                    dirs[:] = []
                    continue
                seen.add(real)
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if f.startswith("."):
                        continue
                    (out if is_program_name(f) else skipped).append(os.path.join(root, f))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return out, skipped


def walk(paths: list[str]) -> list[str]:
    """The programs of `walk_programs`, without the skipped files."""
    return walk_programs(paths)[0]
