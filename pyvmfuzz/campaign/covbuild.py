"""The sanitizer-coverage build of the Rust core, for campaigns.

The installed extension stays uninstrumented (fast, no libFuzzer symbols needed). A campaign
builds a second copy of the crate with LLVM's SanitizerCoverage (inline 8-bit counters, PC
table, compare tracing) into `<source>/target/cov`, once, and the harness loads it in place of
`pyvmfuzz._core` after making libFuzzer's symbols global (see `harness.py`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from pyvmfuzz import _core
from pyvmfuzz.programs import InputError

TARGET = "x86_64-unknown-linux-gnu"
SANCOV_FLAGS = [
    "-C", "passes=sancov-module",
    "-C", "llvm-args=-sanitizer-coverage-level=3",
    "-C", "llvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-C", "llvm-args=-sanitizer-coverage-pc-table",
    "-C", "llvm-args=-sanitizer-coverage-trace-compares",
]


def source_dir() -> str:
    """The crate's source tree: $PYVMFUZZ_SRC, else the tree the module was built from."""
    src = os.environ.get("PYVMFUZZ_SRC") or _core.source_dir()
    if not os.path.isfile(os.path.join(src, "Cargo.toml")):
        raise InputError(
            f"the coverage build needs the Rust source tree (not found at {src}); "
            "set PYVMFUZZ_SRC to a clone, or use --coverage none"
        )
    return src


def build(quiet: bool = False) -> str:
    """Build (or bring up to date) the instrumented extension; returns its path."""
    src = source_dir()
    cargo = shutil.which("cargo")
    if cargo is None:
        raise InputError("the coverage build needs cargo on PATH; or use --coverage none")
    target_dir = os.path.join(src, "target", "cov")
    env = dict(os.environ)
    # An explicit --target keeps RUSTFLAGS off build scripts and proc-macros (PyO3 has them).
    env["RUSTFLAGS"] = " ".join(SANCOV_FLAGS)
    cmd = [cargo, "build", "--release", "--lib", "--target", TARGET, "--features", "pyo3/extension-module",
           "--target-dir", target_dir, "--manifest-path", os.path.join(src, "Cargo.toml")]
    if not quiet:
        sys.stderr.write("pyvmfuzz: building the coverage-instrumented core (cargo, once per change)...\n")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["cargo failed"])[-1]
        raise InputError(f"coverage build failed: {last}")
    so = os.path.join(target_dir, TARGET, "release", "libpyvmfuzz_core.so")
    if not os.path.isfile(so):
        raise InputError(f"coverage build produced no {so}")
    return so
