"""pyvmfuzz: a fuzzer with multi-CPU memory-management hardware in the loop.

The typed API (pyvmfuzz/api.py): `Program`, `Step`, `run(program, kernel=None, hw=None) ->
Report`; layout facts in `pyvmfuzz.layout`; Hypothesis strategies in `pyvmfuzz.strategies`."""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["IDLE", "Addr", "AssertFailure", "Assertion", "Expect", "HwSpec", "InputError", "Program", "Report",
           "Step", "Thread", "Violation", "run", "__version__"]

if TYPE_CHECKING:
    from pyvmfuzz.api import (IDLE, Addr, AssertFailure, Assertion, Expect, HwSpec, Program, Report, Step, Thread,
                              Violation, run)
    from pyvmfuzz.programs import InputError


def __getattr__(name: str):
    # Lazy (PEP 562): `import pyvmfuzz` must not load the Rust core, because the fuzzing harness
    # swaps in the coverage-instrumented core after importing the package (campaign/harness.py).
    if name == "InputError":
        from pyvmfuzz.programs import InputError

        return InputError
    if name in __all__:
        from pyvmfuzz import api

        return getattr(api, name)
    raise AttributeError(f"module 'pyvmfuzz' has no attribute {name!r}")
