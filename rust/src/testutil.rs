//! Test support for the kernel model's unit tests: a machine from a kernel name and a hardware
//! spec, lines run one at a time from their text, the state read back by page name.

use crate::hw::HwSpec;
use crate::kernel;
use crate::machine::Machine;
use crate::pmap::Pte;
use crate::program::{parse, Outcome, PAGE_NAMES};

pub fn machine(kernel_name: &str, hw: &str) -> Machine {
    let k = kernel::by_name(kernel_name).expect("a kernel");
    Machine::new(HwSpec::parse(hw).expect("a hw spec").resolve(), k)
}

pub fn page(name: &str) -> u8 {
    PAGE_NAMES.iter().position(|p| *p == name).expect("a page name") as u8
}

/// Run one line (`cpu0 load data0.0`); panics when it is not applicable.
pub fn line(m: &mut Machine, text: &str) -> Outcome {
    line_woke(m, text).0
}

/// Run one line: its outcome and the threads it woke.
pub fn line_woke(m: &mut Machine, text: &str) -> (Outcome, Vec<(u32, u32)>) {
    let s = parse(text).expect("a valid line").steps[0];
    let o = m.step(s).unwrap_or_else(|e| panic!("{text}: {}", e.0));
    (o.outcome, o.woke)
}

/// Whether the line is refused as not applicable now.
pub fn refused(m: &mut Machine, text: &str) -> bool {
    let s = parse(text).expect("a valid line").steps[0];
    m.step(s).is_err()
}

pub fn pte(m: &Machine, pid: u32, name: &str) -> Pte {
    m.proc(pid).pmap.pte[page(name) as usize]
}

/// The TLB entry of `cpu` for (pid, page): (frame, writable).
pub fn tlb(m: &Machine, cpu: usize, pid: u32, name: &str) -> Option<(u32, bool)> {
    m.cpus[cpu].tlb.lookup(pid, page(name)).map(|e| (e.frame, e.writable))
}
