#!/usr/bin/env python3
"""libFuzzer harness for pyvmfuzz (atheris). Usually started by `pyvmfuzz fuzz`; standalone:
PYVMFUZZ_KERNEL=pre-385c96e4 fuzz/vm_fuzzer.py CORPUS_DIR -max_total_time=60"""

from pyvmfuzz.campaign.harness import main

main()
