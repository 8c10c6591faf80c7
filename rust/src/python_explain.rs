//! The binding of `pyvmfuzz explain`: a text program's report plus the machine's state after
//! every line, as Python dicts (a child of `python.rs`).

use super::{prepare, report_dict, thread_name};
use crate::exec::{self, Source};
use crate::explain::{CpuSnap, ProcSnap, Snapshot};
use crate::program::PAGE_NAMES;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Run a text program and return its report plus the machine's state after every step
/// (for `pyvmfuzz explain`). `past_internal`: as `run_text`'s — a witness is shown through to
/// its user-visible step, the internal violation in `internal`.
#[pyfunction]
#[pyo3(signature = (text, kernel=None, hw=None, past_internal=false))]
pub fn explain<'py>(py: Python<'py>, text: &str, kernel: Option<&str>, hw: Option<&str>, past_internal: bool) -> PyResult<Bound<'py, PyDict>> {
    let (prog, k, eff) = prepare(text, kernel, hw)?;
    let mut snaps = Vec::new();
    let r = exec::with_past_internal(past_internal, || {
        exec::run_observed(Source::Text(&prog), eff, k, 0, true, None, &mut |m| snaps.push(crate::explain::snapshot(m)))
    })
    .map_err(PyErr::from)?;
    let d = report_dict(py, &r, Some(&prog))?;
    let states = PyList::empty(py);
    for s in &snaps {
        states.append(state_dict(py, s)?)?;
    }
    d.set_item("states", states)?;
    Ok(d)
}

fn state_dict<'py>(py: Python<'py>, s: &Snapshot) -> PyResult<Bound<'py, PyDict>> {
    let sd = PyDict::new(py);
    let cpus = PyList::empty(py);
    for c in &s.cpus {
        cpus.append(cpu_dict(py, c)?)?;
    }
    sd.set_item("cpus", cpus)?;
    let procs = PyList::empty(py);
    for p in &s.procs {
        procs.append(proc_dict(py, p)?)?;
    }
    sd.set_item("procs", procs)?;
    let sl: Vec<(String, u32, u8)> = s.sleepers.iter().map(|&(p, t, f, w)| (thread_name((p, t)), f, w)).collect();
    sd.set_item("sleepers", sl)?;
    let fr = PyDict::new(py);
    for (f, words, freed, _, _) in &s.frames {
        fr.set_item(*f, (words.to_vec(), *freed))?;
    }
    // The page's dirty flag and the memory slot of each frame (a freed frame's slot may
    // be reused: SPEC §3.4).
    let fx = PyDict::new(py);
    for (f, _, _, dirty, slot) in &s.frames {
        fx.set_item(*f, (*dirty, *slot))?;
    }
    sd.set_item("frame_info", fx)?;
    sd.set_item("frames", fr)?;
    Ok(sd)
}

fn cpu_dict<'py>(py: Python<'py>, c: &CpuSnap) -> PyResult<Bound<'py, PyDict>> {
    let cd = PyDict::new(py);
    cd.set_item("running", c.running.map(thread_name))?;
    // A CPU between the halves of a switch runs no address space: space None.
    cd.set_item("space", (c.space != crate::swtch::MID_SWITCH).then_some(c.space))?;
    let tlb: Vec<(u32, &str, u32, bool)> = c.tlb.iter().map(|&(a, va, f, w)| (a, PAGE_NAMES[va as usize], f, w)).collect();
    cd.set_item("tlb", tlb)?;
    match &c.inflight {
        None => cd.set_item("in_flight", py.None())?,
        Some((op, ph, pt, w)) => {
            let x = PyDict::new(py);
            x.set_item("op", op)?;
            x.set_item("phase", ph)?;
            x.set_item("point", *pt)?;
            x.set_item("waiting_for", w.as_deref())?;
            cd.set_item("in_flight", x)?;
        }
    }
    let pend: Vec<(u32, &str, u8)> = c.pending.iter().map(|&(a, va, o)| (a, PAGE_NAMES[va as usize], o)).collect();
    cd.set_item("pending_ipis", pend)?;
    Ok(cd)
}

fn proc_dict<'py>(py: Python<'py>, p: &ProcSnap) -> PyResult<Bound<'py, PyDict>> {
    let pd = PyDict::new(py);
    pd.set_item("pid", p.pid)?;
    let act: Vec<u32> = (0..8).filter(|c| p.pm_active & (1 << c) != 0).collect();
    pd.set_item("pm_active", act)?;
    let pages = PyDict::new(py);
    for (i, name) in PAGE_NAMES.iter().enumerate() {
        let pg = PyDict::new(py);
        pg.set_item("pte", p.pte[i])?;
        pg.set_item("seen", p.seen[i])?;
        pg.set_item("modified", p.modified[i])?;
        let (prot, needs_copy, depth) = match p.entry[i] {
            Some((w, nc, depth)) => (if w { "rw" } else { "r" }, nc, depth),
            None => ("unmapped", false, 0),
        };
        pg.set_item("prot", prot)?;
        pg.set_item("needs_copy", needs_copy)?;
        pg.set_item("shadow_depth", depth)?;
        pages.set_item(*name, pg)?;
    }
    pd.set_item("pages", pages)?;
    let th: Vec<(String, &str)> = p.threads.iter().map(|&(t, st)| (format!("P{}.T{}", p.pid, t), st)).collect();
    pd.set_item("threads", th)?;
    Ok(pd)
}
