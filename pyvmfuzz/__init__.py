"""pyvmfuzz: a fuzzer with multi-CPU memory-management hardware in the loop."""

__version__ = "0.1.0"
