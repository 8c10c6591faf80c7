"""Campaigns: the supervisor (`supervisor.py`) runs atheris/libFuzzer on the harness
(`harness.py`), whose findings are minimized, confirmed and saved (`findings.py`); the
SanitizerCoverage build of the core is `covbuild.py`."""

from pyvmfuzz.campaign.supervisor import run_campaign  # noqa: F401
