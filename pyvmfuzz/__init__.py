"""pyvmfuzz: a fuzzer with multi-CPU memory-management hardware in the loop.

The typed API (pyvmfuzz/api.py): `Program`, `Step`, `run(program, kernel=None, hw=None) ->
Report`; layout facts in `pyvmfuzz.layout`; Hypothesis strategies in `pyvmfuzz.strategies`."""

__version__ = "0.1.0"

from pyvmfuzz.api import (  # noqa: E402  (after __version__: the CLI reads it without the core)
    IDLE,
    Addr,
    AssertFailure,
    Assertion,
    Expect,
    HwSpec,
    Program,
    Report,
    Step,
    Thread,
    Violation,
    run,
)
from pyvmfuzz.programs import InputError  # noqa: E402

__all__ = ["IDLE", "Addr", "AssertFailure", "Assertion", "Expect", "HwSpec", "InputError", "Program", "Report",
           "Step", "Thread", "Violation", "run", "__version__"]
