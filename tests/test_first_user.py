"""A kernel-testing engineer's first session with pyvmfuzz, trying to break it: each test is
one input that went wrong, reproduced through the command line (exit 2, one line, no traceback
for bad input; SPEC §5, docs/program-format.md "Input errors")."""

import pytest

from conftest import cli


def _one_clean_line(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("cmd", ["run", "explain", "minimize", "check"])
def test_endless_device_is_too_large_not_a_hang(cmd):
    # /dev/zero has size 0 to stat and never ends: reading it whole ate memory until killed.
    line = _one_clean_line(cli(cmd, "/dev/zero", timeout=20))
    assert "too large" in line
