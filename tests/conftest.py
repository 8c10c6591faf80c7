import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "corpus")
KERNELS = [
    "fixed", "pre-385c96e4", "partial-385c96e4", "no-cow-event", "fork-no-protect", "shootdown-no-ipi",
    "protect-wrong-va", "fixed-tagged", "umtx-no-recheck", "pre-10192bae", "switch-clear-early",
    "cow-make-before-break", "deferred-flush", "procfs-hold-only", "no-revalidate", "dirty-cow",
    "mremap-flush-late", "clearbit-wrong-va", "protect-drops-modified", "free-before-flush", "tree-385c96e4",
]


def corpus_files(sub="*"):
    return sorted(glob.glob(os.path.join(CORPUS, sub, "*.txt")))


def cli(*args, input=None, timeout=120):
    """Run the CLI in a fresh interpreter; returns CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "pyvmfuzz", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def run_cli():
    return cli
