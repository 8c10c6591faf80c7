"""Loading programs from files: text or byte form, with clear input errors."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pyvmfuzz import _core

TEXT_SUFFIXES = (".txt", ".vm")
MAX_FILE_BYTES = 1 << 20  # a program is small; a bigger file is a mistake, not a program
_TEXT_STARTS = ("cpu", "hw", "kernel", "expect", "#")


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


def _looks_like_text(raw: bytes) -> str | None:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = [ln.strip() for ln in s.splitlines() if ln.strip()]
    if lines and all(ln.startswith(_TEXT_STARTS) for ln in lines):
        return s
    return None


def load(path: str) -> ProgramFile:
    """Read a program file; `.txt` files must be text, others are sniffed."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size} bytes is too large for a program (limit {MAX_FILE_BYTES})")
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    if path.endswith(TEXT_SUFFIXES):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text program (invalid UTF-8)") from None
        if not any(ln.split("#")[0].strip().startswith("cpu") for ln in text.splitlines()):
            raise InputError(f"{path}: no operations (an empty program)")
        return ProgramFile(path, text, None)
    text = _looks_like_text(raw)
    if text is not None:
        return ProgramFile(path, text, None)
    return ProgramFile(path, None, raw)


def run(pf: ProgramFile, kernel: str | None, hw: str | None) -> dict:
    """Execute a loaded program; input errors are raised as InputError naming the file."""
    try:
        if pf.is_text:
            return _core.run_text(pf.text, kernel, hw)
        return _core.run_bytes(pf.data, kernel, hw)
    except ValueError as e:
        raise InputError(f"{pf.path}: {e}") from None


def walk(paths: list[str]) -> list[str]:
    """Files named, and files under directories named (sorted; hidden files skipped)."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return out
