"""--target linux: real processes on this host, judged by the same oracle."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import CORPUS, ROOT, cli

if sys.platform != "linux":
    pytest.skip("Linux only", allow_module_level=True)

from pyvmfuzz.targets import linux  # noqa: E402


def test_corpus_programs_clean_under_fixed_are_clean_on_linux():
    p = cli("check", CORPUS, "--target", "linux")
    assert p.returncode == 0, p.stdout + p.stderr
    n = int(p.stdout.split("# checked ")[1].split()[0])
    assert n >= 15


def test_linux_behaves_as_the_contract_says():
    ops = ["cpu0 store data0.0 0x5", "cpu0 fork", "cpu1 switch P2.T1", "cpu1 load data0.0",
           "cpu0 store data0.0 0x7", "cpu1 load data0.0", "cpu0 procfs_write P2 text0.1 0x9",
           "cpu1 load text0.1", "cpu0 load text0.1", "cpu0 mprotect data1 r", "cpu0 store data1.0 0x1"]
    r = linux.run_ops(ops, 2)
    assert r["violation"] is None, r["trace_text"]
    assert r["trace"] == ["ok", "P2", "ok", "0x5", "ok", "0x5", "ok", "0x9", "0xf001", "ok", "SEGV"]


def test_1000_random_programs_no_disagreement_with_the_oracle():
    rng = random.Random(2026)
    t0 = time.time()
    steps = bad = 0
    for _ in range(1000):
        cpus = rng.randrange(1, 5)
        r = linux.run_ops(linux.random_ops(rng, cpus, 20), cpus)
        steps += len(r["steps"])
        bad += r["violation"] is not None
    dt = time.time() - t0
    print(f"\nlinux: 1000 programs, {steps} steps, {bad} disagreements, {dt:.1f}s ({1000 / dt:.0f} programs/s)")
    assert bad == 0
    assert steps > 10_000


def test_killing_the_driver_leaves_no_process(tmp_path):
    code = (
        "import os, sys\n"
        "from pyvmfuzz.targets import linux\n"
        "m = linux.LinuxMachine(2)\n"
        "print(m.pgid, flush=True)\n"
        "from pyvmfuzz import oracle\n"
        "ops = ['cpu0 fork', 'cpu0 spawn', 'cpu1 switch P1.T2', 'cpu1 umtx_sleep data0.0 0x0']\n"
        "orc = oracle.Oracle(2)\n"
        "for line in ops:\n"
        "    op = oracle.parse_op(line, 2)\n"
        "    cur = orc.cpu[op.cpu]\n"
        "    out, woke = m.do(op, None if cur is None else cur.name, orc.next_pid, lambda p: orc.procs[p].next_tid)\n"
        "    orc.step(line, out, [])\n"
        "print('ready', flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-P", "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pgid = int(p.stdout.readline())
    assert p.stdout.readline().strip() == "ready"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    def alive():  # zombies waiting for init to reap them are not alive
        rows = subprocess.run(["ps", "-eo", "pgid=,stat="], capture_output=True, text=True).stdout.splitlines()
        return [r for r in rows if r.split()[0] == str(pgid) and not r.split()[1].startswith("Z")]

    deadline = time.time() + 10
    while alive() and time.time() < deadline:
        time.sleep(0.1)
    assert alive() == [], f"processes of group {pgid} survived the driver"


def test_linux_run_and_fuzz_cli(tmp_path):
    p = cli("run", os.path.join(CORPUS, "litmus", "09-shm-wakeup-across-processes.txt"), "--target", "linux")
    assert p.returncode == 0 and "kernel linux" in p.stdout and "# verdict: clean" in p.stdout
    f = tmp_path / "b"
    f.write_bytes(b"\x01\x02\x03")
    p = cli("run", str(f), "--target", "linux")
    assert p.returncode == 2 and "takes text programs" in p.stderr
    p = cli("fuzz", "--target", "linux", "--time", "3", "--out", str(tmp_path / "o"), "--quiet")
    assert p.returncode == 0 and "# no violation found" in p.stdout, p.stdout + p.stderr
