//! Python bindings of explore and necessity (docs/contract.md §5): a child of `python.rs`.

use super::{hw_spec, input_err, kernel_by_name, parse_prog};
use crate::kernel::Kernel;
use crate::{exec, program};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn explore_dict<'py>(py: Python<'py>, k: &'static Kernel, hw: crate::hw::Hw, r: &crate::explore::Explored) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let st = &r.stats;
    d.set_item("kernel", k.name)?;
    d.set_item("hw", hw.to_string())?;
    d.set_item("completed", st.completed)?;
    d.set_item("bound", st.bound)?;
    d.set_item("generated", st.generated)?;
    d.set_item("generated_last", st.generated_last)?;
    d.set_item("distinct", st.distinct)?;
    d.set_item("por_skipped", st.por_skipped)?;
    d.set_item("hash_hits", st.hash_hits)?;
    d.set_item("shared", st.shared)?;
    d.set_item("elapsed_s", st.elapsed_s)?;
    d.set_item("stopped", r.stopped)?;
    match &r.witness {
        None => d.set_item("witness", py.None())?,
        Some((steps, v)) => {
            // The replay's violation carries a model assertion's message; the search's does not.
            let (obs, tv) = crate::explore::trace(k, hw, steps);
            let v = tv.as_ref().filter(|t| t.kind == v.kind && t.step == v.step).unwrap_or(v);
            let w = PyDict::new(py);
            w.set_item("steps", steps.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
            w.set_item("trace", obs.iter().map(|o| o.to_string()).collect::<Vec<_>>())?;
            w.set_item("kind", v.kind.name())?;
            w.set_item("step", v.step)?;
            w.set_item("expected", &v.expected)?;
            w.set_item("observed", &v.observed)?;
            d.set_item("witness", w)?;
        }
    }
    Ok(d)
}

fn knobbed(kernel: &str, off: &[String], on: &[String]) -> PyResult<&'static Kernel> {
    let base = kernel_by_name(kernel)?;
    let off: Vec<&str> = off.iter().map(|s| s.as_str()).collect();
    let on: Vec<&str> = on.iter().map(|s| s.as_str()).collect();
    crate::necessity::variant(base, &off, &on).map_err(|m: String| input_err(0, &m))
}

/// Exhaustive exploration (docs/contract.md §5 `explore`; see rust/src/explore.rs for the domain).
/// `progress(stats_dict) -> bool` is called every 16k lines (False stops); Ctrl-C stops too.
/// Returns a dict: completed (deepest bound proved), generated, distinct, elapsed_s, stopped,
/// witness (None or {steps, trace, kind, step, expected, observed}).
#[pyfunction]
#[pyo3(signature = (kernel, depth, hw=None, time_s=0.0, hashing=true, por=true, off=vec![], on=vec![], progress=None, max_table=30_000_000, until_hint=true, pages=None, values=None, prefix=None, distinguish=false, stops=None, vm=false, symmetry=true, first_bound=1))]
#[allow(clippy::too_many_arguments)]
pub fn explore<'py>(
    py: Python<'py>,
    kernel: &str,
    depth: u32,
    hw: Option<&str>,
    time_s: f64,
    hashing: bool,
    por: bool,
    off: Vec<String>,
    on: Vec<String>,
    progress: Option<Py<PyAny>>,
    max_table: usize,
    until_hint: bool,
    pages: Option<Vec<String>>,
    values: Option<Vec<u32>>,
    prefix: Option<&str>,
    distinguish: bool,
    stops: Option<u32>,
    vm: bool,
    symmetry: bool,
    first_bound: u32,
) -> PyResult<Bound<'py, PyDict>> {
    let base = if distinguish { Some(knobbed(kernel, &[], &on)?) } else { None };
    let prefix_steps = match prefix {
        Some(t) => parse_prog(t)?.steps,
        None => Vec::new(),
    };
    let mut domain = crate::explore::Domain::default();
    if let Some(ps) = pages {
        domain.pages = ps
            .iter()
            .map(|p| program::parse_page(p).ok_or_else(|| input_err(0, &format!("--pages: unknown page '{p}'"))))
            .collect::<PyResult<Vec<u8>>>()?;
    }
    if let Some(vs) = values {
        domain.values = vs;
    }
    domain.vm = vm;
    let k = knobbed(kernel, &off, &on)?;
    let eff = hw_spec(hw)?.resolve();
    if depth == 0 || depth > 64 {
        return Err(input_err(0, "--depth must be 1..64"));
    }
    let cfg = crate::explore::Config { depth, time_s, hashing, por, until_hint, base, max_table, domain, stops, symmetry, first_bound };
    let mut interrupted = false;
    let r = py.detach(|| {
        let mut cb = |st: &crate::explore::Stats| -> bool {
            Python::attach(|py| {
                if py.check_signals().is_err() {
                    interrupted = true;
                    return false;
                }
                if let Some(f) = &progress {
                    let d = PyDict::new(py);
                    let _ = d.set_item("bound", st.bound);
                    let _ = d.set_item("completed", st.completed);
                    let _ = d.set_item("generated", st.generated);
                    let _ = d.set_item("distinct", st.distinct);
                    let _ = d.set_item("elapsed_s", st.elapsed_s);
                    match f.call1(py, (d,)) {
                        Ok(v) => v.extract::<bool>(py).unwrap_or(true),
                        Err(_) => {
                            interrupted = true;
                            false
                        }
                    }
                } else {
                    true
                }
            })
        };
        crate::explore::explore(k, eff, &cfg, &prefix_steps, &mut cb)
    })
    .map_err(|m: String| input_err(0, &m))?;
    let d = explore_dict(py, k, eff, &r)?;
    d.set_item("interrupted", interrupted)?;
    Ok(d)
}

/// Run text program lines under `kernel` with actions switched off/on: the violation's
/// (kind, step) or None. For checking a witness against the base kernel.
#[pyfunction]
#[pyo3(signature = (kernel, text, hw=None, off=vec![], on=vec![]))]
pub fn run_variant(kernel: &str, text: &str, hw: Option<&str>, off: Vec<String>, on: Vec<String>) -> PyResult<Option<(String, u32)>> {
    let k = knobbed(kernel, &off, &on)?;
    let prog = parse_prog(text)?;
    let eff = exec::effective_hw(prog.hw, hw_spec(hw)?);
    let (_, v) = crate::explore::trace(k, eff, &prog.steps);
    Ok(v.map(|v| (v.kind.name().to_string(), v.step)))
}

/// The safety actions `necessity` switches off: (name, DragonFly function, what it does).
#[pyfunction]
pub fn safety_actions() -> Vec<(&'static str, &'static str, &'static str)> {
    crate::necessity::ACTIONS.iter().map(|a| (a.name, a.function, a.what)).collect()
}

/// Whether `kernel` (with `on` switched on) performs the named action.
#[pyfunction]
#[pyo3(signature = (kernel, action, on=vec![]))]
pub fn action_present(kernel: &str, action: &str, on: Vec<String>) -> PyResult<bool> {
    let k = knobbed(kernel, &[], &on)?;
    let a = crate::necessity::action(action).ok_or_else(|| input_err(0, &format!("unknown safety action '{action}'")))?;
    Ok((a.present)(k))
}

/// Random search for `budget_s` seconds against `kernel` without the actions `off`; the first
/// violation shrunk: (steps, trace, kind, step) or None, and the programs run.
#[pyfunction]
#[pyo3(signature = (kernel, budget_s, hw=None, off=vec![], on=vec![], seed=1, max_steps=16))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn random_search(
    py: Python<'_>,
    kernel: &str,
    budget_s: f64,
    hw: Option<&str>,
    off: Vec<String>,
    on: Vec<String>,
    seed: u64,
    max_steps: usize,
) -> PyResult<(Option<(Vec<String>, Vec<String>, String, u32)>, u64)> {
    let k = knobbed(kernel, &off, &on)?;
    let eff = hw_spec(hw)?.resolve();
    let (w, n) = py.detach(|| crate::necessity::random_search(k, eff, seed, budget_s, max_steps.max(1)));
    Ok((
        w.map(|(steps, v)| {
            let (obs, _) = crate::explore::trace(k, eff, &steps);
            (
                steps.iter().map(|s| s.to_string()).collect(),
                obs.iter().map(|o| o.to_string()).collect(),
                v.kind.name().to_string(),
                v.step,
            )
        }),
        n,
    ))
}


/// PCT runs (rust/src/pct.rs) for `budget_s` seconds: the first violation, shrunk — (steps,
/// trace, kind, step) — or None, and the runs made. `depth`: the bug depth PCT aims at (d-1
/// change points); `max_lines`: each CPU's most lines.
#[pyfunction]
#[pyo3(signature = (kernel, budget_s, hw=None, seed=1, depth=3, max_lines=6))]
#[allow(clippy::type_complexity)]
pub fn pct_search(
    py: Python<'_>,
    kernel: &str,
    budget_s: f64,
    hw: Option<&str>,
    seed: u64,
    depth: u32,
    max_lines: u32,
) -> PyResult<(Option<(Vec<String>, Vec<String>, String, u32)>, u64)> {
    let k = knobbed(kernel, &[], &[])?;
    let (hws, p) = pct_args(hw, depth, max_lines)?;
    let (w, n) = py.detach(|| crate::pct::until_violation(k, &hws, p, seed, budget_s));
    Ok((
        w.map(|(_, steps, _, eff)| {
            let (steps, v) = crate::necessity::shrink(k, eff, steps);
            let (obs, _) = crate::explore::trace(k, eff, &steps);
            (steps.iter().map(|s| s.to_string()).collect(), obs.iter().map(|o| o.to_string()).collect(), v.kind.name().to_string(), v.step)
        }),
        n,
    ))
}

/// PCT runs until the first violation or `budget_s`: (seconds to it or None, runs made) — the
/// zoo benchmark's `pct` configuration, beside `random_until`.
#[pyfunction]
#[pyo3(signature = (kernel, seed, budget_s, hw=None, depth=3, max_lines=6))]
pub fn pct_until(py: Python<'_>, kernel: &str, seed: u64, budget_s: f64, hw: Option<&str>, depth: u32, max_lines: u32) -> PyResult<(Option<f64>, u64)> {
    let k = knobbed(kernel, &[], &[])?;
    let (hws, p) = pct_args(hw, depth, max_lines)?;
    let (w, n) = py.detach(|| crate::pct::until_violation(k, &hws, p, seed, budget_s));
    Ok((w.map(|(t, ..)| t), n))
}

/// The machines PCT runs on — `hw` as given if it names the CPU count, else on 2, 3 and 4 CPUs in
/// turn (SPEC §3.3's races need up to three) — and its parameters, checked.
fn pct_args(hw: Option<&str>, depth: u32, max_lines: u32) -> PyResult<(Vec<crate::hw::Hw>, crate::pct::Params)> {
    if depth == 0 || depth > 8 || max_lines == 0 || max_lines > 32 {
        return Err(input_err(0, "PCT: depth must be 1..8 and max_lines 1..32"));
    }
    let spec = hw_spec(hw)?;
    let hws = if spec.cpus.is_some() {
        vec![spec.resolve()]
    } else {
        (2..=4).map(|c| crate::hw::HwSpec { cpus: Some(c), ..spec }.resolve()).collect()
    };
    Ok((hws, crate::pct::Params { depth, max_lines_per_cpu: max_lines }))
}
