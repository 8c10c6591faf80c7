"""The oracle: the user-visible contract of SPEC §4, in pure Python, independent of the Rust
core (`contract.py`), and the differential that compares the two (`check.py`)."""

from pyvmfuzz.oracle.contract import *  # noqa: F401,F403
from pyvmfuzz.oracle.contract import Oracle, TraceError, Violation, judge  # noqa: F401
