//! Random programs in bulk, for the soak test and `pyvmfuzz bench`: random bytes decoded and
//! run entirely in Rust.

use crate::exec::{run_opts, Source};
use crate::codec::{Decoder, RECORD};
use crate::hw::{Hw, TlbMode};
use crate::judge::Violation;
use crate::kernel::Kernel;

/// splitmix64: tiny, deterministic, good enough to make test inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub struct SoakConfig {
    pub programs: u64,
    pub seed: u64,
    pub max_steps: u32,
    pub max_cpus: u8,
    pub max_tlb: u8,
    pub mode: TlbMode,
    /// Generate `until`/`resume`/`ipi` lines (SPEC §3.2); false: plain programs only.
    pub interleaved: bool,
}

#[derive(Default)]
pub struct SoakResult {
    pub programs: u64,
    pub steps: u64,
    pub violations: u64,
    /// The first few violating inputs: (hw, bytes, violation).
    pub examples: Vec<(Hw, Vec<u8>, Violation)>,
}

pub fn soak(cfg: &SoakConfig, kernel: &'static Kernel) -> SoakResult {
    let mut rng = Rng(cfg.seed);
    let mut res = SoakResult::default();
    let mut buf = Vec::with_capacity(2 + RECORD * cfg.max_steps as usize);
    for _ in 0..cfg.programs {
        let hw = Hw {
            cpus: 1 + rng.below(cfg.max_cpus as u64) as u8,
            tlb: 1 + rng.below(cfg.max_tlb as u64) as u8,
            mode: cfg.mode,
        };
        let nsteps = 1 + rng.below(cfg.max_steps as u64) as usize;
        buf.clear();
        buf.extend_from_slice(&crate::codec::encode_header(&hw));
        while buf.len() < 2 + RECORD * nsteps {
            let r = rng.next().to_le_bytes();
            buf.extend_from_slice(&r[..4]);
        }
        if !cfg.interleaved {
            plain_records(&mut buf);
        }
        let mut d = Decoder::new(&buf);
        d.header();
        let report = run_opts(Source::Bytes(d), hw, kernel, 0, false, None).expect("decoded programs are always applicable");
        res.programs += 1;
        res.steps += report.steps_run as u64 + report.violation.is_some() as u64;
        if let Some(v) = report.violation {
            res.violations += 1;
            if res.examples.len() < 5 {
                res.examples.push((hw, buf.clone(), v));
            }
        }
    }
    res
}

/// Make every record of `buf` (after the header) decode to a plain line: no `resume`/`ipi`
/// kind (they become loads) and no `until`.
pub fn plain_records(buf: &mut [u8]) {
    let mut i = 2;
    while i < buf.len() {
        let k = buf[i] & 15;
        if k == 13 || k == 14 {
            buf[i] = (buf[i] & 0xf0) | 15;
        }
        if i + 4 < buf.len() {
            buf[i + 4] &= 0x7f;
        }
        // Escapes follow the record (see codec.rs).
        let esc = |j: usize| if buf.get(j) == Some(&0xff) { 4 } else { 0 };
        i += RECORD + esc(i + 2) + esc(i + 3);
    }
}

/// Self-check of the incremental invariant check: on random programs, after every step, the
/// incremental check must report exactly what a full check reports. Returns (mismatches,
/// programs the full check flagged). A program that raises a model assertion counts as a
/// mismatch: it was never checked to the end, so it is not clean. `plant_fill_writable`
/// plants a fault (TLB fills cache a writable bit the PTE lacks) that both checks must flag.
pub fn crosscheck_invariants(programs: u64, seed: u64, kernel: &'static Kernel, mode: TlbMode, plant_fill_writable: bool) -> (u64, u64) {
    let mut rng = Rng(seed);
    let (mut mismatches, mut flagged) = (0, 0);
    for _ in 0..programs {
        let hw = Hw { cpus: 1 + rng.below(4) as u8, tlb: 1 + rng.below(16) as u8, mode };
        let buf: Vec<u8> = (0..2 + RECORD as u64 * (1 + rng.below(48))).map(|_| rng.next() as u8).collect();
        let mut d = Decoder::new(&buf);
        d.header();
        let mut m = crate::machine::Machine::new(hw, kernel);
        m.selftest.plant_fill_writable = plant_fill_writable;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut bad = 0;
            while let Some(s) = d.next_step(&m) {
                if m.step(s).is_err() {
                    break;
                }
                let full = m.check_invariants_full();
                // `lost-data` is an event (a dirty page freed or cleaned), not a state the full
                // check can recompute: the state must then be clean.
                let (inc, event) = match m.check_invariants() {
                    Some((crate::judge::Kind::LostData, _)) => (None, true),
                    v => (v, false),
                };
                if full != inc {
                    bad += 1;
                }
                if full.is_some() || event {
                    return (bad, 1);
                }
            }
            (bad, 0)
        }));
        let (bad, f) = ok.unwrap_or((1, 0));
        mismatches += bad;
        flagged += f;
    }
    (mismatches, flagged)
}

/// The no-feedback baseline: uniformly random byte strings (the header too; keys in `hw`
/// override it, as in a campaign), decoded and run until the first violation or the time
/// budget. Returns (seconds to the first violation if any, programs run).
pub fn random_until(kernel: &'static Kernel, hw: crate::hw::HwSpec, seed: u64, budget_s: f64, max_steps: u32) -> (Option<f64>, u64) {
    let (found, n, _) = random_find(kernel, hw, seed, budget_s, max_steps);
    (found.map(|(_, t)| t), n)
}

/// `random_until`'s loop, returning what it met: (the input and the seconds to it, programs
/// run, the generator's state). The same seed meets the same input after the same programs,
/// and a call seeded with the state another returned goes on with the same sequence, so a
/// campaign's random burst that runs it in slices with the campaign's seed is the baseline
/// itself, plus what else it runs.
pub fn random_find(kernel: &'static Kernel, hw: crate::hw::HwSpec, seed: u64, budget_s: f64, max_steps: u32) -> (Option<(Vec<u8>, f64)>, u64, u64) {
    let mut rng = Rng(seed);
    let start = std::time::Instant::now();
    let mut buf = Vec::with_capacity(2 + RECORD * max_steps as usize);
    let mut n = 0u64;
    loop {
        if n % 1024 == 0 && start.elapsed().as_secs_f64() > budget_s {
            return (None, n, rng.0);
        }
        let len = 2 + RECORD * (1 + rng.below(max_steps as u64) as usize);
        buf.clear();
        while buf.len() < len {
            buf.extend_from_slice(&rng.next().to_le_bytes()[..4]);
        }
        buf.truncate(len);
        n += 1;
        if crate::exec::fuzz_verdict(&buf, kernel, hw, None).0 != 0 {
            let t = start.elapsed().as_secs_f64();
            return (Some((buf, t)), n, rng.0);
        }
    }
}
