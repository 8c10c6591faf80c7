"""Targets a program runs on: the Rust model (`pyvmfuzz._core`, via `pyvmfuzz.programs`) and the
host kernel (`linux.py`)."""
