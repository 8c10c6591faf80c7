"""Findings: signatures, atomic files, and the readable saved form of a violation."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from pyvmfuzz import _core

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


def atomic_write(path: str, data: bytes | str) -> None:
    """Write via a hidden temp file in the same directory and rename: a reader (or an
    interrupted campaign) never sees a partial file. The file gets the mode a plain open()
    would give it (0666 less the umask), not mkstemp's 0600. An OSError names `path`, never
    the temp file."""
    d = os.path.dirname(path) or "."
    mode = "wb" if isinstance(data, bytes) else "w"
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
        os.replace(tmp, path)
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


def finding_text(rep: dict, note: str) -> str:
    """The saved program: a replayable trace with its expect line and verdict."""
    v = rep["violation"]
    head = [
        f"# pyvmfuzz finding: {v['kind']} under {rep['kernel']}",
        f"# {note}",
        f"# replay: pyvmfuzz run FILE --kernel {rep['kernel']}",
        f"# step {v['step']}: expected {v['expected']}, observed {v['observed']}",
    ]
    lines = rep["trace_text"].splitlines()
    hw, kernel, ops = lines[0], lines[1], lines[2:]
    return "\n".join(head + [hw, kernel, f"expect {rep['kernel']} {v['kind']} {v['step']}"] + ops) + "\n"


def save(crashes: str, rep: dict, note: str, prefix: str = "", data: bytes | None = None) -> tuple[str, bool]:
    """Save a (minimized) violating run as text and bytes, once per signature.
    `data`: the input as the campaign found it, written as the .bytes when the program cannot
    be encoded (a program that panics the model also panics the encoder): no finding is lost.
    Returns (base path, whether it was new)."""
    v = rep["violation"]
    sig = prefix + signature(v["kind"], rep["steps"])
    base = os.path.join(crashes, sig)
    if os.path.exists(base + ".txt"):
        return base, False
    program = "\n".join([rep["hw"]] + rep["steps"]) + "\n"
    try:
        blob = _core.encode(program, rep["kernel"])
    except ValueError as e:
        if data is None:
            raise
        blob = data
        note += f"; FILE.bytes is the input as found (the program cannot be encoded: {e})"
    text = finding_text(rep, note)
    atomic_write(base + ".bytes", blob)
    atomic_write(base + ".txt", text)  # last: its presence marks the finding complete
    return base, True
