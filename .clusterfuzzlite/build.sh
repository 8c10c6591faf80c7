#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build for pyvmfuzz (language: python).
#
# In the base-builder-python image the engine sets SRC, OUT, WORK and SANITIZER. To try it
# elsewhere: SRC=<dir holding the clone as pyvmfuzz/> OUT=<dir> WORK=<dir> SANITIZER=address
# bash .clusterfuzzlite/build.sh  (PYVMFUZZ_SKIP_INSTALL=1 if pyvmfuzz is already installed).
#
# Each harness in fuzz/ becomes $OUT/<name>: a PyInstaller package plus the usual wrapper that
# preloads libFuzzer (sanitizer_with_fuzzer.so) so that the coverage-instrumented Rust core,
# shipped beside it, registers its counters; a seed corpus zip and a dictionary per harness.
# In this mode a violation is a crash (PYVMFUZZ_CRASH=1): ClusterFuzzLite keeps the input,
# and `pyvmfuzz run ARTIFACT --kernel K` replays it.
: "${SRC:?}" "${OUT:?}" "${WORK:?}"
SANITIZER="${SANITIZER:-address}"
cd "$SRC/pyvmfuzz"
if [ -z "${PYVMFUZZ_SKIP_INSTALL:-}" ]; then
  pip3 install .
fi
mkdir -p "$OUT" "$WORK"

# The SanitizerCoverage build of the core (same recipe as `pyvmfuzz fuzz --coverage branch`).
# (Python runs from $WORK so that the installed pyvmfuzz, not the source tree, is imported.)
so=$(cd "$WORK" && PYVMFUZZ_SRC="$SRC/pyvmfuzz" python3 -c 'from pyvmfuzz.campaign.covbuild import build; print(build(quiet=True))')
cp "$so" "$OUT/pyvmfuzz_core_cov.so"

# The image provides sanitizer_with_fuzzer.so in $OUT; outside it, take atheris' own.
if [ ! -f "$OUT/sanitizer_with_fuzzer.so" ]; then
  case "$SANITIZER" in
    undefined) lib=ubsan_with_fuzzer.so ;;
    *) lib=asan_with_fuzzer.so ;;
  esac
  cp "$(cd "$WORK" && python3 -c 'import atheris; print(atheris.path())')/$lib" "$OUT/sanitizer_with_fuzzer.so"
fi

for harness in fuzz/*_fuzzer.py; do
  name=$(basename -s .py "$harness")
  src_harness="$PWD/$harness"
  (cd "$WORK" && pyinstaller --log-level WARN --noconfirm --distpath "$OUT" --workpath "$WORK/pyinstaller" \
    --specpath "$WORK" --onefile --collect-submodules pyvmfuzz --collect-all atheris \
    --name "$name.pkg" "$src_harness")
  cat > "$OUT/$name" <<WRAPPER
#!/bin/sh
# LLVMFuzzerTestOneInput for fuzzer detection.
this_dir=\$(dirname "\$0")
PYVMFUZZ_PRELOADED=1 PYVMFUZZ_CRASH=1 PYVMFUZZ_SEMANTIC=1 \\
PYVMFUZZ_CORE_SO=\$this_dir/pyvmfuzz_core_cov.so \\
PYVMFUZZ_KERNEL=\${PYVMFUZZ_KERNEL:-fixed} PYVMFUZZ_HW=\${PYVMFUZZ_HW:-mode=pc64} \\
PYVMFUZZ_CRASHES=\${TMPDIR:-/tmp}/pyvmfuzz-crashes \\
LD_PRELOAD=\$this_dir/sanitizer_with_fuzzer.so \\
ASAN_OPTIONS=\${ASAN_OPTIONS:-}:symbolize=1:external_symbolizer_path=\$this_dir/llvm-symbolizer:detect_leaks=0 \\
\$this_dir/$name.pkg "\$@"
WRAPPER
  chmod +x "$OUT/$name"
done

# Seed corpora (the campaign seeds, in byte form) and dictionaries (whole step records).
repo=$PWD
(cd "$WORK" && python3 - "$OUT" "$repo" <<'PY'
import glob, os, sys, zipfile
from pyvmfuzz import _core
out, repo = sys.argv[1], sys.argv[2]
seeds = sorted(glob.glob(f"{repo}/corpus/seeds/*.txt")) + sorted(glob.glob(f"{repo}/corpus/litmus/*.txt"))
with zipfile.ZipFile(os.path.join(out, "vm_fuzzer_seed_corpus.zip"), "w") as z:
    for f in seeds:
        try:
            z.writestr(os.path.basename(f)[:-4], _core.encode(open(f).read(), "fixed", "mode=pc64"))
        except ValueError:
            pass
with zipfile.ZipFile(os.path.join(out, "parser_fuzzer_seed_corpus.zip"), "w") as z:
    for f in seeds:
        z.write(f, os.path.basename(f))
# Dictionaries from the layout facts (pyvmfuzz/campaign/dictionary.py).
from pyvmfuzz.campaign.dictionary import write_parser, write_vm
write_vm(os.path.join(out, "vm_fuzzer.dict"))
write_parser(os.path.join(out, "parser_fuzzer.dict"))
PY
)
