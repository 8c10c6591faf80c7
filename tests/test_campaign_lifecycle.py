"""A campaign's lifecycle (issue 25): it owns its output directory, stops on SIGTERM and SIGHUP
as on Ctrl-C (also when started with SIGINT ignored), leaves nothing in /dev/shm, reclaims what a
killed one left, survives a full disk with one line and its summary, and keeps a resumed
campaign's known findings apart from its new ones. Each campaign runs a few seconds; none
relies on finding a bug by luck."""

import glob
import os
import re
import resource
import signal
import subprocess
import sys
import time

import pytest

import atheris  # noqa: F401 -- a core dependency (test_fuzz.py)

from conftest import ROOT, cli

SHM = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)


def start(out, *args, env=None, ignore_sigint=False):
    """A campaign in the background (--quiet: what it prints fits in the pipes)."""
    pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    return subprocess.Popen([sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--out", str(out), "--quiet", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=pre)


def finish(proc, timeout=60):
    return proc.communicate(timeout=timeout)


def wait_fuzzing(proc, out, timeout=60):
    """Until libFuzzer has started on the campaign's inputs (its INITED line in fuzz.log)."""
    log = os.path.join(out, "fuzz.log")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, finish(proc)
        try:
            if "INITED" in open(log).read():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the campaign did not start fuzzing")


def shm_roots(pid):
    return glob.glob(f"/dev/shm/pyvmfuzz-corpus-{pid}-*")


def harness_pids(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def test_a_second_campaign_is_refused_while_the_owner_lives_and_takes_over_after_it_died(tmp_path):
    out = tmp_path / "out"
    a = start(out, "--kernel", "fixed", "--time", "60")
    try:
        wait_fuzzing(a, out)
        b = cli("fuzz", "--out", str(out), "--kernel", "switch-clear-early", "--time", "2", "--quiet", timeout=60)
        assert b.returncode == 2, b.stdout + b.stderr
        lines = [ln for ln in b.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and f"pid {a.pid}" in lines[0] and "in use" in lines[0], b.stderr
        assert "Traceback" not in b.stderr and "# campaign" not in b.stdout
        roots = shm_roots(a.pid) if SHM else []
        if SHM:
            assert roots, "the campaign's tmpfs corpus is named after its pid"
            time.sleep(1.5)  # some inputs the periodic sync (every 5 s) has not copied yet
        # Killed outright: its lock goes with it; its tmpfs directory stays, with inputs in it.
        a.kill()
        finish(a)
    finally:
        if a.poll() is None:
            a.kill()
            finish(a)
    work = os.path.join(roots[0], "work") if roots else None
    unsynced = set()
    if work:
        import hashlib

        for name in os.listdir(work):
            data = open(os.path.join(work, name), "rb").read()
            if hashlib.sha1(data).hexdigest() == name:
                unsynced.add(name)
        unsynced -= set(os.listdir(out / "corpus"))
    c = cli("fuzz", "--out", str(out), "--kernel", "fixed", "--time", "1", "--quiet", timeout=120)
    assert c.returncode == 0, c.stdout + c.stderr  # the stale lock is taken over
    if SHM:
        assert not shm_roots(a.pid), "the dead campaign's tmpfs directory was reclaimed"
        assert "temporary directories of campaigns that died" in c.stdout, c.stdout
        assert unsynced <= set(os.listdir(out / "corpus"))  # and what it had not synced was kept


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_a_campaign_like_ctrl_c(tmp_path, sig):
    out = tmp_path / "out"
    p = start(out, "--kernel", "fixed", "--time", "60")
    wait_fuzzing(p, out)
    time.sleep(0.5)
    had_root = bool(shm_roots(p.pid))
    p.send_signal(sig)
    stdout, stderr = finish(p)
    assert p.returncode == 130, stdout + stderr  # as for Ctrl-C before any finding
    assert f"# campaign interrupted ({signal.Signals(sig).name})" in stdout, stdout
    assert "# no violation found" in stdout
    assert "Traceback" not in stderr
    m = re.search(r"corpus (\d+) inputs in (\S+)", stdout)
    assert m and int(m[1]) > 0 and len(os.listdir(m[2])) == int(m[1]), stdout  # synced back
    assert had_root == SHM and not shm_roots(p.pid)  # the tmpfs corpus and the seeds are gone
    time.sleep(0.3)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(out) not in ps  # no harness outlives it


def test_a_campaign_started_with_sigint_ignored_still_stops_on_sigint(tmp_path):
    """`pyvmfuzz fuzz ... &` in a script, or under nohup: SIGINT comes in ignored."""
    out = tmp_path / "out"
    p = start(out, "--kernel", "fixed", "--time", "30", ignore_sigint=True)
    wait_fuzzing(p, out)
    p.send_signal(signal.SIGINT)
    stdout, stderr = finish(p, timeout=25)  # before: the whole budget, then exit 0
    assert p.returncode == 130, stdout + stderr
    assert "# campaign interrupted: kernel fixed" in stdout, stdout
    assert not shm_roots(p.pid)


def _catches_sigint(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"^SigCgt:\s*([0-9a-f]+)", f.read(), re.M)
    except OSError:
        return False
    return bool(m and int(m[1], 16) & (1 << (signal.SIGINT - 1)))


def test_check_started_with_sigint_ignored_still_stops_on_sigint(tmp_path):
    src = open(os.path.join(ROOT, "corpus", "litmus", sorted(os.listdir(os.path.join(ROOT, "corpus", "litmus")))[0])).read()
    d = tmp_path / "many"
    d.mkdir()
    for i in range(600):  # 9,600 pairs under --kernel all: many seconds
        (d / f"p{i:03}.txt").write_text(src)
    p = subprocess.Popen([sys.executable, "-P", "-m", "pyvmfuzz", "check", str(d), "--kernel", "all"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.time() + 15
    while time.time() < deadline and p.poll() is None and not _catches_sigint(p.pid):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stdout[-500:] + stderr  # before: ignored, the check ran to its end
    assert "interrupted" in stderr and "Traceback" not in stderr


def test_a_full_disk_is_one_line_the_summary_and_no_empty_file(tmp_path):
    """Mid-campaign, every write of the campaign's processes fails (RLIMIT_FSIZE 0: EFBIG, as
    ENOSPC would; libFuzzer's SIGXFSZ handler off, so the writes fail rather than kill)."""
    out = tmp_path / "out"
    p = start(out, "--kernel", "fixed", "--time", "60", "--", "-handle_xfsz=0")
    wait_fuzzing(p, out)
    time.sleep(0.3)
    for pid in [p.pid, *harness_pids(p.pid)]:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    stdout, stderr = finish(p, timeout=60)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and re.match(r"pyvmfuzz fuzz: write failed: /\S+: File too large; campaign stopped", lines[0]), stderr
    assert p.returncode == 2, stdout + stderr  # nothing new was found (fuzz --help)
    assert "# campaign stopped (a write failed): kernel fixed" in stdout, stdout
    crashes = out / "crashes"
    assert not [f for f in os.listdir(crashes) if os.path.getsize(crashes / f) == 0 or f.startswith(".tmp-")]
    # The corpus inputs it could not copy stay on tmpfs, and the next start copies them.
    from pyvmfuzz.campaign.lifecycle import reclaim

    before = len(os.listdir(out / "corpus"))
    kept = shm_roots(p.pid)
    reclaim()
    assert not shm_roots(p.pid)
    if kept:
        assert len(os.listdir(out / "corpus")) > before


def test_a_finding_that_cannot_be_written_goes_to_the_supervisor_not_to_libfuzzer(tmp_path):
    """A full disk while saving a finding: the harness neither raises (libFuzzer would save a
    crash file, empty on the full disk) nor leaves a file; it hands the input to the supervisor."""
    code = """
import os, resource, sys
from pyvmfuzz import _core
from pyvmfuzz.campaign.harness import FindingHandler
resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
data = _core.encode(open(sys.argv[1]).read(), "pre-385c96e4")
assert _core.run_bytes(data, "pre-385c96e4")["violation"]
h = FindingHandler("pre-385c96e4", None, sys.argv[2], sys.argv[3])
h(data)
h._log("crosschecked 1")
print("returned", data.hex())
"""
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    prog = os.path.join(ROOT, "corpus", "repro", "pre-385c96e4-debugger-text.txt")
    r = subprocess.run([sys.executable, "-P", "-c", code, prog, str(crashes), str(tmp_path / "findings.log")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    hx = r.stdout.split()[-1]
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("#pyvmfuzz write-error")]
    assert len(errs) == 1 and errs[0].split()[2] == hx and "File too large" in errs[0], r.stderr
    assert os.listdir(crashes) == []


def test_a_resumed_campaign_keeps_known_and_new_apart(tmp_path):
    """The self-test hook panics the core at step N in every run: each campaign handles exactly
    its first violating input (PYVMFUZZ_HANDLE_SHARE: every later one is left pending); with the
    same seeds and no corpus before them (each its own --corpus) that is the same first finding,
    and with another N another one."""
    out = tmp_path / "out"
    runs = iter(range(100))

    def campaign(panic_at, *args):
        env = dict(os.environ, PYVMFUZZ_SELFTEST_PANIC_AT=str(panic_at), PYVMFUZZ_HANDLE_SHARE="1e-12")
        return subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", "fixed", "--seed", "1",
                               "--out", str(out), "--corpus", str(tmp_path / f"corpus{next(runs)}"), "--quiet", *args,
                               "--", "-runs=12000"],  # the first violation within, then few pending files
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)

    def listed(p):
        # the path, then (one finding per bug) " — TITLE (N violating inputs)"
        return set(re.findall(r"^# violation \([^)]*\): (\S+\.txt)(?: — .*)?$", p.stdout, re.M))

    first = campaign(1, "--time", "60")
    assert first.returncode == 1, first.stdout + first.stderr
    saved = set(glob.glob(str(out / "crashes" / "*.txt")))
    assert saved and listed(first) == saved

    again = campaign(1, "--time", "60")
    assert again.returncode == 0, again.stdout + again.stderr  # nothing new: before, exit 1
    assert not listed(again), again.stdout
    assert re.search(r"^# 1 finding\(s\) met again that an earlier campaign saved", again.stdout, re.M), again.stdout
    assert "# no new violation found (1 already known)" in again.stdout

    other = campaign(3, "--time", "60")
    assert other.returncode == 1, other.stdout + other.stderr
    new = listed(other)
    assert new and not new & saved and new == set(glob.glob(str(out / "crashes" / "*.txt"))) - saved, other.stdout
