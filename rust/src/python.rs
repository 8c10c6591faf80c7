//! Python bindings (`pyvmfuzz._core`). Input errors raise `_core.InputError` (a `ValueError`)
//! with `.line` (None where no line is at fault) and `.reason`; `str(e)` is `line N: reason`.

use crate::codec;
use crate::exec::{self, Report, Source};
use crate::hw::{HwSpec, TlbMode};
use crate::judge::KINDS;
use crate::kernel::{self, Kernel};
use crate::program::{self, Program};
use crate::soak::SoakConfig;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::fmt::Write as _;

pyo3::create_exception!(
    _core,
    InputError,
    PyValueError,
    "Bad input: `.line` (1-based source line, or None) and `.reason`; `str(e)` is `line N: reason`."
);

/// An input error at `line` (0: none) as `InputError`.
fn input_err(line: usize, reason: &str) -> PyErr {
    let msg = if line > 0 { format!("line {line}: {reason}") } else { reason.to_string() };
    let err = InputError::new_err(msg);
    Python::attach(|py| {
        let v = err.value(py);
        // (setting attributes on a fresh exception instance cannot fail)
        let _ = v.setattr("line", (line > 0).then_some(line));
        let _ = v.setattr("reason", reason);
    });
    err
}

impl From<program::InputError> for PyErr {
    fn from(e: program::InputError) -> PyErr {
        input_err(e.line, &e.msg)
    }
}

fn kernel_by_name(name: &str) -> PyResult<&'static Kernel> {
    kernel::resolve(name).map_err(|m| input_err(0, &m))
}

fn hw_spec(hw: Option<&str>) -> PyResult<HwSpec> {
    match hw {
        None => Ok(HwSpec::default()),
        Some(s) => HwSpec::parse(s).map_err(|m| input_err(0, &format!("--hw: {m}"))),
    }
}

fn parse_prog(text: &str) -> PyResult<Program> {
    program::parse(text).map_err(PyErr::from)
}

/// Kernel precedence: explicit argument, then the program's `kernel` line, then `fixed`.
fn pick_kernel(arg: Option<&str>, prog: &Program) -> PyResult<&'static Kernel> {
    kernel_by_name(arg.or(prog.kernel.as_deref()).unwrap_or("fixed"))
}

fn trace_text(r: &Report) -> String {
    let mut s = format!("{}\nkernel {}\n", r.hw, r.kernel.name);
    for (i, st) in r.steps.iter().enumerate() {
        match r.observed.get(i) {
            Some(o) => {
                let _ = writeln!(s, "{st} -> {o}");
            }
            None => {
                let _ = writeln!(s, "{st}  # panic");
            }
        }
    }
    s
}

/// `d[key]` = None, or the violation as {kind, step, expected, observed} (docs/contract.md §4).
fn set_violation<'py>(py: Python<'py>, d: &Bound<'py, PyDict>, key: &str, v: Option<&crate::judge::Violation>) -> PyResult<()> {
    match v {
        None => d.set_item(key, py.None()),
        Some(v) => {
            let vd = PyDict::new(py);
            vd.set_item("kind", v.kind.name())?;
            vd.set_item("step", v.step)?;
            vd.set_item("expected", &v.expected)?;
            vd.set_item("observed", &v.observed)?;
            d.set_item(key, vd)
        }
    }
}

fn report_dict<'py>(py: Python<'py>, r: &Report, prog: Option<&Program>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kernel", r.kernel.name)?;
    d.set_item("hw", r.hw.to_string())?;
    d.set_item("steps", r.steps.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    let mut trace: Vec<String> = r.observed.iter().map(|o| o.to_string()).collect();
    if trace.len() < r.steps.len() {
        trace.push("panic".into());
    }
    d.set_item("trace", trace)?;
    d.set_item("trace_text", trace_text(r))?;
    set_violation(py, &d, "violation", r.violation.as_ref())?;
    let af = PyList::empty(py);
    for (n, a, o) in &r.assert_failures {
        let x = PyDict::new(py);
        x.set_item("step", *n)?;
        x.set_item("expected", a.to_string())?;
        x.set_item("observed", o.to_string())?;
        af.append(x)?;
    }
    d.set_item("assert_failures", af)?;
    set_violation(py, &d, "internal", r.internal.as_ref())?;
    // docs/contract.md §3.2: ops still in flight and invalidations still pending when the run ended.
    let inf = PyList::empty(py);
    for (c, op, ph, pt, w) in &r.in_flight {
        let x = PyDict::new(py);
        x.set_item("cpu", *c)?;
        x.set_item("op", op)?;
        x.set_item("phase", ph)?;
        x.set_item("point", *pt)?;
        x.set_item("waiting_for", w.as_deref())?;
        inf.append(x)?;
    }
    d.set_item("in_flight", inf)?;
    let pend = PyList::empty(py);
    for (c, a, va, o) in &r.pending_ipis {
        let x = PyDict::new(py);
        x.set_item("cpu", *c)?;
        x.set_item("pid", *a)?;
        x.set_item("page", crate::program::PAGE_NAMES[*va as usize])?;
        x.set_item("initiator", *o)?;
        pend.append(x)?;
    }
    d.set_item("pending_ipis", pend)?;
    match prog {
        Some(p) => d.set_item("expects", expects_list(py, p)?)?,
        None => d.set_item("expects", PyList::empty(py))?,
    }
    Ok(d)
}

/// The program's `expect` lines as (kernel, kind or None, step or None).
fn expects_list<'py>(py: Python<'py>, prog: &Program) -> PyResult<Bound<'py, PyList>> {
    let ex = PyList::empty(py);
    for e in &prog.expects {
        match e.verdict {
            None => ex.append((e.kernel.as_str(), py.None(), py.None()))?,
            Some((k, st)) => ex.append((e.kernel.as_str(), k.name(), st))?,
        }
    }
    Ok(ex)
}

/// Parse a text program and settle its kernel and hardware (arguments override the header);
/// every CPU it names must exist.
fn prepare(text: &str, kernel: Option<&str>, hw: Option<&str>) -> PyResult<(Program, &'static Kernel, crate::hw::Hw)> {
    let prog = parse_prog(text)?;
    let k = pick_kernel(kernel, &prog)?;
    let eff = exec::effective_hw(prog.hw, hw_spec(hw)?);
    prog.check_cpus(eff.cpus).map_err(PyErr::from)?;
    Ok((prog, k, eff))
}

/// Parse and validate a text program; returns its header facts. Raises ValueError.
#[pyfunction]
#[pyo3(signature = (text, hw=None))]
fn check_text<'py>(py: Python<'py>, text: &str, hw: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
    let (prog, _, eff) = prepare(text, None, hw)?;
    let d = PyDict::new(py);
    d.set_item("steps", prog.steps.len())?;
    d.set_item("kernel", prog.kernel.as_deref())?;
    d.set_item("hw", eff.to_string())?;
    d.set_item("expects", expects_list(py, &prog)?)?;
    Ok(d)
}

/// Run a text program. `kernel`/`hw` override the program's header. `past_internal`: an
/// internal-invariant violation goes to `internal` and the run goes on to the first
/// user-visible one (witness search, see exec::run_past_internal).
#[pyfunction]
#[pyo3(signature = (text, kernel=None, hw=None, past_internal=false))]
fn run_text<'py>(py: Python<'py>, text: &str, kernel: Option<&str>, hw: Option<&str>, past_internal: bool) -> PyResult<Bound<'py, PyDict>> {
    let (prog, k, eff) = prepare(text, kernel, hw)?;
    let r = if past_internal { exec::run_past_internal(Source::Text(&prog), eff, k) } else { exec::run(Source::Text(&prog), eff, k) }
        .map_err(PyErr::from)?;
    report_dict(py, &r, Some(&prog))
}

/// Self-test: run a text program with a model assertion raised at step `at`.
#[pyfunction]
fn _selftest_panic<'py>(py: Python<'py>, text: &str, at: u32) -> PyResult<Bound<'py, PyDict>> {
    let (prog, k, eff) = prepare(text, None, None)?;
    let r = exec::run_opts(Source::Text(&prog), eff, k, at, true, None).map_err(PyErr::from)?;
    report_dict(py, &r, Some(&prog))
}

/// Run a byte-form program (decoded against the live state; stops at the first violation).
#[pyfunction]
#[pyo3(signature = (data, kernel=None, hw=None))]
fn run_bytes<'py>(py: Python<'py>, data: &[u8], kernel: Option<&str>, hw: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
    let k = kernel_by_name(kernel.unwrap_or("fixed"))?;
    let mut d = codec::Decoder::new(data);
    let eff = exec::effective_hw(d.header(), hw_spec(hw)?);
    let r = exec::run(Source::Bytes(d), eff, k).map_err(PyErr::from)?;
    report_dict(py, &r, None)
}

fn program_text(hw: &crate::hw::Hw, k: &Kernel, steps: &[program::Step]) -> String {
    let mut s = format!("{hw}\nkernel {}\n", k.name);
    for st in steps {
        let _ = writeln!(s, "{st}");
    }
    s
}

/// libFuzzer's custom mutator (rust/src/mutate.rs): one record-aware mutation of `data`
/// within `max_size` bytes, or None to leave the call to libFuzzer's own mutations.
/// `uniform`: new lines drawn uniformly, not biased towards races (bench --finish).
#[pyfunction]
#[pyo3(signature = (data, max_size, seed, uniform=false))]
fn mutate<'py>(py: Python<'py>, data: &[u8], max_size: usize, seed: u32, uniform: bool) -> Option<Bound<'py, PyBytes>> {
    crate::mutate::mutate_with(data, max_size, seed, uniform).map(|v| PyBytes::new(py, &v))
}

/// libFuzzer's custom crossover: records of `a` then records of `b`, aligned (mutate.rs).
#[pyfunction]
fn crossover<'py>(py: Python<'py>, a: &[u8], b: &[u8], max_size: usize, seed: u32) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &crate::mutate::crossover(a, b, max_size, seed))
}

/// Bytes → text program (header lines included).
#[pyfunction]
#[pyo3(signature = (data, kernel=None, hw=None))]
fn decode(data: &[u8], kernel: Option<&str>, hw: Option<&str>) -> PyResult<String> {
    let k = kernel_by_name(kernel.unwrap_or("fixed"))?;
    let (eff, steps) = codec::decode(data, hw_spec(hw)?, k);
    Ok(program_text(&eff, k, &steps))
}

/// Text program → bytes that decode back to it (under the same kernel and hardware).
#[pyfunction]
#[pyo3(signature = (text, kernel=None, hw=None))]
fn encode<'py>(py: Python<'py>, text: &str, kernel: Option<&str>, hw: Option<&str>) -> PyResult<Bound<'py, PyBytes>> {
    let (prog, k, eff) = prepare(text, kernel, hw)?;
    let b = codec::encode(&prog.steps, &prog.lines, eff, k).map_err(PyErr::from)?;
    Ok(PyBytes::new(py, &b))
}

/// Canonical text of a program (parse, then print): for round-trip checks.
#[pyfunction]
fn canonical(text: &str) -> PyResult<String> {
    let prog = parse_prog(text)?;
    let mut s = String::new();
    for st in &prog.steps {
        let _ = writeln!(s, "{st}");
    }
    Ok(s)
}

/// A fuzzing target: kernel and hardware override fixed once; `run(data)` is the hot path.
#[pyclass(frozen)]
struct FuzzTarget {
    kernel: &'static Kernel,
    hw: HwSpec,
    /// Executions so far (read by the harness's progress thread).
    execs: std::sync::atomic::AtomicU64,
    /// Input bytes run so far (bytes per execution: `bench --campaign`).
    bytes: std::sync::atomic::AtomicU64,
    /// Feed semantic coverage to libFuzzer's counters.
    semantic: bool,
    /// A violating run keeps its counters (PYVMFUZZ_KEEP_VIOLATING=1: the behaviour before
    /// issue 18, for `bench --ttf`'s before/after comparison).
    keep_violating: bool,
}

#[pymethods]
impl FuzzTarget {
    /// `semantic=True` registers the semantic counters with the libFuzzer in this process
    /// (raises if there is none) and feeds them on every run.
    #[new]
    #[pyo3(signature = (kernel="fixed", hw=None, semantic=false))]
    fn new(kernel: &str, hw: Option<&str>, semantic: bool) -> PyResult<Self> {
        if semantic && !crate::features::register_with_libfuzzer() {
            return Err(input_err(0, "semantic coverage needs libFuzzer's symbols loaded globally"));
        }
        Ok(FuzzTarget { kernel: kernel_by_name(kernel)?, hw: hw_spec(hw)?, execs: Default::default(), bytes: Default::default(), semantic,
                       keep_violating: std::env::var_os("PYVMFUZZ_KEEP_VIOLATING").is_some_and(|v| v == "1") })
    }

    /// (kind code, step): 0 is clean; else `kinds()[code-1]`. With semantic counters, a
    /// violating run leaves them clear (features::clear_counters): not a corpus entry.
    fn run(&self, data: &[u8]) -> (u32, u32) {
        self.execs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.bytes.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if self.semantic {
            let mut f = crate::features::Features::to_counters();
            let v = exec::fuzz_verdict(data, self.kernel, self.hw, Some(&mut f));
            if v.0 != 0 && !self.keep_violating {
                crate::features::clear_counters();
            }
            v
        } else {
            exec::fuzz_verdict(data, self.kernel, self.hw, None)
        }
    }

    fn execs(&self) -> u64 {
        self.execs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Input bytes passed to `run` so far.
    fn bytes_run(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn run_batch(&self, py: Python<'_>, inputs: Vec<Vec<u8>>) -> Vec<(u32, u32)> {
        let k = self.kernel;
        let hw = self.hw;
        py.detach(move || inputs.iter().map(|d| exec::fuzz_verdict(d, k, hw, None)).collect())
    }
}

/// Random programs run entirely in Rust (see soak.rs).
#[pyfunction]
#[pyo3(signature = (programs, seed=1, kernel="fixed", max_steps=64, max_cpus=4, max_tlb=16, mode="pc64", interleaved=true))]
#[allow(clippy::too_many_arguments)]
fn soak<'py>(
    py: Python<'py>,
    programs: u64,
    seed: u64,
    kernel: &str,
    max_steps: u32,
    max_cpus: u8,
    max_tlb: u8,
    mode: &str,
    interleaved: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let k = kernel_by_name(kernel)?;
    let mode = match mode {
        "pc64" => TlbMode::Pc64,
        "tagged" => TlbMode::Tagged,
        _ => return Err(input_err(0, &format!("bad mode '{mode}'"))),
    };
    if max_steps == 0 || !(1..=8).contains(&max_cpus) || !(1..=64).contains(&max_tlb) {
        return Err(input_err(0, "soak: max_steps >= 1, max_cpus 1..8, max_tlb 1..64"));
    }
    let cfg = SoakConfig { programs, seed, max_steps, max_cpus, max_tlb, mode, interleaved };
    let res = py.detach(|| crate::soak::soak(&cfg, k));
    let d = PyDict::new(py);
    d.set_item("programs", res.programs)?;
    d.set_item("steps", res.steps)?;
    d.set_item("violations", res.violations)?;
    let ex = PyList::empty(py);
    for (hw, bytes, v) in &res.examples {
        let x = PyDict::new(py);
        x.set_item("hw", hw.to_string())?;
        x.set_item("bytes", PyBytes::new(py, bytes))?;
        x.set_item("kind", v.kind.name())?;
        x.set_item("step", v.step)?;
        x.set_item("observed", &v.observed)?;
        ex.append(x)?;
    }
    d.set_item("examples", ex)?;
    Ok(d)
}

/// The random baseline of `pyvmfuzz bench`: (seconds to first violation or None, programs).
#[pyfunction]
#[pyo3(signature = (kernel, seed, budget_s, hw=None, max_steps=32))]
fn random_until(py: Python<'_>, kernel: &str, seed: u64, budget_s: f64, hw: Option<&str>, max_steps: u32) -> PyResult<(Option<f64>, u64)> {
    let k = kernel_by_name(kernel)?;
    let spec = hw_spec(hw)?;
    Ok(py.detach(|| crate::soak::random_until(k, spec, seed, budget_s, max_steps.max(1))))
}

/// `random_until` returning what it met: (the input or None, seconds to it or None, programs,
/// the generator's state: a call seeded with it goes on with the same sequence). The
/// campaign's random burst runs it in slices from the campaign's seed (issue 25).
#[pyfunction]
#[pyo3(signature = (kernel, seed, budget_s, hw=None, max_steps=32))]
fn random_find<'py>(py: Python<'py>, kernel: &str, seed: u64, budget_s: f64, hw: Option<&str>, max_steps: u32) -> PyResult<(Option<Bound<'py, PyBytes>>, Option<f64>, u64, u64)> {
    let k = kernel_by_name(kernel)?;
    let spec = hw_spec(hw)?;
    let (found, n, state) = py.detach(|| crate::soak::random_find(k, spec, seed, budget_s, max_steps.max(1)));
    Ok(match found {
        Some((b, t)) => (Some(PyBytes::new(py, &b)), Some(t), n, state),
        None => (None, None, n, state),
    })
}

/// Self-test: incremental vs full invariant checks on random programs. Returns (mismatches,
/// programs the full check flagged); a program that panics counts as a mismatch.
/// `plant_fill_writable=True` plants a fault: TLB fills cache a writable bit the PTE lacks.
#[pyfunction]
#[pyo3(signature = (programs, seed=1, kernel="fixed", mode="pc64", plant_fill_writable=false))]
fn _selftest_invariants(programs: u64, seed: u64, kernel: &str, mode: &str, plant_fill_writable: bool) -> PyResult<(u64, u64)> {
    let k = kernel_by_name(kernel)?;
    let mode = if mode == "tagged" { TlbMode::Tagged } else { TlbMode::Pc64 };
    Ok(crate::soak::crosscheck_invariants(programs, seed, k, mode, plant_fill_writable))
}

#[pyfunction]
fn kernels() -> Vec<(&'static str, &'static str)> {
    kernel::KERNELS.iter().map(|k| (k.name, k.story)).collect()
}

/// The semantic features a byte-form program reaches (sorted, distinct counter indices).
#[pyfunction]
#[pyo3(signature = (data, kernel=None, hw=None))]
fn semantic_features(data: &[u8], kernel: Option<&str>, hw: Option<&str>) -> PyResult<Vec<u16>> {
    let k = kernel_by_name(kernel.unwrap_or("fixed"))?;
    let mut f = crate::features::Features::collecting();
    exec::fuzz_verdict(data, k, hw_spec(hw)?, Some(&mut f));
    let mut v = f.collected.take().unwrap_or_default();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn thread_name(t: (u32, u32)) -> String {
    format!("P{}.T{}", t.0, t.1)
}

/// The source tree this module was built from (for the coverage build of `pyvmfuzz fuzz`).
#[pyfunction]
fn source_dir() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

/// The zoo: every kernel with the hardware it is judged on and whether it must be found.
#[pyfunction]
fn zoo<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for k in kernel::KERNELS {
        let d = PyDict::new(py);
        d.set_item("name", k.name)?;
        d.set_item("story", k.story)?;
        d.set_item("hw", k.zoo_hw)?;
        d.set_item("expect_found", k.zoo_expect_found)?;
        d.set_item("by_search", k.zoo_by_search)?;
        d.set_item("commits", k.zoo_commits)?;
        d.set_item("interleaved", k.zoo_interleaved)?;
        out.append(d)?;
    }
    Ok(out)
}

/// The canonical name of kernel `name` (a named kernel or a `KERNEL+ACTION-no-ACTION`
/// variant); ValueError when there is none.
#[pyfunction]
fn kernel_name(name: &str) -> PyResult<&'static str> {
    Ok(kernel_by_name(name)?.name)
}

#[pyfunction]
fn kinds() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name()).collect()
}

/// Parse a text program (syntax only; no CPU check) into its parts: `hw` (cpus, tlb, mode as
/// written in the header, each None when absent), `kernel`, `expects`, and `steps`: per op line
/// (source line, canonical op text, canonical assertion text or None).
#[pyfunction]
fn parse_text<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyDict>> {
    let prog = parse_prog(text)?;
    let d = PyDict::new(py);
    let mode = prog.hw.mode.map(|m| if m == TlbMode::Tagged { "tagged" } else { "pc64" });
    d.set_item("hw", (prog.hw.cpus, prog.hw.tlb, mode))?;
    d.set_item("kernel", prog.kernel.as_deref())?;
    d.set_item("os", prog.os.as_deref())?;
    d.set_item("expects", expects_list(py, &prog)?)?;
    let steps: Vec<(usize, String, Option<String>)> = (0..prog.steps.len())
        .map(|i| (prog.line_of(i), prog.steps[i].to_string(), prog.asserts[i].as_ref().map(|a| a.to_string())))
        .collect();
    d.set_item("steps", steps)?;
    Ok(d)
}

/// The layout facts the core is built with (docs/contract.md §2.1, §2.3; rust/src/program.rs, codec.rs, hw.rs).
#[pyfunction]
fn layout<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    use crate::program::{text_word, NWORDS, PAGE_NAMES};
    let d = PyDict::new(py);
    d.set_item("pages", PAGE_NAMES.to_vec())?;
    d.set_item("words", NWORDS)?;
    let text: Vec<(&str, Vec<u32>)> = (0..PAGE_NAMES.len() as u8)
        .filter(|&p| program::is_text(p))
        .map(|p| (PAGE_NAMES[p as usize], (0..NWORDS as u8).map(|w| text_word(p - program::FIRST_TEXT, w)).collect()))
        .collect();
    d.set_item("text_content", text)?;
    d.set_item("shared_pages", vec![PAGE_NAMES[program::SHM as usize], PAGE_NAMES[program::FILE0 as usize]])?;
    d.set_item("unmapped_pages", vec![PAGE_NAMES[program::HOLE0 as usize]])?;
    let file: Vec<u32> = (0..NWORDS as u8).map(program::data_file_word).collect();
    d.set_item("file_content", vec![(PAGE_NAMES[program::FILE0 as usize], file)])?;
    d.set_item("opcodes", codec::OPCODES.to_vec())?;
    d.set_item("ext_select", codec::EXT_SELECT.to_vec())?;
    d.set_item("headers", vec!["hw", "kernel", "os", "expect"])?;
    d.set_item("record", (codec::RECORD, codec::UNTIL))?;
    let def = crate::hw::Hw::default();
    d.set_item("hw_default", (def.cpus, def.tlb, "pc64"))?;
    d.set_item("hw_max", (crate::hw::MAX_CPUS, crate::hw::MAX_TLB))?;
    d.set_item("modes", vec!["pc64", "tagged"])?;
    // Yield points -> the operations whose lines may name them (`Op::points`, what the parser
    // accepts), in the table's order.
    use crate::program::{Addr, Op, Target, POINTS};
    let a = Addr { page: 0, word: 0 };
    let ops = [
        ("switch", Op::Switch(Target::Idle)),
        ("load", Op::Load(a)),
        ("store", Op::Store(a, 0)),
        ("fork", Op::Fork),
        ("spawn", Op::Spawn),
        ("exit", Op::Exit),
        ("umtx_sleep", Op::UmtxSleep(a, 0)),
        ("umtx_wakeup", Op::UmtxWakeup(a)),
        ("procfs_read", Op::ProcfsRead(1, a)),
        ("procfs_write", Op::ProcfsWrite(1, a, 0)),
        ("madvise", Op::Madvise(0)),
        ("mprotect", Op::Mprotect(0, false)),
        ("munmap", Op::Munmap(0)),
        ("mmap", Op::Mmap(0)),
        ("mremap", Op::Mremap(0, 1)),
        ("msync", Op::Msync(0)),
        ("pageout", Op::Pageout(1, 0)),
    ];
    let points = PyDict::new(py);
    for p in POINTS {
        let names: Vec<&str> = ops.iter().filter(|(_, o)| o.points(true) & p.bit() != 0).map(|(n, _)| *n).collect();
        points.set_item(p.name(), names)?;
    }
    d.set_item("points", points)?;
    Ok(d)
}

/// explore / necessity bindings (docs/contract.md §5).
#[path = "python_explore.rs"]
mod explore_py;

/// `explain`'s binding: a run with the machine's state after every line.
#[path = "python_explain.rs"]
mod explain_py;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    exec::install_panic_hook();
    m.add_function(wrap_pyfunction!(check_text, m)?)?;
    m.add_function(wrap_pyfunction!(run_text, m)?)?;
    m.add_function(wrap_pyfunction!(run_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(mutate, m)?)?;
    m.add("SEMANTIC_COUNTERS", crate::features::NFEATURES)?;
    m.add_function(wrap_pyfunction!(crossover, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(canonical, m)?)?;
    m.add_function(wrap_pyfunction!(soak, m)?)?;
    m.add_function(wrap_pyfunction!(kernels, m)?)?;
    m.add_function(wrap_pyfunction!(kinds, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_name, m)?)?;
    m.add_function(wrap_pyfunction!(explore_py::explore, m)?)?;
    m.add_function(wrap_pyfunction!(explore_py::safety_actions, m)?)?;
    m.add_function(wrap_pyfunction!(explore_py::action_present, m)?)?;
    m.add_function(wrap_pyfunction!(explore_py::random_search, m)?)?;
    m.add_function(wrap_pyfunction!(explore_py::pct_search, m)?)?;
    m.add_function(wrap_pyfunction!(explore_py::pct_until, m)?)?;
    m.add_function(wrap_pyfunction!(explore_py::run_variant, m)?)?;
    m.add_function(wrap_pyfunction!(zoo, m)?)?;
    m.add_function(wrap_pyfunction!(random_until, m)?)?;
    m.add_function(wrap_pyfunction!(random_find, m)?)?;
    m.add_function(wrap_pyfunction!(source_dir, m)?)?;
    m.add_function(wrap_pyfunction!(semantic_features, m)?)?;
    m.add_function(wrap_pyfunction!(explain_py::explain, m)?)?;
    m.add_function(wrap_pyfunction!(_selftest_panic, m)?)?;
    m.add_function(wrap_pyfunction!(_selftest_invariants, m)?)?;
    m.add_function(wrap_pyfunction!(parse_text, m)?)?;
    m.add_function(wrap_pyfunction!(layout, m)?)?;
    m.add_class::<FuzzTarget>()?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    Ok(())
}
