"""The oracle: the user-visible contract of docs/contract.md §4 (§3.4's pages and operations
included), in pure Python, independent of the Rust
core (`contract.py`: the sequential contract; `linearizability.py`: docs/contract.md §4.1 over it), and the
differential that compares the two (`check.py`)."""

from pyvmfuzz.oracle.contract import *  # noqa: F401,F403
from pyvmfuzz.oracle.contract import Oracle, TraceError, Violation  # noqa: F401
from pyvmfuzz.oracle.contract import judge as judge_sequential  # noqa: F401
# every trace goes through the linearizability judgement; without docs/contract.md §3.2 lines it is the
# sequential one (tests/test_oracle_lin.py pins that)
from pyvmfuzz.oracle.linearizability import judge  # noqa: F401
