"""ClusterFuzzLite / OSS-Fuzz layout: config files as the documented examples have them, and
build.sh producing fuzzers whose crashes `pyvmfuzz run` replays."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, cli


def _yaml():
    """pyyaml (the test extra) only where YAML is read: the build test does not need it."""
    return pytest.importorskip("yaml")

MODES = {"code-change", "batch", "prune", "coverage"}


def load(name):
    with open(os.path.join(ROOT, ".github", "workflows", name)) as f:
        return _yaml().safe_load(f)


def test_project_yaml_and_dockerfile():
    with open(os.path.join(ROOT, ".clusterfuzzlite", "project.yaml")) as f:
        assert _yaml().safe_load(f) == {"language": "python"}
    docker = open(os.path.join(ROOT, ".clusterfuzzlite", "Dockerfile")).read()
    assert "FROM gcr.io/oss-fuzz-base/base-builder-python" in docker
    assert "COPY .clusterfuzzlite/build.sh $SRC/" in docker
    assert os.access(os.path.join(ROOT, ".clusterfuzzlite", "build.sh"), os.X_OK)


@pytest.mark.parametrize("name,mode", [("cflite_pr.yml", "code-change"), ("cflite_batch.yml", "batch"),
                                       ("cflite_cron.yml", "prune")])
def test_workflows_follow_the_documented_layout(name, mode):
    """The documented GitHub Actions examples: a build_fuzzers step (language python) then a
    run_fuzzers step with a known mode and a fuzz-seconds budget, in every job."""
    wf = load(name)
    assert wf["permissions"] == "read-all"
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads `on:` as True
    assert triggers
    modes = set()
    for job in wf["jobs"].values():
        steps = job["steps"]
        uses = [s["uses"] for s in steps]
        assert uses == ["google/clusterfuzzlite/actions/build_fuzzers@v1",
                        "google/clusterfuzzlite/actions/run_fuzzers@v1"], uses
        assert steps[0]["with"]["language"] == "python"
        run = steps[1]["with"]
        assert run["mode"] in MODES and int(run["fuzz-seconds"]) > 0
        modes.add(run["mode"])
    assert mode in modes


def test_build_sh_is_valid_bash():
    p = subprocess.run(["bash", "-n", os.path.join(ROOT, ".clusterfuzzlite", "build.sh")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_harness_in_crash_mode_crashes_on_a_violation_that_run_replays(tmp_path):
    """What build.sh packages, without the build (PyInstaller, the coverage core: -m slow below):
    fuzz/vm_fuzzer.py under the wrapper's PYVMFUZZ_CRASH=1 turns a violation into a crash, and
    libFuzzer's artifact replays under `pyvmfuzz run`. Its corpus holds the seed bug's
    reproducer, so the crash comes from the first input, on any machine."""
    from pyvmfuzz import _core

    corpus, run_dir = tmp_path / "corpus", tmp_path / "run"
    corpus.mkdir()
    run_dir.mkdir()
    text = open(os.path.join(ROOT, "corpus", "repro", "pre-385c96e4-debugger-text.txt")).read()
    (corpus / "reproducer").write_bytes(_core.encode(text, "pre-385c96e4", "mode=pc64"))
    env = dict(os.environ, PYVMFUZZ_CRASH="1", PYVMFUZZ_SEMANTIC="1", PYVMFUZZ_KERNEL="pre-385c96e4",
               PYVMFUZZ_HW="mode=pc64", PYVMFUZZ_CRASHES=str(tmp_path / "crashes"))
    r = subprocess.run([sys.executable, "-P", os.path.join(ROOT, "fuzz", "vm_fuzzer.py"), str(corpus),
                        "-max_total_time=60", f"-artifact_prefix={run_dir}/"],
                       env=env, capture_output=True, text=True, timeout=300, cwd=run_dir)
    log = r.stdout + r.stderr
    assert r.returncode != 0, log[-2000:]
    assert "AssertionError: pyvmfuzz: protection at step 2 under pre-385c96e4" in log, log[-2000:]
    crashes = glob.glob(str(run_dir / "crash-*"))
    assert crashes, log[-2000:]
    rep = cli("run", crashes[0], "--kernel", "pre-385c96e4", "--hw", "mode=pc64")
    assert rep.returncode == 1 and "# verdict:" in rep.stdout, rep.stdout + rep.stderr


@pytest.mark.slow  # PyInstaller and cargo builds (~1 min), then a 30-s campaign
@pytest.mark.skipif(shutil.which("pyinstaller") is None, reason="pip install 'pyvmfuzz[cflite]'")
def test_build_sh_produces_fuzzers_that_crash_on_violations(tmp_path):
    src, out, work = tmp_path / "src", tmp_path / "out", tmp_path / "work"
    src.mkdir()
    os.symlink(ROOT, src / "pyvmfuzz")
    env = dict(os.environ, SRC=str(src), OUT=str(out), WORK=str(work), SANITIZER="address",
               PYVMFUZZ_SKIP_INSTALL="1")
    p = subprocess.run(["bash", os.path.join(ROOT, ".clusterfuzzlite", "build.sh")], env=env,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    for name in ("vm_fuzzer", "parser_fuzzer"):
        assert os.access(out / name, os.X_OK) and (out / f"{name}.pkg").exists()
        assert (out / f"{name}_seed_corpus.zip").exists() and (out / f"{name}.dict").exists()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    r = subprocess.run([str(out / "vm_fuzzer"), "-max_total_time=30", f"-artifact_prefix={run_dir}/"],
                       env=dict(os.environ, PYVMFUZZ_KERNEL="pre-385c96e4"), capture_output=True, text=True,
                       timeout=300, cwd=run_dir)
    log = r.stdout + r.stderr
    assert "Loaded 2 modules" in log  # branch + semantic counters through the preload
    assert "AssertionError: pyvmfuzz: protection at step" in log, log[-2000:]
    crashes = glob.glob(str(run_dir / "crash-*"))
    assert crashes, r.stderr[-2000:]
    rep = cli("run", crashes[0], "--kernel", "pre-385c96e4", "--hw", "mode=pc64")
    assert rep.returncode == 1 and "# verdict:" in rep.stdout
